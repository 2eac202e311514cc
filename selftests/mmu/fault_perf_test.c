// SPDX-License-Identifier: GPL-2.0
/*
 * Stage-2 fault-in and invalidation cost.
 *
 * Check mode (default; make check): a small version that can fail.
 * KVMMU_PRE_FAULT of 8 MiB of base pages maps every page writable with
 * base-page leaves pointing at the pages pagemap reports and counts its
 * faults; the same over THP-backed memory maps blocks (leaves[1] > 0)
 * where THP is available; invalidating one page drops exactly one leaf,
 * invalidating all drops all; PRE_FAULT's bad input gets its errors.
 *
 * Perf mode (`fault_perf_test --perf` or KVMMU_PERF=1; make bench):
 *   bench: mmu.fault_in_4k = <pages/s> pages/s
 *	PRE_FAULT (write) of 256 MiB of populated MADV_NOHUGEPAGE memory
 *   bench: mmu.fault_in_thp = <pages/s> pages/s
 *	the same over 256 MiB of MADV_HUGEPAGE memory, in base pages
 *   bench: mmu.fault_in_thp_vs_4k = <ratio> x
 *   bench: mmu.invalidate_4k_of_<S> = <ns> ns
 *	median MADV_DONTNEED of one base page of a VM with S of THP-backed
 *	memory mapped (S = 1g if it fits the machine, else 512m, else 256m)
 *   bench: mmu.invalidate_all_<S> = <ns> ns
 *	MADV_DONTNEED of all S (median of 3)
 *   bench: mmu.invalidate_ratio_all_vs_4k = <ratio> x
 * Only the stage-2 fault-in is timed: the memory is populated by the
 * process first. "4k" names the base page, which is 64K on ppc64le.
 */
#include <stdint.h>
#include <sys/mman.h>

#include "../lib/ktap.h"
#include "../lib/kvmmu_util.h"

static int vm, vm_errno;
static long pg;
static int root;

static char *populated(uint64_t size, uint64_t align, int advice)
{
	char *p = kvmmu_mmap_aligned(size, align);

	if (!p) {
		ktap_diag("mmap %llu: %s", (unsigned long long)size, strerror(errno));
		return NULL;
	}
	madvise(p, size, advice);
	for (uint64_t off = 0; off < size; off += pg)
		p[off] = (char)(off / pg + 1);
	return p;
}

static int pre_fault_all(uint64_t gpa, uint64_t size)
{
	if (kvmmu_pre_fault_all(vm, gpa, size, KVMMU_ACCESS_WRITE)) {
		ktap_diag("PRE_FAULT 0x%llx+0x%llx: %s", (unsigned long long)gpa,
			  (unsigned long long)size, strerror(errno));
		return -1;
	}
	return 0;
}

static int pre_fault_raw(uint64_t gpa, uint64_t size, uint32_t flags, uint32_t pad, uint64_t res)
{
	struct kvmmu_pre_fault p;

	memset(&p, 0, sizeof(p));
	p.gpa = gpa;
	p.size = size;
	p.flags = flags;
	p.pad = pad;
	p.reserved[1] = res;
	return ioctl(vm, KVMMU_PRE_FAULT, &p);
}

static struct kvmmu_vm_stats stats(void)
{
	struct kvmmu_vm_stats st;

