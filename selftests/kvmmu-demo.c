// SPDX-License-Identifier: GPL-2.0
/*
 * kvmmu-demo: a tiny VMM. It opens /dev/kvmmu, creates a VM bound to its own
 * address space, gives it 64 MiB of guest memory (a memslot over an
 * anonymous mapping), moves data between the process and the guest through
 * the VM's stage-2 table, logs dirty pages, gives memory back to the host
 * (MADV_DONTNEED, mprotect, munmap) and prints what kvmmu saw at each step.
 * It grows with each kvmmu capability.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "lib/kvmmu_util.h"

#define GPA 0x100000000ull /* 4 GiB */

static int vm;
static long pg;

static void show(const char *step)
{
	struct kvmmu_vm_stats st;

	if (ioctl(vm, KVMMU_GET_STATS, &st)) {
		perror("KVMMU_GET_STATS");
		return;
	}
	printf("  %-40s faults %5llu retries %3llu  leaves 4K/2M/1G %5llu/%3llu/%llu  tables %4llu"
	       "  invalidations %3llu/%-3llu unmapped %5llu\n",
	       step, (unsigned long long)st.faults, (unsigned long long)st.fault_retries,
	       (unsigned long long)st.leaves[0], (unsigned long long)st.leaves[1],
	       (unsigned long long)st.leaves[2], (unsigned long long)st.table_pages,
	       (unsigned long long)st.invalidate_range_start,
	       (unsigned long long)st.invalidate_range_end,
	       (unsigned long long)st.pages_unmapped);
}

static void translate(uint64_t gpa)
{
	struct kvmmu_translation t;

	memset(&t, 0, sizeof(t));
	t.gpa = gpa;
	if (ioctl(vm, KVMMU_TRANSLATE, &t)) {
		perror("KVMMU_TRANSLATE");
		return;
	}
	if (!t.mapped)
		printf("  gpa 0x%llx: not mapped\n", (unsigned long long)gpa);
	else
		printf("  gpa 0x%llx: level %u leaf of %llu KiB, %c%c%c, pfn 0x%llx\n",
		       (unsigned long long)gpa, t.level, (unsigned long long)t.size >> 10,
		       t.prot & KVMMU_PROT_READ ? 'r' : '-', t.prot & KVMMU_PROT_WRITE ? 'w' : '-',
		       t.prot & KVMMU_PROT_EXEC ? 'x' : '-', (unsigned long long)t.pfn);
}

static int guest(uint64_t gpa, void *buf, uint64_t len, uint32_t flags)
{
	return kvmmu_gpa_rw(vm, gpa, buf, len, flags);
}

int main(void)
{
	size_t len = 64 << 20;
	int dev = kvmmu_open();
	char msg[64], back[64];
	char *raw, *mem;

	pg = sysconf(_SC_PAGESIZE);
	if (dev < 0) {
		perror("open /dev/kvmmu");
		return 1;
	}
	printf("kvmmu-demo: kvmmu API version %d\n", ioctl(dev, KVMMU_GET_API_VERSION, 0));
	vm = kvmmu_create_vm(dev);
	if (vm < 0) {
		perror("KVMMU_CREATE_VM");
		return 1;
	}
	printf("kvmmu-demo: VM created (fd %d)\n", vm);
	show("after create");

	/* Guest memory: 2 MiB-aligned so the host can back it with THPs. */
	raw = mmap(NULL, len + (2 << 20), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	if (raw == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	mem = (char *)(((uintptr_t)raw + (2 << 20) - 1) & ~(uintptr_t)((2 << 20) - 1));
	madvise(mem, len / 2, MADV_HUGEPAGE);
	madvise(mem + len / 2, len / 2, MADV_NOHUGEPAGE);
	memset(mem, 0xab, len);
	if (kvmmu_set_region(vm, 0, 0, GPA, len, mem)) {
		perror("KVMMU_SET_USER_MEMORY_REGION");
		return 1;
	}
	printf("kvmmu-demo: slot 0: gpa 0x%llx..0x%llx -> hva %p (first half THP, second 4K)\n",
	       GPA, GPA + len, mem);
	show("after adding the memslot");

	/* The process writes, the guest reads; and the reverse. */
	snprintf(msg, sizeof(msg), "hello from the VMM");
	strcpy(mem + 3 * pg + 100, msg);
	if (guest(GPA + 3 * pg + 100, back, sizeof(msg), 0))
		perror("KVMMU_GPA_ACCESS read");
	printf("kvmmu-demo: guest read at gpa 0x%llx: \"%s\"\n",
	       (unsigned long long)(GPA + 3 * pg + 100), back);
	snprintf(msg, sizeof(msg), "hello from the guest");
	if (guest(GPA + len / 2 + 5 * pg, msg, sizeof(msg), KVMMU_ACCESS_WRITE))
		perror("KVMMU_GPA_ACCESS write");
	printf("kvmmu-demo: process sees at hva %p: \"%s\"\n", mem + len / 2 + 5 * pg,
	       mem + len / 2 + 5 * pg);
	translate(GPA + 3 * pg);
	translate(GPA + len / 2 + 5 * pg);
	show("after two guest accesses");

	struct kvmmu_pre_fault pf;
	memset(&pf, 0, sizeof(pf));
	pf.gpa = GPA;
	pf.size = len;
	if (ioctl(vm, KVMMU_PRE_FAULT, &pf))
		perror("KVMMU_PRE_FAULT");
	show("after pre-faulting all 64 MiB");

	/* Dirty logging: write 3 pages, harvest the log. */
	if (kvmmu_set_region(vm, 0, KVMMU_MEM_LOG_DIRTY_PAGES, GPA, len, mem))
		perror("enable dirty logging");
	translate(GPA + 3 * pg);
	for (int i = 0; i < 3; i++)
		guest(GPA + (10 + 7 * i) * pg, msg, 8, KVMMU_ACCESS_WRITE);
	uint64_t *bm = calloc(len / pg / 64 + 1, 8);
	struct kvmmu_dirty_log dl;
	memset(&dl, 0, sizeof(dl));
	dl.dirty_bitmap = (uintptr_t)bm;
	if (ioctl(vm, KVMMU_GET_DIRTY_LOG, &dl))
		perror("KVMMU_GET_DIRTY_LOG");
	printf("kvmmu-demo: dirty log word 0 after 3 guest writes: 0x%016llx\n",
	       (unsigned long long)bm[0]);
	free(bm);
	show("after dirty logging");
	if (kvmmu_set_region(vm, 0, 0, GPA, len, mem))
		perror("disable dirty logging");

	/* The host takes memory back; the VM's notifier unmaps it. */
	madvise(mem, len / 4, MADV_DONTNEED);
	show("after MADV_DONTNEED of 16 MiB");
	translate(GPA);
	if (guest(GPA + 3 * pg + 100, back, sizeof(msg), 0) == 0)
		printf("kvmmu-demo: guest reads %s after DONTNEED\n",
		       back[0] == 0 ? "zeroes" : "old data (!)");
	mprotect(mem + len / 2, len / 4, PROT_READ);
	show("after mprotect(PROT_READ) of 16 MiB");
	if (guest(GPA + len / 2, msg, 8, KVMMU_ACCESS_WRITE))
		printf("kvmmu-demo: guest write to read-only host memory: %s\n", strerror(errno));
	munmap(raw, len + (2 << 20));
	show("after munmap of all of it");
	if (guest(GPA, back, 8, 0))
		printf("kvmmu-demo: guest read after munmap: %s\n", strerror(errno));
	close(vm);
	close(dev);
	printf("kvmmu-demo: done\n");
	return 0;
}
