// SPDX-License-Identifier: GPL-2.0
/*
 * Issue 10, defect 1: no stage-2 mapping may survive an invalidation of its
 * host page, even while the memslot holding that page moves.
 *
 * Three threads race on one slot of NPAGES pages:
 *  - the mover moves the slot back and forth between two guest addresses
 *    (KVMMU_SET_USER_MEMORY_REGION, same slot id, hva and size, new gpa);
 *  - the writer drops a page with MADV_DONTNEED and writes a new
 *    generation of that page's marker into it through the hva;
 *  - the reader reads a page's marker through the hva, then the same page
 *    through KVMMU_GPA_ACCESS at whichever gpa the slot is at (ENOENT
 *    while it moves is expected), and checks the guest's word.
 *
 * The marker protocol makes a stale read certain to be seen. Page i's
 * marker is word 0: a tag, i, and a generation gen that only grows; a page
 * of the process gets exactly one marker in its life (it is written once,
 * after the MADV_DONTNEED that dropped its predecessor). A read through a
 * correct stage-2 leaf sees the page the hva maps at that moment. So once
 * the reader has seen generation g through the hva, the guest may return
 * only the marker of generation >= g, or zero if the page was dropped
 * after the reader looked (a drop that began after the reader's snapshot
 * of the count of finished drops). Anything else -- an older generation,
 * zero without such a drop, another page's word -- is a read of a page the
 * host had already dropped: a use-after-free of a host page.
 *
 * A dropped page goes back to the allocator's per-CPU list and would often
 * be handed straight back as the page's successor, where a stale leaf
 * would read the right marker by accident. The writer therefore drops a
 * decoy page first and touches it right after the dropped page is freed,
 * so the freed page most likely becomes the decoy and reads DECOY_TAG.
 *
 * After the run every guest page must equal the process's page, leaves
 * must map the pages pagemap reports, and invalidations must balance. The
 * console (KASAN, bad page state) is checked by the harness.
 *
 * Runs for KVMMU_STRESS_SECONDS (default 3) seconds: QEMU TCG is slow.
 */
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

#include "../lib/ktap.h"
#include "../lib/kvmmu_util.h"

#define NPAGES 8
#define MARK_TAG 0x5cull
#define DECOY_TAG 0xdeull

static int vm;
static long pg;
static char *mem, *decoy;
static uint64_t gpa_of[2] = { 1ull << 30, 3ull << 30 };
static uint64_t deadline;

/* Writer-owned counters, read by the reader (atomics). */
static uint64_t begun[NPAGES];	/* drops of page i that began */
static uint64_t dropped[NPAGES];	/* drops of page i that returned */
static uint64_t gen[NPAGES];	/* newest generation written to page i */
static uint32_t cur;		/* the page the writer works on */
static int where;		/* 0/1: the gpa the slot was last moved to */
static int stop;

static uint64_t moves, move_errors, move_errno;
static uint64_t drops, madv_errors;

struct reader {
	uint64_t samples, reads[2], enoent, skipped_zero;
	uint64_t unexpected, first_errno;
	uint64_t stale;
	char first_stale[200];
};

static uint64_t mark(uint64_t i, uint64_t g)
{
	return MARK_TAG << 56 | (i & 0xff) << 48 | (g & 0xffffffffffffull);
}

static int is_mark(uint64_t v, uint64_t i)
{
	return v >> 56 == MARK_TAG && ((v >> 48) & 0xff) == i;
}

static uint64_t mark_gen(uint64_t v)
{
	return v & 0xffffffffffffull;
}

static uint64_t *word0(char *base, uint64_t i)
{
	return (uint64_t *)(base + i * pg);
}

static int over(void)
{
	return __atomic_load_n(&stop, __ATOMIC_RELAXED) || kvmmu_now_ns() >= deadline;
}

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *mover_main(void *arg)
{
	(void)arg;
	for (int to = 1; !over(); to ^= 1) {
		if (kvmmu_set_region(vm, 0, 0, gpa_of[to], NPAGES * pg, mem)) {
			if (!move_errors++)
				move_errno = errno;
			continue;
		}
		__atomic_store_n(&where, to, __ATOMIC_RELEASE);
		moves++;
	}
	return NULL;
}

