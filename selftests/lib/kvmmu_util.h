/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers shared by kvmmu selftests. */
#ifndef KVMMU_SELFTEST_UTIL_H
#define KVMMU_SELFTEST_UTIL_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvmmu.h>

static inline int kvmmu_open(void)
{
	return open("/dev/kvmmu", O_RDWR | O_CLOEXEC);
}

static inline int kvmmu_create_vm(int devfd)
{
	struct kvmmu_create_vm args;

	memset(&args, 0, sizeof(args));
	return ioctl(devfd, KVMMU_CREATE_VM, &args);
}

/* A counter from /sys/kernel/debug/kvmmu/stats, or -1. */
static inline long long kvmmu_module_stat(const char *name)
{
	char key[64];
	long long v, found = -1;
	FILE *f = fopen("/sys/kernel/debug/kvmmu/stats", "r");

	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", key, &v) == 2)
		if (!strcmp(key, name))
			found = v;
	fclose(f);
	return found;
}

static inline int count_open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			n++;
	return n;
}

/*
 * Guest memory helpers for the mmu selftests. Every wrapper returns what
 * ioctl() returns (errno set on -1); argument structures are zeroed first.
 */
static inline long kvmmu_page_size(void)
{
	return sysconf(_SC_PAGESIZE);
}

/* A region argument with every other field (reserved) zero. */
static inline struct kvmmu_userspace_memory_region kvmmu_region(uint32_t slot, uint32_t flags,
								uint64_t gpa, uint64_t size,
								const void *hva)
{
	struct kvmmu_userspace_memory_region r;

	memset(&r, 0, sizeof(r));
	r.slot = slot;
	r.flags = flags;
	r.guest_phys_addr = gpa;
	r.memory_size = size;
	r.userspace_addr = (uintptr_t)hva;
	return r;
}

static inline int kvmmu_set_region(int vm, uint32_t slot, uint32_t flags, uint64_t gpa,
				   uint64_t size, const void *hva)
{
	struct kvmmu_userspace_memory_region r = kvmmu_region(slot, flags, gpa, size, hva);

	return ioctl(vm, KVMMU_SET_USER_MEMORY_REGION, &r);
}

static inline int kvmmu_delete_region(int vm, uint32_t slot)
{
	return kvmmu_set_region(vm, slot, 0, 0, 0, NULL);
}

static inline int kvmmu_gpa_rw(int vm, uint64_t gpa, void *buf, uint64_t len, uint32_t flags)
{
	struct kvmmu_gpa_access a;

	memset(&a, 0, sizeof(a));
	a.gpa = gpa;
	a.len = len;
	a.buf = (uintptr_t)buf;
	a.flags = flags;
	return ioctl(vm, KVMMU_GPA_ACCESS, &a);
}

static inline int kvmmu_gpa_read(int vm, uint64_t gpa, void *buf, uint64_t len)
{
	return kvmmu_gpa_rw(vm, gpa, buf, len, 0);
}

static inline int kvmmu_gpa_write(int vm, uint64_t gpa, const void *buf, uint64_t len)
{
	return kvmmu_gpa_rw(vm, gpa, (void *)buf, len, KVMMU_ACCESS_WRITE);
}

/* Reads [gpa, gpa + len) in chunks of at most KVMMU_ACCESS_MAX_LEN. */
static inline int kvmmu_gpa_read_all(int vm, uint64_t gpa, void *buf, uint64_t len)
{
	char *b = (char *)buf;

	while (len) {
		uint64_t n = len < KVMMU_ACCESS_MAX_LEN ? len : KVMMU_ACCESS_MAX_LEN;

		if (kvmmu_gpa_read(vm, gpa, b, n))
			return -1;
		gpa += n;
		b += n;
		len -= n;
	}
	return 0;
}

static inline int kvmmu_translate(int vm, uint64_t gpa, struct kvmmu_translation *t)
{
	memset(t, 0, sizeof(*t));
	t->gpa = gpa;
	return ioctl(vm, KVMMU_TRANSLATE, t);
}

