// SPDX-License-Identifier: GPL-2.0
/*
 * Guest faults racing with changes to the backing memory. Faulter threads
 * read random guest pages and write a word of their own into pages they
 * own, while a mutator rewrites pages with per-page, per-generation
 * patterns and drops pages with MADV_DONTNEED, munmap + mmap(MAP_FIXED)
 * and a plain mmap(MAP_FIXED) over them. Mid-run, the only error allowed
 * is EFAULT (the backing is briefly unmapped) and every read must be
 * plausible: zero, or a pattern of that very page no newer than the
 * newest generation written. After the threads are joined every guest page
 * must read exactly what the process last wrote (its own view, byte for
 * byte), and every stage-2 leaf must point at the page pagemap reports.
 *
 * Runs for KVMMU_STRESS_SECONDS (default 3) seconds: QEMU TCG is slow.
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>

#include "../lib/ktap.h"
#include "../lib/kvmmu_util.h"

#define NPAGES 256
#define NFAULTERS 2
#define PAT_TAG 0xa5ull
#define GW_TAG 0x6bull

static int vm;
static long pg;
static char *mem;
static const uint64_t g0 = 1ull << 30;

static uint32_t gen[NPAGES];		/* newest generation written (atomic) */
static int zeroed[NPAGES];		/* mutator only */
static uint64_t last_gw[NPAGES];	/* owner faulter only, read after join */
static int stop;			/* atomic */

struct faulter {
	pthread_t th;
	int id;
	uint64_t seed;
	uint64_t reads, writes, translates, efaults;
	uint64_t unexpected, implausible;
	int first_errno;
	char first_bad[160];
};

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Pattern word @w of page @i, generation @g: tag, page, generation, word. */
static uint64_t pat(uint64_t i, uint64_t g, uint64_t w)
{
	return PAT_TAG << 56 | (i & 0xffff) << 40 | (g & 0xffffff) << 16 | (w & 0xffff);
}

static uint64_t pat_words(void)
{
	return pg / 2 / 8;
}

/* The faulters' word: at byte pg / 2 of the page. */
static uint64_t gw(uint64_t t, uint64_t i, uint64_t n)
{
	return GW_TAG << 56 | t << 52 | (i & 0xffff) << 32 | (n & 0xffffffff);
}

static void bad(struct faulter *f, const char *fmt, uint64_t a, uint64_t b)
{
	if (!f->implausible++)
		snprintf(f->first_bad, sizeof(f->first_bad), fmt, (unsigned long long)a,
			 (unsigned long long)b);
}

/* A word read from page @i at word index @w is possible at all. */
static int plausible_pat(uint64_t i, uint64_t w, uint64_t v, uint32_t newest)
{
	if (!v)
		return 1;
	uint64_t g = (v >> 16) & 0xffffff;
	return v >> 56 == PAT_TAG && ((v >> 40) & 0xffff) == i && (v & 0xffff) == w && g >= 1 &&
	       g <= newest;
}

static void *faulter_main(void *arg)
{
	struct faulter *f = arg;
	char *page = malloc(pg);
	uint64_t n = 0;

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		uint64_t r = next(&f->seed);
		uint64_t i = (r >> 8) % NPAGES;
		int op = r % 16;
		int ret;

		if (op < 9) {
			uint64_t v = 0;

			ret = kvmmu_gpa_read(vm, g0 + i * pg, &v, 8);
			f->reads++;
			if (!ret && !plausible_pat(i, 0, v, __atomic_load_n(&gen[i], __ATOMIC_ACQUIRE)))
				bad(f, "page %llu word 0 read 0x%llx", i, v);
		} else if (op < 13) {
			i = i - i % NFAULTERS + f->id;
			if (i >= NPAGES)
				i = f->id;
			uint64_t v = gw(f->id, i, ++n);
			ret = kvmmu_gpa_write(vm, g0 + i * pg + pg / 2, &v, 8);
			f->writes++;
			if (!ret)
				last_gw[i] = v;
		} else if (op < 15) {
			struct kvmmu_translation t;

			ret = kvmmu_translate(vm, g0 + i * pg, &t);
			f->translates++;
			if (!ret && t.mapped && (t.size < (uint64_t)pg || !(t.prot & KVMMU_PROT_READ)))
				bad(f, "page %llu: TRANSLATE size 0x%llx", i, t.size);
			/* TRANSLATE never faults anything in: EFAULT is unexpected. */
			if (ret && errno == EFAULT)
				errno = ENXIO;
		} else {
			/* A whole page: every word belongs to page i. */
			uint32_t newest;

			ret = kvmmu_gpa_read(vm, g0 + i * pg, page, pg);
			newest = __atomic_load_n(&gen[i], __ATOMIC_ACQUIRE);
			f->reads++;
			for (uint64_t w = 0; !ret && w < pat_words(); w++) {
				uint64_t v;

				memcpy(&v, page + w * 8, 8);
				if (!plausible_pat(i, w, v, newest)) {
					bad(f, "page %llu whole-page read: 0x%llx", i, v);
					break;
				}
			}
			uint64_t v;
			memcpy(&v, page + pg / 2, 8);
			if (!ret && v && (v >> 56 != GW_TAG || ((v >> 32) & 0xffff) != i))
				bad(f, "page %llu guest word 0x%llx", i, v);
		}
		if (ret) {
			if (errno == EFAULT) {
				f->efaults++;
			} else if (!f->unexpected++) {
				f->first_errno = errno;
			}
		}
	}
	free(page);
	return NULL;
}

