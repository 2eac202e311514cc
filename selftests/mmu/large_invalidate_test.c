// SPDX-License-Identifier: GPL-2.0
/*
 * Invalidations, slot deletion and turning dirty logging on over more than
 * one 64 MiB piece (docs/locking.md): kvmmu works through such ranges
 * piece by piece, each with its own TLB flush, offering the MMU lock up in
 * between. Driven by real process memory and the real mmu notifier: an
 * MADV_DONTNEED of 136 MiB of base pages unmaps exactly those pages (the
 * guest then reads zeroes there and the old bytes around them), with one
 * flush per piece; logging write-protects every leaf of a 160 MiB slot;
 * deleting the slot leaves nothing mapped.
 */
#include <stdint.h>
#include <sys/mman.h>

#include "../lib/ktap.h"
#include "../lib/kvmmu_util.h"

#define MIB (1ull << 20)

static int vm;
static long pg;

/* The first word of every page holds its index + 1. */
static uint64_t word(uint64_t gpa)
{
	uint64_t v = ~0ull;

	if (kvmmu_gpa_read(vm, gpa, &v, sizeof(v)))
		ktap_diag("read 0x%llx: %s", (unsigned long long)gpa, strerror(errno));
	return v;
}

static int mapped(uint64_t gpa)
{
	struct kvmmu_translation t;

	return kvmmu_translate(vm, gpa, &t) == 0 && t.mapped;
}

int main(void)
{
	struct kvmmu_vm_stats s0, s1;
	const uint64_t size = 160 * MIB, gpa = 4ull << 30;
	/* Off piece boundaries at both ends, across two of them. */
	const uint64_t zoff = 8 * MIB + 4096 * 16, zlen = 136 * MIB;
	int dev, ok;

	pg = kvmmu_page_size();
	const uint64_t npages = size / pg;

	ktap_start(10);
	dev = kvmmu_open();
	vm = dev >= 0 ? kvmmu_create_vm(dev) : -1;
	char *m = kvmmu_mmap_aligned(size, 2 * MIB);
	if (!ktap_result(vm >= 0 && m, "create_vm_and_memory")) {
		ktap_diag("%s", strerror(errno));
		return ktap_finish();
	}
	madvise(m, size, MADV_NOHUGEPAGE);
	for (uint64_t p = 0; p < npages; p++)
		*(uint64_t *)(m + p * pg) = p + 1;
	ok = kvmmu_set_region(vm, 0, 0, gpa, size, m) == 0 &&
	     kvmmu_pre_fault_all(vm, gpa, size, KVMMU_ACCESS_WRITE) == 0 &&
	     kvmmu_get_stats(vm, &s0) == 0;
	if (!ktap_result(ok && s0.leaves[0] == npages, "pre_fault_160m_base_pages")) {
		ktap_diag("%s; %llu base leaves", strerror(errno), (unsigned long long)s0.leaves[0]);
		return ktap_finish();
	}

	/* One notifier range over three pieces. */
	ok = madvise(m + zoff, zlen, MADV_DONTNEED) == 0 && kvmmu_get_stats(vm, &s1) == 0;
	ktap_result(ok && s1.pages_unmapped - s0.pages_unmapped == zlen / pg &&
			    s1.leaves[0] == npages - zlen / pg,
		    "dontneed_136m_unmaps_exactly_its_pages");
	ktap_diag("unmapped %llu pages, %llu flushes, %llu invalidations",
		  (unsigned long long)(s1.pages_unmapped - s0.pages_unmapped),
		  (unsigned long long)(s1.tlb_flushes - s0.tlb_flushes),
		  (unsigned long long)(s1.invalidate_range_start - s0.invalidate_range_start));
	ktap_result(s1.tlb_flushes - s0.tlb_flushes >= 3, "one_flush_per_64m_piece");

	ok = mapped(gpa + zoff - pg) && mapped(gpa + zoff + zlen);
	for (uint64_t off = zoff; off < zoff + zlen; off += MIB)
		ok &= !mapped(gpa + off);
	ok &= !mapped(gpa + zoff + zlen - pg);
	ktap_result(ok, "translate_edges");

	ok = word(gpa + zoff - pg) == (zoff - pg) / pg + 1 && word(gpa + zoff) == 0 &&
	     word(gpa + zoff + 64 * MIB) == 0 && word(gpa + zoff + zlen - pg) == 0 &&
	     word(gpa + zoff + zlen) == (zoff + zlen) / pg + 1;
	ktap_result(ok, "guest_reads_zeroes_inside_old_bytes_around");

	/* Logging on: every leaf of the slot loses write access. */
	ok = kvmmu_pre_fault_all(vm, gpa, size, 0) == 0 &&
	     kvmmu_set_region(vm, 0, KVMMU_MEM_LOG_DIRTY_PAGES, gpa, size, m) == 0;
	for (uint64_t off = 0; ok && off < size; off += pg) {
		struct kvmmu_translation t;

		if (kvmmu_translate(vm, gpa + off, &t) || !t.mapped ||
		    (t.prot & KVMMU_PROT_WRITE)) {
			ktap_diag("gpa 0x%llx: mapped %u prot 0x%x", (unsigned long long)(gpa + off),
				  t.mapped, t.prot);
			ok = 0;
		}
	}
	ktap_result(ok, "logging_write_protects_160m");
	uint64_t v = 0x5a5a;
	ok = kvmmu_gpa_write(vm, gpa + 100 * MIB, &v, sizeof(v)) == 0 &&
	     *(uint64_t *)(m + 100 * MIB) == v;
	ktap_result(ok, "write_after_logging_reaches_memory");

	/* Deleting the slot unmaps all of it, piece by piece. */
	ok = kvmmu_delete_region(vm, 0) == 0 && kvmmu_get_stats(vm, &s1) == 0;
	ktap_result(ok && s1.leaves[0] == 0 && s1.leaves[1] == 0 && s1.leaves[2] == 0 &&
			    !mapped(gpa) && !mapped(gpa + size - pg),
		    "delete_slot_unmaps_everything");
	ktap_result(s1.table_pages <= 1, "tables_freed");
	if (s1.table_pages > 1)
		ktap_diag("%llu table pages live", (unsigned long long)s1.table_pages);
	return ktap_finish();
}
