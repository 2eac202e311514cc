// SPDX-License-Identifier: GPL-2.0
/*
 * Device passthrough (issue 12) with QEMU's ivshmem-plain device (PCI
 * 1af4:1110), present in every test VM (scripts/qemu-run.sh): BAR 2 is
 * 4 MiB of RAM-like shared memory (naturally aligned; 64-bit and
 * prefetchable on x86-64 and arm64, not prefetchable on ppc64le pseries).
 * The VMM mmaps it through sysfs, resource2 (uncached: kvmmu reports
 * KVMMU_MEMTYPE_DEVICE) and, where the kernel offers write-combining
 * mmaps (arm64; x86-64 only with PAT), resource2_wc (KVMMU_MEMTYPE_NORMAL_NC),
 * and registers the mapping as an ordinary memslot.
 *
 * KVMMU_GPA_ACCESS on such memory is one naturally aligned access of 1, 2,
 * 4 or 8 bytes, which ivshmem's BAR 2 accepts at every size on every
 * architecture (unlike edu): data stored directly through the mapping
 * reads back through kvmmu with the same size and vice versa (one access:
 * the bytes around a kvmmu write stay as they were), at chosen offsets and
 * at 4 KiB strides across the whole BAR; other sizes, unaligned accesses
 * and 16-byte accesses are EINVAL with the memory unchanged. Expected
 * values come from the bytes the direct 8-byte stores put in memory, so
 * the checks hold in either byte order.
 *
 * KVMMU_TRANSLATE: device memory (or Normal-NC over resource2_wc),
 * writable, never executable, the pfn that of BAR 2's page. The size of
 * the leaf is only recorded (a diagnostic line) and checked to be at least
 * a page: block leaves for BARs may come (the mappings here are 4 MiB
 * aligned in host virtual, guest physical and host physical space).
 *
 * munmap of the BAR unmaps every page (the notifier) and accesses fail
 * with EFAULT; mapping it again and re-creating the slot works, and the
 * shared memory kept its contents; 100 map/access/unmap cycles. The
 * uncached mappings are all gone before resource2_wc is mapped (x86 PAT
 * would turn a write-combining mapping of a range also mapped uncached
 * into an uncached one; arm64 forbids mismatched aliases). Needs root
 * (sysfs enable, resourceN); without the device it prints a KTAP skip
 * plan, and without resource2_wc the write-combining tests are skipped.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "../lib/ktap.h"
#include "../lib/kvmmu_util.h"

#define IVSHMEM_VENDOR 0x1af4
#define IVSHMEM_DEVICE 0x1110
#define IVSHMEM_BAR 2
#define IVSHMEM_BAR_SIZE (4u << 20)

#define IORESOURCE_MEM_ 0x00000200ull
#define IORESOURCE_PREFETCH_ 0x00002000ull
#define IORESOURCE_MEM_64_ 0x00100000ull

/* Guest layout: 4 MiB-aligned slots, 64 MiB apart. */
#define GPA_MAIN (1ull << 30)
#define GPA_CYCLE (GPA_MAIN + (64ull << 20))
#define GPA_WC (GPA_MAIN + (128ull << 20))
#define SLOT_MAIN 0
#define SLOT_CYCLE 1
#define SLOT_WC 2

/* Host virtual alignment of every mapping of the BAR. */
#define MAP_ALIGN ((size_t)IVSHMEM_BAR_SIZE)
/* Sampling stride across the BAR: no more than a page on any arch. */
#define STRIDE 4096u

#define CYCLES 100
/* The stage-2 formats' first block size with the kernels' page sizes. */
#define BLOCK (2ull << 20)
/* A slot whose gpa is one page off the hva's 2 MiB alignment. */
#define SLOT_SKEW 3
#define GPA_SKEW (GPA_MAIN + (64ull << 20))

#define NSIZES 4
#define NINVALID 13
#define DATA_TESTS (2 * NSIZES + 4)
#define INVALID_TESTS (2 * NINVALID + 1)
#define MUNMAP_TESTS 10
#define CYCLE_TESTS 2
#define WC_TESTS (1 + DATA_TESTS + INVALID_TESTS + 2)
#define SKEW_TESTS 2
#define NTESTS (4 + DATA_TESTS + INVALID_TESTS + SKEW_TESTS + MUNMAP_TESTS + CYCLE_TESTS + 1 + WC_TESTS)

static const unsigned int sizes[NSIZES] = { 1, 2, 4, 8 };

static char sysdir[512];
static int vm;
static long pg;
static size_t bar_size;
static uint64_t bar_phys;

/* --- the device, found and enabled through sysfs ------------------------ */

