// SPDX-License-Identifier: GPL-2.0
/*
 * Device passthrough (issue 12) with QEMU's edu device (PCI 1234:11e8),
 * present in every test VM (scripts/qemu-run.sh): the VMM mmaps BAR 0
 * through sysfs (resource0, VM_IO | VM_PFNMAP, uncached), registers it as
 * an ordinary memslot, and kvmmu resolves its pfns with follow_pte and maps
 * them as device memory.
 *
 * KVMMU_GPA_ACCESS on device memory: len 1, 2, 4 or 8 and gpa aligned to
 * len and within one page (else EINVAL, nothing accessed, also not the RAM
 * part of a request running from a RAM slot into the BAR or out of it);
 * each access reaches the device once as a readX/writeX of that size, the
 * value in CPU byte order (the bytes a direct load or store of that size
 * through the mmap gives). The test
 * compares kvmmu's answers with direct loads of the same mapping rather
 * than with constants: on ppc64le the device sees 32-bit values
 * byte-swapped (a direct load of the identification register gives
 * 0xed000001), so register values are converted with dev32().
 *
 * edu's registers: 0x00 identification (0x010000ed), 0x04 liveness (reads
 * the inverse of what was written), 0x08 factorial (write n, poll status
 * 0x20 until bit 0 clears, read n!), 0x80 DMA source address (8 bytes).
 * edu accepts only 4-byte accesses below 0x80 (8-byte reads return all
 * ones, 8-byte writes are dropped) and 4 or 8 bytes from 0x80 on; 1- and
 * 2-byte accesses are an external abort on arm64, so this test never makes
 * one, neither directly nor through kvmmu (no len 1 or 2 at all, also not
 * in the EINVAL cases).
 *
 * KVMMU_TRANSLATE reports the leaf as device memory, never executable; a
 * read-only slot or a read-only host mapping refuses writes (EPERM); munmap
 * of the BAR unmaps it (the notifier) and accesses fail with EFAULT until
 * it is mapped again; replacing the BAR with RAM at the same address turns
 * the gpa into RAM; map/access/unmap cycles and remaps racing with
 * accesses stay correct. Needs root (sysfs enable, resource0); without the
 * device it prints a KTAP skip plan.
 */
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "../lib/ktap.h"
#include "../lib/kvmmu_util.h"

#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8
#define EDU_BAR_SIZE (1u << 20)

#define EDU_ID 0x00
#define EDU_LIVE 0x04
#define EDU_FACT 0x08
#define EDU_STATUS 0x20
#define EDU_STATUS_COMPUTING 0x01u
#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_ID_VALUE 0x010000edu

#define IORESOURCE_MEM_ 0x00000200ull
#define IORESOURCE_PREFETCH_ 0x00002000ull

/* Guest layout: one 1 MiB slot per purpose, 64 MiB apart. */
#define GPA_MAIN (1ull << 30)
#define GPA_RO (GPA_MAIN + (64ull << 20))
#define GPA_ROHOST (GPA_MAIN + (128ull << 20))
#define GPA_CYCLE (GPA_MAIN + (192ull << 20))
#define SLOT_MAIN 0
#define SLOT_RO 1
#define SLOT_ROHOST 2
#define SLOT_CYCLE 3
#define SLOT_RAM_BELOW 4
#define SLOT_RAM_ABOVE 5

#define CYCLES 200
#define RACE_REMAPS 300

#define NTESTS 78

static char sysdir[512];
static int vm, root, swapped;
static long pg;
static size_t bar_size;
static uint64_t bar_phys;
static volatile char *bar; /* the main slot's mapping of BAR 0 */

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

static int find_edu(void)
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
		if (ven == EDU_VENDOR && dev == EDU_DEVICE) {
			snprintf(sysdir, sizeof(sysdir), "%s", dir);
			found = 1;
		}
	}
	closedir(d);
	return found;
}

/* enable: 1 once enabled; was_enabled: what it read before. */
static int enable_edu(int *was_enabled)
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

static void disable_edu(void)
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

/* BAR 0 from the resource file: start and flags; the size from resource0. */
static int bar0_info(uint64_t *start, uint64_t *flags, size_t *size)
{
	char path[600];
	unsigned long long s, e, fl;
	struct stat st;
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/resource", sysdir);
	f = fopen(path, "r");
	if (!f)
		return -1;
	ok = fscanf(f, "%llx %llx %llx", &s, &e, &fl) == 3;
	fclose(f);
	snprintf(path, sizeof(path), "%s/resource0", sysdir);
	if (!ok || stat(path, &st))
		return -1;
	*start = s;
	*flags = fl;
	*size = (size_t)st.st_size;
	if (e + 1 - s != (unsigned long long)st.st_size)
		ktap_diag("resource says %#llx-%#llx, resource0 is %lld bytes", s, e,
			  (long long)st.st_size);
	return 0;
}

