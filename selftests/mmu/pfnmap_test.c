// SPDX-License-Identifier: GPL-2.0
/*
 * Seed 004's page rules for RAM a driver maps with remap_pfn_range()
 * (VM_IO | VM_PFNMAP), through kvmmu_testdev.ko (selftests/driver/): pages
 * of (i) a non-compound order-2 allocation, whose tail pages have a count
 * of 0, (ii) a compound order-2 page, (iii) PageReserved pages. Each is a
 * memslot that is pre-faulted for read and write, read and written with
 * KVMMU_GPA_ACCESS (the bytes are the mapping's), translated (RAM: normal
 * write-back memory, executable), unmapped with munmap and deleted. Nothing
 * may be refused, and the pages must come out as they went in: the same
 * /proc/kpageflags (no PG_referenced, PG_dirty, PG_active added),
 * /proc/kpagecount and reference count of each page (from the driver; no
 * reference taken, none dropped, also while mapped). Needs root (pfns,
 * /proc/kpage*) and kvmmu_testdev.ko loaded.
 */
#include <inttypes.h>
#include <stdint.h>
#include <sys/mman.h>

#include "../driver/pfnmap_dev.h"
#include "../lib/ktap.h"
#include "../lib/kvmmu_util.h"

#define NPAGES KVMMU_PFNMAP_DEV_PAGES
#define KPF_REFERENCED 2
#define KPF_DIRTY 4
#define KPF_LRU 5
#define KPF_ACTIVE 6
#define KPF_COMPOUND_HEAD 15
#define KPF_COMPOUND_TAIL 16
#define KPF_RESERVED 32

/* KTAP results per region, and before the regions. */
#define PER_REGION 14
#define SETUP 3

static const char *const region_name[KVMMU_PFNMAP_DEV_REGIONS] = {
	[KVMMU_PFNMAP_DEV_HIGHER_ORDER] = "higher_order",
	[KVMMU_PFNMAP_DEV_COMPOUND] = "compound",
	[KVMMU_PFNMAP_DEV_RESERVED] = "reserved",
};

static int vm, devfd;
static long pg;