static int read_hex_file(const char *dir, const char *name, unsigned long long *v)
{
	char path[600];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	ok = fscanf(f, "%llx", v) == 1;
	fclose(f);
	return ok ? 0 : -1;
}

static int find_ivshmem(void)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;
	int found = 0;

	if (!d)
		return 0;
	while (!found && (e = readdir(d))) {
		char dir[512];
		unsigned long long ven, dev;

		if (e->d_name[0] == '.')
			continue;
		snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s", e->d_name);
		if (read_hex_file(dir, "vendor", &ven) || read_hex_file(dir, "device", &dev))
			continue;
		if (ven == IVSHMEM_VENDOR && dev == IVSHMEM_DEVICE) {
			snprintf(sysdir, sizeof(sysdir), "%s", dir);
			found = 1;
		}
	}
	closedir(d);
	return found;
}

/* enable: 1 once enabled; was_enabled: what it read before. */
static int enable_ivshmem(int *was_enabled)
{
	char path[600];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/enable", sysdir);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%llu", &v) != 1) {
		if (f)
			fclose(f);
		ktap_diag("%s: %s", path, strerror(errno));
		return 0;
	}
	fclose(f);
	*was_enabled = v != 0;
	if (v)
		return 1;
	f = fopen(path, "w");
	if (!f || fputs("1", f) < 0 || fclose(f)) {
		ktap_diag("echo 1 > %s: %s", path, strerror(errno));
		return 0;
	}
	f = fopen(path, "r");
	if (!f || fscanf(f, "%llu", &v) != 1)
		v = 0;
	if (f)
		fclose(f);
	return v != 0;
}

static void disable_ivshmem(void)
{
	char path[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/enable", sysdir);
	f = fopen(path, "w");
	if (f) {
		fputs("0", f);
		fclose(f);
	}
}

/* BAR 2 from the resource file (its third line): start and flags; the size from resource2. */
static int bar2_info(uint64_t *start, uint64_t *flags, size_t *size)
{
	char path[600];
	unsigned long long s = 0, e = 0, fl = 0;
	struct stat st;
	FILE *f;
	int ok = 1;

	snprintf(path, sizeof(path), "%s/resource", sysdir);
	f = fopen(path, "r");
	if (!f)
		return -1;
	for (int i = 0; ok && i <= IVSHMEM_BAR; i++)
		ok = fscanf(f, "%llx %llx %llx", &s, &e, &fl) == 3;
	fclose(f);
	snprintf(path, sizeof(path), "%s/resource%d", sysdir, IVSHMEM_BAR);
	if (!ok || stat(path, &st))
		return -1;
	*start = s;
	*flags = fl;
	*size = (size_t)st.st_size;
	if (e + 1 - s != (unsigned long long)st.st_size)
		ktap_diag("resource says %#llx-%#llx, resource%d is %lld bytes", s, e, IVSHMEM_BAR,
			  (long long)st.st_size);
	return 0;
}

static int have_file(const char *name)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/%s", sysdir, name);
	return access(path, F_OK) == 0;
}

/*
 * A new shared read-write mapping of the whole of sysfs file @name (resource2
 * or resource2_wc), at a MAP_ALIGN-aligned address, or NULL.
 */