static void rewrite(uint64_t i)
{
	uint32_t g = __atomic_load_n(&gen[i], __ATOMIC_RELAXED) + 1;
	uint64_t *w = (uint64_t *)(mem + i * pg);

	/* Published first: a reader never sees a generation newer than gen[]. */
	__atomic_store_n(&gen[i], g, __ATOMIC_RELEASE);
	for (uint64_t k = 0; k < pat_words(); k++)
		w[k] = pat(i, g, k);
	zeroed[i] = 0;
}

static int remap(uint64_t i, uint64_t k)
{
	void *p = mmap(mem + i * pg, k * pg, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);

	return p == mem + i * pg ? 0 : -1;
}

int main(void)
{
	struct faulter f[NFAULTERS];
	struct kvmmu_vm_stats st0, st;
	uint64_t seed = 0x2545f4914f6cdd1dull ^ (uint64_t)getpid();
	uint64_t ops[4] = { 0 };
	double seconds = 3;
	const char *env = getenv("KVMMU_STRESS_SECONDS");
	int dev, ok, mfail = 0;

	pg = kvmmu_page_size();
	if (env && atof(env) > 0)
		seconds = atof(env);
	ktap_start(10);
	dev = kvmmu_open();
	vm = dev >= 0 ? kvmmu_create_vm(dev) : -1;
	if (!ktap_result(vm >= 0, "create_vm")) {
		ktap_diag("%s", strerror(errno));
		return ktap_finish();
	}
	mem = mmap(NULL, NPAGES * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 1;
	for (uint64_t i = 0; i < NPAGES; i++)
		rewrite(i);
	ok = kvmmu_set_region(vm, 0, 0, g0, NPAGES * pg, mem) == 0;
	if (!ktap_result(ok, "create_slot")) {
		ktap_diag("%s", strerror(errno));
		return ktap_finish();
	}
	kvmmu_get_stats(vm, &st0);

	memset(f, 0, sizeof(f));
	for (int t = 0; t < NFAULTERS; t++) {
		f[t].id = t;
		f[t].seed = seed * (t + 3) | 1;
		if (pthread_create(&f[t].th, NULL, faulter_main, &f[t]))
			return 1;
	}

	/* The mutator. */
	const uint64_t end = kvmmu_now_ns() + (uint64_t)(seconds * 1e9);
	while (kvmmu_now_ns() < end) {
		uint64_t r = next(&seed);
		uint64_t i = (r >> 8) % NPAGES, k = 1 + (r >> 24) % 8;
		int op = r % 10;

		if (i + k > NPAGES)
			k = NPAGES - i;
		if (op < 5) {
			for (uint64_t j = i; j < i + k; j++)
				rewrite(j);
			ops[0]++;
		} else if (op < 7) {
			mfail |= madvise(mem + i * pg, k * pg, MADV_DONTNEED);
			ops[1]++;
		} else if (op < 9) {
			mfail |= munmap(mem + i * pg, k * pg);
			sched_yield();
			mfail |= remap(i, k);
			ops[2]++;
		} else {
			mfail |= remap(i, k);
			ops[3]++;
		}
		if (op >= 5)
			for (uint64_t j = i; j < i + k; j++)
				zeroed[j] = 1;
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	uint64_t reads = 0, writes = 0, efaults = 0, unexpected = 0, implausible = 0;
	for (int t = 0; t < NFAULTERS; t++) {
		pthread_join(f[t].th, NULL);
		reads += f[t].reads;
		writes += f[t].writes;
		efaults += f[t].efaults;
		unexpected += f[t].unexpected;
		implausible += f[t].implausible;
		if (f[t].unexpected)
			ktap_diag("faulter %d: first unexpected error %s", t, strerror(f[t].first_errno));
		if (f[t].implausible)
			ktap_diag("faulter %d: %s", t, f[t].first_bad);
	}
	kvmmu_get_stats(vm, &st);
	ktap_diag("%.1fs: %llu guest reads, %llu guest writes, %llu EFAULT; mutator: %llu rewrites, "
		  "%llu dontneed, %llu munmap+mmap, %llu mmap over; faults %llu, retries %llu, "
		  "invalidations %llu", seconds, (unsigned long long)reads,
		  (unsigned long long)writes, (unsigned long long)efaults, (unsigned long long)ops[0],
		  (unsigned long long)ops[1], (unsigned long long)ops[2], (unsigned long long)ops[3],
		  (unsigned long long)(st.faults - st0.faults),
		  (unsigned long long)(st.fault_retries - st0.fault_retries),
		  (unsigned long long)(st.invalidate_range_start - st0.invalidate_range_start));

	ktap_result(!mfail && reads && writes && ops[0] && ops[1] + ops[2] + ops[3] &&
		    st.faults > st0.faults, "stress_ran (mutator and faulters made progress)");
	ktap_result(!unexpected, "midrun_errors_only_EFAULT (%llu unexpected)",
		    (unsigned long long)unexpected);
	ktap_result(!implausible, "midrun_reads_plausible (%llu implausible)",
		    (unsigned long long)implausible);
	ktap_result(st.invalidate_range_start == st.invalidate_range_end &&
		    st.invalidate_range_start > st0.invalidate_range_start,
		    "invalidations_balanced (%llu)", (unsigned long long)st.invalidate_range_start);

	/* The process's own memory is what it last wrote (guest words aside). */
	int bad_user = -1, bad_guest = -1, bad_gw = -1, bad_pfn = -1;
	char *page = malloc(pg);
	for (uint64_t i = 0; i < NPAGES; i++) {
		const uint64_t *w = (const uint64_t *)(mem + i * pg);

		for (uint64_t k = 0; k < pat_words() && bad_user < 0; k++)
			if (w[k] != (zeroed[i] ? 0 : pat(i, gen[i], k)))
				bad_user = (int)i;
		uint64_t v = w[pg / 16];
		if (v != 0 && v != last_gw[i] && bad_gw < 0)
			bad_gw = (int)i;
		for (uint64_t k = pg / 16 + 1; k < (uint64_t)pg / 8 && bad_user < 0; k++)
			if (w[k])
				bad_user = (int)i;
	}
	if (bad_user >= 0)
		ktap_diag("page %d: process memory is not what it wrote", bad_user);
	if (bad_gw >= 0)
		ktap_diag("page %d: guest word 0x%llx, last written 0x%llx", bad_gw,
			  (unsigned long long)((uint64_t *)(mem + bad_gw * pg))[pg / 16],
			  (unsigned long long)last_gw[bad_gw]);
	ktap_result(bad_user < 0 && bad_gw < 0,
		    "final_process_memory_as_last_written (guest words: last or dropped)");

	/* The guest sees exactly the process's memory, through current pages. */
	for (uint64_t i = 0; i < NPAGES; i++) {
		if (kvmmu_gpa_read(vm, g0 + i * pg, page, pg) || memcmp(page, mem + i * pg, pg)) {
			if (bad_guest < 0)
				bad_guest = (int)i;
			continue;
		}
		struct kvmmu_translation t;
		uint64_t host = kvmmu_host_pfn(mem + i * pg);
		if (kvmmu_translate(vm, g0 + i * pg, &t) || !t.mapped ||
		    (geteuid() == 0 ? t.pfn != host : t.pfn != 0))
			if (bad_pfn < 0)
				bad_pfn = (int)i;
	}
	if (bad_guest >= 0)
		ktap_diag("page %d: guest view differs from the process's", bad_guest);
	ktap_result(bad_guest < 0, "final_guest_view_equals_process_memory");
	if (bad_pfn >= 0)
		ktap_diag("page %d: stage-2 leaf does not map the process's page", bad_pfn);
	ktap_result(bad_pfn < 0, "final_leaves_map_current_pages");

	munmap(mem, NPAGES * pg);
	ok = kvmmu_get_stats(vm, &st) == 0 && !st.leaves[0] && !st.leaves[1] && !st.leaves[2];
	ktap_result(ok, "munmap_all_leaves_gone");
	close(vm);
	close(dev);
	return ktap_finish();
}
