// SPDX-License-Identifier: GPL-2.0
/*
 * The VM's mmu_notifier sees real address-space changes of this process:
 * munmap, madvise(MADV_DONTNEED) and mprotect each produce paired
 * invalidate_range_start/end callbacks, and marking pages idle through
 * /sys/kernel/mm/page_idle produces clear_young callbacks.
 */
#include <stdint.h>
#include <sys/mman.h>

#include "../lib/ktap.h"
#include "../lib/kvmmu_util.h"

static int vm;

static struct kvmmu_vm_stats stats(void)
{
	struct kvmmu_vm_stats st;

	memset(&st, 0, sizeof(st));
	if (ioctl(vm, KVMMU_GET_STATS, &st))
		ktap_diag("GET_STATS: %s", strerror(errno));
	return st;
}

static char *touched(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0x5a, len);
	return p;
}

/* The invalidation counts moved and are balanced again. */
static void check_invalidated(struct kvmmu_vm_stats before, const char *what)
{
	struct kvmmu_vm_stats after = stats();

	ktap_result(after.invalidate_range_start > before.invalidate_range_start &&
		    after.invalidate_range_start == after.invalidate_range_end,
		    "%s_invalidates (start %llu->%llu, end %llu)", what,
		    (unsigned long long)before.invalidate_range_start,
		    (unsigned long long)after.invalidate_range_start,
		    (unsigned long long)after.invalidate_range_end);
}

static int set_idle(char *p, size_t len, long pg)
{
	int pm = open("/proc/self/pagemap", O_RDONLY);
	int idle = open("/sys/kernel/mm/page_idle/bitmap", O_RDWR);
	int n = 0;

	if (pm < 0 || idle < 0) {
		if (pm >= 0)
			close(pm);
		if (idle >= 0)
			close(idle);
		return -1;
	}
	for (size_t off = 0; off < len; off += pg) {
		uint64_t ent, pfn, bits;

		if (pread(pm, &ent, 8, ((uintptr_t)(p + off) / pg) * 8) != 8 || !(ent >> 63))
			continue;
		pfn = ent & ((1ull << 55) - 1);
		bits = 1ull << (pfn % 64);
		if (pwrite(idle, &bits, 8, (pfn / 64) * 8) == 8)
			n++;
	}
	close(pm);
	close(idle);
	return n;
}

int main(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t len = 64 * pg;
	struct kvmmu_vm_stats before;
	int dev;
	char *p;

	ktap_start(6);
	dev = kvmmu_open();
	vm = dev >= 0 ? kvmmu_create_vm(dev) : -1;
	if (!ktap_result(vm >= 0, "create_vm")) {
		ktap_diag("%s", strerror(errno));
		return ktap_finish();
	}

	before = stats();
	p = touched(len);
	struct kvmmu_vm_stats after_mmap = stats();
	ktap_result(p && after_mmap.invalidate_range_start == before.invalidate_range_start,
		    "mmap_and_first_touch_do_not_invalidate");

	before = stats();
	munmap(p + len / 2, len / 2);
	check_invalidated(before, "munmap");

	before = stats();
	madvise(p, len / 4, MADV_DONTNEED);
	check_invalidated(before, "madvise_dontneed");

	memset(p, 1, len / 2);
	before = stats();
	mprotect(p, len / 2, PROT_READ);
	check_invalidated(before, "mprotect_readonly");
	munmap(p, len / 2);

	/* Aging: page_idle's rmap walk calls clear_young for mapped pages. */
	p = touched(len);
	before = stats();
	int n = set_idle(p, len, pg);
	if (n < 0) {
		ktap_skip("page_idle_clear_young (no /sys/kernel/mm/page_idle)");
	} else {
		struct kvmmu_vm_stats after = stats();
		ktap_result(after.clear_young > before.clear_young,
			    "page_idle_clear_young (%d pages marked, clear_young %llu->%llu)", n,
			    (unsigned long long)before.clear_young,
			    (unsigned long long)after.clear_young);
	}
	munmap(p, len);
	close(vm);
	close(dev);
	return ktap_finish();
}
