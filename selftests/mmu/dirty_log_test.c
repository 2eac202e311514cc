// SPDX-License-Identifier: GPL-2.0
/*
 * KVMMU_GET_DIRTY_LOG across a guest write workload: exactly the pages the
 * guest wrote are reported (not pages the process wrote, not pages the
 * guest only read), each call clears the log and write-protects what it
 * reported so that the next guest write is seen again, and bad input gets
 * its documented error without losing any dirty bit. Toggling
 * KVMMU_MEM_LOG_DIRTY_PAGES off and on starts from an empty log.
 */
#include <stdint.h>
#include <sys/mman.h>

#include "../lib/ktap.h"
#include "../lib/kvmmu_util.h"

#define NPAGES 100		/* not a multiple of 64: the last word is partial */
#define WORDS ((NPAGES + 63) / 64)
#define CANARY 0x5a5aa5a5c3c33c3cull

static int vm;
static long pg;
static char *mem;
static const uint64_t g0 = 1ull << 30;

/* The log of slot 0, with a canary after it; -1 (errno) on failure. */
static int get_log(uint64_t out[WORDS])
{
	uint64_t buf[WORDS + 2];
	int r;

	for (int i = 0; i < WORDS; i++)
		buf[i] = ~0ull;
	buf[WORDS] = buf[WORDS + 1] = CANARY;
	r = kvmmu_get_dirty_log(vm, 0, buf);
	if (r == -1)
		return -1;
	if (buf[WORDS] != CANARY || buf[WORDS + 1] != CANARY) {
		ktap_diag("GET_DIRTY_LOG wrote past ALIGN(npages, 64) / 8 bytes");
		errno = EOVERFLOW;
		return -1;
	}
	memcpy(out, buf, sizeof(buf[0]) * WORDS);
	return 0;
}

/* The log (read now, which clears it) holds exactly pages[0..n). */
static int log_is(const int *pages, int n)
{
	uint64_t want[WORDS] = { 0 }, got[WORDS];

	for (int i = 0; i < n; i++)
		want[pages[i] / 64] |= 1ull << (pages[i] % 64);
	if (get_log(got)) {
		ktap_diag("GET_DIRTY_LOG: %s", strerror(errno));
		return 0;
	}
	if (!memcmp(got, want, sizeof(want)))
		return 1;
	for (int i = 0; i < WORDS; i++)
		ktap_diag("word %d: got 0x%016llx want 0x%016llx", i, (unsigned long long)got[i],
			  (unsigned long long)want[i]);
	return 0;
}

static int guest_write_byte(int page, int off, unsigned char v)
{
	int r = kvmmu_gpa_write(vm, g0 + (uint64_t)page * pg + off, &v, 1);

	if (r)
		ktap_diag("guest write page %d: %s", page, strerror(errno));
	return r == 0 && (unsigned char)mem[page * pg + off] == v;
}

static int not_writable(const int *pages, int n)
{
	for (int i = 0; i < n; i++) {
		if (kvmmu_gpa_writable(vm, g0 + (uint64_t)pages[i] * pg) != 0) {
			ktap_diag("page %d is mapped writable", pages[i]);
			return 0;
		}
	}
	return 1;
}

static int dirty_log_raw(uint32_t slot, uint32_t pad, uint64_t res0, uint64_t res1, void *bm)
{
	struct kvmmu_dirty_log d;

	memset(&d, 0, sizeof(d));
	d.slot = slot;
	d.pad = pad;
	d.reserved[0] = res0;
	d.reserved[1] = res1;
	d.dirty_bitmap = (uintptr_t)bm;
	return ioctl(vm, KVMMU_GET_DIRTY_LOG, &d);
}

/* A bitmap pointer that cannot take the log: EFAULT, and no bit is lost. */
static void bad_bitmap(void *bm, const char *what)
{
	static const int p42[] = { 42 };
	guest_write_byte(42, 0, 0x42);
	int r = kvmmu_get_dirty_log(vm, 0, bm);
	KTAP_EXPECT_ERRNO(r, EFAULT, "bitmap_%s_EFAULT", what);
	ktap_result(log_is(p42, 1), "bitmap_%s_lost_no_bit", what);
}