static uint64_t kpagecount(uint64_t pfn)
{
	uint64_t count;
	int fd = open("/proc/kpagecount", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return UINT64_MAX;
	n = pread(fd, &count, sizeof(count), (off_t)(pfn * sizeof(count)));
	close(fd);
	return n == (ssize_t)sizeof(count) ? count : UINT64_MAX;
}

struct page_state {
	uint64_t flags, mapcount;
	int32_t refcount;
};

static int read_state(int region, struct page_state st[NPAGES], uint64_t pfn[NPAGES])
{
	struct kvmmu_pfnmap_dev_info info;

	if (ioctl(devfd, KVMMU_PFNMAP_DEV_INFO, &info)) {
		ktap_diag("KVMMU_PFNMAP_DEV_INFO: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < NPAGES; i++) {
		pfn[i] = info.pfn[region][i];
		st[i].refcount = info.refcount[region][i];
		st[i].flags = kvmmu_kpageflags(pfn[i]);
		st[i].mapcount = kpagecount(pfn[i]);
		if (st[i].flags == UINT64_MAX || st[i].mapcount == UINT64_MAX) {
			ktap_diag("cannot read /proc/kpageflags or /proc/kpagecount");
			return -1;
		}
	}
	return 0;
}

static void fill(unsigned char *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(seed + i * 7 + (i >> 8) * 13);
}

/* Every page of the slot is mapped as RAM should be: normal, executable. */
static int translate_all(uint64_t gpa, const uint64_t pfn[NPAGES], int want_write)
{
	int ok = 1;

	for (int i = 0; i < NPAGES; i++) {
		struct kvmmu_translation t;
		int r = kvmmu_translate(vm, gpa + (uint64_t)i * pg, &t);
		uint32_t want = KVMMU_PROT_READ | KVMMU_PROT_EXEC | (want_write ? KVMMU_PROT_WRITE : 0);

		if (r || !t.mapped || t.memtype != KVMMU_MEMTYPE_NORMAL_WB ||
		    (t.prot & want) != want || t.pfn != pfn[i]) {
			ktap_diag("page %d: r %d mapped %u memtype %u prot %#x pfn %#" PRIx64
				  " (want normal-wb, prot %#x, pfn %#" PRIx64 ")",
				  i, r, t.mapped, t.memtype, t.prot, (uint64_t)t.pfn, want, pfn[i]);
			ok = 0;
		}
	}
	return ok;
}

static int unmapped_all(uint64_t gpa)
{
	for (int i = 0; i < NPAGES; i++) {
		struct kvmmu_translation t;

		if (kvmmu_translate(vm, gpa + (uint64_t)i * pg, &t) || t.mapped) {
			ktap_diag("page %d still mapped after munmap", i);
			return 0;
		}
	}
	return 1;
}

static int same_states(const char *what, const struct page_state a[NPAGES],
		       const struct page_state b[NPAGES], int field)
{
	int ok = 1;

	for (int i = 0; i < NPAGES; i++) {
		if (field == 0 && a[i].flags != b[i].flags) {
			ktap_diag("%s page %d: kpageflags %#" PRIx64 " -> %#" PRIx64
				  " (referenced %d->%d dirty %d->%d active %d->%d lru %d->%d)",
				  what, i, a[i].flags, b[i].flags,
				  (int)(a[i].flags >> KPF_REFERENCED & 1),
				  (int)(b[i].flags >> KPF_REFERENCED & 1),
				  (int)(a[i].flags >> KPF_DIRTY & 1), (int)(b[i].flags >> KPF_DIRTY & 1),
				  (int)(a[i].flags >> KPF_ACTIVE & 1), (int)(b[i].flags >> KPF_ACTIVE & 1),
				  (int)(a[i].flags >> KPF_LRU & 1), (int)(b[i].flags >> KPF_LRU & 1));
			ok = 0;
		}
		if (field == 1 && a[i].mapcount != b[i].mapcount) {
			ktap_diag("%s page %d: kpagecount %" PRIu64 " -> %" PRIu64, what, i,
				  a[i].mapcount, b[i].mapcount);
			ok = 0;
		}
		if (field == 2 && a[i].refcount != b[i].refcount) {
			ktap_diag("%s page %d: refcount %d -> %d", what, i, a[i].refcount,
				  b[i].refcount);
			ok = 0;
		}
	}
	return ok;
}

/* The driver gave what the test is about. */
static int shape_ok(int region, const struct page_state st[NPAGES])
{
	for (int i = 0; i < NPAGES; i++) {
		uint64_t f = st[i].flags;
		int reserved = f >> KPF_RESERVED & 1;
		int head = f >> KPF_COMPOUND_HEAD & 1, tail = f >> KPF_COMPOUND_TAIL & 1;
		int ok;

		switch (region) {
		case KVMMU_PFNMAP_DEV_HIGHER_ORDER:
			ok = !reserved && !head && !tail && st[i].refcount == (i == 0 ? 1 : 0);
			break;
		case KVMMU_PFNMAP_DEV_COMPOUND:
			ok = !reserved && head == (i == 0) && tail == (i != 0) &&
			     st[i].refcount == (i == 0 ? 1 : 0);
			break;
		default:
			ok = reserved && !head && !tail && st[i].refcount == 1;
			break;
		}
		if (!ok) {
			ktap_diag("page %d: kpageflags %#" PRIx64 " refcount %d", i, f, st[i].refcount);
			return 0;
		}
	}
	return 1;
}

static void test_region(int region, uint64_t gpa)
{
	const char *name = region_name[region];
	const size_t len = (size_t)NPAGES * pg;
	struct page_state before[NPAGES], during[NPAGES], after[NPAGES];
	uint64_t pfn[NPAGES], pfn2[NPAGES];
	unsigned char *want = malloc(len), *buf = malloc(len);
	unsigned char *m;
	int ok;

	if (!want || !buf || read_state(region, before, pfn)) {
		for (int i = 0; i < PER_REGION; i++)
			ktap_result(0, "%s_setup_%d", name, i);
		return;
	}
	ktap_result(shape_ok(region, before), "%s_pages_as_allocated", name);

	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, devfd,
		 (off_t)region * NPAGES * pg);
	ok = m != MAP_FAILED;
	if (!ok)
		ktap_diag("mmap: %s", strerror(errno));
	if (ok) {
		fill(m, len, 0x11 * (region + 1));
		ok = kvmmu_set_region(vm, region, 0, gpa, len, m) == 0;
		if (!ok)
			ktap_diag("SET_USER_MEMORY_REGION: %s", strerror(errno));
	}
	if (!ktap_result(ok, "%s_mmap_and_slot", name)) {
		if (m != MAP_FAILED)
			munmap(m, len);
		for (int i = 2; i < PER_REGION; i++)
			ktap_skip("%s_after_setup_%d", name, i);
		free(want);
		free(buf);
		return;
	}

	KTAP_EXPECT_ERRNO(kvmmu_pre_fault(vm, gpa, len, 0), 0, "%s_pre_fault_read", name);
	ktap_result(translate_all(gpa, pfn, 0), "%s_translate_normal_exec", name);
	KTAP_EXPECT_ERRNO(kvmmu_pre_fault(vm, gpa, len, KVMMU_ACCESS_WRITE), 0,
			  "%s_pre_fault_write", name);
	ktap_result(translate_all(gpa, pfn, 1), "%s_translate_normal_exec_writable", name);

	/* The guest reads what the process wrote, and the other way round. */
	memset(buf, 0, len);
	ok = kvmmu_gpa_read(vm, gpa, buf, len) == 0;
	if (!ok)
		ktap_diag("GPA_ACCESS read: %s", strerror(errno));
	ktap_result(ok && !memcmp(buf, m, len), "%s_gpa_read_matches_mapping", name);
	fill(want, len, 0x5a + region);
	ok = kvmmu_gpa_write(vm, gpa + 3, want, len - 3) == 0;
	if (!ok)
		ktap_diag("GPA_ACCESS write: %s", strerror(errno));
	ktap_result(ok && !memcmp(m + 3, want, len - 3), "%s_gpa_write_seen_by_mapping", name);

	ok = read_state(region, during, pfn2) == 0;
	ktap_result(ok && same_states("mapped", before, during, 2),
		    "%s_no_reference_while_mapped", name);

	/* The invalidation: munmap (MADV_DONTNEED is refused on a pfnmap). */
	ok = munmap(m, len) == 0;
	ktap_result(ok && unmapped_all(gpa), "%s_munmap_unmaps", name);
	KTAP_EXPECT_ERRNO(kvmmu_delete_region(vm, region), 0, "%s_delete_slot", name);

	ok = read_state(region, after, pfn2) == 0;
	ktap_result(ok && same_states("after", before, after, 0), "%s_kpageflags_unchanged", name);
	ktap_result(ok && same_states("after", before, after, 1), "%s_kpagecount_unchanged", name);
	ktap_result(ok && same_states("after", before, after, 2), "%s_refcount_unchanged", name);
	free(want);
	free(buf);
}

int main(void)
{
	int dev;

	pg = kvmmu_page_size();
	ktap_start(SETUP + KVMMU_PFNMAP_DEV_REGIONS * PER_REGION);
	if (geteuid() != 0) {
		for (int i = 0; i < SETUP + KVMMU_PFNMAP_DEV_REGIONS * PER_REGION; i++)
			ktap_skip("pfnmap_%d needs root (pfns, /proc/kpageflags)", i);
		return ktap_finish();
	}
	devfd = open("/dev/" KVMMU_PFNMAP_DEV_NAME, O_RDWR | O_CLOEXEC);
	if (!ktap_result(devfd >= 0, "open_testdev")) {
		ktap_diag("/dev/%s: %s (is kvmmu_testdev.ko loaded?)", KVMMU_PFNMAP_DEV_NAME,
			  strerror(errno));
		return ktap_finish();
	}
	{
		struct kvmmu_pfnmap_dev_info info;

		ktap_result(ioctl(devfd, KVMMU_PFNMAP_DEV_INFO, &info) == 0 &&
				    info.page_size == (uint64_t)pg,
			    "testdev_info");
		ktap_diag("page size %ld, regions of %d pages", pg, NPAGES);
	}
	dev = kvmmu_open();
	vm = dev >= 0 ? kvmmu_create_vm(dev) : -1;
	if (!ktap_result(vm >= 0, "create_vm")) {
		ktap_diag("%s", strerror(errno));
		return ktap_finish();
	}
	for (int r = 0; r < KVMMU_PFNMAP_DEV_REGIONS; r++)
		test_region(r, (1ull << 30) + (uint64_t)r * (64ull << 20));
	close(vm);
	close(dev);
	close(devfd);
	return ktap_finish();
}
