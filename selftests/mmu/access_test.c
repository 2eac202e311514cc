// SPDX-License-Identifier: GPL-2.0
/*
 * KVMMU_GPA_ACCESS and KVMMU_TRANSLATE over real process memory: guest
 * accesses see the process's bytes and the process sees guest writes,
 * across page and slot boundaries; bad input gets its documented error;
 * TRANSLATE reports the host page that pagemap reports. The VM stays
 * coherent with the address space through its mmu notifier: munmap,
 * MADV_DONTNEED, mprotect and fork's copy-on-write each take effect in the
 * guest's view, and read-only slots refuse writes.
 */
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "../lib/ktap.h"
#include "../lib/kvmmu_util.h"

static int vm;
static long pg;
static int root;

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static void fill_random(void *p, size_t len)
{
	unsigned char *c = p;

	for (size_t i = 0; i < len; i++) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		c[i] = (unsigned char)rng;
	}
}

static int all_bytes(const void *p, size_t len, unsigned char v)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < len; i++)
		if (c[i] != v)
			return 0;
	return 1;
}

static char *map_anon(size_t len, int prot)
{
	char *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		ktap_diag("mmap %zu: %s", len, strerror(errno));
		exit(1);
	}
	return p;
}

/* TRANSLATE's pfn is the host page pagemap reports (0 when not root). */
static int pfn_matches(uint64_t gpa, const void *hva)
{
	struct kvmmu_translation t;
	uint64_t host = kvmmu_host_pfn(hva);

	if (kvmmu_translate(vm, gpa, &t) || !t.mapped) {
		ktap_diag("gpa 0x%llx not mapped", (unsigned long long)gpa);
		return 0;
	}
	if (root ? t.pfn == host && t.pfn != 0 : t.pfn == 0)
		return 1;
	ktap_diag("gpa 0x%llx: TRANSLATE pfn 0x%llx, pagemap 0x%llx", (unsigned long long)gpa,
		  (unsigned long long)t.pfn, (unsigned long long)host);
	return 0;
}

static int access_raw(uint64_t gpa, uint64_t len, void *buf, uint32_t flags, uint32_t pad,
		      uint64_t res0, uint64_t res1)
{
	struct kvmmu_gpa_access a;

	memset(&a, 0, sizeof(a));
	a.gpa = gpa;
	a.len = len;
	a.buf = (uintptr_t)buf;
	a.flags = flags;
	a.pad = pad;
	a.reserved[0] = res0;
	a.reserved[1] = res1;
	return ioctl(vm, KVMMU_GPA_ACCESS, &a);
}