int main(void)
{
	struct kvmmu_vm_stats st0, st;
	uint64_t log[WORDS];
	int dev, ok;

	pg = kvmmu_page_size();
	ktap_start(41);
	dev = kvmmu_open();
	vm = dev >= 0 ? kvmmu_create_vm(dev) : -1;
	if (!ktap_result(vm >= 0, "create_vm")) {
		ktap_diag("%s", strerror(errno));
		return ktap_finish();
	}
	mem = mmap(NULL, NPAGES * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *other = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || other == MAP_FAILED)
		return 1;
	madvise(mem, NPAGES * pg, MADV_NOHUGEPAGE);
	memset(mem, 0x11, NPAGES * pg);
	memset(other, 0x22, 4 * pg);
	ok = kvmmu_set_region(vm, 0, KVMMU_MEM_LOG_DIRTY_PAGES, g0, NPAGES * pg, mem) == 0 &&
	     kvmmu_set_region(vm, 1, 0, 2ull << 30, 4 * pg, other) == 0;
	if (!ktap_result(ok, "create_slots")) {
		ktap_diag("%s", strerror(errno));
		return ktap_finish();
	}

	ktap_result(log_is(NULL, 0), "initial_log_zero (all %d bytes written)", WORDS * 8);

	/* Guest reads and process writes dirty nothing. */
	char *buf = malloc(NPAGES * pg);
	ok = kvmmu_gpa_read_all(vm, g0, buf, NPAGES * pg) == 0 && !memcmp(buf, mem, NPAGES * pg);
	ktap_result(ok && log_is(NULL, 0), "guest_reads_set_no_bits");
	int all[NPAGES];
	for (int i = 0; i < NPAGES; i++)
		all[i] = i;
	ok = not_writable(all, NPAGES);
	for (int i = 0; i < NPAGES; i++) {
		struct kvmmu_translation t;

		ok &= kvmmu_translate(vm, g0 + (uint64_t)i * pg, &t) == 0 && t.mapped && t.level == 0;
	}
	ktap_result(ok, "logging_slot_read_maps_base_pages_not_writable");
	for (int i = 0; i < NPAGES; i++)
		mem[i * pg + 7] = (char)i;
	ktap_result(log_is(NULL, 0), "process_writes_set_no_bits");

	/* Guest writes: exactly their pages. */
	static const int wr[] = { 0, 1, 5, 10, 11, 63, 64, 99 };
	kvmmu_get_stats(vm, &st0);
	ok = guest_write_byte(0, 0, 1) && guest_write_byte(1, 1, 2) && guest_write_byte(5, 5, 3) &&
	     guest_write_byte(63, 63, 4) && guest_write_byte(64, 0, 5) &&
	     guest_write_byte(99, pg - 1, 6);
	/* One access across the boundary of pages 10 and 11. */
	uint64_t v = 0x1122334455667788ull;
	ok &= kvmmu_gpa_write(vm, g0 + 11 * pg - 4, &v, 8) == 0 && !memcmp(mem + 11 * pg - 4, &v, 8);
	ktap_result(ok, "guest_writes_reach_memory");
	ok = kvmmu_gpa_writable(vm, g0 + 5 * pg) == 1 && kvmmu_gpa_writable(vm, g0 + 11 * pg) == 1 &&
	     kvmmu_gpa_writable(vm, g0 + 6 * pg) == 0;
	ktap_result(ok, "write_fault_makes_only_that_leaf_writable");
	kvmmu_get_stats(vm, &st);
	ok = st.dirty_faults - st0.dirty_faults == 8;
	ktap_result(ok, "dirty_faults_counted (%llu, want 8)",
		    (unsigned long long)(st.dirty_faults - st0.dirty_faults));
	ktap_result(log_is(wr, 8), "log_has_exactly_the_written_pages");
	ktap_result(log_is(NULL, 0), "log_cleared_by_get");
	ktap_result(not_writable(wr, 8), "reported_pages_write_protected");
	ok = guest_write_byte(5, 9, 7) && guest_write_byte(99, 0, 8);
	static const int again[] = { 5, 99 };
	ktap_result(ok && log_is(again, 2), "new_guest_write_sets_bit_again");
	/* A second write through the now writable leaf: still one bit. */
	ok = guest_write_byte(7, 0, 9) && guest_write_byte(7, 1, 10);
	static const int seven[] = { 7 };
	ktap_result(ok && log_is(seven, 1), "two_writes_one_bit");
	ok = guest_write_byte(7, 2, 11);
	ktap_result(ok && log_is(seven, 1), "write_after_get_dirties_again");

	/* Pre-faulting is an access of the given kind. */
	static const int pf[] = { 20, 21, 22 };
	ok = kvmmu_pre_fault(vm, g0 + 20 * pg, 3 * pg, KVMMU_ACCESS_WRITE) == 0;
	ktap_result(ok && log_is(pf, 3), "pre_fault_write_dirties");
	ok = kvmmu_pre_fault(vm, g0 + 30 * pg, 10 * pg, 0) == 0;
	ktap_result(ok && log_is(NULL, 0) && not_writable(all + 30, 10), "pre_fault_read_dirties_nothing");

	/* Errors. */
	KTAP_EXPECT_ERRNO(kvmmu_get_dirty_log(vm, 1, log), ENOENT, "slot_not_logging_ENOENT");
	KTAP_EXPECT_ERRNO(kvmmu_get_dirty_log(vm, 9, log), ENOENT, "no_such_slot_ENOENT");
	KTAP_EXPECT_ERRNO(kvmmu_get_dirty_log(vm, KVMMU_MAX_MEMSLOTS, log), EINVAL, "slot_max_EINVAL");
	KTAP_EXPECT_ERRNO(kvmmu_get_dirty_log(vm, 0xffffffffu, log), EINVAL, "slot_u32_max_EINVAL");
	KTAP_EXPECT_ERRNO(dirty_log_raw(0, 1, 0, 0, log), EINVAL, "pad_EINVAL");
	KTAP_EXPECT_ERRNO(dirty_log_raw(0, 0, 1, 0, log), EINVAL, "reserved0_EINVAL");
	KTAP_EXPECT_ERRNO(dirty_log_raw(0, 0, 0, 1ull << 63, log), EINVAL, "reserved1_EINVAL");
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_GET_DIRTY_LOG, NULL), EFAULT, "null_arg_EFAULT");

	/* Bitmap pointers that cannot take ALIGN(100, 64) / 8 = 16 bytes. */
	char *two = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *ro = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(two + pg, pg);
	bad_bitmap(NULL, "null");
	bad_bitmap(two + pg - 8, "straddling_unmapped");
	bad_bitmap(ro, "readonly");
	bad_bitmap((void *)(uintptr_t)kvmmu_kernel_addr(), "kernel_address");
	/* Exactly 16 bytes before the hole: enough. */
	ok = guest_write_byte(50, 0, 0x50) && kvmmu_get_dirty_log(vm, 0, two + pg - 16) == 0;
	memcpy(log, two + pg - 16, 16);
	ok &= log[0] == 1ull << 50 && log[1] == 0;
	ktap_result(ok, "bitmap_exactly_16_bytes_before_hole_ok");

	/* Logging off, then on: a fresh log, and the pages protected again. */
	ok = guest_write_byte(3, 0, 0x33) &&
	     kvmmu_set_region(vm, 0, 0, g0, NPAGES * pg, mem) == 0 &&
	     kvmmu_get_dirty_log(vm, 0, log) == -1 && errno == ENOENT;
	ktap_result(ok, "logging_off_then_get_ENOENT");
	ok = guest_write_byte(3, 1, 0x34) && guest_write_byte(4, 0, 0x44) &&
	     kvmmu_gpa_writable(vm, g0 + 4 * pg) == 1;
	ktap_result(ok, "not_logging_guest_write_maps_writable");
	ok = kvmmu_set_region(vm, 0, KVMMU_MEM_LOG_DIRTY_PAGES, g0, NPAGES * pg, mem) == 0;
	ktap_result(ok && log_is(NULL, 0), "logging_on_again_fresh_log");
	static const int p34[] = { 3, 4 };
	ktap_result(not_writable(p34, 2), "logging_on_write_protects");
	static const int p4[] = { 4 };
	ok = guest_write_byte(4, 1, 0x45);
	ktap_result(ok && log_is(p4, 1), "logging_on_write_sets_bit");

	/* A one-page slot takes an 8-byte bitmap. */
	char *one = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	two = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(two + pg, pg);
	unsigned char b = 0xee;
	ok = kvmmu_set_region(vm, 2, KVMMU_MEM_LOG_DIRTY_PAGES, 3ull << 30, pg, one) == 0 &&
	     kvmmu_gpa_write(vm, 3ull << 30, &b, 1) == 0 &&
	     kvmmu_get_dirty_log(vm, 2, two + pg - 8) == 0;
	uint64_t w;
	memcpy(&w, two + pg - 8, 8);
	ktap_result(ok && w == 1, "one_page_slot_8_byte_bitmap");

	ok = kvmmu_delete_region(vm, 0) == 0;
	ktap_result(ok && kvmmu_get_dirty_log(vm, 0, log) == -1 && errno == ENOENT,
		    "deleted_slot_ENOENT");

	close(vm);
	close(dev);
	return ktap_finish();
}
