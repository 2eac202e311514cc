// SPDX-License-Identifier: GPL-2.0
/*
 * The VM's guest physical address limit, as a VMM sees it: KVMMU_GET_VM_INFO
 * reports gpa_bits (what the VM's stage-2 format translates: 48 on x86-64
 * and arm64 with 4K or 64K pages, 47 on arm64 with 16K pages, 52 on ppc64),
 * and KVMMU_SET_USER_MEMORY_REGION, KVMMU_PRE_FAULT, KVMMU_TRANSLATE and
 * KVMMU_GPA_ACCESS all accept a range ending exactly at 2^gpa_bits and
 * refuse one reaching past it with EINVAL. Then two behaviours VMMs rely on
 * (include/uapi/linux/kvmmu.h): which errno wins when both the guest range
 * and the user buffer are bad (the guest side: EINVAL, then ENOENT/EPERM,
 * then EFAULT, all before anything is accessed), and that dirty bits follow
 * a slot moved with logging kept on.
 */
#include <stdint.h>
#include <sys/mman.h>

#include "../lib/ktap.h"
#include "../lib/kvmmu_util.h"

#define NPAGES 8

static int vm;
static long pg;

static int vm_info_raw(struct kvmmu_vm_info *info)
{
	return ioctl(vm, KVMMU_GET_VM_INFO, info);
}

/* What the header documents for this architecture and page size. */
static unsigned int expected_bits(void)
{
#if defined(__x86_64__)
	return 48;
#elif defined(__aarch64__)
	return pg == 16384 ? 47 : 48;
#elif defined(__powerpc64__)
	return 52;
#else
	return 0;
#endif
}

static char *map_anon(size_t size)
{
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		ktap_diag("mmap: %s", strerror(errno));
		exit(1);
	}
	return p;
}

static void fill(char *p, size_t n, unsigned char seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (char)(seed + i * 13 + i / pg);
}

static int mapped(uint64_t gpa)
{
	struct kvmmu_translation t;

	return kvmmu_translate(vm, gpa, &t) == 0 && t.mapped;
}

/* GET_DIRTY_LOG of an NPAGES slot gives exactly @want. */
static int log_is(uint32_t slot, uint64_t want)
{
	uint64_t got = ~0ull;

	if (kvmmu_get_dirty_log(vm, slot, &got)) {
		ktap_diag("GET_DIRTY_LOG: %s", strerror(errno));
		return 0;
	}
	if (got != want)
		ktap_diag("log 0x%llx, want 0x%llx", (unsigned long long)got,
			  (unsigned long long)want);
	return got == want;
}