/* A new mapping of BAR 0 (at @fixed if not NULL), or NULL. */
static volatile char *map_bar(int prot, void *fixed)
{
	char path[600];
	int fd;
	void *p;

	snprintf(path, sizeof(path), "%s/resource0", sysdir);
	fd = open(path, ((prot & PROT_WRITE) ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0) {
		ktap_diag("open %s: %s", path, strerror(errno));
		return NULL;
	}
	p = mmap(fixed, bar_size, prot, MAP_SHARED | (fixed ? MAP_FIXED : 0), fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		ktap_diag("mmap %s: %s", path, strerror(errno));
		return NULL;
	}
	return p;
}

/* --- direct accesses through a mapping, and accesses through kvmmu ------ */

static uint32_t dev32(uint32_t v)
{
	return swapped ? __builtin_bswap32(v) : v;
}

static uint32_t rd32(volatile char *b, unsigned int off)
{
	return *(volatile uint32_t *)(b + off);
}

static void wr32(volatile char *b, unsigned int off, uint32_t v)
{
	*(volatile uint32_t *)(b + off) = v;
}

static uint64_t rd64(volatile char *b, unsigned int off)
{
	return *(volatile uint64_t *)(b + off);
}

static void wr64(volatile char *b, unsigned int off, uint64_t v)
{
	*(volatile uint64_t *)(b + off) = v;
}

/* GPA_ACCESS of one register; a failure is reported once per caller. */
static int g_rd32(uint64_t gpa, uint32_t *v)
{
	*v = 0xbadbad00u;
	return kvmmu_gpa_read(vm, gpa, v, 4);
}

static int g_wr32(uint64_t gpa, uint32_t v)
{
	return kvmmu_gpa_write(vm, gpa, &v, 4);
}

static int g_rd64(uint64_t gpa, uint64_t *v)
{
	*v = 0xbadbadbadbadbad0ull;
	return kvmmu_gpa_read(vm, gpa, v, 8);
}

static int g_wr64(uint64_t gpa, uint64_t v)
{
	return kvmmu_gpa_write(vm, gpa, &v, 8);
}

static void diag_err(const char *what, uint64_t gpa)
{
	ktap_diag("%s at gpa %#" PRIx64 ": %s", what, gpa, strerror(errno));
}

/* --- translations -------------------------------------------------------- */

/*
 * The leaf of @gpa is a base-page device leaf (the slots are 1 MiB, no
 * block fits) with read, @want_write and never exec; as root its pfn is
 * BAR 0's page (when @check_pfn).
 */
static int device_leaf(uint64_t gpa, uint64_t off, int want_write, int check_pfn)
{
	struct kvmmu_translation t;
	int r = kvmmu_translate(vm, gpa, &t), ok;
	uint64_t want_pfn = (bar_phys + off) / (uint64_t)pg;

	ok = r == 0 && t.mapped && t.memtype == KVMMU_MEMTYPE_DEVICE &&
	     (t.prot & KVMMU_PROT_READ) && !(t.prot & KVMMU_PROT_EXEC) &&
	     !!(t.prot & KVMMU_PROT_WRITE) == !!want_write && t.level == 0 &&
	     t.size == (uint64_t)pg;
	if (ok && check_pfn)
		ok = root ? t.pfn == want_pfn : t.pfn == 0;
	if (!ok)
		ktap_diag("gpa %#" PRIx64 ": r %d mapped %u memtype %u prot %#x level %u size %#llx"
			  " pfn %#llx (want device, prot r%s, no exec, level 0, pfn %#" PRIx64 ")",
			  gpa, r, t.mapped, t.memtype, t.prot, t.level, (unsigned long long)t.size,
			  (unsigned long long)t.pfn, want_write ? "w" : "", want_pfn);
	return ok;
}

static int unmapped(uint64_t gpa, size_t size)
{
	for (size_t off = 0; off < size; off += pg) {
		struct kvmmu_translation t;

		if (kvmmu_translate(vm, gpa + off, &t) || t.mapped) {
			ktap_diag("gpa %#" PRIx64 " still mapped (memtype %u prot %#x)", gpa + off,
				  t.memtype, t.prot);
			return 0;
		}
	}
	return 1;
}

/* --- edu's registers through kvmmu --------------------------------------- */

/* Liveness: a write of v through kvmmu reads back ~v through kvmmu. */
static int liveness_roundtrip(uint64_t gpa, uint32_t v)
{
	uint32_t got;

	if (g_wr32(gpa + EDU_LIVE, v) || g_rd32(gpa + EDU_LIVE, &got)) {
		diag_err("liveness access", gpa + EDU_LIVE);
		return 0;
	}
	if (got != ~v) {
		ktap_diag("liveness: wrote %#x, read %#x (want %#x)", v, got, ~v);
		return 0;
	}
	return 1;
}

static uint64_t factorial(uint32_t n)
{
	uint64_t r = 1;

	for (uint32_t i = 2; i <= n; i++)
		r *= i;
	return r;
}

/* n! computed by edu, driven and polled entirely through kvmmu. */
static int factorial_via_kvmmu(uint32_t n)
{
	uint64_t deadline = kvmmu_now_ns() + 10000000000ull;
	uint32_t st, got, direct;
	long polls = 0;

	if (g_rd32(GPA_MAIN + EDU_STATUS, &st)) {
		diag_err("status read", GPA_MAIN + EDU_STATUS);
		return 0;
	}
	if (dev32(st) & EDU_STATUS_COMPUTING) {
		ktap_diag("status %#x: still computing before the write", dev32(st));
		return 0;
	}
	if (g_wr32(GPA_MAIN + EDU_FACT, dev32(n))) {
		diag_err("factorial write", GPA_MAIN + EDU_FACT);
		return 0;
	}
	do {
		polls++;
		if (g_rd32(GPA_MAIN + EDU_STATUS, &st)) {
			diag_err("status read", GPA_MAIN + EDU_STATUS);
			return 0;
		}
		if (kvmmu_now_ns() > deadline) {
			ktap_diag("status %#x: still computing after 10 s", dev32(st));
			return 0;
		}
	} while (dev32(st) & EDU_STATUS_COMPUTING);
	if (g_rd32(GPA_MAIN + EDU_FACT, &got)) {
		diag_err("factorial read", GPA_MAIN + EDU_FACT);
		return 0;
	}
	direct = rd32(bar, EDU_FACT);
	if (dev32(got) != (uint32_t)factorial(n) || got != direct) {
		ktap_diag("%u!: kvmmu read %#x (device %u), direct load %#x, want %u (%ld polls)", n,
			  got, dev32(got), direct, (uint32_t)factorial(n), polls);
		return 0;
	}
	return 1;
}

/* --- the race: accesses while another thread remaps the BAR ------------- */

static volatile int race_stop;
static volatile char *race_hva;

static void *remapper(void *arg)
{
	long *fails = arg;

	for (int i = 0; i < RACE_REMAPS; i++)
		if (map_bar(PROT_READ | PROT_WRITE, (void *)race_hva) != race_hva)
			(*fails)++;
	race_stop = 1;
	return NULL;
}

/* --- the tests ------------------------------------------------------------ */

static void test_basic(void)
{
	uint32_t v, got, direct;
	int ok;

	/* identification. */
	direct = rd32(bar, EDU_ID);
	ok = g_rd32(GPA_MAIN + EDU_ID, &got) == 0;
	if (!ok)
		diag_err("GPA_ACCESS read", GPA_MAIN + EDU_ID);
	else if (got != direct)
		ktap_diag("id: kvmmu read %#x, direct load %#x", got, direct);
	ktap_result(ok && got == direct, "id_read_matches_direct_load");

	/* liveness, several values, both ways round. */
	static const uint32_t vals[] = { 0, 0xffffffffu, 0x12345678u, 0xdeadbeefu, 0xa5a5a5a5u, 1 };
	ok = 1;
	for (unsigned int i = 0; ok && i < sizeof(vals) / sizeof(vals[0]); i++)
		ok = liveness_roundtrip(GPA_MAIN, vals[i]);
	ktap_result(ok, "liveness_write_read_via_kvmmu");

	ok = 1;
	for (unsigned int i = 0; ok && i < sizeof(vals) / sizeof(vals[0]); i++) {
		v = vals[i] ^ 0x0f0f0f0fu;
		if (g_wr32(GPA_MAIN + EDU_LIVE, v)) {
			diag_err("GPA_ACCESS write", GPA_MAIN + EDU_LIVE);
			ok = 0;
		} else if ((direct = rd32(bar, EDU_LIVE)) != ~v) {
			ktap_diag("kvmmu wrote %#x, direct load %#x", v, direct);
			ok = 0;
		}
	}
	ktap_result(ok, "liveness_kvmmu_write_direct_read");

	ok = 1;
	for (unsigned int i = 0; ok && i < sizeof(vals) / sizeof(vals[0]); i++) {
		v = vals[i] ^ 0x30303030u;
		wr32(bar, EDU_LIVE, v);
		if (g_rd32(GPA_MAIN + EDU_LIVE, &got)) {
			diag_err("GPA_ACCESS read", GPA_MAIN + EDU_LIVE);
			ok = 0;
		} else if (got != ~v) {
			ktap_diag("direct store %#x, kvmmu read %#x", v, got);
			ok = 0;
		}
	}
	ktap_result(ok, "liveness_direct_write_kvmmu_read");

	/* the leaf an access left: device memory, writable, never exec. */
	g_wr32(GPA_MAIN + EDU_LIVE, 0x600df00du);
	ktap_result(device_leaf(GPA_MAIN, 0, 1, 0), "translate_after_access_device_rw_noexec");
	if (root)
		ktap_result(device_leaf(GPA_MAIN, 0, 1, 1), "translate_pfn_is_bar0");
	else
		ktap_skip("translate_pfn_is_bar0 (pfns need root)");

	/* factorials computed by edu, polled through kvmmu. */
	static const uint32_t ns[] = { 0, 5, 10, 12 };
	for (unsigned int i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		ktap_result(factorial_via_kvmmu(ns[i]), "factorial_%u_via_kvmmu", ns[i]);
}

static void test_wide(void)
{
	static const uint64_t pats[] = { 0x0123456789abcdefull, 0xfedcba9876543210ull, 0,
					 0xffffffff00000000ull, 0x00000000ffffffffull };
	uint64_t got, direct;
	uint32_t g32, d32, live;
	int ok;

	/* 8-byte write and read at 0x80 round-trip, as a direct load sees. */
	ok = 1;
	for (unsigned int i = 0; ok && i < sizeof(pats) / sizeof(pats[0]); i++) {
		if (g_wr64(GPA_MAIN + EDU_DMA_SRC, pats[i]) || g_rd64(GPA_MAIN + EDU_DMA_SRC, &got)) {
			diag_err("GPA_ACCESS 8 bytes", GPA_MAIN + EDU_DMA_SRC);
			ok = 0;
			break;
		}
		direct = rd64(bar, EDU_DMA_SRC);
		if (got != pats[i] || direct != pats[i]) {
			ktap_diag("0x80: wrote %#" PRIx64 ", kvmmu read %#" PRIx64
				  ", direct load %#" PRIx64, pats[i], got, direct);
			ok = 0;
		}
	}
	ktap_result(ok, "dma_src_8byte_write_read_via_kvmmu");

	/* a direct 8-byte store, read through kvmmu. */
	wr64(bar, EDU_DMA_SRC, 0x1122334455667788ull);
	ok = g_rd64(GPA_MAIN + EDU_DMA_SRC, &got) == 0;
	if (!ok)
		diag_err("GPA_ACCESS 8 bytes", GPA_MAIN + EDU_DMA_SRC);
	else if (got != 0x1122334455667788ull)
		ktap_diag("0x80: direct store 0x1122334455667788, kvmmu read %#" PRIx64, got);
	ktap_result(ok && got == 0x1122334455667788ull, "dma_src_direct_write_kvmmu_read");

	/* 4-byte reads at 0x80 and 0x84 are what direct 4-byte loads give. */
	ok = 1;
	for (unsigned int off = EDU_DMA_SRC; ok && off <= EDU_DMA_SRC + 4; off += 4) {
		d32 = rd32(bar, off);
		if (g_rd32(GPA_MAIN + off, &g32)) {
			diag_err("GPA_ACCESS read", GPA_MAIN + off);
			ok = 0;
		} else if (g32 != d32) {
			ktap_diag("%#x: kvmmu read %#x, direct load %#x", off, g32, d32);
			ok = 0;
		}
	}
	ktap_result(ok, "dma_src_4byte_reads_match_direct_loads");

	/*
	 * One access of the size asked for. Below 0x80 edu answers an
	 * 8-byte read with all ones and drops an 8-byte write; two 4-byte
	 * accesses would read the id and liveness, and write liveness.
	 */
	live = 0x13579bdfu;
	wr32(bar, EDU_LIVE, live);
	direct = rd64(bar, EDU_ID);
	ok = g_rd64(GPA_MAIN + EDU_ID, &got) == 0;
	if (!ok)
		diag_err("GPA_ACCESS 8-byte read", GPA_MAIN + EDU_ID);
	else if (got != direct || got != ~0ull)
		ktap_diag("8-byte read at 0x00: kvmmu %#" PRIx64 ", direct load %#" PRIx64
			  " (want all ones from a single access)", got, direct);
	ktap_result(ok && got == direct && got == ~0ull, "eight_byte_read_at_0_is_one_access");
	ok = g_wr64(GPA_MAIN + EDU_ID, 0x0badcafe0badcafeull) == 0;
	if (!ok)
		diag_err("GPA_ACCESS 8-byte write", GPA_MAIN + EDU_ID);
	d32 = rd32(bar, EDU_LIVE);
	if (ok && d32 != ~live)
		ktap_diag("liveness %#x after an 8-byte write at 0x00 (want %#x: dropped)", d32, ~live);
	ktap_result(ok && d32 == ~live, "eight_byte_write_at_0_is_one_access");

	/* other pages of the BAR (unimplemented registers read all ones). */
	static const unsigned int offs[] = { 0x100, 0x1000, 0x10000, 0x7fff8, EDU_BAR_SIZE - 8 };
	ok = 1;
	for (unsigned int i = 0; ok && i < sizeof(offs) / sizeof(offs[0]); i++) {
		unsigned int off = offs[i];

		if (off + 8 > bar_size)
			continue;
		if (g_rd32(GPA_MAIN + off + 4, &g32) || g_rd64(GPA_MAIN + off, &got)) {
			diag_err("GPA_ACCESS read", GPA_MAIN + off);
			ok = 0;
		} else if (g32 != rd32(bar, off + 4) || got != rd64(bar, off)) {
			ktap_diag("%#x: kvmmu %#x / %#" PRIx64 ", direct %#x / %#" PRIx64, off, g32, got,
				  rd32(bar, off + 4), rd64(bar, off));
			ok = 0;
		}
	}
	ktap_result(ok, "reads_across_the_bar_match_direct_loads");
}

static void test_invalid(void)
{
	/* Lengths and alignments refused before anything reaches edu. */
	static const struct {
		unsigned int off, len;
	} bad[] = {
		{ EDU_LIVE, 3 },     { EDU_ID, 16 },  { 0x01, 4 },    { 0x06, 4 },
		{ 0x84, 8 },	     { EDU_LIVE, 8 }, { 0x7c, 8 },    { EDU_DMA_SRC, 0 },
	};
	const uint32_t live = 0x2468ace0u;
	const uint64_t src = 0x0f1e2d3c4b5a6978ull;
	uint64_t dst_before = rd64(bar, EDU_DMA_DST);
	uint32_t fact_before;
	unsigned char buf[32];
	int ok;

	wr32(bar, EDU_LIVE, live);
	wr64(bar, EDU_DMA_SRC, src);
	fact_before = rd32(bar, EDU_FACT);
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(buf, 0x5a, sizeof(buf));
		KTAP_EXPECT_ERRNO(kvmmu_gpa_read(vm, GPA_MAIN + bad[i].off, buf, bad[i].len), EINVAL,
				  "read_len_%u_at_%#x_EINVAL", bad[i].len, bad[i].off);
		KTAP_EXPECT_ERRNO(kvmmu_gpa_write(vm, GPA_MAIN + bad[i].off, buf, bad[i].len),
				  EINVAL, "write_len_%u_at_%#x_EINVAL", bad[i].len, bad[i].off);
	}
	ok = rd32(bar, EDU_LIVE) == ~live && rd64(bar, EDU_DMA_SRC) == src &&
	     rd64(bar, EDU_DMA_DST) == dst_before && rd32(bar, EDU_FACT) == fact_before &&
	     !(dev32(rd32(bar, EDU_STATUS)) & EDU_STATUS_COMPUTING);
	if (!ok)
		ktap_diag("after the refused accesses: liveness %#x (want %#x), dma src %#" PRIx64
			  " (want %#" PRIx64 "), dst %#" PRIx64 " (was %#" PRIx64 "), factorial %#x"
			  " (was %#x), status %#x",
			  rd32(bar, EDU_LIVE), ~live, rd64(bar, EDU_DMA_SRC), src,
			  rd64(bar, EDU_DMA_DST), dst_before, rd32(bar, EDU_FACT), fact_before,
			  dev32(rd32(bar, EDU_STATUS)));
	ktap_result(ok, "refused_accesses_left_the_device_alone");
}

/*
 * Requests that run from RAM into the BAR or from the BAR into RAM (slots
 * of one RAM page just below and just above the BAR's slot): the part in
 * device memory is not one aligned access of 1, 2, 4 or 8 bytes of the
 * request, so EINVAL, and nothing is accessed, RAM included. The device
 * parts here are 4 or 8 bytes at the BAR's start or end, so an
 * implementation that wrongly accessed them would still never make a 1- or
 * 2-byte access of edu.
 */
static void test_crossing(void)
{
	static const struct {
		int below;		/* RAM below the BAR, else above it */
		unsigned int ram, dev;	/* bytes in RAM and in the BAR */
	} cross[] = { { 1, 4, 4 }, { 1, 8, 8 }, { 0, 4, 4 }, { 0, 8, 8 } };
	unsigned char *lo, *hi, *want_lo, *want_hi, buf[32];
	const uint32_t live = 0x31415926u;
	int ok;

	lo = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	hi = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	want_lo = malloc(pg);
	want_hi = malloc(pg);
	ok = lo != MAP_FAILED && hi != MAP_FAILED && want_lo && want_hi;
	if (ok) {
		for (long i = 0; i < pg; i++) {
			lo[i] = want_lo[i] = (unsigned char)(i * 3 + 1);
			hi[i] = want_hi[i] = (unsigned char)(i * 5 + 2);
		}
		ok = kvmmu_set_region(vm, SLOT_RAM_BELOW, 0, GPA_MAIN - pg, pg, lo) == 0 &&
		     kvmmu_set_region(vm, SLOT_RAM_ABOVE, 0, GPA_MAIN + bar_size, pg, hi) == 0;
		if (!ok)
			ktap_diag("RAM slots around the BAR: %s", strerror(errno));
	}
	if (!ktap_result(ok, "ram_slots_around_the_bar")) {
		for (unsigned int i = 0; i < 2 * sizeof(cross) / sizeof(cross[0]) + 1; i++)
			ktap_skip("crossing_%u (no RAM slots)", i);
		return;
	}
	wr32(bar, EDU_LIVE, live);
	for (unsigned int i = 0; i < sizeof(cross) / sizeof(cross[0]); i++) {
		unsigned int len = cross[i].ram + cross[i].dev;
		uint64_t gpa = cross[i].below ? GPA_MAIN - cross[i].ram
					      : GPA_MAIN + bar_size - cross[i].dev;
		const char *dir = cross[i].below ? "ram_into_bar" : "bar_into_ram";

		memset(buf, 0x5a, sizeof(buf));
		KTAP_EXPECT_ERRNO(kvmmu_gpa_read(vm, gpa, buf, len), EINVAL, "read_%u_%s_EINVAL",
				  len, dir);
		memset(buf, 0xa5, sizeof(buf));
		KTAP_EXPECT_ERRNO(kvmmu_gpa_write(vm, gpa, buf, len), EINVAL, "write_%u_%s_EINVAL",
				  len, dir);
	}
	ok = !memcmp(lo, want_lo, pg) && !memcmp(hi, want_hi, pg) && rd32(bar, EDU_LIVE) == ~live;
	if (!ok)
		ktap_diag("after the refused writes: RAM below %s, RAM above %s, liveness %#x"
			  " (want %#x)", memcmp(lo, want_lo, pg) ? "changed" : "unchanged",
			  memcmp(hi, want_hi, pg) ? "changed" : "unchanged", rd32(bar, EDU_LIVE),
			  ~live);
	ktap_result(ok, "crossing_writes_changed_nothing");
	kvmmu_delete_region(vm, SLOT_RAM_BELOW);
	kvmmu_delete_region(vm, SLOT_RAM_ABOVE);
	munmap(lo, pg);
	munmap(hi, pg);
	free(want_lo);
	free(want_hi);
}

static void test_readonly(void)
{
	volatile char *ro, *rohost;
	uint32_t got, live = 0x0a0b0c0du;
	int ok;

	/* a read-only slot over a writable mapping of the BAR. */
	ro = map_bar(PROT_READ | PROT_WRITE, NULL);
	ok = ro && kvmmu_set_region(vm, SLOT_RO, KVMMU_MEM_READONLY, GPA_RO, bar_size,
				    (void *)ro) == 0;
	if (ro && !ok)
		ktap_diag("SET_USER_MEMORY_REGION read-only: %s", strerror(errno));
	ktap_result(ok, "readonly_slot_create");
	wr32(bar, EDU_LIVE, live);
	KTAP_EXPECT_ERRNO(g_wr32(GPA_RO + EDU_LIVE, 0x11111111u), EPERM,
			  "readonly_slot_write_EPERM");
	KTAP_EXPECT_ERRNO(g_wr64(GPA_RO + EDU_DMA_SRC, 0x1111111111111111ull), EPERM,
			  "readonly_slot_write8_EPERM");
	ktap_result(rd32(bar, EDU_LIVE) == ~live, "readonly_slot_write_reached_nothing");
	ok = g_rd32(GPA_RO + EDU_LIVE, &got) == 0;
	if (!ok)
		diag_err("GPA_ACCESS read", GPA_RO + EDU_LIVE);
	else if (got != ~live)
		ktap_diag("read-only slot: liveness read %#x (want %#x)", got, ~live);
	ktap_result(ok && got == ~live, "readonly_slot_read");
	ktap_result(device_leaf(GPA_RO, 0, 0, 1), "readonly_slot_translate_device_ro_noexec");
	KTAP_EXPECT_ERRNO(kvmmu_pre_fault(vm, GPA_RO, pg, KVMMU_ACCESS_WRITE), EPERM,
			  "readonly_slot_pre_fault_write_EPERM");
	KTAP_EXPECT_ERRNO(kvmmu_delete_region(vm, SLOT_RO), 0, "readonly_slot_delete");
	if (ro)
		munmap((void *)ro, bar_size);

	/* a writable slot over a read-only mapping of the BAR. */
	rohost = map_bar(PROT_READ, NULL);
	ok = rohost && kvmmu_set_region(vm, SLOT_ROHOST, 0, GPA_ROHOST, bar_size,
					(void *)rohost) == 0;
	if (rohost && !ok)
		ktap_diag("SET_USER_MEMORY_REGION: %s", strerror(errno));
	ktap_result(ok, "readonly_host_mapping_slot_create");
	live = 0x50607080u;
	wr32(bar, EDU_LIVE, live);
	KTAP_EXPECT_ERRNO(g_wr32(GPA_ROHOST + EDU_LIVE, 0x22222222u), EPERM,
			  "readonly_host_mapping_write_EPERM");
	ktap_result(rd32(bar, EDU_LIVE) == ~live, "readonly_host_mapping_write_reached_nothing");
	ok = g_rd32(GPA_ROHOST + EDU_LIVE, &got) == 0;
	if (!ok)
		diag_err("GPA_ACCESS read", GPA_ROHOST + EDU_LIVE);
	ktap_result(ok && got == ~live && device_leaf(GPA_ROHOST, 0, 0, 1),
		    "readonly_host_mapping_read_maps_device_ro");
	KTAP_EXPECT_ERRNO(kvmmu_delete_region(vm, SLOT_ROHOST), 0,
			  "readonly_host_mapping_slot_delete");
	if (rohost)
		munmap((void *)rohost, bar_size);
}

static void test_pre_fault_and_munmap(void)
{
	volatile char *again;
	uint32_t got, live = 0x7e7e8181u;
	int ok;

	/* the whole BAR pre-faulted: device pages, BAR 0's pfns. */
	KTAP_EXPECT_ERRNO(kvmmu_pre_fault(vm, GPA_MAIN, bar_size, KVMMU_ACCESS_WRITE), 0,
			  "pre_fault_write_whole_bar");
	ok = 1;
	for (size_t off = 0; ok && off < bar_size; off += pg)
		ok = device_leaf(GPA_MAIN + off, off, 1, 1);
	ktap_result(ok, "pre_fault_translate_every_page_device");

	/* munmap zaps the leaves; accesses then find nothing behind the slot. */
	wr32(bar, EDU_LIVE, live);
	ok = munmap((void *)bar, bar_size) == 0;
	ktap_result(ok && unmapped(GPA_MAIN, bar_size), "munmap_unmaps_every_page");
	KTAP_EXPECT_ERRNO(g_rd32(GPA_MAIN + EDU_ID, &got), EFAULT, "munmapped_read_EFAULT");
	KTAP_EXPECT_ERRNO(g_wr32(GPA_MAIN + EDU_LIVE, 0x33333333u), EFAULT,
			  "munmapped_write_EFAULT");
	KTAP_EXPECT_ERRNO(kvmmu_pre_fault(vm, GPA_MAIN, pg, 0), EFAULT,
			  "munmapped_pre_fault_EFAULT");

	/* mapped again and the slot re-created: accesses work again. */
	again = map_bar(PROT_READ | PROT_WRITE, NULL);
	ok = again && kvmmu_delete_region(vm, SLOT_MAIN) == 0 &&
	     kvmmu_set_region(vm, SLOT_MAIN, 0, GPA_MAIN, bar_size, (void *)again) == 0;
	if (again && !ok)
		ktap_diag("re-creating the slot: %s", strerror(errno));
	if (!again) {
		ktap_diag("cannot map the BAR again");
		exit(ktap_finish());
	}
	bar = again;
	ktap_result(ok, "remap_and_recreate_slot");
	ktap_result(rd32(bar, EDU_LIVE) == ~live, "munmapped_write_reached_nothing");
	ok = g_rd32(GPA_MAIN + EDU_ID, &got) == 0;
	if (!ok)
		diag_err("GPA_ACCESS read", GPA_MAIN + EDU_ID);
	else if (got != rd32(bar, EDU_ID))
		ktap_diag("id: kvmmu read %#x, direct load %#x", got, rd32(bar, EDU_ID));
	ok = ok && got == rd32(bar, EDU_ID) && liveness_roundtrip(GPA_MAIN, 0x5555aaaau);
	ktap_result(ok, "access_after_remap");
	ktap_result(device_leaf(GPA_MAIN, 0, 1, 1), "translate_after_remap_device");
}

static void test_replace_with_ram(void)
{
	volatile char *ram;
	struct kvmmu_translation t;
	uint32_t got = 1;
	int ok;

	/* RAM replaces the BAR at the same address, then the BAR returns. */
	ram = mmap((void *)bar, bar_size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ok = ram == bar;
	if (!ok)
		ktap_diag("mmap anonymous over the BAR: %s", strerror(errno));
	ok = ok && g_rd32(GPA_MAIN + EDU_ID, &got) == 0 && got == 0 &&
	     kvmmu_translate(vm, GPA_MAIN, &t) == 0 && t.mapped &&
	     t.memtype == KVMMU_MEMTYPE_NORMAL_WB && (t.prot & KVMMU_PROT_EXEC);
	if (!ok)
		ktap_diag("over RAM: read %#x (want 0), mapped %u memtype %u prot %#x (%s)", got,
			  t.mapped, t.memtype, t.prot, strerror(errno));
	ktap_result(ok, "ram_over_bar_reads_ram_as_normal_memory");
	ok = g_wr32(GPA_MAIN + EDU_LIVE, 0xabcdef01u) == 0 && rd32(ram, EDU_LIVE) == 0xabcdef01u;
	ktap_result(ok, "ram_over_bar_write_lands_in_ram");
	ok = map_bar(PROT_READ | PROT_WRITE, (void *)bar) == bar;
	if (ok && g_rd32(GPA_MAIN + EDU_ID, &got)) {
		diag_err("GPA_ACCESS read", GPA_MAIN + EDU_ID);
		ok = 0;
	}
	ok = ok && got == rd32(bar, EDU_ID) && liveness_roundtrip(GPA_MAIN, 0xfeedf00du) &&
	     device_leaf(GPA_MAIN, 0, 1, 1);
	ktap_result(ok, "bar_over_ram_is_device_again");
}

static void test_cycles(void)
{
	struct kvmmu_vm_stats st0, st1;
	long bad = 0;
	int ok;

	/* map, register, access, translate, unmap, delete: 200 times. */
	kvmmu_get_stats(vm, &st0);
	for (int i = 0; i < CYCLES; i++) {
		volatile char *m = map_bar(PROT_READ | PROT_WRITE, NULL);
		uint32_t v = (uint32_t)i * 0x9e3779b9u, got = 0;
		const char *what = NULL;

		if (!m) {
			bad++;
			continue;
		}
		if (kvmmu_set_region(vm, SLOT_CYCLE, 0, GPA_CYCLE, bar_size, (void *)m))
			what = "set region";
		else if (g_wr32(GPA_CYCLE + EDU_LIVE, v) || g_rd32(GPA_CYCLE + EDU_LIVE, &got) ||
			 got != ~v)
			what = "liveness";
		else if (g_rd32(GPA_CYCLE + EDU_ID, &got) || got != rd32(m, EDU_ID))
			what = "id";
		else if (!device_leaf(GPA_CYCLE + EDU_LIVE, 0, 1, 1))
			what = "translate";
		if (munmap((void *)m, bar_size) && !what)
			what = "munmap";
		if (!what && !unmapped(GPA_CYCLE, bar_size))
			what = "unmapped after munmap";
		if (!what && (g_rd32(GPA_CYCLE + EDU_ID, &got) != -1 || errno != EFAULT))
			what = "access after munmap not EFAULT";
		if (kvmmu_delete_region(vm, SLOT_CYCLE) && !what)
			what = "delete region";
		if (what && bad++ < 3)
			ktap_diag("cycle %d: %s (errno %s)", i, what, strerror(errno));
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

static void test_race(void)
{
	pthread_t th;
	long fails = 0, bad = 0, n = 0;
	uint32_t id = rd32(bar, EDU_ID);

	/*
	 * 62-63: MAP_FIXED remaps of the BAR (each an invalidation of the
	 * slot) racing with accesses: the address is always backed, so every
	 * access succeeds with the device's answer.
	 */
	race_hva = bar;
	race_stop = 0;
	if (pthread_create(&th, NULL, remapper, &fails)) {
		ktap_result(0, "race_remap_vs_access");
		ktap_result(0, "race_after_remaps");
		return;
	}
	while (!race_stop) {
		uint32_t v = (uint32_t)n * 0x01000193u, got = 0;
		int r;

		n++;
		r = g_wr32(GPA_MAIN + EDU_LIVE, v);
		if (!r)
			r = g_rd32(GPA_MAIN + EDU_LIVE, &got);
		if (r || got != ~v) {
			if (bad++ < 3)
				ktap_diag("access %ld: %s, read %#x for %#x", n,
					  r ? strerror(errno) : "ok", got, v);
		}
		if (g_rd32(GPA_MAIN + EDU_ID, &got) || got != id) {
			if (bad++ < 3)
				ktap_diag("id read %ld: %s, %#x", n, strerror(errno), got);
		}
	}
	pthread_join(th, NULL);
	ktap_diag("%ld access rounds during %d remaps", n, RACE_REMAPS);
	ktap_result(!bad && !fails, "race_remap_vs_access");
	ktap_result(liveness_roundtrip(GPA_MAIN, 0x89abcdefu) && device_leaf(GPA_MAIN, 0, 1, 1),
		    "race_after_remaps");
}

int main(void)
{
	uint64_t flags = 0;
	int dev, was_enabled = 1, ok;
	uint32_t id;

	pg = kvmmu_page_size();
	root = geteuid() == 0;
	if (!find_edu()) {
		printf("KTAP version 1\n1..0 # SKIP no edu device (PCI 1234:11e8)\n");
		return 0;
	}
	if (!root) {
		printf("KTAP version 1\n1..0 # SKIP needs root (sysfs enable, resource0)\n");
		return 0;
	}
	ktap_start(NTESTS);
	ktap_diag("edu at %s, page size %ld", sysdir, pg);

	/* the device, its BAR, a VM with the BAR as slot 0. */
	ktap_result(enable_edu(&was_enabled), "edu_enabled");
	ok = bar0_info(&bar_phys, &flags, &bar_size) == 0;
	if (ok)
		ktap_diag("BAR 0 at %#" PRIx64 ", %zu bytes, flags %#" PRIx64, bar_phys, bar_size,
			  flags);
	ok = ok && bar_size == EDU_BAR_SIZE && (flags & IORESOURCE_MEM_) &&
	     !(flags & IORESOURCE_PREFETCH_);
	ktap_result(ok, "bar0_1mib_mem_not_prefetchable");
	if (!bar_size || bar_size % pg) {
		ktap_diag("cannot go on with a BAR of %zu bytes", bar_size);
		return ktap_finish();
	}
	bar = map_bar(PROT_READ | PROT_WRITE, NULL);
	if (!ktap_result(bar != NULL, "mmap_resource0"))
		return ktap_finish();
	id = rd32(bar, EDU_ID);
	swapped = id != EDU_ID_VALUE && __builtin_bswap32(id) == EDU_ID_VALUE;
	ktap_diag("direct load of the id: %#x%s", id, swapped ? " (byte-swapped device)" : "");
	ktap_result(dev32(id) == EDU_ID_VALUE, "direct_load_id");

	dev = kvmmu_open();
	vm = dev >= 0 ? kvmmu_create_vm(dev) : -1;
	ok = vm >= 0 && kvmmu_set_region(vm, SLOT_MAIN, 0, GPA_MAIN, bar_size, (void *)bar) == 0;
	if (!ktap_result(ok, "create_vm_and_bar_slot")) {
		ktap_diag("%s", strerror(errno));
		return ktap_finish();
	}

	test_basic();
	test_wide();
	test_invalid();
	test_crossing();
	test_readonly();
	test_pre_fault_and_munmap();
	test_replace_with_ram();
	test_cycles();
	test_race();

	close(vm);
	close(dev);
	munmap((void *)bar, bar_size);
	if (!was_enabled)
		disable_edu();
	return ktap_finish();
}