/* 1 if a stage-2 leaf maps gpa writable, 0 if not (or unmapped), -1 on error. */
static inline int kvmmu_gpa_writable(int vm, uint64_t gpa)
{
	struct kvmmu_translation t;

	if (kvmmu_translate(vm, gpa, &t))
		return -1;
	return t.mapped && (t.prot & KVMMU_PROT_WRITE);
}

static inline int kvmmu_get_stats(int vm, struct kvmmu_vm_stats *st)
{
	memset(st, 0, sizeof(*st));
	return ioctl(vm, KVMMU_GET_STATS, st);
}

static inline int kvmmu_get_dirty_log(int vm, uint32_t slot, void *bitmap)
{
	struct kvmmu_dirty_log d;

	memset(&d, 0, sizeof(d));
	d.slot = slot;
	d.dirty_bitmap = (uintptr_t)bitmap;
	return ioctl(vm, KVMMU_GET_DIRTY_LOG, &d);
}

static inline int kvmmu_pre_fault(int vm, uint64_t gpa, uint64_t size, uint32_t flags)
{
	struct kvmmu_pre_fault p;

	memset(&p, 0, sizeof(p));
	p.gpa = gpa;
	p.size = size;
	p.flags = flags;
	return ioctl(vm, KVMMU_PRE_FAULT, &p);
}

/* PRE_FAULT of [@gpa, + @size) in calls of at most KVMMU_PRE_FAULT_MAX. */
static inline int kvmmu_pre_fault_all(int vm, uint64_t gpa, uint64_t size, uint32_t flags)
{
	for (uint64_t done = 0; done < size; done += KVMMU_PRE_FAULT_MAX) {
		uint64_t n = size - done < KVMMU_PRE_FAULT_MAX ? size - done : KVMMU_PRE_FAULT_MAX;

		if (kvmmu_pre_fault(vm, gpa + done, n, flags))
			return -1;
	}
	return 0;
}

/* Anonymous private memory of @size whose start is a multiple of @align. */
static inline void *kvmmu_mmap_aligned(size_t size, size_t align)
{
	size_t len = size + align;
	char *p = (char *)mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *a;

	if (p == MAP_FAILED)
		return NULL;
	a = (char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
	if (a > p)
		munmap(p, a - p);
	if (a + size < p + len)
		munmap(a + size, p + len - (a + size));
	return a;
}

/*
 * The host pfn of the page at @addr from /proc/self/pagemap: bits 0-54 when
 * bit 63 (present) is set. Returns 0 if not present (or the pfn is hidden
 * from an unprivileged reader), UINT64_MAX if pagemap cannot be read.
 */
static inline uint64_t kvmmu_host_pfn(const void *addr)
{
	long pg = kvmmu_page_size();
	uint64_t ent;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return UINT64_MAX;
	n = pread(fd, &ent, sizeof(ent), (off_t)((uintptr_t)addr / pg * sizeof(ent)));
	close(fd);
	if (n != (ssize_t)sizeof(ent))
		return UINT64_MAX;
	if (!(ent >> 63))
		return 0;
	return ent & ((1ull << 55) - 1);
}

/* /proc/kpageflags of @pfn, or UINT64_MAX if unreadable. */
static inline uint64_t kvmmu_kpageflags(uint64_t pfn)
{
	uint64_t flags;
	int fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return UINT64_MAX;
	n = pread(fd, &flags, sizeof(flags), (off_t)(pfn * sizeof(flags)));
	close(fd);
	return n == (ssize_t)sizeof(flags) ? flags : UINT64_MAX;
}

#define KVMMU_KPF_THP 22

/* PMD-sized transparent huge pages: their size, or 0 if THP is unavailable. */
static inline uint64_t kvmmu_thp_size(void)
{
	char buf[128];
	unsigned long long sz = 0;
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");

	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	if (strstr(buf, "[never]") || !strchr(buf, '['))
		return 0;
	f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &sz) != 1)
		sz = 0;
	fclose(f);
	return sz;
}