static volatile char *map_bar(const char *name)
{
	size_t total = bar_size + MAP_ALIGN;
	char path[600], *res, *a, *p;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", sysdir, name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		ktap_diag("open %s: %s", path, strerror(errno));
		return NULL;
	}
	res = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED) {
		ktap_diag("mmap reservation: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	a = (char *)(((uintptr_t)res + MAP_ALIGN - 1) & ~(uintptr_t)(MAP_ALIGN - 1));
	p = mmap(a, bar_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		ktap_diag("mmap %s: %s", path, strerror(errno));
		munmap(res, total);
		return NULL;
	}
	if (a > res)
		munmap(res, a - res);
	if (res + total > a + bar_size)
		munmap(a + bar_size, res + total - (a + bar_size));
	return p;
}

/* --- direct accesses through a mapping, and accesses through kvmmu ------ */

union val {
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	unsigned char b[8];
};

static uint64_t from_val(const union val *v, unsigned int size)
{
	switch (size) {
	case 1:
		return v->u8;
	case 2:
		return v->u16;
	case 4:
		return v->u32;
	default:
		return v->u64;
	}
}

static union val to_val(uint64_t x, unsigned int size)
{
	union val v;

	v.u64 = 0;
	switch (size) {
	case 1:
		v.u8 = (uint8_t)x;
		break;
	case 2:
		v.u16 = (uint16_t)x;
		break;
	case 4:
		v.u32 = (uint32_t)x;
		break;
	default:
		v.u64 = x;
	}
	return v;
}

static uint64_t mask(uint64_t x, unsigned int size)
{
	return size == 8 ? x : x & ((1ull << (8 * size)) - 1);
}

/* One direct load or store of @size bytes. */
static uint64_t ld(volatile char *b, size_t off, unsigned int size)
{
	switch (size) {
	case 1:
		return *(volatile uint8_t *)(b + off);
	case 2:
		return *(volatile uint16_t *)(b + off);
	case 4:
		return *(volatile uint32_t *)(b + off);
	default:
		return *(volatile uint64_t *)(b + off);
	}
}

static void st(volatile char *b, size_t off, unsigned int size, uint64_t x)
{
	switch (size) {
	case 1:
		*(volatile uint8_t *)(b + off) = (uint8_t)x;
		break;
	case 2:
		*(volatile uint16_t *)(b + off) = (uint16_t)x;
		break;
	case 4:
		*(volatile uint32_t *)(b + off) = (uint32_t)x;
		break;
	default:
		*(volatile uint64_t *)(b + off) = x;
	}
	/* write-combined stores must leave the CPU before kvmmu looks */
	__sync_synchronize();
}

/* GPA_ACCESS of @size bytes: one access through kvmmu. */
static int g_ld(uint64_t gpa, unsigned int size, uint64_t *x)
{
	union val v;
	int r;

	v.u64 = 0xbadbadbadbadbad0ull;
	r = kvmmu_gpa_read(vm, gpa, &v, size);
	*x = from_val(&v, size);
	return r;
}

static int g_st(uint64_t gpa, unsigned int size, uint64_t x)
{
	union val v = to_val(x, size);

	return kvmmu_gpa_write(vm, gpa, &v, size);
}

static void diag_err(const char *what, uint64_t gpa, unsigned int size)
{
	ktap_diag("%s of %u bytes at gpa %#" PRIx64 ": %s", what, size, gpa, strerror(errno));
}

/* --- patterns ------------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The 8-byte value pattern @seed stores at the 8-aligned offset @off. */
static uint64_t pat(uint64_t seed, size_t off)
{
	return mix(seed * 0x100000001b3ull ^ (off / 8));
}

/* What a load of @size at @off gives after the 8-byte store of @q at off & ~7. */
static uint64_t sub(uint64_t q, size_t off, unsigned int size)
{
	union val v, w;

	v.u64 = q;
	w.u64 = 0;
	memcpy(w.b, v.b + (off & 7), size);
	return from_val(&w, size);
}

/* @q with the bytes at (off & 7) replaced by those of a store of @x of @size. */
static uint64_t merge(uint64_t q, size_t off, unsigned int size, uint64_t x)
{
	union val v, w = to_val(x, size);

	v.u64 = q;
	memcpy(v.b + (off & 7), w.b, size);
	return v.u64;
}

static void fill(volatile char *b, uint64_t seed)
{
	for (size_t off = 0; off < bar_size; off += 8)
		*(volatile uint64_t *)(b + off) = pat(seed, off);
	__sync_synchronize();
}

/* Offset @k (of the sample at 4 KiB stride @k) and the size used there. */
static unsigned int sample_size(size_t k)
{
	return sizes[k % NSIZES];
}

static size_t sample_off(size_t k)
{
	unsigned int size = sample_size(k);
	size_t in = k == bar_size / STRIDE - 1 ? STRIDE - size : (k * 0x238 + k / 3) % STRIDE;

	return k * STRIDE + (in & ~(size_t)(size - 1));
}

/* --- translations -------------------------------------------------------- */

static const char *memtype_name(unsigned int t)
{
	return t == KVMMU_MEMTYPE_DEVICE ? "device" : t == KVMMU_MEMTYPE_NORMAL_NC ? "normal-nc" :
	       t == KVMMU_MEMTYPE_NORMAL_WB ? "normal-wb" : "?";
}

/* The leaf of @gpa (offset @off in the BAR): @memtype, rw, no exec, BAR 2's pfn, >= a page. */
static int bar_leaf(uint64_t gpa, size_t off, unsigned int memtype, struct kvmmu_translation *t)
{
	uint64_t want_pfn = (bar_phys + off) / (uint64_t)pg;
	int r = kvmmu_translate(vm, gpa, t), ok;

	ok = r == 0 && t->mapped && t->memtype == memtype && (t->prot & KVMMU_PROT_READ) &&
	     (t->prot & KVMMU_PROT_WRITE) && !(t->prot & KVMMU_PROT_EXEC) &&
	     t->size >= (uint64_t)pg && t->pfn == want_pfn;
	if (!ok)
		ktap_diag("gpa %#" PRIx64 ": r %d mapped %u memtype %u (%s) prot %#x level %u size %#llx"
			  " pfn %#llx (want %s, prot rw, no exec, size >= %#lx, pfn %#" PRIx64 ")",
			  gpa, r, t->mapped, t->memtype, memtype_name(t->memtype), t->prot, t->level,
			  (unsigned long long)t->size, (unsigned long long)t->pfn,
			  memtype_name(memtype), pg, want_pfn);
	return ok;
}

/* Every page of [gpa, + bar_size), every @step-th page of it, unmapped. */
static int unmapped(uint64_t gpa, size_t step)
{
	for (size_t off = 0; off < bar_size; off += step * pg) {
		struct kvmmu_translation t;

		if (kvmmu_translate(vm, gpa + off, &t) || t.mapped) {
			ktap_diag("gpa %#" PRIx64 " still mapped (memtype %u prot %#x size %#llx)",
				  gpa + off, t.memtype, t.prot, (unsigned long long)t.size);
			return 0;
		}
	}
	return 1;
}

/* --- the data tests, for one mapping and its slot ------------------------- */

/* 8-aligned offsets for the chosen-offset tests. */
static size_t chosen_offs(size_t *o)
{
	size_t n = 0;

	o[n++] = 0;
	o[n++] = 8;
	o[n++] = 0x18;
	o[n++] = 0x100;
	o[n++] = (size_t)pg - 8;
	o[n++] = (size_t)pg;
	o[n++] = 0x12340;
	o[n++] = (2u << 20) - 8;
	o[n++] = 2u << 20;
	o[n++] = 0x2abcd8;
	o[n++] = bar_size - (size_t)pg;
	o[n++] = bar_size - 8;
	return n;
}

static void data_tests(const char *tag, volatile char *b, uint64_t gpa, unsigned int memtype)
{
	size_t offs[16], noffs = chosen_offs(offs), nsamples = bar_size / STRIDE;
	struct kvmmu_translation t;
	int ok;

	/* direct stores of each size at chosen offsets, read through kvmmu. */
	for (unsigned int si = 0; si < NSIZES; si++) {
		unsigned int size = sizes[si];

		ok = 1;
		for (size_t k = 0; ok && k < noffs; k++) {
			size_t off = offs[k] + size * (k % (8 / size));

			for (unsigned int j = 0; ok && j < 2; j++) {
				uint64_t want = mask(j ? ~pat(size, off) : pat(size, off), size), got;

				st(b, off, size, want);
				if (g_ld(gpa + off, size, &got)) {
					diag_err("GPA_ACCESS read", gpa + off, size);
					ok = 0;
				} else if (got != want) {
					ktap_diag("%s %#zx: direct store %#" PRIx64 ", kvmmu read %#"
						  PRIx64 " (%u bytes; direct load %#" PRIx64 ")", tag,
						  off, want, got, size, ld(b, off, size));
					ok = 0;
				}
			}
		}
		ktap_result(ok, "%s_direct_store_kvmmu_read_%u", tag, size);
	}

	/*
	 * kvmmu writes of each size at chosen offsets, seen by direct loads;
	 * one access: the rest of its 8 bytes and the 8 bytes either side
	 * keep what direct stores put there.
	 */
	for (unsigned int si = 0; si < NSIZES; si++) {
		unsigned int size = sizes[si];

		ok = 1;
		for (size_t k = 0; ok && k < noffs; k++) {
			size_t off = offs[k] + size * (k % (8 / size)), q = off & ~(size_t)7;
			uint64_t x = mask(mix(off * 31 + size), size), bg[3], want[3], got;

			for (int i = 0; i < 3; i++) {
				size_t o = q + (size_t)(i - 1) * 8;

				bg[i] = want[i] = pat(100 + size, o);
				if (o < bar_size)
					st(b, o, 8, bg[i]);
			}
			want[1] = merge(bg[1], off, size, x);
			if (g_st(gpa + off, size, x)) {
				diag_err("GPA_ACCESS write", gpa + off, size);
				ok = 0;
				break;
			}
			if ((got = ld(b, off, size)) != x) {
				ktap_diag("%s %#zx: kvmmu wrote %#" PRIx64 ", direct load %#" PRIx64
					  " (%u bytes)", tag, off, x, got, size);
				ok = 0;
			}
			for (int i = 0; ok && i < 3; i++) {
				size_t o = q + (size_t)(i - 1) * 8;

				if (o >= bar_size)
					continue;
				if ((got = ld(b, o, 8)) != want[i]) {
					ktap_diag("%s: after a %u-byte kvmmu write of %#" PRIx64
						  " at %#zx, 8 bytes at %#zx are %#" PRIx64
						  " (want %#" PRIx64 ")", tag, size, x, off, o, got,
						  want[i]);
					ok = 0;
				}
			}
		}
		ktap_result(ok, "%s_kvmmu_write_direct_load_%u", tag, size);
	}

	/* a pattern stored directly over the whole BAR, read through kvmmu at 4 KiB strides. */
	fill(b, 7);
	ok = 1;
	for (size_t k = 0; k < nsamples; k++) {
		unsigned int size = sample_size(k);
		size_t off = sample_off(k);
		uint64_t want = sub(pat(7, off & ~(size_t)7), off, size), got;

		if (g_ld(gpa + off, size, &got)) {
			diag_err("GPA_ACCESS read", gpa + off, size);
			ok = 0;
			break;
		}
		if (got != want) {
			if (ok)
				ktap_diag("%s %#zx: pattern %#" PRIx64 ", kvmmu read %#" PRIx64
					  " (%u bytes)", tag, off, want, got, size);
			ok = 0;
		}
	}
	ktap_result(ok, "%s_whole_bar_direct_pattern_kvmmu_reads", tag);

	/*
	 * kvmmu writes at 4 KiB strides over another pattern: every 8 bytes
	 * of the BAR are then the pattern, with the bytes written replaced.
	 */
	fill(b, 8);
	ok = 1;
	for (size_t k = 0; ok && k < nsamples; k++) {
		unsigned int size = sample_size(k);
		size_t off = sample_off(k);

		if (g_st(gpa + off, size, mask(mix(off ^ 0x5555), size))) {
			diag_err("GPA_ACCESS write", gpa + off, size);
			ok = 0;
		}
	}
	for (size_t k = 0, bad = 0; ok && k < nsamples; k++) {
		for (size_t q = k * STRIDE; q < (k + 1) * STRIDE; q += 8) {
			size_t off = sample_off(k);
			unsigned int size = sample_size(k);
			uint64_t want = pat(8, q), got;

			if (q == (off & ~(size_t)7))
				want = merge(want, off, size, mask(mix(off ^ 0x5555), size));
			if ((got = ld(b, q, 8)) != want) {
				if (!bad++)
					ktap_diag("%s: 8 bytes at %#zx are %#" PRIx64 " (want %#" PRIx64
						  "; sample %#zx, %u bytes)", tag, q, got, want, off,
						  size);
				ok = 0;
			}
		}
	}
	ktap_result(ok, "%s_whole_bar_kvmmu_writes_direct_loads", tag);

	/* every page was accessed: each maps BAR 2's page with the type expected. */
	ok = 1;
	for (size_t off = 0; ok && off < bar_size; off += pg)
		ok = bar_leaf(gpa + off, off, memtype, &t);
	ktap_result(ok, "%s_translate_every_page_%s_rw_noexec", tag, memtype_name(memtype));

	/*
	 * The leaf: hva, gpa and BAR 2 are all 4 MiB-aligned and the BAR is
	 * physically contiguous, so each 2 MiB of it is one block leaf.
	 */
	ok = kvmmu_translate(vm, gpa, &t) == 0 && t.mapped;
	if (ok) {
		struct kvmmu_vm_stats s;

		ktap_diag("%s leaf size at gpa %#" PRIx64 ": %#llx bytes, level %u (page %#lx)", tag,
			  gpa, (unsigned long long)t.size, t.level, pg);
		if (!kvmmu_get_stats(vm, &s))
			ktap_diag("%s: leaves mapped in the VM now: %llu/%llu/%llu", tag,
				  (unsigned long long)s.leaves[0], (unsigned long long)s.leaves[1],
				  (unsigned long long)s.leaves[2]);
	}
	ktap_result(ok && t.size == BLOCK && t.level == 1, "%s_leaf_is_a_2mib_block", tag);
}

/*
 * The same BAR as a second slot whose gpa is one page off the hva's 2 MiB
 * alignment: no block can map the same offsets, so base pages, and the data
 * is the same.
 */
static void test_skewed(volatile char *bar)
{
	struct kvmmu_translation t;
	uint64_t got = 0;
	int ok;

	/* gpa % 2 MiB is a page, the hva's is 0. */
	ok = kvmmu_set_region(vm, SLOT_SKEW, 0, GPA_SKEW + pg, bar_size, (void *)bar) == 0;
	ktap_result(ok && g_ld(GPA_SKEW + pg + 8, 8, &got) == 0 && got == *(volatile uint64_t *)(bar + 8),
		    "skewed_slot_reads_the_same_data");
	ok = ok && kvmmu_translate(vm, GPA_SKEW + pg + 8, &t) == 0 && t.mapped;
	if (ok)
		ktap_diag("skewed slot leaf: %#llx bytes, level %u", (unsigned long long)t.size, t.level);
	ktap_result(ok && t.size == (uint64_t)pg && t.level == 0, "skewed_slot_gets_base_pages");
	kvmmu_delete_region(vm, SLOT_SKEW);
}

/* Sizes and alignments refused before anything is accessed, the memory unchanged. */
static void invalid_tests(const char *tag, volatile char *b, uint64_t gpa)
{
	const struct {
		size_t off;
		unsigned int len;
	} bad[NINVALID] = {
		{ 0x10, 0 },  { 0x10, 3 },  { 0x10, 5 },  { 0x10, 6 },
		{ 0x10, 7 },  { 0x20, 16 }, { 0x28, 16 }, { 0x11, 2 },
		{ 0x12, 4 },  { 0x14, 8 },  { 0x21, 8 },  { (size_t)pg - 4, 8 },
		{ (size_t)pg - 8, 16 },
	};
	unsigned char buf[32];
	int ok = 1;

	/* known contents in the first page and around the first page boundary */
	for (size_t off = 0; off < 0x100; off += 8)
		st(b, off, 8, pat(42, off));
	for (size_t off = pg - 0x40; off < (size_t)pg + 0x40; off += 8)
		st(b, off, 8, pat(42, off));
	for (unsigned int i = 0; i < NINVALID; i++) {
		memset(buf, 0x5a, sizeof(buf));
		KTAP_EXPECT_ERRNO(kvmmu_gpa_read(vm, gpa + bad[i].off, buf, bad[i].len), EINVAL,
				  "%s_read_len_%u_at_%#zx_EINVAL", tag, bad[i].len, bad[i].off);
		memset(buf, 0xa5, sizeof(buf));
		KTAP_EXPECT_ERRNO(kvmmu_gpa_write(vm, gpa + bad[i].off, buf, bad[i].len), EINVAL,
				  "%s_write_len_%u_at_%#zx_EINVAL", tag, bad[i].len, bad[i].off);
	}
	for (size_t off = 0; off < (size_t)pg + 0x40; off += 8) {
		uint64_t got;

		if (off == 0x100)
			off = pg - 0x40;
		if ((got = ld(b, off, 8)) != pat(42, off)) {
			if (ok)
				ktap_diag("%s: after the refused writes 8 bytes at %#zx are %#" PRIx64
					  " (want %#" PRIx64 ")", tag, off, got, pat(42, off));
			ok = 0;
		}
	}
	ktap_result(ok, "%s_refused_writes_left_memory_alone", tag);
}

/* --- munmap, re-map, cycles ---------------------------------------------- */

static volatile char *test_munmap(volatile char *bar)
{
	volatile char *again;
	const size_t off = 0x2468;
	uint64_t got = 0;
	int ok;

	KTAP_EXPECT_ERRNO(kvmmu_pre_fault(vm, GPA_MAIN, bar_size, KVMMU_ACCESS_WRITE), 0,
			  "pre_fault_write_whole_bar");
	st(bar, off, 8, 0x1122334455667788ull);
	st(bar, off + 8, 8, 0x99aabbccddeeff00ull);
	ok = munmap((void *)bar, bar_size) == 0;
	ktap_result(ok && unmapped(GPA_MAIN, 1), "munmap_unmaps_every_page");
	KTAP_EXPECT_ERRNO(g_ld(GPA_MAIN + off, 8, &got), EFAULT, "munmapped_read_EFAULT");
	KTAP_EXPECT_ERRNO(g_st(GPA_MAIN + off + 8, 4, 0x33333333u), EFAULT,
			  "munmapped_write_EFAULT");
	KTAP_EXPECT_ERRNO(kvmmu_pre_fault(vm, GPA_MAIN, pg, 0), EFAULT,
			  "munmapped_pre_fault_EFAULT");

	/* mapped again and the slot re-created: accesses work again, the memory kept. */
	again = map_bar("resource2");
	ok = again && kvmmu_delete_region(vm, SLOT_MAIN) == 0 &&
	     kvmmu_set_region(vm, SLOT_MAIN, 0, GPA_MAIN, bar_size, (void *)again) == 0;
	if (again && !ok)
		ktap_diag("re-creating the slot: %s", strerror(errno));
	if (!again) {
		ktap_diag("cannot map the BAR again");
		exit(ktap_finish());
	}
	ktap_result(ok, "remap_and_recreate_slot");
	got = ld(again, off + 8, 8);
	if (got != 0x99aabbccddeeff00ull)
		ktap_diag("after the refused write: %#" PRIx64 " (want 0x99aabbccddeeff00)", got);
	ktap_result(got == 0x99aabbccddeeff00ull, "munmapped_write_reached_nothing");
	ok = g_ld(GPA_MAIN + off, 8, &got) == 0;
	if (!ok)
		diag_err("GPA_ACCESS read", GPA_MAIN + off, 8);
	else if (got != 0x1122334455667788ull)
		ktap_diag("after the remap kvmmu reads %#" PRIx64 " (want 0x1122334455667788)", got);
	ktap_result(ok && got == 0x1122334455667788ull, "contents_kept_across_remap");
	ok = g_st(GPA_MAIN + off, 2, 0xbeefu) == 0 && ld(again, off, 2) == 0xbeefu;
	st(again, off + 4, 4, 0xcafe0123u);
	ok = ok && g_ld(GPA_MAIN + off + 4, 4, &got) == 0 && got == 0xcafe0123u;
	if (!ok)
		ktap_diag("after the remap: %s, read %#" PRIx64, strerror(errno), got);
	ktap_result(ok, "access_after_remap");
	{
		struct kvmmu_translation t;

		ktap_result(bar_leaf(GPA_MAIN + off, off, KVMMU_MEMTYPE_DEVICE, &t),
			    "translate_after_remap_device");
	}
	return again;
}

static void test_cycles(void)
{
	struct kvmmu_vm_stats st0, st1;
	long bad = 0;
	int ok;

	/* map, register, access both ways, translate, unmap, delete: 100 times. */
	kvmmu_get_stats(vm, &st0);
	for (int i = 0; i < CYCLES; i++) {
		volatile char *m = map_bar("resource2");
		unsigned int size = sizes[i % NSIZES];
		size_t off = ((size_t)mix(i) % bar_size) & ~(size_t)7;
		uint64_t x = mask(mix(i + 1000), size), y = mask(~x, size), got = 0;
		struct kvmmu_translation t;
		const char *what = NULL;

		if (!m) {
			bad++;
			continue;
		}
		if (kvmmu_set_region(vm, SLOT_CYCLE, 0, GPA_CYCLE, bar_size, (void *)m))
			what = "set region";
		else if (g_st(GPA_CYCLE + off, size, x) || ld(m, off, size) != x)
			what = "kvmmu write, direct load";
		if (!what) {
			st(m, off, size, y);
			if (g_ld(GPA_CYCLE + off, size, &got) || got != y)
				what = "direct store, kvmmu read";
			else if (!bar_leaf(GPA_CYCLE + off, off, KVMMU_MEMTYPE_DEVICE, &t))
				what = "translate";
		}
		if (munmap((void *)m, bar_size) && !what)
			what = "munmap";
		if (!what && !unmapped(GPA_CYCLE, 16))
			what = "unmapped after munmap";
		if (!what && (kvmmu_translate(vm, GPA_CYCLE + off, &t) || t.mapped))
			what = "accessed page mapped after munmap";
		if (!what && (g_ld(GPA_CYCLE + off, size, &got) != -1 || errno != EFAULT))
			what = "access after munmap not EFAULT";
		if (kvmmu_delete_region(vm, SLOT_CYCLE) && !what)
			what = "delete region";
		if (what && bad++ < 3)
			ktap_diag("cycle %d (%u bytes at %#zx): %s (errno %s)", i, size, off, what,
				  strerror(errno));
	}
	if (bad)
		ktap_diag("%ld of %d cycles failed", bad, CYCLES);
	ktap_result(!bad, "map_access_unmap_%d_cycles", CYCLES);
	ok = kvmmu_get_stats(vm, &st1) == 0 && st1.leaves[0] == st0.leaves[0] &&
	     st1.leaves[1] == st0.leaves[1] && st1.leaves[2] == st0.leaves[2];
	if (!ok)
		ktap_diag("leaves before %llu/%llu/%llu, after %llu/%llu/%llu",
			  (unsigned long long)st0.leaves[0], (unsigned long long)st0.leaves[1],
			  (unsigned long long)st0.leaves[2], (unsigned long long)st1.leaves[0],
			  (unsigned long long)st1.leaves[1], (unsigned long long)st1.leaves[2]);
	ktap_result(ok, "cycles_left_no_leaves");
}

/* --- write-combining: resource2_wc --------------------------------------- */

static void test_wc(void)
{
	volatile char *wc;
	uint64_t got;
	int ok;

	if (!have_file("resource2_wc")) {
		ktap_diag("no resource2_wc (no write-combining mmap on this kernel)");
		for (int i = 0; i < WC_TESTS; i++)
			ktap_skip("wc_%d (no resource2_wc)", i + 1);
		return;
	}
	wc = map_bar("resource2_wc");
	ok = wc && kvmmu_set_region(vm, SLOT_WC, 0, GPA_WC, bar_size, (void *)wc) == 0;
	if (wc && !ok)
		ktap_diag("SET_USER_MEMORY_REGION over resource2_wc: %s", strerror(errno));
	if (!ktap_result(ok, "wc_mmap_resource2_wc_and_slot")) {
		for (int i = 1; i < WC_TESTS; i++)
			ktap_skip("wc_%d (no resource2_wc mapping)", i + 1);
		return;
	}
	data_tests("wc", wc, GPA_WC, KVMMU_MEMTYPE_NORMAL_NC);
	invalid_tests("wc", wc, GPA_WC);
	ok = munmap((void *)wc, bar_size) == 0;
	ktap_result(ok && unmapped(GPA_WC, 1), "wc_munmap_unmaps_every_page");
	KTAP_EXPECT_ERRNO(g_ld(GPA_WC + 8, 8, &got), EFAULT, "wc_munmapped_read_EFAULT");
	kvmmu_delete_region(vm, SLOT_WC);
}

int main(void)
{
	volatile char *bar;
	uint64_t flags = 0;
	int dev, was_enabled = 1, ok;

	pg = kvmmu_page_size();
	if (!find_ivshmem()) {
		printf("KTAP version 1\n1..0 # SKIP no ivshmem device (PCI 1af4:1110)\n");
		return 0;
	}
	if (geteuid() != 0) {
		printf("KTAP version 1\n1..0 # SKIP needs root (sysfs enable, resource2)\n");
		return 0;
	}
	ktap_start(NTESTS);
	ktap_diag("ivshmem at %s, page size %ld, resource2_wc %s", sysdir, pg,
		  have_file("resource2_wc") ? "present" : "absent");

	/* the device, its BAR 2, a VM with BAR 2 as slot 0. */
	ktap_result(enable_ivshmem(&was_enabled), "ivshmem_enabled");
	ktap_diag("enable read %d before the test", was_enabled);
	ok = bar2_info(&bar_phys, &flags, &bar_size) == 0;
	if (ok)
		ktap_diag("BAR 2 at %#" PRIx64 ", %zu bytes, flags %#" PRIx64 " (%s, %s)", bar_phys,
			  bar_size, flags, (flags & IORESOURCE_MEM_64_) ? "64-bit" : "32-bit",
			  (flags & IORESOURCE_PREFETCH_) ? "prefetchable" : "not prefetchable");
	ok = ok && bar_size == IVSHMEM_BAR_SIZE && (flags & IORESOURCE_MEM_) &&
	     bar_phys % IVSHMEM_BAR_SIZE == 0;
	ktap_result(ok, "bar2_4mib_mem_naturally_aligned");
	if (!ok) {
		ktap_diag("cannot go on with BAR 2 of %zu bytes at %#" PRIx64, bar_size, bar_phys);
		return ktap_finish();
	}
	bar = map_bar("resource2");
	if (!ktap_result(bar != NULL, "mmap_resource2"))
		return ktap_finish();
	dev = kvmmu_open();
	vm = dev >= 0 ? kvmmu_create_vm(dev) : -1;
	ok = vm >= 0 && kvmmu_set_region(vm, SLOT_MAIN, 0, GPA_MAIN, bar_size, (void *)bar) == 0;
	if (!ktap_result(ok, "create_vm_and_bar2_slot")) {
		ktap_diag("%s", strerror(errno));
		return ktap_finish();
	}

	data_tests("uc", bar, GPA_MAIN, KVMMU_MEMTYPE_DEVICE);
	invalid_tests("uc", bar, GPA_MAIN);
	test_skewed(bar);
	bar = test_munmap(bar);
	test_cycles();

	/* no uncached mapping of BAR 2 is left when resource2_wc is mapped. */
	ok = kvmmu_delete_region(vm, SLOT_MAIN) == 0 && munmap((void *)bar, bar_size) == 0;
	ktap_result(ok, "uc_slot_deleted_and_unmapped");
	test_wc();

	close(vm);
	close(dev);
	if (!was_enabled) {
		unsigned long long v = 2;

		disable_ivshmem();
		read_hex_file(sysdir, "enable", &v);
		ktap_diag("enable restored to 0, reads %llu", v);
	}
	return ktap_finish();
}
