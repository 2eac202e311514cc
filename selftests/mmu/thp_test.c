// SPDX-License-Identifier: GPL-2.0
/*
 * Transparent huge pages are mapped with stage-2 blocks. Memory of two
 * PMD-sized THPs is mapped by two slots: one whose guest address is
 * congruent to the host address modulo the THP size, which must get block
 * leaves, and one that is not, which must get base-page leaves of the same
 * host pages. MADV_DONTNEED of one base page in the middle then splits the
 * host THP: the block leaf goes, the guest reads zeroes in that page and
 * the old data everywhere else, and the other THP's block is untouched.
 *
 * Expected leaf size: the largest stage-2 leaf no larger than the THP size
 * (kvmmu_s2_block_le() in ../lib/kvmmu_util.h). x86_64 and arm64 with 4K
 * pages: 2 MiB THPs, 2 MiB leaves. ppc64le (radix stage 2 over 64K pages,
 * leaves 64K/2M/1G): 2 MiB THPs under the radix MMU give 2 MiB leaves;
 * 16 MiB THPs under the hash MMU give 2 MiB leaves, the largest block
 * below them. arm64 16K/64K pages: 32M/512M THPs and leaves.
 */
#include <stdint.h>
#include <sys/mman.h>

#include "../lib/ktap.h"
#include "../lib/kvmmu_util.h"

#define NTESTS 17

static int vm;
static long pg;
static int root;

/* The pattern the process writes: distinct per 8-byte word. */
static uint64_t pattern(uint64_t off)
{
	return 0x7400000000000000ull ^ (off * 0x9e3779b97f4a7c15ull);
}

static void fill(char *p, uint64_t len)
{
	for (uint64_t off = 0; off < len; off += 8) {
		uint64_t v = pattern(off);

		memcpy(p + off, &v, 8);
	}
}

/* The guest reads [gpa, gpa + len) as pattern (region offset @off) or zero. */
static int guest_reads(uint64_t gpa, uint64_t off, uint64_t len, int zero)
{
	static char buf[KVMMU_ACCESS_MAX_LEN];

	for (uint64_t done = 0; done < len;) {
		uint64_t n = len - done < sizeof(buf) ? len - done : sizeof(buf);

		if (kvmmu_gpa_read(vm, gpa + done, buf, n)) {
			ktap_diag("read gpa 0x%llx: %s", (unsigned long long)(gpa + done),
				  strerror(errno));
			return 0;
		}
		for (uint64_t i = 0; i < n; i += 8) {
			uint64_t v, w = zero ? 0 : pattern(off + done + i);

			memcpy(&v, buf + i, 8);
			if (v != w) {
				ktap_diag("gpa 0x%llx: 0x%llx, want 0x%llx",
					  (unsigned long long)(gpa + done + i), (unsigned long long)v,
					  (unsigned long long)w);
				return 0;
			}
		}
		done += n;
	}
	return 1;
}

static int leaf_is(uint64_t gpa, uint64_t size, unsigned int level, const void *hva)
{
	struct kvmmu_translation t;
	uint64_t host = kvmmu_host_pfn(hva);

	if (kvmmu_translate(vm, gpa, &t)) {
		ktap_diag("TRANSLATE 0x%llx: %s", (unsigned long long)gpa, strerror(errno));
		return 0;
	}
	int ok = t.mapped && t.size == size && t.level == level && (t.prot & KVMMU_PROT_READ) &&
		 t.memtype == KVMMU_MEMTYPE_NORMAL_WB && (root ? t.pfn == host : t.pfn == 0);
	if (!ok)
		ktap_diag("gpa 0x%llx: mapped %u size 0x%llx level %u prot 0x%x memtype %u pfn 0x%llx "
			  "(want size 0x%llx level %u pfn 0x%llx)", (unsigned long long)gpa, t.mapped,
			  (unsigned long long)t.size, t.level, t.prot, t.memtype,
			  (unsigned long long)t.pfn, (unsigned long long)size, level,
			  (unsigned long long)host);
	return ok;
}