static void *writer_main(void *arg)
{
	uint64_t seed = (uintptr_t)arg | 1, n = 0;

	while (!over()) {
		uint32_t i = next(&seed) % NPAGES;

		__atomic_store_n(&cur, i, __ATOMIC_RELAXED);
		/* The decoy's page goes first, so it is not what the next touch takes. */
		madv_errors += madvise(decoy, pg, MADV_DONTNEED) != 0;
		__atomic_store_n(&begun[i], begun[i] + 1, __ATOMIC_SEQ_CST);
		madv_errors += madvise(mem + i * pg, pg, MADV_DONTNEED) != 0;
		__atomic_store_n(&dropped[i], dropped[i] + 1, __ATOMIC_RELEASE);
		/* Most likely takes the page just freed from page i. */
		__atomic_store_n((uint64_t *)decoy, DECOY_TAG << 56 | ++n, __ATOMIC_RELAXED);
		/* Published before it is written: a reader never sees a newer one. */
		uint64_t g = gen[i] + 1;
		__atomic_store_n(&gen[i], g, __ATOMIC_RELEASE);
		__atomic_store_n(word0(mem, i), mark(i, g), __ATOMIC_RELEASE);
		drops++;
	}
	return NULL;
}

static void stale(struct reader *r, uint64_t i, int at, uint64_t h, uint64_t v, uint64_t d0,
		  uint64_t b1)
{
	if (!r->stale++)
		snprintf(r->first_stale, sizeof(r->first_stale),
			 "page %llu at gpa 0x%llx: hva had 0x%llx, guest read 0x%llx "
			 "(drops finished before %llu, begun after %llu)",
			 (unsigned long long)i, (unsigned long long)(gpa_of[at] + i * pg),
			 (unsigned long long)h, (unsigned long long)v, (unsigned long long)d0,
			 (unsigned long long)b1);
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	uint64_t seed = 0x9e3779b97f4a7c15ull;

	while (!over()) {
		uint64_t x = next(&seed);
		/* Half the time the page the writer works on: where races are. */
		uint64_t i = x & 1 ? __atomic_load_n(&cur, __ATOMIC_RELAXED) : (x >> 8) % NPAGES;
		int at = __atomic_load_n(&where, __ATOMIC_ACQUIRE) ^ (int)((x >> 4) & 1);
		uint64_t d0, h, v = 0, b1;
		int ret;

		d0 = __atomic_load_n(&dropped[i], __ATOMIC_ACQUIRE);
		h = __atomic_load_n(word0(mem, i), __ATOMIC_ACQUIRE);
		if (!h) {
			r->skipped_zero++; /* dropped, not yet rewritten */
			continue;
		}
		if (!is_mark(h, i)) {
			/* The process's own memory is wrong: not ours to explain. */
			stale(r, i, at, h, 0, d0, 0);
			continue;
		}
		r->samples++;
		ret = kvmmu_gpa_read(vm, gpa_of[at] + i * pg, &v, sizeof(v));
		if (ret && errno == ENOENT) {
			at ^= 1;
			ret = kvmmu_gpa_read(vm, gpa_of[at] + i * pg, &v, sizeof(v));
		}
		b1 = __atomic_load_n(&begun[i], __ATOMIC_ACQUIRE);
		if (ret) {
			if (errno == ENOENT)
				r->enoent++; /* moving: in neither place right now */
			else if (!r->unexpected++)
				r->first_errno = errno;
			continue;
		}
		r->reads[at]++;
		if (v == 0 ? b1 <= d0 : !is_mark(v, i) || mark_gen(v) < mark_gen(h))
			stale(r, i, at, h, v, d0, b1);
	}
	return NULL;
}