	if (kvmmu_get_stats(vm, &st))
		ktap_diag("GET_STATS: %s", strerror(errno));
	return st;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

/* Every page of [gpa, + size) maps the process's page @p writable. */
static int all_mapped(uint64_t gpa, const char *p, uint64_t size, uint64_t leaf)
{
	for (uint64_t off = 0; off < size; off += pg) {
		struct kvmmu_translation t;
		uint64_t host = root ? kvmmu_host_pfn(p + off) : 0;

		if (kvmmu_translate(vm, gpa + off, &t) || !t.mapped || t.size != leaf ||
		    !(t.prot & KVMMU_PROT_WRITE) || t.pfn != host) {
			ktap_diag("gpa 0x%llx: mapped %u size 0x%llx prot 0x%x pfn 0x%llx (pagemap 0x%llx)",
				  (unsigned long long)(gpa + off), t.mapped, (unsigned long long)t.size,
				  t.prot, (unsigned long long)t.pfn, (unsigned long long)host);
			return 0;
		}
	}
	return 1;
}

static int check_mode(void)
{
	const uint64_t size = 8ull << 20, npages = size / pg;
	const uint64_t g0 = 4ull << 30, g1 = 8ull << 30, g2 = 12ull << 30;
	struct kvmmu_vm_stats a, b;
	int ok;

	ktap_start(23);
	if (!ktap_result(vm >= 0, "create_vm")) {
		ktap_diag("%s", strerror(vm_errno));
		return ktap_finish();
	}

	/* Base pages. */
	char *m = populated(size, pg, MADV_NOHUGEPAGE);
	if (!m || kvmmu_set_region(vm, 0, 0, g0, size, m))
		return 1;
	a = stats();
	KTAP_EXPECT_ERRNO(kvmmu_pre_fault(vm, g0, size, KVMMU_ACCESS_WRITE), 0, "pre_fault_4k");
	b = stats();
	ok = b.faults - a.faults >= npages && b.leaves[0] - a.leaves[0] == npages;
	ktap_result(ok, "pre_fault_4k_stats (faults +%llu, leaves[0] +%llu, pages %llu)",
		    (unsigned long long)(b.faults - a.faults),
		    (unsigned long long)(b.leaves[0] - a.leaves[0]), (unsigned long long)npages);
	ktap_result(all_mapped(g0, m, size, pg), "pre_fault_4k_maps_every_page_writable");
	ok = kvmmu_pre_fault(vm, g0, size, KVMMU_ACCESS_WRITE) == 0;
	ktap_result(ok && stats().leaves[0] == b.leaves[0], "pre_fault_again_changes_nothing");

	a = stats();
	madvise(m + 17 * pg, pg, MADV_DONTNEED);
	b = stats();
	struct kvmmu_translation t;
	ok = b.leaves[0] == a.leaves[0] - 1 && b.pages_unmapped - a.pages_unmapped == 1 &&
	     kvmmu_translate(vm, g0 + 17 * pg, &t) == 0 && !t.mapped &&
	     b.invalidate_range_start == b.invalidate_range_end;
	ktap_result(ok, "invalidate_one_page_drops_one_leaf (leaves %llu -> %llu, unmapped +%llu)",
		    (unsigned long long)a.leaves[0], (unsigned long long)b.leaves[0],
		    (unsigned long long)(b.pages_unmapped - a.pages_unmapped));
	munmap(m, size);
	a = b;
	b = stats();
	ok = b.leaves[0] == 0 && b.pages_unmapped - a.pages_unmapped == npages - 1 &&
	     b.invalidate_range_start == b.invalidate_range_end;
	ktap_result(ok, "invalidate_all_drops_all (leaves %llu, unmapped +%llu)",
		    (unsigned long long)b.leaves[0],
		    (unsigned long long)(b.pages_unmapped - a.pages_unmapped));
	KTAP_EXPECT_ERRNO(kvmmu_pre_fault(vm, g0, size, 0), EFAULT, "pre_fault_unbacked_EFAULT");

	/* Bad input. */
	char *sm = populated(4 * pg, pg, MADV_NOHUGEPAGE);
	if (!sm || kvmmu_set_region(vm, 2, 0, g2, 4 * pg, sm))
		return 1;
	KTAP_EXPECT_ERRNO(pre_fault_raw(g2, 0, 0, 0, 0), EINVAL, "size_0_EINVAL");
	KTAP_EXPECT_ERRNO(pre_fault_raw(g2 + 8, pg, 0, 0, 0), EINVAL, "gpa_misaligned_EINVAL");
	KTAP_EXPECT_ERRNO(pre_fault_raw(g2, pg + 8, 0, 0, 0), EINVAL, "size_misaligned_EINVAL");
	KTAP_EXPECT_ERRNO(pre_fault_raw(g2, KVMMU_PRE_FAULT_MAX + pg, 0, 0, 0), EINVAL,
			  "size_over_1g_EINVAL");
	KTAP_EXPECT_ERRNO(pre_fault_raw(g2, pg, 1u << 1, 0, 0), EINVAL, "flag_bit1_EINVAL");
	KTAP_EXPECT_ERRNO(pre_fault_raw(g2, pg, 1u << 31, 0, 0), EINVAL, "flag_bit31_EINVAL");
	KTAP_EXPECT_ERRNO(pre_fault_raw(g2, pg, 0, 1, 0), EINVAL, "pad_EINVAL");
	KTAP_EXPECT_ERRNO(pre_fault_raw(g2, pg, 0, 0, 1), EINVAL, "reserved_EINVAL");
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_PRE_FAULT, NULL), EFAULT, "null_arg_EFAULT");
	KTAP_EXPECT_ERRNO(pre_fault_raw(16ull << 30, pg, 0, 0, 0), ENOENT, "no_slot_ENOENT");
	KTAP_EXPECT_ERRNO(pre_fault_raw(g2 + 2 * pg, 4 * pg, 0, 0, 0), ENOENT,
			  "past_slot_end_ENOENT");
	ok = stats().leaves[0] <= 2 && kvmmu_translate(vm, g2, &t) == 0 && !t.mapped;
	ktap_result(ok, "invalid_pre_faults_mapped_nothing_else");

	/* THP-backed memory. */
	uint64_t H = kvmmu_thp_size();
	unsigned int lvl = 0;
	uint64_t block = H ? kvmmu_s2_block_le(H, &lvl) : 0;
	uint64_t tsize = H && 2 * H > size ? 2 * H : size;
	char *h = H && H <= (64ull << 20) ? populated(tsize, H, MADV_HUGEPAGE) : NULL;
	uint64_t chunks = 0;
	for (uint64_t off = 0; h && off < tsize; off += H)
		chunks += kvmmu_is_thp_mapped(h + off, H);
	if (!h || !chunks || !lvl) {
		ktap_diag("THP size %llu, %llu THPs, stage-2 block level %u",
			  (unsigned long long)H, (unsigned long long)chunks, lvl);
		ktap_skip("pre_fault_thp (no THP backing)");
		ktap_skip("pre_fault_thp_block_leaves");
		ktap_skip("pre_fault_thp_translate");
		return ktap_finish();
	}
	if (kvmmu_set_region(vm, 1, 0, g1, tsize, h))
		return 1;
	a = stats();
	KTAP_EXPECT_ERRNO(kvmmu_pre_fault(vm, g1, tsize, KVMMU_ACCESS_WRITE), 0, "pre_fault_thp");
	b = stats();
	ok = b.leaves[lvl] - a.leaves[lvl] == chunks * (H / block) && b.faults > a.faults;
	ktap_result(ok, "pre_fault_thp_block_leaves (leaves[%u] +%llu for %llu THPs)", lvl,
		    (unsigned long long)(b.leaves[lvl] - a.leaves[lvl]), (unsigned long long)chunks);
	ok = 1;
	for (uint64_t off = 0; off < tsize; off += H)
		if (kvmmu_is_thp_mapped(h + off, H))
			ok &= all_mapped(g1 + off, h + off, H, block);
	ktap_result(ok, "pre_fault_thp_translate (block 0x%llx, pfns as pagemap)",
		    (unsigned long long)block);
	munmap(h, tsize);
	return ktap_finish();
}

