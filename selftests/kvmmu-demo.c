// SPDX-License-Identifier: GPL-2.0
/*
 * kvmmu-demo: a tiny VMM. It opens /dev/kvmmu, creates a VM bound to its own
 * address space, allocates guest memory with mmap, touches it, gives part of
 * it back (MADV_DONTNEED, munmap) and prints what kvmmu saw at each step.
 * It grows with each kvmmu capability.
 */
#include <stdio.h>
#include <sys/mman.h>

#include "lib/kvmmu_util.h"

static int vm;

static void show(const char *step)
{
	struct kvmmu_vm_stats st;

	if (ioctl(vm, KVMMU_GET_STATS, &st)) {
		perror("KVMMU_GET_STATS");
		return;
	}
	printf("  %-36s invalidate start/end %4llu/%-4llu  young clear_flush/clear/test %llu/%llu/%llu\n",
	       step, (unsigned long long)st.invalidate_range_start,
	       (unsigned long long)st.invalidate_range_end,
	       (unsigned long long)st.clear_flush_young, (unsigned long long)st.clear_young,
	       (unsigned long long)st.test_young);
}

int main(void)
{
	size_t len = 64 << 20;
	int dev = kvmmu_open();
	char *mem;

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
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	show("after mmap of 64 MiB guest memory");
	memset(mem, 0xab, len);
	show("after touching every page");
	madvise(mem, len / 4, MADV_DONTNEED);
	show("after MADV_DONTNEED of 16 MiB");
	mprotect(mem + len / 4, len / 4, PROT_READ);
	show("after mprotect(PROT_READ) of 16 MiB");
	munmap(mem, len);
	show("after munmap of all of it");
	close(vm);
	close(dev);
	printf("kvmmu-demo: done\n");
	return 0;
}