int main(void)
{
	struct kvmmu_vm_info info;
	struct kvmmu_translation t;
	unsigned int bits;
	int dev, ok, r;

	pg = kvmmu_page_size();
	const uint64_t size = NPAGES * pg;
	ktap_start(50);
	dev = kvmmu_open();
	vm = dev >= 0 ? kvmmu_create_vm(dev) : -1;
	if (!ktap_result(vm >= 0, "create_vm")) {
		ktap_diag("%s", strerror(errno));
		return ktap_finish();
	}

	/* The query. */
	memset(&info, 0, sizeof(info));
	r = vm_info_raw(&info);
	ok = r == 0 && info.version == KVMMU_VM_INFO_VERSION && info.gpa_bits == expected_bits() &&
	     !info.flags && !info.pad;
	for (int i = 0; i < 6; i++)
		ok &= !info.reserved[i];
	if (!ok)
		ktap_diag("GET_VM_INFO: %d (%s), version %u gpa_bits %u (want %u)", r,
			  r ? strerror(errno) : "ok", info.version, info.gpa_bits, expected_bits());
	ktap_result(ok, "vm_info_gpa_bits_%u", expected_bits());
	bits = info.gpa_bits;
	if (r || bits < 32 || bits > 63) {
		/* An older module: the 48 bits its header promised everywhere. */
		ktap_diag("no usable gpa_bits: testing the 48 bits the header used to promise");
		bits = 48;
	}
	memset(&info, 0, sizeof(info));
	info.flags = 1;
	KTAP_EXPECT_ERRNO(vm_info_raw(&info), EINVAL, "vm_info_flags_EINVAL");
	memset(&info, 0, sizeof(info));
	info.pad = 1;
	KTAP_EXPECT_ERRNO(vm_info_raw(&info), EINVAL, "vm_info_pad_EINVAL");
	memset(&info, 0, sizeof(info));
	info.reserved[5] = 1;
	KTAP_EXPECT_ERRNO(vm_info_raw(&info), EINVAL, "vm_info_reserved_EINVAL");
	memset(&info, 0, sizeof(info));
	info.version = KVMMU_VM_INFO_VERSION;
	KTAP_EXPECT_ERRNO(vm_info_raw(&info), EINVAL, "vm_info_version_in_EINVAL");
	KTAP_EXPECT_ERRNO(vm_info_raw(NULL), EFAULT, "vm_info_null_EFAULT");

	const uint64_t lim = 1ull << bits;
	char *a = map_anon(size), *b = map_anon(size), *c = map_anon(size), *d = map_anon(size);
	fill(a, size, 0x11);
	fill(b, size, 0x22);
	fill(c, size, 0x33);
	fill(d, size, 0x44);

	/* Slots: ending exactly at the limit is fine, reaching past it not. */
	ok = KTAP_EXPECT_ERRNO(kvmmu_set_region(vm, 0, 0, lim - size, size, a), 0,
			       "slot_ending_at_limit_ok");
	KTAP_EXPECT_ERRNO(kvmmu_set_region(vm, 1, 0, lim - pg, 2 * pg, b), EINVAL,
			  "slot_crossing_limit_EINVAL");
	KTAP_EXPECT_ERRNO(kvmmu_set_region(vm, 1, 0, lim, pg, b), EINVAL,
			  "slot_starting_at_limit_EINVAL");
	KTAP_EXPECT_ERRNO(kvmmu_set_region(vm, 1, 0, 2 * lim, pg, b), EINVAL,
			  "slot_beyond_limit_EINVAL");
	KTAP_EXPECT_ERRNO(kvmmu_delete_region(vm, 1), EINVAL, "refused_slots_not_created");
	KTAP_EXPECT_ERRNO(kvmmu_set_region(vm, 0, 0, lim - size + pg, size, a), EINVAL,
			  "move_across_limit_EINVAL");
	uint64_t v = 0;
	ok = kvmmu_gpa_read(vm, lim - size, &v, sizeof(v)) == 0 && !memcmp(&v, a, sizeof(v));
	ktap_result(ok, "refused_move_left_slot_in_place");
	/* 48 bits is not a limit of its own where the VM has more. */
	if (bits > 48) {
		KTAP_EXPECT_ERRNO(kvmmu_set_region(vm, 1, 0, 1ull << 48, size, b), 0,
				  "slot_at_2_48_ok_below_%u_bits", bits);
		KTAP_EXPECT_ERRNO(kvmmu_delete_region(vm, 1), 0, "slot_at_2_48_deleted");
	} else {
		ktap_skip("slot_at_2_48_ok (gpa_bits %u)", bits);
		ktap_skip("slot_at_2_48_deleted (gpa_bits %u)", bits);
	}

	/* PRE_FAULT: the same rule, before anything is faulted. */
	KTAP_EXPECT_ERRNO(kvmmu_pre_fault(vm, lim - pg, 2 * pg, 0), EINVAL,
			  "pre_fault_crossing_limit_EINVAL");
	ktap_result(!mapped(lim - pg), "pre_fault_crossing_limit_faulted_nothing");
	KTAP_EXPECT_ERRNO(kvmmu_pre_fault(vm, lim, pg, 0), EINVAL, "pre_fault_at_limit_EINVAL");
	KTAP_EXPECT_ERRNO(kvmmu_pre_fault(vm, lim - pg, pg, KVMMU_ACCESS_WRITE), 0,
			  "pre_fault_last_page_ok");

	/* TRANSLATE: the last byte is below the limit, the limit is not. */
	ok = kvmmu_translate(vm, lim - 1, &t) == 0 && t.mapped &&
	     (t.prot & KVMMU_PROT_WRITE);
	ktap_result(ok, "translate_last_byte_mapped_writable");
	memset(&t, 0, sizeof(t));
	t.gpa = lim;
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_TRANSLATE, &t), EINVAL, "translate_at_limit_EINVAL");
	t.gpa = ~0ull;
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_TRANSLATE, &t), EINVAL, "translate_u64_max_EINVAL");

	/* GPA_ACCESS: the last bytes, and a range one byte too long. */
	uint64_t w = 0x1234567890abcdefull, got = 0;
	ok = kvmmu_gpa_write(vm, lim - 8, &w, 8) == 0 && !memcmp(a + size - 8, &w, 8) &&
	     kvmmu_gpa_read(vm, lim - 8, &got, 8) == 0 && got == w;
	ktap_result(ok, "access_last_8_bytes_ok");
	char big[128];
	memset(big, 0x7e, sizeof(big));
	KTAP_EXPECT_ERRNO(kvmmu_gpa_write(vm, lim - 8, big, 9), EINVAL,
			  "access_crossing_limit_EINVAL");
	ktap_result(!memcmp(a + size - 8, &w, 8), "access_crossing_limit_wrote_nothing");
	KTAP_EXPECT_ERRNO(kvmmu_gpa_read(vm, lim, big, 8), EINVAL, "access_at_limit_EINVAL");

	/*
	 * Both the guest range and the buffer bad: the guest side wins
	 * (EINVAL for the range, then ENOENT, then EPERM), in both
	 * directions; a bad buffer alone is EFAULT.
	 */
	const uint64_t g0 = 1ull << 30, g1 = g0 + 64 * size, nowhere = 3ull << 30;
	ok = kvmmu_set_region(vm, 2, 0, g0, size, b) == 0 &&
	     kvmmu_set_region(vm, 3, KVMMU_MEM_READONLY, g1, size, c) == 0;
	ktap_result(ok, "create_rw_and_readonly_slots");
	KTAP_EXPECT_ERRNO(kvmmu_gpa_read(vm, lim, NULL, 8), EINVAL, "beyond_limit_null_buf_read_EINVAL");
	KTAP_EXPECT_ERRNO(kvmmu_gpa_write(vm, lim, NULL, 8), EINVAL, "beyond_limit_null_buf_write_EINVAL");
	KTAP_EXPECT_ERRNO(kvmmu_gpa_read(vm, nowhere, NULL, 8), ENOENT, "no_slot_null_buf_read_ENOENT");
	KTAP_EXPECT_ERRNO(kvmmu_gpa_write(vm, nowhere, NULL, 8), ENOENT, "no_slot_null_buf_write_ENOENT");
	KTAP_EXPECT_ERRNO(kvmmu_gpa_write(vm, g0 + size - 8, NULL, 16), ENOENT,
			  "past_slot_end_null_buf_write_ENOENT");
	KTAP_EXPECT_ERRNO(kvmmu_gpa_write(vm, g1, NULL, 8), EPERM, "readonly_slot_null_buf_write_EPERM");
	KTAP_EXPECT_ERRNO(kvmmu_gpa_read(vm, g0, NULL, 8), EFAULT, "good_gpa_null_buf_read_EFAULT");
	KTAP_EXPECT_ERRNO(kvmmu_gpa_write(vm, g0, NULL, 8), EFAULT, "good_gpa_null_buf_write_EFAULT");
	/* Found before any page is accessed. */
	char *two = map_anon(2 * pg);
	munmap(two + pg, pg);
	memset(two, 0x5c, pg);
	char want[64];
	memcpy(want, b, 64);
	KTAP_EXPECT_ERRNO(kvmmu_gpa_write(vm, g0, two, pg + 64), EFAULT,
			  "write_buf_second_page_unmapped_EFAULT");
	ktap_result(!memcmp(b, want, 64), "write_buf_second_page_unmapped_wrote_nothing");
	memcpy(want, b + size - 64, 64);
	KTAP_EXPECT_ERRNO(kvmmu_gpa_write(vm, g0 + size - 64, big, 72), ENOENT,
			  "write_past_slot_end_ENOENT");
	ktap_result(!memcmp(b + size - 64, want, 64), "write_past_slot_end_wrote_nothing");

	/* GET_DIRTY_LOG: the slot is checked before the buffer. */
	ok = kvmmu_set_region(vm, 4, KVMMU_MEM_LOG_DIRTY_PAGES, g1 + 64 * size, size, d) == 0 &&
	     kvmmu_gpa_write(vm, g1 + 64 * size + 3 * pg, &w, 1) == 0;
	ktap_result(ok, "logging_slot_written");
	KTAP_EXPECT_ERRNO(kvmmu_get_dirty_log(vm, KVMMU_MAX_MEMSLOTS, NULL), EINVAL,
			  "dirty_log_slot_max_null_buf_EINVAL");
	KTAP_EXPECT_ERRNO(kvmmu_get_dirty_log(vm, 9, NULL), ENOENT, "dirty_log_no_slot_null_buf_ENOENT");
	KTAP_EXPECT_ERRNO(kvmmu_get_dirty_log(vm, 2, NULL), ENOENT,
			  "dirty_log_not_logging_null_buf_ENOENT");
	KTAP_EXPECT_ERRNO(kvmmu_get_dirty_log(vm, 4, NULL), EFAULT, "dirty_log_null_buf_EFAULT");
	ktap_result(log_is(4, 1ull << 3), "dirty_log_EFAULT_lost_no_bit");

	/*
	 * Dirty bits follow a moved slot: guest writes to pages 1 and 5, a
	 * process write to page 2 (no bit), a move with logging kept on (to
	 * just below slot 0, near the limit): the log shows pages 1 and 5.
	 */
	ok = kvmmu_gpa_write(vm, g1 + 64 * size + pg, &w, 8) == 0 &&
	     kvmmu_gpa_write(vm, g1 + 64 * size + 5 * pg + 100, &w, 8) == 0;
	d[2 * pg] ^= 1;
	const uint64_t moved = lim - 2 * size;
	ok &= kvmmu_set_region(vm, 4, KVMMU_MEM_LOG_DIRTY_PAGES, moved, size, d) == 0;
	ktap_result(ok, "dirty_pages_then_move_with_logging");
	ktap_result(!mapped(g1 + 64 * size + pg) &&
		    kvmmu_gpa_read(vm, g1 + 64 * size, &got, 8) == -1 && errno == ENOENT,
		    "old_place_gone");
	ktap_result(log_is(4, (1ull << 1) | (1ull << 5)), "dirty_bits_survive_move");
	ok = kvmmu_gpa_write(vm, moved + 7 * pg, &w, 8) == 0 && !memcmp(d + 7 * pg, &w, 8);
	ktap_result(ok && log_is(4, 1ull << 7), "logging_goes_on_at_new_place");

	close(vm);
	close(dev);
	return ktap_finish();
}