static int perf_mode(void)
{
	const uint64_t size = 256ull << 20, npages = size / pg;
	const uint64_t g0 = 4ull << 30;
	uint64_t t0, t1;
	struct kvmmu_vm_stats st;

	ktap_start(4);
	if (!ktap_result(vm >= 0, "create_vm")) {
		ktap_diag("%s", strerror(vm_errno));
		return ktap_finish();
	}
	ktap_diag("base page %ld bytes", pg);

	/* 256 MiB of base pages. */
	char *m = populated(size, pg, MADV_NOHUGEPAGE);
	if (!m || kvmmu_set_region(vm, 0, 0, g0, size, m))
		return 1;
	t0 = kvmmu_now_ns();
	int r = pre_fault_all(g0, size);
	t1 = kvmmu_now_ns();
	double rate_4k = npages / ((t1 - t0) / 1e9);
	st = stats();
	if (ktap_result(!r && st.leaves[0] == npages, "fault_in_4k (leaves[0] %llu)",
			(unsigned long long)st.leaves[0]))
		printf("bench: mmu.fault_in_4k = %.0f pages/s\n", rate_4k);
	munmap(m, size);
	kvmmu_delete_region(vm, 0);

	/* 256 MiB of THP-backed memory, congruent with its guest addresses. */
	uint64_t H = kvmmu_thp_size();
	uint64_t align = H && H <= size ? H : (2ull << 20);
	m = populated(size, align, MADV_HUGEPAGE);
	if (!m || kvmmu_set_region(vm, 0, 0, g0, size, m))
		return 1;
	t0 = kvmmu_now_ns();
	r = pre_fault_all(g0, size);
	t1 = kvmmu_now_ns();
	double rate_thp = npages / ((t1 - t0) / 1e9);
	st = stats();
	ktap_diag("THP size %llu; leaves %llu %llu %llu", (unsigned long long)H,
		  (unsigned long long)st.leaves[0], (unsigned long long)st.leaves[1],
		  (unsigned long long)st.leaves[2]);
	if (ktap_result(!r, "fault_in_thp")) {
		printf("bench: mmu.fault_in_thp = %.0f pages/s\n", rate_thp);
		printf("bench: mmu.fault_in_thp_vs_4k = %.2f x\n", rate_thp / rate_4k);
	}
	munmap(m, size);
	kvmmu_delete_region(vm, 0);

	/* Invalidation in a VM with S of THP-backed memory mapped. */
	uint64_t avail = kvmmu_mem_available(), s;
	const char *name;
	if (avail >= (1ull << 30) + (192ull << 20)) {
		s = 1ull << 30;
		name = "1g";
	} else if (avail >= (512ull << 20) + (160ull << 20)) {
		s = 512ull << 20;
		name = "512m";
	} else {
		s = 256ull << 20;
		name = "256m";
	}
	ktap_diag("MemAvailable %llu MiB: invalidation VM maps %s", (unsigned long long)(avail >> 20),
		  name);
	enum { REPS = 3, SAMPLES = 16 };
	uint64_t one[REPS * SAMPLES], all[REPS];
	int n1 = 0, ok = 1;
	const uint64_t stride = s / SAMPLES;
	for (int rep = 0; rep < REPS && ok; rep++) {
		m = populated(s, align, MADV_HUGEPAGE);
		ok = m && kvmmu_set_region(vm, 0, 0, g0, s, m) == 0 && pre_fault_all(g0, s) == 0;
		if (!ok)
			break;
		/* One base page in each of SAMPLES different mapped blocks. */
		for (int i = 0; i < SAMPLES; i++) {
			char *page = m + i * stride + (uint64_t)(rep + 1) * 3 * pg;

			t0 = kvmmu_now_ns();
			ok &= madvise(page, pg, MADV_DONTNEED) == 0;
			t1 = kvmmu_now_ns();
			one[n1++] = t1 - t0;
		}
		t0 = kvmmu_now_ns();
		ok &= madvise(m, s, MADV_DONTNEED) == 0;
		t1 = kvmmu_now_ns();
		all[rep] = t1 - t0;
		st = stats();
		ok &= st.leaves[0] + st.leaves[1] + st.leaves[2] == 0;
		munmap(m, s);
		kvmmu_delete_region(vm, 0);
	}
	if (ktap_result(ok, "invalidate_%s", name)) {
		uint64_t ns1 = median(one, n1), nsall = median(all, REPS);

		printf("bench: mmu.invalidate_4k_of_%s = %llu ns\n", name, (unsigned long long)ns1);
		printf("bench: mmu.invalidate_all_%s = %llu ns\n", name, (unsigned long long)nsall);
		printf("bench: mmu.invalidate_ratio_all_vs_4k = %.1f x\n", (double)nsall / ns1);
	}
	return ktap_finish();
}

int main(int argc, char **argv)
{
	const char *env = getenv("KVMMU_PERF");
	int perf = (env && !strcmp(env, "1")) || (argc > 1 && !strcmp(argv[1], "--perf"));
	int dev, r;

	pg = kvmmu_page_size();
	root = geteuid() == 0;
	dev = kvmmu_open();
	vm = dev >= 0 ? kvmmu_create_vm(dev) : -1;
	vm_errno = errno;
	r = perf ? perf_mode() : check_mode();
	close(vm);
	close(dev);
	return r;
}