int main(void)
{
	struct kvmmu_vm_stats st0, st;
	struct reader rd;
	pthread_t mover, writer, reader;
	double seconds = 3;
	const char *env = getenv("KVMMU_STRESS_SECONDS");
	int dev, ok;

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
	decoy = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || decoy == MAP_FAILED)
		return 1;
	/* Base pages only: every drop replaces exactly one page. */
	madvise(mem, NPAGES * pg, MADV_NOHUGEPAGE);
	for (uint64_t i = 0; i < NPAGES; i++) {
		gen[i] = 1;
		*word0(mem, i) = mark(i, 1);
	}
	ok = kvmmu_set_region(vm, 0, 0, gpa_of[0], NPAGES * pg, mem) == 0;
	if (!ktap_result(ok, "create_slot")) {
		ktap_diag("%s", strerror(errno));
		return ktap_finish();
	}
	kvmmu_get_stats(vm, &st0);

	memset(&rd, 0, sizeof(rd));
	deadline = kvmmu_now_ns() + (uint64_t)(seconds * 1e9);
	if (pthread_create(&mover, NULL, mover_main, NULL) ||
	    pthread_create(&writer, NULL, writer_main, (void *)(uintptr_t)getpid()) ||
	    pthread_create(&reader, NULL, reader_main, &rd))
		return 1;
	pthread_join(mover, NULL);
	pthread_join(writer, NULL);
	pthread_join(reader, NULL);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);

	kvmmu_get_stats(vm, &st);
	ktap_diag("%.1fs, page %ld: %llu moves, %llu drops; reader: %llu samples, %llu reads at "
		  "0x%llx, %llu at 0x%llx, %llu ENOENT, %llu skipped (page dropped); faults %llu, "
		  "retries %llu, invalidations %llu", seconds, pg, (unsigned long long)moves,
		  (unsigned long long)drops, (unsigned long long)rd.samples,
		  (unsigned long long)rd.reads[0], (unsigned long long)gpa_of[0],
		  (unsigned long long)rd.reads[1], (unsigned long long)gpa_of[1],
		  (unsigned long long)rd.enoent, (unsigned long long)rd.skipped_zero,
		  (unsigned long long)(st.faults - st0.faults),
		  (unsigned long long)(st.fault_retries - st0.fault_retries),
		  (unsigned long long)(st.invalidate_range_start - st0.invalidate_range_start));
	if (move_errors)
		ktap_diag("%llu moves failed, first: %s", (unsigned long long)move_errors,
			  strerror((int)move_errno));
	if (rd.unexpected)
		ktap_diag("first unexpected GPA_ACCESS error: %s", strerror((int)rd.first_errno));
	if (rd.stale)
		ktap_diag("first stale read: %s", rd.first_stale);

	ktap_result(!move_errors && !madv_errors && moves >= 2 && drops && rd.reads[0] &&
		    rd.reads[1], "race_ran (moves, drops, and guest reads at both gpas)");
	ktap_result(!rd.unexpected, "midrun_errors_only_ENOENT (%llu unexpected)",
		    (unsigned long long)rd.unexpected);
	ktap_result(!rd.stale, "no_stale_reads (%llu of %llu samples)",
		    (unsigned long long)rd.stale, (unsigned long long)rd.samples);
	ktap_result(st.invalidate_range_start == st.invalidate_range_end &&
		    st.invalidate_range_start > st0.invalidate_range_start,
		    "invalidations_balanced (%llu)", (unsigned long long)st.invalidate_range_start);

	/* Quiet now: the guest sees exactly the process's pages. */
	uint64_t g = gpa_of[where];
	char *page = malloc(pg);
	int bad_guest = -1, bad_pfn = -1;
	for (uint64_t i = 0; page && i < NPAGES; i++) {
		struct kvmmu_translation t;
		uint64_t host;

		if (kvmmu_gpa_read(vm, g + i * pg, page, pg) || memcmp(page, mem + i * pg, pg)) {
			if (bad_guest < 0)
				bad_guest = (int)i;
			continue;
		}
		host = kvmmu_host_pfn(mem + i * pg);
		if (kvmmu_translate(vm, g + i * pg, &t) || !t.mapped ||
		    (geteuid() == 0 ? t.pfn != host : t.pfn != 0))
			if (bad_pfn < 0)
				bad_pfn = (int)i;
	}
	free(page);
	if (bad_guest >= 0)
		ktap_diag("page %d: guest view differs from the process's", bad_guest);
	ktap_result(page && bad_guest < 0, "final_guest_view_equals_process_memory");
	if (bad_pfn >= 0)
		ktap_diag("page %d: stage-2 leaf does not map the process's page", bad_pfn);
	ktap_result(bad_pfn < 0, "final_leaves_map_current_pages");

	/* The other gpa has nothing mapped. */
	struct kvmmu_translation t;
	ok = 1;
	for (uint64_t i = 0; i < NPAGES; i++)
		ok &= kvmmu_translate(vm, gpa_of[where ^ 1] + i * pg, &t) == 0 && !t.mapped;
	ktap_result(ok, "old_gpa_unmapped");

	munmap(mem, NPAGES * pg);
	ok = kvmmu_get_stats(vm, &st) == 0 && !st.leaves[0] && !st.leaves[1] && !st.leaves[2];
	ktap_result(ok, "munmap_all_leaves_gone");
	munmap(decoy, pg);
	close(vm);
	close(dev);
	return ktap_finish();
}