static int skip_rest(const char *why)
{
	while (ktap_n < NTESTS)
		ktap_skip("%s", why);
	return ktap_finish();
}

int main(void)
{
	struct kvmmu_vm_stats st;
	struct kvmmu_translation t;
	unsigned int lvl;
	int dev, ok;

	pg = kvmmu_page_size();
	root = geteuid() == 0;
	ktap_start(NTESTS);

	const uint64_t H = kvmmu_thp_size();
	if (!H) {
		ktap_diag("no transparent huge pages (no sysfs, or enabled = never)");
		return skip_rest("thp_unavailable");
	}
	const uint64_t block = kvmmu_s2_block_le(H, &lvl);
	ktap_diag("THP size 0x%llx, expected stage-2 leaf 0x%llx (level %u), page size %ld",
		  (unsigned long long)H, (unsigned long long)block, lvl, pg);
	if (H > (64ull << 20))
		return skip_rest("thp_too_large_for_a_1G_test_vm");

	dev = kvmmu_open();
	vm = dev >= 0 ? kvmmu_create_vm(dev) : -1;
	if (!ktap_result(vm >= 0, "create_vm")) {
		ktap_diag("%s", strerror(errno));
		return ktap_finish();
	}

	/* Two THPs, aligned to their size. */
	char *p = kvmmu_mmap_aligned(2 * H, H);
	if (!p || madvise(p, 2 * H, MADV_HUGEPAGE)) {
		ktap_diag("mmap/madvise: %s", strerror(errno));
		return skip_rest("madvise_hugepage_failed");
	}
	fill(p, 2 * H);
	int huge0 = kvmmu_is_thp_mapped(p, H), huge1 = kvmmu_is_thp_mapped(p + H, H);
	if (!huge0) {
		ktap_diag("no huge page (fragmented memory?); AnonHugePages %lld",
			  kvmmu_vma_anon_huge(p));
		return skip_rest("no_thp_backing");
	}
	ktap_result(1, "backing_is_thp (second region too: %d)", huge1);

	/* ga: congruent to p modulo H. gb: off by one page. */
	const uint64_t ga = 4ull << 30, gb = (8ull << 30) + pg;
	ok = kvmmu_set_region(vm, 0, 0, ga, 2 * H, p) == 0 &&
	     kvmmu_set_region(vm, 1, 0, gb, 2 * H, p) == 0;
	ktap_result(ok, "create_congruent_and_shifted_slots");

	/* One byte through the congruent slot maps its block of the THP. */
	unsigned char byte = 0;
	uint64_t want = pattern(120);
	ok = kvmmu_gpa_read(vm, ga + 123, &byte, 1) == 0 && byte == ((unsigned char *)&want)[3];
	ktap_result(ok, "congruent_read_one_byte");
	ktap_result(leaf_is(ga + 123, block, lvl, p + 123),
		    "congruent_slot_block_leaf (size 0x%llx level %u, pfn as pagemap)",
		    (unsigned long long)block, lvl);
	/* Reading all of it maps the rest (more blocks if block < H). */
	ok = guest_reads(ga, 0, H, 0);
	ok &= leaf_is(ga + H - pg, block, lvl, p + H - pg) &&
	      leaf_is(ga + H / 2 + 8, block, lvl, p + H / 2 + 8);
	ktap_result(ok, "congruent_slot_reads_the_thp_through_blocks");
	ok = kvmmu_get_stats(vm, &st) == 0 && (lvl == 0 || st.leaves[lvl] == H / block);
	ktap_result(ok, "stats_leaves_at_level_%u (%llu %llu %llu)", lvl,
		    (unsigned long long)st.leaves[0], (unsigned long long)st.leaves[1],
		    (unsigned long long)st.leaves[2]);

	/* The same host pages through a shifted slot: base pages only. */
	uint64_t w0 = pattern(0);
	ok = kvmmu_gpa_read(vm, gb + 5, &byte, 1) == 0 && byte == ((unsigned char *)&w0)[5];
	ok &= guest_reads(gb, 0, 4 * pg, 0) && guest_reads(gb + H / 2, H / 2, pg, 0);
	ok &= leaf_is(gb, pg, 0, p) && leaf_is(gb + H / 2, pg, 0, p + H / 2);
	ktap_result(ok, "shifted_slot_base_page_leaves");

	/* The second THP gets its own block. */
	if (huge1) {
		ok = kvmmu_gpa_read(vm, ga + H + 7, &byte, 1) == 0 && leaf_is(ga + H, block, lvl, p + H);
		ktap_result(ok, "second_thp_block_leaf");
	} else {
		ktap_skip("second_thp_block_leaf (second region not a THP)");
	}

	/* MADV_DONTNEED of one base page in the middle of the first THP. */
	kvmmu_get_stats(vm, &st);
	uint64_t unmapped0 = st.pages_unmapped;
	const uint64_t mid = H / 2;
	if (madvise(p + mid, pg, MADV_DONTNEED))
		ktap_diag("madvise: %s", strerror(errno));
	ok = kvmmu_translate(vm, ga, &t) == 0 && (!t.mapped || t.size < H);
	ok &= kvmmu_translate(vm, ga + mid, &t) == 0 && !t.mapped;
	ktap_result(ok, "dontneed_block_leaf_gone");
	ok = kvmmu_translate(vm, gb + mid, &t) == 0 && !t.mapped;
	ktap_result(ok, "dontneed_shifted_slot_page_gone");
	kvmmu_get_stats(vm, &st);
	ktap_result(st.pages_unmapped > unmapped0 && st.invalidate_range_start == st.invalidate_range_end,
		    "dontneed_counted (pages_unmapped %llu -> %llu)", (unsigned long long)unmapped0,
		    (unsigned long long)st.pages_unmapped);
	ktap_result(guest_reads(ga + mid, mid, pg, 1) && guest_reads(gb + mid, mid, pg, 1),
		    "dontneed_page_reads_zero");
	ok = guest_reads(ga, 0, mid, 0) && guest_reads(ga + mid + pg, mid + pg, H - mid - pg, 0);
	ktap_result(ok, "rest_of_first_thp_intact");
	/*
	 * The host split its THP: no block may map the first H any more,
	 * unless khugepaged has collapsed the range into a new THP meanwhile
	 * (then a block of it is right).
	 */
	int again0 = kvmmu_is_thp_mapped(p, H);
	ok = kvmmu_translate(vm, ga + pg, &t) == 0 && t.mapped &&
	     (root ? t.pfn == kvmmu_host_pfn(p + pg) : 1);
	int again1 = kvmmu_is_thp_mapped(p, H);
	if (again0 || again1)
		ktap_diag("khugepaged collapsed the first THP again (%d %d)", again0, again1);
	ok &= again0 || again1 ? t.size == (uint64_t)pg || t.size == block : t.size < H;
	ktap_result(ok, "refault_after_split_maps_smaller_leaf (size 0x%llx)",
		    (unsigned long long)t.size);
	if (huge1) {
		ok = leaf_is(ga + H, block, lvl, p + H) && guest_reads(ga + H, H, H, 0);
		ktap_result(ok, "second_thp_block_untouched");
	} else {
		ktap_skip("second_thp_block_untouched (second region not a THP)");
	}

	munmap(p, 2 * H);
	ok = kvmmu_get_stats(vm, &st) == 0 && !st.leaves[0] && !st.leaves[1] && !st.leaves[2] &&
	     st.invalidate_range_start == st.invalidate_range_end;
	ktap_result(ok, "munmap_unmaps_everything");
	close(vm);
	close(dev);
	return ktap_finish();
}