int main(void)
{
	struct kvmmu_vm_stats st0, st;
	struct kvmmu_translation t;
	int dev, ok, r;

	pg = kvmmu_page_size();
	root = geteuid() == 0;
	/* Slot 0 is large enough for one access of KVMMU_ACCESS_MAX_LEN. */
	const uint64_t n0 = (KVMMU_ACCESS_MAX_LEN / pg + 2) > 16 ? KVMMU_ACCESS_MAX_LEN / pg + 2 : 16;
	const uint64_t n1 = 4, n2 = 4;
	const uint64_t g0 = 1ull << 30, g1 = g0 + n0 * pg, g2 = 2ull << 30;
	const uint64_t nowhere = 3ull << 30;

	ktap_start(63);
	dev = kvmmu_open();
	vm = dev >= 0 ? kvmmu_create_vm(dev) : -1;
	if (!ktap_result(vm >= 0, "create_vm")) {
		ktap_diag("%s", strerror(errno));
		return ktap_finish();
	}
	kvmmu_get_stats(vm, &st0);

	/* Base pages only: leaves are base pages, pfns are per page. */
	char *m0 = map_anon(n0 * pg, PROT_READ | PROT_WRITE);
	char *m1 = map_anon(n1 * pg, PROT_READ | PROT_WRITE);
	char *m2 = map_anon(n2 * pg, PROT_READ | PROT_WRITE);
	madvise(m0, n0 * pg, MADV_NOHUGEPAGE);
	fill_random(m0, n0 * pg);
	fill_random(m1, n1 * pg);
	fill_random(m2, n2 * pg);
	ok = kvmmu_set_region(vm, 0, 0, g0, n0 * pg, m0) == 0 &&
	     kvmmu_set_region(vm, 1, 0, g1, n1 * pg, m1) == 0 &&
	     kvmmu_set_region(vm, 2, KVMMU_MEM_READONLY, g2, n2 * pg, m2) == 0;
	if (!ktap_result(ok, "create_slots")) {
		ktap_diag("%s", strerror(errno));
		return ktap_finish();
	}

	/* Process writes, guest reads; guest writes, process reads. */
	char *buf = malloc(KVMMU_ACCESS_MAX_LEN + 2 * pg);
	char *want = malloc(KVMMU_ACCESS_MAX_LEN + 2 * pg);
	ok = kvmmu_gpa_read_all(vm, g0, buf, n0 * pg) == 0 && !memcmp(buf, m0, n0 * pg);
	ktap_result(ok, "process_write_guest_read_whole_slot");

	size_t wlen = 3 * pg + 100;
	fill_random(want, wlen);
	char before = m0[pg + 49], after = m0[pg + 50 + wlen];
	ok = kvmmu_gpa_write(vm, g0 + pg + 50, want, wlen) == 0 && !memcmp(m0 + pg + 50, want, wlen) &&
	     m0[pg + 49] == before && m0[pg + 50 + wlen] == after;
	ktap_result(ok, "guest_write_process_read_4_pages_unaligned");

	ok = kvmmu_gpa_read(vm, g0 + 2 * pg - 5, buf, 10) == 0 && !memcmp(buf, m0 + 2 * pg - 5, 10);
	ktap_result(ok, "read_crossing_page_boundary");

	/* Two adjacent slots over different host memory. */
	ok = kvmmu_gpa_read(vm, g1 - 8, buf, 16) == 0 && !memcmp(buf, m0 + n0 * pg - 8, 8) &&
	     !memcmp(buf + 8, m1, 8);
	ktap_result(ok, "read_crossing_slot_boundary");
	fill_random(want, 16);
	ok = kvmmu_gpa_write(vm, g1 - 8, want, 16) == 0 && !memcmp(m0 + n0 * pg - 8, want, 8) &&
	     !memcmp(m1, want + 8, 8);
	ktap_result(ok, "write_crossing_slot_boundary");

	/* Running off the last slot: ENOENT, found before anything is written. */
	fill_random(want, 16);
	memcpy(want + 16, m1 + n1 * pg - 8, 8);
	r = kvmmu_gpa_write(vm, g1 + n1 * pg - 8, want, 16);
	ok = KTAP_EXPECT_ERRNO(r, ENOENT, "write_past_slot_end_ENOENT");
	ktap_result(!memcmp(m1 + n1 * pg - 8, want + 16, 8), "write_past_slot_end_wrote_nothing");
	KTAP_EXPECT_ERRNO(kvmmu_gpa_read(vm, g1 + n1 * pg - 8, buf, 16), ENOENT,
			  "read_past_slot_end_ENOENT");
	KTAP_EXPECT_ERRNO(kvmmu_gpa_read(vm, nowhere, buf, 8), ENOENT, "read_no_slot_ENOENT");
	KTAP_EXPECT_ERRNO(kvmmu_gpa_write(vm, nowhere, want, 8), ENOENT, "write_no_slot_ENOENT");

	/* Lengths, flags, padding. */
	KTAP_EXPECT_ERRNO(access_raw(g0, 0, buf, 0, 0, 0, 0), EINVAL, "len_0_EINVAL");
	KTAP_EXPECT_ERRNO(access_raw(g0, KVMMU_ACCESS_MAX_LEN + 1ull, buf, 0, 0, 0, 0), EINVAL,
			  "len_max_plus_1_EINVAL");
	ok = access_raw(g0, KVMMU_ACCESS_MAX_LEN, buf, 0, 0, 0, 0) == 0 &&
	     !memcmp(buf, m0, KVMMU_ACCESS_MAX_LEN);
	ktap_result(ok, "len_max_ok");
	KTAP_EXPECT_ERRNO(access_raw(g0, 8, buf, 1u << 1, 0, 0, 0), EINVAL, "flag_bit1_EINVAL");
	KTAP_EXPECT_ERRNO(access_raw(g0, 8, buf, 1u << 31, 0, 0, 0), EINVAL, "flag_bit31_EINVAL");
	KTAP_EXPECT_ERRNO(access_raw(g0, 8, buf, 0, 1, 0, 0), EINVAL, "pad_EINVAL");
	KTAP_EXPECT_ERRNO(access_raw(g0, 8, buf, 0, 0, 1, 0), EINVAL, "reserved0_EINVAL");
	KTAP_EXPECT_ERRNO(access_raw(g0, 8, buf, 0, 0, 0, 1ull << 63), EINVAL, "reserved1_EINVAL");
	/* Refused before anything is written. */
	memcpy(want, m0, 64);
	memset(buf, 0x5c, 64);
	access_raw(g0, 64, buf, KVMMU_ACCESS_WRITE, 1, 0, 0);
	ktap_result(!memcmp(m0, want, 64), "invalid_write_wrote_nothing");

	/* Bad pointers. */
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_GPA_ACCESS, NULL), EFAULT, "null_arg_EFAULT");
	KTAP_EXPECT_ERRNO(kvmmu_gpa_read(vm, g0, NULL, 8), EFAULT, "read_into_null_buf_EFAULT");
	char *rop = map_anon(pg, PROT_READ);
	KTAP_EXPECT_ERRNO(kvmmu_gpa_read(vm, g0, rop, 8), EFAULT, "read_into_readonly_buf_EFAULT");
	char *gone = map_anon(pg, PROT_READ | PROT_WRITE);
	munmap(gone, pg);
	memcpy(want, m0 + 5 * pg, 64);
	r = kvmmu_gpa_write(vm, g0 + 5 * pg, gone, 64);
	ok = KTAP_EXPECT_ERRNO(r, EFAULT, "write_from_unmapped_buf_EFAULT");
	ktap_result(!memcmp(m0 + 5 * pg, want, 64), "write_from_unmapped_buf_wrote_nothing");

	/* TRANSLATE after a read, then after a write. */
	ok = kvmmu_gpa_read(vm, g0 + 7 * pg + 3, buf, 1) == 0 &&
	     kvmmu_translate(vm, g0 + 7 * pg + 3, &t) == 0;
	ok &= t.mapped && t.level == 0 && t.size == (uint64_t)pg && (t.prot & KVMMU_PROT_READ) &&
	      t.memtype == KVMMU_MEMTYPE_NORMAL_WB && t.gpa == g0 + 7 * pg + 3;
	if (!ok)
		ktap_diag("mapped %u level %u size 0x%llx prot 0x%x memtype %u", t.mapped, t.level,
			  (unsigned long long)t.size, t.prot, t.memtype);
	ktap_result(ok, "translate_after_read (mapped, base page, READ, NORMAL_WB)");
	ktap_result(pfn_matches(g0 + 7 * pg, m0 + 7 * pg),
		    root ? "translate_pfn_equals_pagemap_pfn" : "translate_pfn_hidden_unprivileged");
	fill_random(want, 8);
	ok = kvmmu_gpa_write(vm, g0 + 7 * pg + 8, want, 8) == 0 &&
	     kvmmu_translate(vm, g0 + 7 * pg, &t) == 0 && t.mapped &&
	     (t.prot & (KVMMU_PROT_READ | KVMMU_PROT_WRITE)) == (KVMMU_PROT_READ | KVMMU_PROT_WRITE) &&
	     !memcmp(m0 + 7 * pg + 8, want, 8);
	ktap_result(ok && pfn_matches(g0 + 7 * pg, m0 + 7 * pg), "translate_after_write_WRITE");
	ok = kvmmu_translate(vm, nowhere, &t) == 0 && !t.mapped;
	ktap_result(ok, "translate_no_slot_unmapped");
	memset(&t, 0, sizeof(t));
	t.gpa = g0;
	t.flags = 1;
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_TRANSLATE, &t), EINVAL, "translate_flags_EINVAL");
	memset(&t, 0, sizeof(t));
	t.gpa = g0;
	t.pad = 1;
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_TRANSLATE, &t), EINVAL, "translate_pad_EINVAL");
	memset(&t, 0, sizeof(t));
	t.gpa = g0;
	t.reserved[1] = 1;
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_TRANSLATE, &t), EINVAL, "translate_reserved_EINVAL");
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_TRANSLATE, NULL), EFAULT, "translate_null_EFAULT");
	/* Input readable, output not writable. */
	struct kvmmu_translation *rot = (void *)rop;
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_TRANSLATE, rot), EFAULT, "translate_readonly_arg_EFAULT");

	/* munmap: the guest mapping goes, the guest access faults. */
	ok = kvmmu_gpa_read(vm, g1 + pg, buf, 8) == 0 && kvmmu_gpa_read(vm, g1 + 2 * pg, buf, 8) == 0 &&
	     kvmmu_translate(vm, g1 + pg, &t) == 0 && t.mapped;
	memcpy(want, m1 + 2 * pg, pg);
	munmap(m1 + pg, pg);
	ok &= kvmmu_translate(vm, g1 + pg, &t) == 0 && !t.mapped;
	ktap_result(ok, "munmap_unmaps_guest_page");
	KTAP_EXPECT_ERRNO(kvmmu_gpa_read(vm, g1 + pg, buf, 8), EFAULT, "munmap_guest_read_EFAULT");
	KTAP_EXPECT_ERRNO(kvmmu_gpa_write(vm, g1 + pg + 8, want, 8), EFAULT,
			  "munmap_guest_write_EFAULT");
	ok = kvmmu_gpa_read(vm, g1 + 2 * pg, buf, pg) == 0 && !memcmp(buf, want, pg);
	ktap_result(ok, "munmap_neighbour_page_intact");
	ok = mmap(m1 + pg, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
	     m1 + pg;
	ok &= kvmmu_gpa_read(vm, g1 + pg, buf, pg) == 0 && all_bytes(buf, pg, 0);
	ktap_result(ok, "remapped_page_reads_zero");

	/* MADV_DONTNEED: private anonymous memory reads back as zeroes. */
	ok = kvmmu_gpa_read(vm, g0 + 4 * pg, buf, 8) == 0 && kvmmu_translate(vm, g0 + 4 * pg, &t) == 0 &&
	     t.mapped;
	memcpy(want, m0 + 5 * pg, pg);
	madvise(m0 + 4 * pg, pg, MADV_DONTNEED);
	ok &= kvmmu_translate(vm, g0 + 4 * pg, &t) == 0 && !t.mapped;
	ktap_result(ok, "dontneed_unmaps_guest_page");
	ok = kvmmu_gpa_read(vm, g0 + 4 * pg, buf, pg) == 0 && all_bytes(buf, pg, 0) &&
	     all_bytes(m0 + 4 * pg, pg, 0);
	ktap_result(ok, "dontneed_guest_reads_zero");
	ok = kvmmu_gpa_read(vm, g0 + 5 * pg, buf, pg) == 0 && !memcmp(buf, want, pg);
	ktap_result(ok, "dontneed_neighbour_page_intact");
	/* A guest write to the dropped page makes a new page the process sees. */
	fill_random(want, 32);
	ok = kvmmu_gpa_write(vm, g0 + 4 * pg + 64, want, 32) == 0 && !memcmp(m0 + 4 * pg + 64, want, 32);
	ktap_result(ok && pfn_matches(g0 + 4 * pg, m0 + 4 * pg), "dontneed_then_guest_write_refaults");

	/* mprotect(PROT_READ): guest writes fail, guest reads work. */
	fill_random(want, 2 * pg);
	ok = kvmmu_gpa_write(vm, g0 + 8 * pg, want, 2 * pg) == 0 && kvmmu_gpa_writable(vm, g0 + 8 * pg) == 1;
	mprotect(m0 + 8 * pg, 2 * pg, PROT_READ);
	ok &= kvmmu_gpa_writable(vm, g0 + 8 * pg) == 0 && kvmmu_gpa_writable(vm, g0 + 9 * pg) == 0;
	ktap_result(ok, "mprotect_readonly_drops_writable_leaf");
	KTAP_EXPECT_ERRNO(kvmmu_gpa_write(vm, g0 + 8 * pg + 16, buf, 8), EPERM,
			  "mprotect_readonly_guest_write_EPERM");
	ok = kvmmu_gpa_read(vm, g0 + 8 * pg, buf, 2 * pg) == 0 && !memcmp(buf, want, 2 * pg) &&
	     !memcmp(m0 + 8 * pg, want, 2 * pg) && kvmmu_gpa_writable(vm, g0 + 8 * pg) == 0;
	ktap_result(ok, "mprotect_readonly_guest_read_ok_leaf_not_writable");
	mprotect(m0 + 8 * pg, 2 * pg, PROT_READ | PROT_WRITE);
	fill_random(want, 8);
	ok = kvmmu_gpa_write(vm, g0 + 9 * pg + 24, want, 8) == 0 && !memcmp(m0 + 9 * pg + 24, want, 8);
	ktap_result(ok, "mprotect_readwrite_guest_write_ok");

	/* A read-only slot. */
	memcpy(want, m2, 2 * pg);
	memset(buf, 0x77, 16);
	KTAP_EXPECT_ERRNO(kvmmu_gpa_write(vm, g2 + pg - 8, buf, 16), EPERM, "readonly_slot_write_EPERM");
	ok = kvmmu_gpa_read(vm, g2, buf, 2 * pg) == 0 && !memcmp(buf, want, 2 * pg) &&
	     !memcmp(m2, want, 2 * pg);
	ktap_result(ok, "readonly_slot_read_ok_memory_unchanged");
	ok = kvmmu_translate(vm, g2, &t) == 0 && t.mapped && (t.prot & KVMMU_PROT_READ) &&
	     !(t.prot & KVMMU_PROT_WRITE);
	ktap_result(ok && pfn_matches(g2, m2), "readonly_slot_leaf_not_writable");

	/*
	 * fork + copy-on-write. Pages 10, 11, 12 of slot 0 hold 0xa0, 0xa1,
	 * 0xa2 and are mapped in the guest before the fork.
	 */
	char *p0 = m0 + 10 * pg, *p1 = m0 + 11 * pg, *p2 = m0 + 12 * pg;
	const uint64_t q0 = g0 + 10 * pg, q1 = g0 + 11 * pg, q2 = g0 + 12 * pg;
	memset(p0, 0xa0, pg);
	memset(p1, 0xa1, pg);
	memset(p2, 0xa2, pg);
	kvmmu_gpa_read(vm, q0, buf, 8);
	kvmmu_gpa_read(vm, q1, buf, 8);
	kvmmu_gpa_read(vm, q2, buf, 8);
	int ready[2], go[2];
	if (pipe(ready) || pipe(go))
		return 1;
	struct kvmmu_vm_stats before_fork;
	kvmmu_get_stats(vm, &before_fork);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		struct kvmmu_vm_stats cst;
		char c = 0;
		int code = 0;

		if (!(kvmmu_gpa_read(vm, q0, &c, 1) == -1 && errno == EIO))
			code |= 1;
		if (!(kvmmu_get_stats(vm, &cst) == -1 && errno == EIO))
			code |= 1;
		if (!(kvmmu_set_region(vm, 5, 0, nowhere, pg, p0) == -1 && errno == EIO))
			code |= 1;
		memset(p0, 0xc0, pg); /* the child's own copy */
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			code |= 16;
		if (!all_bytes(p0, pg, 0xc0))
			code |= 2;
		if (!all_bytes(p1, pg, 0xa1)) /* the parent's COW break */
			code |= 4;
		if (!all_bytes(p2, pg, 0xa2)) /* the parent's guest write */
			code |= 8;
		_exit(code);
	}
	char c;
	if (pid < 0 || read(ready[0], &c, 1) != 1) {
		ktap_diag("fork failed");
		return 1;
	}
	kvmmu_get_stats(vm, &st);
	ok = st.invalidate_range_start > before_fork.invalidate_range_start &&
	     kvmmu_gpa_writable(vm, q0) == 0 && kvmmu_gpa_writable(vm, q2) == 0;
	ktap_result(ok, "fork_write_protects_guest_view (invalidations %llu -> %llu)",
		    (unsigned long long)before_fork.invalidate_range_start,
		    (unsigned long long)st.invalidate_range_start);
	ok = kvmmu_gpa_read(vm, q0, buf, pg) == 0 && all_bytes(buf, pg, 0xa0) && all_bytes(p0, pg, 0xa0);
	ktap_result(ok, "child_write_not_in_parent_guest_view");
	/* The guest maps the shared page; then the parent breaks COW. */
	ok = kvmmu_gpa_read(vm, q1, buf, pg) == 0 && all_bytes(buf, pg, 0xa1);
	memset(p1, 0xb1, pg);
	ok &= kvmmu_gpa_read(vm, q1, buf, pg) == 0 && all_bytes(buf, pg, 0xb1);
	ktap_result(ok, "parent_cow_break_visible_to_guest");
	ktap_result(pfn_matches(q1, p1), "parent_cow_break_guest_maps_new_page");
	/* A guest write after fork breaks COW for the parent only. */
	memset(want, 0x62, pg);
	ok = kvmmu_gpa_write(vm, q2, want, pg) == 0 && all_bytes(p2, pg, 0x62);
	ktap_result(ok && pfn_matches(q2, p2), "guest_write_after_fork_lands_in_parent");
	if (write(go[1], "g", 1) != 1)
		ktap_diag("cannot release the child");
	int status = 0;
	waitpid(pid, &status, 0);
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 255;
	if (code)
		ktap_diag("child status 0x%x", status);
	ktap_result(!(code & 1) && code != 255, "child_vm_ioctls_EIO");
	ktap_result(!(code & ~1), "child_memory_private (own write kept, parent and guest writes unseen)");

	/* Statistics. */
	ok = kvmmu_get_stats(vm, &st) == 0 && st.faults > st0.faults;
	ktap_result(ok, "stats_faults_counted (%llu)", (unsigned long long)st.faults);
	ok = st.invalidate_range_start > st0.invalidate_range_start &&
	     st.invalidate_range_start == st.invalidate_range_end;
	ktap_result(ok, "stats_invalidations_balanced (start %llu end %llu)",
		    (unsigned long long)st.invalidate_range_start,
		    (unsigned long long)st.invalidate_range_end);
	ok = st.leaves[0] > 0 && !st.leaves[1] && !st.leaves[2];
	ktap_result(ok, "stats_base_page_leaves_only (%llu %llu %llu)", (unsigned long long)st.leaves[0],
		    (unsigned long long)st.leaves[1], (unsigned long long)st.leaves[2]);

	/* Unmapping everything leaves no leaf behind. */
	munmap(m0, n0 * pg);
	munmap(m1, n1 * pg);
	munmap(m2, n2 * pg);
	ok = kvmmu_get_stats(vm, &st) == 0 && !st.leaves[0] && !st.leaves[1] && !st.leaves[2] &&
	     st.invalidate_range_start == st.invalidate_range_end;
	ktap_result(ok, "munmap_all_leaves_gone (%llu)", (unsigned long long)st.leaves[0]);
	KTAP_EXPECT_ERRNO(kvmmu_gpa_read(vm, g0, buf, 8), EFAULT, "read_after_munmap_all_EFAULT");

	close(vm);
	close(dev);
	return ktap_finish();
}