/* AnonHugePages (bytes) of the VMA containing @addr, or -1. */
static inline long long kvmmu_vma_anon_huge(const void *addr)
{
	char line[256];
	unsigned long long start, end, kb;
	long long found = -1;
	int in = 0;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		/* VMA headers: "start-end perms ..."; fields: "Name: value". */
		if (sscanf(line, "%llx-%llx ", &start, &end) == 2) {
			in = start <= (uintptr_t)addr && (uintptr_t)addr < end;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %llu kB", &kb) == 1) {
			found = (long long)kb * 1024;
			break;
		}
	}
	fclose(f);
	return found;
}

/*
 * Is [@p, @p + @size) one PMD-mapped transparent huge page? As root: every
 * page is present with contiguous pfns (pagemap), the first is a THP
 * (kpageflags), and the VMA counts AnonHugePages; unprivileged: the smaps
 * figure alone.
 */
static inline int kvmmu_is_thp_mapped(const void *p, uint64_t size)
{
	long pg = kvmmu_page_size();
	uint64_t n = size / pg, first;
	uint64_t *ents = (uint64_t *)malloc(n * sizeof(*ents));
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	int ok = ents && fd >= 0 && kvmmu_vma_anon_huge(p) >= (long long)size &&
		 pread(fd, ents, n * sizeof(*ents), (off_t)((uintptr_t)p / pg * sizeof(*ents))) ==
			 (ssize_t)(n * sizeof(*ents));

	if (fd >= 0)
		close(fd);
	first = ok ? ents[0] & ((1ull << 55) - 1) : 0;
	if (ok && !first && geteuid() != 0) {
		free(ents);
		return 1; /* pfns hidden: smaps is all there is */
	}
	for (uint64_t i = 0; ok && i < n; i++)
		ok = (ents[i] >> 63) && (ents[i] & ((1ull << 55) - 1)) == first + i;
	free(ents);
	if (ok) {
		uint64_t fl = kvmmu_kpageflags(first);

		ok = fl == UINT64_MAX || ((fl >> KVMMU_KPF_THP) & 1);
	}
	return ok;
}

/*
 * Sizes of the stage-2 leaves kvmmu builds on this architecture and host
 * page size (level 0 is the base page; 0: no leaf at that level):
 *   x86_64 EPT (4K): 4K, 2M, 1G
 *   arm64 stage 2: 4K granule 4K, 2M, 1G; 16K: 16K, 32M; 64K: 64K, 512M
 *   ppc64 radix: 4K base: 4K, 2M, 1G; 64K base: 64K, 2M, 1G
 */
static inline uint64_t kvmmu_s2_leaf_size(unsigned int level)
{
	uint64_t pg = (uint64_t)kvmmu_page_size();

	if (level == 0)
		return pg;
#if defined(__aarch64__)
	if (pg == 16384)
		return level == 1 ? 32ull << 20 : 0;
	if (pg == 65536)
		return level == 1 ? 512ull << 20 : 0;
#endif
	if (level == 1)
		return 2ull << 20;
	if (level == 2)
		return 1ull << 30;
	return 0;
}

/* The largest stage-2 leaf no larger than @size; its level in *@level. */
static inline uint64_t kvmmu_s2_block_le(uint64_t size, unsigned int *level)
{
	uint64_t best = kvmmu_s2_leaf_size(0);
	unsigned int l, best_l = 0;

	for (l = 1; l < 3; l++) {
		uint64_t s = kvmmu_s2_leaf_size(l);

		if (s && s <= size && s > best) {
			best = s;
			best_l = l;
		}
	}
	if (level)
		*level = best_l;
	return best;
}

/* An address in the kernel half of the address space. */
static inline uint64_t kvmmu_kernel_addr(void)
{
#if defined(__powerpc64__)
	return 0xc000000000000000ull;
#elif defined(__aarch64__)
	return 0xffff800000000000ull;
#else
	return 0xffff888000000000ull;
#endif
}

static inline uint64_t kvmmu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* MemAvailable from /proc/meminfo in bytes, or 0. */
static inline uint64_t kvmmu_mem_available(void)
{
	char line[128];
	unsigned long long kb = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb * 1024;
}

#endif
