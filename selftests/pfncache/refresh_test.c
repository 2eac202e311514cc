// SPDX-License-Identifier: GPL-2.0
/*
 * The pfn cache through /dev/kvmmu: KVMMU_GPC_CREATE, _REFRESH, _ACCESS,
 * _DESTROY and _GET_STATS on a VM fd (include/uapi/linux/kvmmu.h,
 * docs/pfncache.md).
 *
 * Check mode (default; make check), about 10 s under TCG:
 *  (a) bad input: every field of every pfn-cache ioctl (padding, reserved
 *      words, an id passed in, unknown flags, len 0, a range crossing a
 *      page, a gpa at or beyond 2^gpa_bits, unknown ids, offset + len
 *      beyond the cache, unusable argument and buffer pointers) gets the
 *      errno the header documents, and changes nothing: no cache appears
 *      or goes (exactly KVMMU_GPC_MAX - live caches can still be created;
 *      ids are the lowest free ones), a valid cache stays valid, its
 *      counts and its memory stay as they were;
 *  (b) the basics: caches by gpa and by hva see and change the memory the
 *      process sees; a write logs the page in a dirty-logging slot; a
 *      MADV_DONTNEED of the cache's page (and only of its page) makes
 *      ACCESS fail with EAGAIN until the next refresh, which maps the new
 *      page; a memslot change invalidates caches by gpa only; refresh
 *      errors (no slot, read-only slot or mapping, nothing mapped); a
 *      refresh waiting for a userfaultfd page ends with EINTR on a signal,
 *      and a cache destroyed while a refresh runs on it lets that refresh
 *      complete; the counts move as documented;
 *  (c) churn: refresh + read loops while other threads MADV_DONTNEED,
 *      mmap and munmap unrelated ranges must keep completing, with no
 *      retry and no wait (the exact rule; a baseline cache under the same
 *      churn does retry, which shows the churn is felt); and while a
 *      writer replaces the cache's own page (new contents prepared in a
 *      separate page, then mremap(MREMAP_FIXED) over it), a read that
 *      succeeds never returns a version older than the newest whose
 *      mremap had completed before the read began (generation protocol
 *      below).
 *
 * Perf mode (`refresh_test --perf` or KVMMU_PERF=1; make bench): REFRESH
 * with KVMMU_GPC_REFRESH_FORCE (a real lookup each time) of an exact and
 * a baseline (KVMMU_GPC_BASELINE) cache in the same VM, quiet and while
 * one thread MADV_DONTNEEDs an unrelated range back to back. The baseline
 * can livelock: in every phase (of both rules alike) ITIMER_REAL fires
 * every 20 ms and its SIGALRM handler has no SA_RESTART, so a refresh
 * still retrying at a tick returns EINTR (none runs longer than 20 ms);
 * only completions count.
 *   bench: pfncache.refresh_rate_{quiet,churn1}[_baseline] = <n> refreshes/s
 *   bench: pfncache.refresh_rate_churn1_exact_vs_baseline = <ratio> x
 *   bench: pfncache.refresh_p99_{quiet,churn1}[_baseline] = <ns> ns
 *   bench: pfncache.refresh_p99_churn1_vs_quiet[_baseline] = <ratio> x
 *   bench: pfncache.refresh_p99_quiet_exact_vs_baseline = <ratio> x
 *   bench: pfncache.refresh_interrupted_churn1[_baseline] = <pct> %
 * Rates are completions per second of the phase's wall time; p99s are of
 * completed refreshes (a baseline phase with none reports the bound).
 */
#define _GNU_SOURCE /* mremap */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <linux/userfaultfd.h>

#include "../lib/ktap.h"
#include "../lib/kvmmu_util.h"

#define PLANNED 109

static int dev, vm;
static long pg;
static unsigned int gpa_bits;

/* Guest layout of the check mode. */
static const uint64_t G0 = 1ull << 30;	/* slot 0: NP0 pages, mem */
static const uint64_t G1 = 2ull << 30;	/* slot 1: 4 pages, logmem, dirty logging */
static const uint64_t G2 = 3ull << 30;	/* slot 2: 1 page, romem, read-only */
static const uint64_t G3 = 4ull << 30;	/* slot 3: 3 pages, rmem (the remap race) */
static const uint64_t G4 = 5ull << 30;	/* slot 4: created and deleted (generation) */
#define NP0 8

static char *mem, *logmem, *romem, *rmem, *hmem, *hole, *rdonly, *rdcreate;

/* --- ioctl wrappers ---------------------------------------------------- */

static int gpc_create_on(int fd, uint64_t addr, uint32_t len, uint32_t flags)
{
	struct kvmmu_gpc_create c;

	memset(&c, 0, sizeof(c));
	c.addr = addr;
	c.len = len;
	c.flags = flags;
	if (ioctl(fd, KVMMU_GPC_CREATE, &c))
		return -1;
	return (int)c.id;
}

static int gpc_create(uint64_t addr, uint32_t len, uint32_t flags)
{
	return gpc_create_on(vm, addr, len, flags);
}

static int gpc_create_raw(uint64_t addr, uint32_t len, uint32_t flags, uint32_t id, uint32_t pad,
			  uint64_t r0, uint64_t r1)
{
	struct kvmmu_gpc_create c;

	memset(&c, 0, sizeof(c));
	c.addr = addr;
	c.len = len;
	c.flags = flags;
	c.id = id;
	c.pad = pad;
	c.reserved[0] = r0;
	c.reserved[1] = r1;
	return ioctl(vm, KVMMU_GPC_CREATE, &c);
}

static int gpc_op_raw(int fd, unsigned long cmd, uint32_t id, uint32_t flags, uint64_t r0, uint64_t r1)
{
	struct kvmmu_gpc_op o;

	memset(&o, 0, sizeof(o));
	o.id = id;
	o.flags = flags;
	o.reserved[0] = r0;
	o.reserved[1] = r1;
	return ioctl(fd, cmd, &o);
}

static int gpc_refresh(uint32_t id, uint32_t flags)
{
	return gpc_op_raw(vm, KVMMU_GPC_REFRESH, id, flags, 0, 0);
}

static int gpc_destroy(uint32_t id)
{
	return gpc_op_raw(vm, KVMMU_GPC_DESTROY, id, 0, 0, 0);
}

static int gpc_access_raw(int fd, uint32_t id, uint32_t flags, uint32_t offset, uint32_t len,
			  const void *buf, uint64_t r0, uint64_t r1)
{
	struct kvmmu_gpc_access a;

	memset(&a, 0, sizeof(a));
	a.id = id;
	a.flags = flags;
	a.offset = offset;
	a.len = len;
	a.buf = (uintptr_t)buf;
	a.reserved[0] = r0;
	a.reserved[1] = r1;
	return ioctl(fd, KVMMU_GPC_ACCESS, &a);
}

static int gpc_read(uint32_t id, uint32_t offset, void *buf, uint32_t len)
{
	return gpc_access_raw(vm, id, 0, offset, len, buf, 0, 0);
}

static int gpc_write(uint32_t id, uint32_t offset, const void *buf, uint32_t len)
{
	return gpc_access_raw(vm, id, KVMMU_ACCESS_WRITE, offset, len, buf, 0, 0);
}

static int gpc_stats_on(int fd, uint32_t id, struct kvmmu_gpc_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->id = id;
	return ioctl(fd, KVMMU_GPC_GET_STATS, st);
}

static int gpc_stats(uint32_t id, struct kvmmu_gpc_stats *st)
{
	return gpc_stats_on(vm, id, st);
}

/* The counts of @id, all ones (never a real count) if GET_STATS fails. */
static struct kvmmu_gpc_stats counts(uint32_t id)
{
	struct kvmmu_gpc_stats st;

	if (gpc_stats(id, &st)) {
		ktap_diag("GET_STATS %u: %s", id, strerror(errno));
		memset(&st, 0xff, sizeof(st));
	}
	return st;
}

static int counts_eq(const struct kvmmu_gpc_stats *a, const struct kvmmu_gpc_stats *b)
{
	return a->refreshes == b->refreshes && a->retries == b->retries && a->waits == b->waits &&
	       a->invalidations == b->invalidations;
}

static void diag_counts(const char *what, const struct kvmmu_gpc_stats *s)
{
	ktap_diag("%s: refreshes %llu retries %llu waits %llu invalidations %llu", what,
		  (unsigned long long)s->refreshes, (unsigned long long)s->retries,
		  (unsigned long long)s->waits, (unsigned long long)s->invalidations);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000};

	nanosleep(&ts, NULL);
}

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void fill(void *p, size_t n, uint64_t seed)
{
	uint8_t *b = p;

	seed |= 1;
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)next(&seed);
}

static char *map_pages(long n)
{
	char *p = mmap(NULL, n * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, n * pg, MADV_NOHUGEPAGE);
	return p;
}

/* Signals that interrupt an ioctl: handlers installed without SA_RESTART. */
static volatile sig_atomic_t sigusr1_seen, sigalrm_seen;

static void on_usr1(int sig)
{
	(void)sig;
	sigusr1_seen++;
}

static void on_alrm(int sig)
{
	(void)sig;
	sigalrm_seen++;
}

static void install_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1; /* no SA_RESTART: the ioctl returns EINTR */
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_alrm;
	sigaction(SIGALRM, &sa, NULL);
}

/* Threads that must not take the process's SIGALRM start with it blocked. */
static int start_thread(pthread_t *th, void *(*fn)(void *), void *arg)
{
	sigset_t block, old;
	int r;

	sigemptyset(&block);
	sigaddset(&block, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	r = pthread_create(th, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

static void *watchdog(void *arg)
{
	(void)arg;
	sleep(240);
	printf("# watchdog: still running after 240 s, giving up\n");
	fflush(stdout);
	_exit(2);
}

/* --- (a) bad input ----------------------------------------------------- */

/* The ids that answer GET_STATS, as a count, and the first of them. */
static int live_ids(int *first)
{
	struct kvmmu_gpc_stats st;
	int n = 0;

	*first = -1;
	for (uint32_t id = 0; id < KVMMU_GPC_MAX; id++)
		if (gpc_stats(id, &st) == 0 && n++ == 0)
			*first = (int)id;
	return n;
}

static void bad_input(void)
{
	const uint64_t limit = 1ull << gpa_bits;
	struct kvmmu_gpc_stats st;
	char buf[128], keep[128];
	int ok, id, first;

	/* No cache yet: every id is unknown. */
	ok = gpc_refresh(0, 0) == -1 && errno == ENOENT;
	ok &= gpc_destroy(0) == -1 && errno == ENOENT;
	ok &= gpc_read(0, 0, buf, 8) == -1 && errno == ENOENT;
	ok &= gpc_stats(0, &st) == -1 && errno == ENOENT;
	ktap_result(ok, "no_cache_yet_every_op_ENOENT");

	/* KVMMU_GPC_CREATE */
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_GPC_CREATE, NULL), EFAULT, "create_null_arg_EFAULT");
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_GPC_CREATE, hole), EFAULT, "create_unmapped_arg_EFAULT");
	KTAP_EXPECT_ERRNO(gpc_create_raw(G0, 8, 0, 0, 1, 0, 0), EINVAL, "create_pad_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_create_raw(G0, 8, 0, 1, 0, 0, 0), EINVAL, "create_id_in_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_create_raw(G0, 8, 0, 0, 0, 1, 0), EINVAL, "create_reserved0_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_create_raw(G0, 8, 0, 0, 0, 0, 1ull << 63), EINVAL,
			  "create_reserved1_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_create_raw(G0, 8, 1u << 2, 0, 0, 0, 0), EINVAL, "create_flag_bit2_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_create_raw(G0, 8, 1u << 31, 0, 0, 0, 0), EINVAL,
			  "create_flag_bit31_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_create_raw(G0, 0, 0, 0, 0, 0, 0), EINVAL, "create_len_0_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_create_raw((uintptr_t)mem, 0, KVMMU_GPC_BY_HVA, 0, 0, 0, 0), EINVAL,
			  "create_hva_len_0_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_create_raw(G0 + pg - 4, 8, 0, 0, 0, 0, 0), EINVAL,
			  "create_crossing_a_page_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_create_raw(G0, pg + 1, 0, 0, 0, 0, 0), EINVAL,
			  "create_longer_than_a_page_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_create_raw((uintptr_t)mem + pg - 1, 2, KVMMU_GPC_BY_HVA, 0, 0, 0, 0), EINVAL,
			  "create_hva_crossing_a_page_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_create_raw(limit, 1, 0, 0, 0, 0, 0), EINVAL,
			  "create_gpa_at_2^gpa_bits_EINVAL (%u bits)", gpa_bits);
	KTAP_EXPECT_ERRNO(gpc_create_raw(~0ull - 7, 8, KVMMU_GPC_BASELINE, 0, 0, 0, 0), EINVAL,
			  "create_gpa_far_beyond_EINVAL");
	/* A valid read-only argument: the id cannot be returned, so no cache stays. */
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_GPC_CREATE, rdcreate), EFAULT, "create_readonly_arg_EFAULT");

	/* The last bytes below the limit: a cache (refresh: no slot there). */
	id = gpc_create(limit - 8, 8, 0);
	ok = id == 0;
	if (!ok)
		ktap_diag("create at 2^%u - 8: %d (%s), expected id 0", gpa_bits, id,
			  id < 0 ? strerror(errno) : "-");
	ok &= gpc_refresh(0, 0) == -1 && errno == ENOENT;
	ok &= gpc_destroy(0) == 0;
	ktap_result(ok, "create_gpa_ending_at_2^gpa_bits_ok_refresh_ENOENT_no_slot");
	ok = live_ids(&first) == 0;
	ktap_result(ok, "failed_creates_left_no_cache");

	/* The caches the bad input is tried on. */
	fill(mem, NP0 * pg, 1);
	int a = gpc_create(G0 + 16, 64, 0);			/* by gpa, 64 bytes */
	int h = gpc_create((uintptr_t)hmem + 8, 8, KVMMU_GPC_BY_HVA);	/* by hva */
	ok = a == 0 && h == 1 && gpc_refresh(a, 0) == 0 && gpc_refresh(h, 0) == 0 &&
	     gpc_read(a, 0, buf, 64) == 0 && !memcmp(buf, mem + 16, 64);
	if (!ktap_result(ok, "create_ids_0_1_refresh_read")) {
		ktap_diag("ids %d %d: %s", a, h, strerror(errno));
		return;
	}
	struct kvmmu_gpc_stats sa0 = counts(a), sh0 = counts(h), s;
	memcpy(keep, mem + 16, 64);

	/* KVMMU_GPC_REFRESH */
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_GPC_REFRESH, NULL), EFAULT, "refresh_null_arg_EFAULT");
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_GPC_REFRESH, hole), EFAULT, "refresh_unmapped_arg_EFAULT");
	KTAP_EXPECT_ERRNO(gpc_op_raw(vm, KVMMU_GPC_REFRESH, a, 1u << 1, 0, 0), EINVAL,
			  "refresh_flag_bit1_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_op_raw(vm, KVMMU_GPC_REFRESH, a, KVMMU_GPC_REFRESH_FORCE | 1u << 31, 0, 0),
			  EINVAL, "refresh_force_with_bit31_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_op_raw(vm, KVMMU_GPC_REFRESH, a, 0, 1, 0), EINVAL,
			  "refresh_reserved0_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_op_raw(vm, KVMMU_GPC_REFRESH, a, KVMMU_GPC_REFRESH_FORCE, 0, 1), EINVAL,
			  "refresh_reserved1_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_refresh(2, 0), ENOENT, "refresh_unused_id_ENOENT");
	KTAP_EXPECT_ERRNO(gpc_refresh(KVMMU_GPC_MAX, 0), ENOENT, "refresh_id_GPC_MAX_ENOENT");
	KTAP_EXPECT_ERRNO(gpc_refresh(~0u, KVMMU_GPC_REFRESH_FORCE), ENOENT, "refresh_id_~0_ENOENT");
	KTAP_EXPECT_ERRNO(gpc_op_raw(vm, KVMMU_GPC_REFRESH, 77, 1u << 5, 0, 0), EINVAL,
			  "refresh_bad_flags_and_id_EINVAL_first");
	/* The FORCE of a refused refresh dropped nothing. */
	s = counts(a);
	ok = counts_eq(&s, &sa0) && gpc_read(a, 0, buf, 64) == 0 && !memcmp(buf, keep, 64);
	ktap_result(ok, "refused_refreshes_left_the_cache_valid_counts_unchanged");

	/* KVMMU_GPC_DESTROY */
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_GPC_DESTROY, NULL), EFAULT, "destroy_null_arg_EFAULT");
	KTAP_EXPECT_ERRNO(gpc_op_raw(vm, KVMMU_GPC_DESTROY, h, KVMMU_GPC_REFRESH_FORCE, 0, 0), EINVAL,
			  "destroy_flags_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_op_raw(vm, KVMMU_GPC_DESTROY, h, 0, 0, 1), EINVAL,
			  "destroy_reserved_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_destroy(2), ENOENT, "destroy_unused_id_ENOENT");
	KTAP_EXPECT_ERRNO(gpc_destroy(~0u), ENOENT, "destroy_id_~0_ENOENT");
	s = counts(h);
	ok = counts_eq(&s, &sh0) && gpc_read(h, 0, buf, 8) == 0 && !memcmp(buf, hmem + 8, 8);
	ktap_result(ok, "refused_destroys_left_the_cache");

	/* KVMMU_GPC_ACCESS */
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_GPC_ACCESS, NULL), EFAULT, "access_null_arg_EFAULT");
	KTAP_EXPECT_ERRNO(gpc_access_raw(vm, a, 1u << 1, 0, 8, buf, 0, 0), EINVAL,
			  "access_flag_bit1_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_access_raw(vm, a, 1u << 31, 0, 8, buf, 0, 0), EINVAL,
			  "access_flag_bit31_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_access_raw(vm, a, 0, 0, 8, buf, 1, 0), EINVAL, "access_reserved0_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_access_raw(vm, a, KVMMU_ACCESS_WRITE, 0, 8, buf, 0, 1), EINVAL,
			  "access_reserved1_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_read(a, 0, buf, 0), EINVAL, "access_len_0_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_read(a, 60, buf, 8), EINVAL, "access_offset_plus_len_beyond_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_read(a, 64, buf, 1), EINVAL, "access_offset_at_len_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_read(a, 0, buf, 65), EINVAL, "access_len_over_cache_len_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_read(a, ~0u, buf, 2), EINVAL, "access_offset_~0_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_read(a, 1, buf, ~0u), EINVAL, "access_len_~0_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_write(a, 8, buf, 57), EINVAL, "access_write_beyond_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_read(2, 0, buf, 8), ENOENT, "access_unused_id_ENOENT");
	KTAP_EXPECT_ERRNO(gpc_access_raw(vm, 77, 1u << 4, 0, 8, buf, 0, 0), EINVAL,
			  "access_bad_flags_and_id_EINVAL_first");
	KTAP_EXPECT_ERRNO(gpc_read(a, 0, NULL, 8), EFAULT, "access_read_null_buf_EFAULT");
	KTAP_EXPECT_ERRNO(gpc_read(a, 0, hole, 8), EFAULT, "access_read_unmapped_buf_EFAULT");
	KTAP_EXPECT_ERRNO(gpc_read(a, 0, rdonly, 8), EFAULT, "access_read_into_readonly_buf_EFAULT");
	KTAP_EXPECT_ERRNO(gpc_write(a, 0, NULL, 8), EFAULT, "access_write_null_buf_EFAULT");
	KTAP_EXPECT_ERRNO(gpc_write(a, 0, hole, 64), EFAULT, "access_write_unmapped_buf_EFAULT");
	/* Partly readable: the first bytes on a good page, the rest not. */
	memset(hole - 4, 0x5a, 4);
	KTAP_EXPECT_ERRNO(gpc_write(a, 0, hole - 4, 16), EFAULT, "access_write_partly_unmapped_EFAULT");
	s = counts(a);
	ok = !memcmp(mem + 16, keep, 64) && counts_eq(&s, &sa0) && gpc_read(a, 0, buf, 64) == 0 &&
	     !memcmp(buf, keep, 64);
	ktap_result(ok, "refused_accesses_changed_no_memory_and_no_count");

	/* KVMMU_GPC_GET_STATS */
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_GPC_GET_STATS, NULL), EFAULT, "stats_null_arg_EFAULT");
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_GPC_GET_STATS, hole), EFAULT, "stats_unmapped_arg_EFAULT");
	/* rdonly holds zeros: id 0 (which exists), every field 0. */
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_GPC_GET_STATS, rdonly), EFAULT,
			  "stats_readonly_arg_EFAULT (id 0 exists)");
	memset(&st, 0, sizeof(st));
	st.id = a;
	st.pad = 1;
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_GPC_GET_STATS, &st), EINVAL, "stats_pad_EINVAL");
	ok = 1;
	for (int i = 0; i < 4; i++) {
		memset(&st, 0, sizeof(st));
		st.id = a;
		st.reserved[i] = 1ull << (i * 16);
		if (ioctl(vm, KVMMU_GPC_GET_STATS, &st) != -1 || errno != EINVAL) {
			ktap_diag("reserved[%d] != 0: %s", i, strerror(errno));
			ok = 0;
		}
	}
	ktap_result(ok, "stats_reserved0to3_EINVAL");
	KTAP_EXPECT_ERRNO(gpc_stats(2, &st), ENOENT, "stats_unused_id_ENOENT");
	KTAP_EXPECT_ERRNO(gpc_stats(KVMMU_GPC_MAX, &st), ENOENT, "stats_id_GPC_MAX_ENOENT");
	/* The counts are output only: whatever they hold on input is ignored. */
	memset(&st, 0, sizeof(st));
	st.id = a;
	st.refreshes = st.retries = st.waits = st.invalidations = 12345;
	ok = ioctl(vm, KVMMU_GPC_GET_STATS, &st) == 0 && st.refreshes != 12345 && st.waits != 12345;
	ktap_result(ok, "stats_out_fields_ignored_on_input");

	/* Another VM: its own ids. */
	int vm2 = kvmmu_create_vm(dev);
	ok = vm2 >= 0 && gpc_stats_on(vm2, a, &st) == -1 && errno == ENOENT &&
	     gpc_op_raw(vm2, KVMMU_GPC_REFRESH, h, 0, 0, 0) == -1 && errno == ENOENT &&
	     gpc_access_raw(vm2, a, 0, 0, 8, buf, 0, 0) == -1 && errno == ENOENT;
	ktap_result(ok, "other_vm_does_not_know_the_ids");
	ok = vm2 >= 0 && gpc_create_on(vm2, (uintptr_t)hmem, 8, KVMMU_GPC_BY_HVA) == 0 &&
	     gpc_op_raw(vm2, KVMMU_GPC_DESTROY, 0, 0, 0, 0) == 0 && gpc_stats(a, &st) == 0 &&
	     gpc_stats(h, &st) == 0;
	ktap_result(ok, "ids_are_per_vm (first id of another VM is 0, its destroy leaves ours)");
	if (vm2 >= 0)
		close(vm2);
	KTAP_EXPECT_ERRNO(ioctl(vm, _IOW(KVMMU_IO, 0x35, struct kvmmu_gpc_op), buf), ENOTTY,
			  "unknown_ioctl_after_gpc_ENOTTY");

	/* State: the two caches and nothing else; ENOSPC at exactly the limit. */
	ok = live_ids(&first) == 2 && first == 0;
	ktap_result(ok, "refused_ioctls_created_or_destroyed_no_cache");
	int made = 0, e = 0, seq = 1;
	for (;;) {
		int n = gpc_create((uintptr_t)hmem + (made % 64) * 8, 8,
				   made & 1 ? KVMMU_GPC_BY_HVA : KVMMU_GPC_BY_HVA | KVMMU_GPC_BASELINE);
		if (n < 0) {
			e = errno;
			break;
		}
		seq &= n == made + 2;
		if (++made > KVMMU_GPC_MAX)
			break;
	}
	ok = made == KVMMU_GPC_MAX - 2 && e == ENOSPC && seq;
	if (!ok)
		ktap_diag("created %d more (ids in order: %d), then %s", made, seq, strerror(e));
	ktap_result(ok, "exactly_GPC_MAX_caches_then_ENOSPC");
	KTAP_EXPECT_ERRNO(gpc_create(G0, 8, 0), ENOSPC, "create_when_full_ENOSPC_again");
	/* A freed id is the next one given. */
	ok = gpc_destroy(500) == 0 && gpc_create(G0 + 8, 8, 0) == 500;
	ktap_result(ok, "freed_id_reused");
	ok = 1;
	for (int n = 2; n < KVMMU_GPC_MAX; n++)
		ok &= gpc_destroy(n) == 0;
	s = counts(a);
	ok = ok && live_ids(&first) == 2 && counts_eq(&s, &sa0) && gpc_read(a, 0, buf, 64) == 0 &&
	     !memcmp(buf, keep, 64);
	ktap_result(ok, "destroyed_the_others_ours_untouched");
	gpc_destroy(a);
	gpc_destroy(h);
}

/* --- (b) the basics ---------------------------------------------------- */

static int dirty_bits(uint32_t slot, uint64_t *bits)
{
	*bits = 0;
	return kvmmu_get_dirty_log(vm, slot, bits);
}

/* A refresh of a userfaultfd-missing page, on its own thread. */
struct blocked {
	pthread_t th;
	uint32_t id;
	int ret, err, done;
};

static void *blocked_refresh(void *arg)
{
	struct blocked *b = arg;

	b->ret = gpc_refresh(b->id, 0);
	b->err = errno;
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int wait_done(struct blocked *b, long ms)
{
	for (long w = 0; !__atomic_load_n(&b->done, __ATOMIC_ACQUIRE) && w < ms; w += 5)
		sleep_ms(5);
	return __atomic_load_n(&b->done, __ATOMIC_ACQUIRE);
}

/* One fault event on @uffd within @ms: 1, else 0. */
static int uffd_event(int uffd, long ms)
{
	struct pollfd p = {.fd = uffd, .events = POLLIN};
	struct uffd_msg msg;

	if (poll(&p, 1, (int)ms) <= 0)
		return 0;
	return read(uffd, &msg, sizeof(msg)) == sizeof(msg) && msg.event == UFFD_EVENT_PAGEFAULT;
}

struct filler {
	pthread_t th;
	int uffd;
	char *dst, *src;
	long delay_ms;
	int ret;
};

static void *fill_later(void *arg)
{
	struct filler *f = arg;
	struct uffdio_copy c;

	sleep_ms(f->delay_ms);
	memset(&c, 0, sizeof(c));
	c.dst = (uintptr_t)f->dst;
	c.src = (uintptr_t)f->src;
	c.len = pg;
	f->ret = ioctl(f->uffd, UFFDIO_COPY, &c) ? -errno : 0;
	return NULL;
}

static void uffd_cases(void)
{
	struct uffdio_api api;
	struct uffdio_register reg;
	struct kvmmu_gpc_stats st;
	struct blocked b;
	struct filler f;
	char buf[64];
	int uffd, ok, id;

	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0) {
		ktap_diag("userfaultfd: %s", strerror(errno));
		ktap_skip("refresh_of_uffd_missing_page_EINTR_on_signal (no userfaultfd)");
		ktap_skip("destroy_while_a_refresh_waits (no userfaultfd)");
		ktap_skip("refresh_after_fill_maps_the_filled_page (no userfaultfd)");
		return;
	}
	char *umem = map_pages(2), *src = aligned_alloc(pg, pg);
	memset(&api, 0, sizeof(api));
	api.api = UFFD_API;
	memset(&reg, 0, sizeof(reg));
	reg.range.start = (uintptr_t)umem;
	reg.range.len = 2 * pg;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	ok = umem && src && ioctl(uffd, UFFDIO_API, &api) == 0 && ioctl(uffd, UFFDIO_REGISTER, &reg) == 0;
	id = ok ? gpc_create((uintptr_t)umem + 32, 32, KVMMU_GPC_BY_HVA) : -1;

	/* Nobody fills the page: a signal ends the refresh's wait. */
	memset(&b, 0, sizeof(b));
	b.id = id;
	sigusr1_seen = 0;
	ok = id >= 0 && pthread_create(&b.th, NULL, blocked_refresh, &b) == 0;
	int got = ok && uffd_event(uffd, 5000);
	sleep_ms(50);
	int early = __atomic_load_n(&b.done, __ATOMIC_ACQUIRE);
	if (ok)
		pthread_kill(b.th, SIGUSR1);
	int ended = ok && wait_done(&b, 5000);
	if (ok && !ended) {
		/* Unblock it: the test fails. */
		memset(&f, 0, sizeof(f));
		f.uffd = uffd, f.dst = umem, f.src = src;
		fill_later(&f);
	}
	if (ok)
		pthread_join(b.th, NULL);
	ok = ok && got && !early && ended && b.ret == -1 && b.err == EINTR && sigusr1_seen == 1 &&
	     gpc_read(id, 0, buf, 8) == -1 && errno == EAGAIN && gpc_stats(id, &st) == 0 &&
	     st.refreshes == 0;
	if (!ok)
		ktap_diag("id %d, fault event %d, ended before the signal %d, after %d: %d (%s)", id, got,
			  early, ended, b.ret, b.ret ? strerror(b.err) : "-");
	ktap_result(ok, "refresh_of_uffd_missing_page_EINTR_on_signal");

	/*
	 * A refresh waits for the handler; the cache is destroyed meanwhile.
	 * The id goes at once; the refresh completes when the page is filled
	 * (by a thread, after 300 ms, whatever DESTROY does meanwhile).
	 */
	memset(&b, 0, sizeof(b));
	b.id = id;
	ok = id >= 0 && pthread_create(&b.th, NULL, blocked_refresh, &b) == 0;
	got = ok && uffd_event(uffd, 5000);
	fill(src, pg, 77);
	memset(&f, 0, sizeof(f));
	f.uffd = uffd, f.dst = umem, f.src = src, f.delay_ms = 300;
	ok = ok && pthread_create(&f.th, NULL, fill_later, &f) == 0;
	uint64_t t0 = kvmmu_now_ns();
	int dr = ok ? gpc_destroy(id) : -1, de = errno;
	uint64_t t1 = kvmmu_now_ns();
	int done_then = __atomic_load_n(&b.done, __ATOMIC_ACQUIRE);
	int gone = gpc_stats(id, &st) == -1 && errno == ENOENT;
	int nid = ok ? gpc_create((uintptr_t)umem + 32, 32, KVMMU_GPC_BY_HVA) : -1;
	int fresh = nid == id && gpc_stats(nid, &st) == 0 && st.refreshes == 0 && st.invalidations == 0;
	ktap_diag("DESTROY of the cache a refresh waits on took %.1f ms (the page is filled at 300 ms); "
		  "the refresh had %sended when it returned", (t1 - t0) / 1e6, done_then ? "" : "not ");
	ended = ok && wait_done(&b, 5000);
	if (ok) {
		pthread_join(f.th, NULL);
		pthread_join(b.th, NULL);
	}
	ok = ok && got && dr == 0 && gone && fresh && ended && b.ret == 0 && f.ret == 0;
	if (!ok)
		ktap_diag("event %d, destroy %d (%s), id gone %d, new id %d fresh %d, refresh ended %d: "
			  "%d (%s), fill %d", got, dr, dr ? strerror(de) : "-", gone, nid, fresh, ended,
			  b.ret, b.ret ? strerror(b.err) : "-", f.ret);
	ktap_result(ok, "destroy_while_a_refresh_waits (id freed at once and reused, refresh completes)");

	/* The new cache on the same page: maps what the handler filled. */
	ok = nid >= 0 && gpc_read(nid, 0, buf, 8) == -1 && errno == EAGAIN && gpc_refresh(nid, 0) == 0 &&
	     gpc_read(nid, 0, buf, 32) == 0 && !memcmp(buf, src + 32, 32) && !memcmp(umem + 32, src + 32, 32);
	ktap_result(ok, "refresh_after_fill_maps_the_filled_page");
	if (nid >= 0)
		gpc_destroy(nid);
	close(uffd);
	munmap(umem, 2 * pg);
	free(src);
}

static void basics(void)
{
	struct kvmmu_gpc_stats s, s0;
	char buf[256], want[256];
	uint64_t bits;
	int ok;

	/* A cache by gpa, on page 1 of slot 0, bytes [100, 300). */
	fill(mem, NP0 * pg, 2);
	char *p1 = mem + pg + 100;
	int c = gpc_create(G0 + pg + 100, 200, 0);
	s = counts(c);
	ok = c >= 0 && gpc_read(c, 0, buf, 8) == -1 && errno == EAGAIN && s.refreshes == 0 &&
	     s.retries == 0 && s.waits == 0 && s.invalidations == 0;
	ktap_result(ok, "gpa_cache_maps_nothing_before_refresh (EAGAIN, counts 0)");
	ok = gpc_refresh(c, 0) == 0;
	s = counts(c);
	ok = ok && s.refreshes == 1 && s.retries == 0 && s.waits == 0 && s.invalidations == 0;
	if (!ok)
		diag_counts("after refresh", &s);
	ktap_result(ok, "gpa_cache_refresh_counts_one");
	ok = gpc_read(c, 0, buf, 200) == 0 && !memcmp(buf, p1, 200);
	memset(p1 + 50, 0xa5, 20);
	ok = ok && gpc_read(c, 40, buf, 40) == 0 && !memcmp(buf, p1 + 40, 40);
	ktap_result(ok, "gpa_cache_read_sees_process_memory_and_its_changes");
	fill(want, 64, 3);
	ok = gpc_write(c, 136, want, 64) == 0 && !memcmp(p1 + 136, want, 64) &&
	     gpc_read(c, 0, buf, 200) == 0 && !memcmp(buf, p1, 200);
	ktap_result(ok, "gpa_cache_write_seen_by_process");
	/* A refresh of a valid cache maps nothing; FORCE looks up again. */
	ok = gpc_refresh(c, 0) == 0 && counts(c).refreshes == 1;
	ok = ok && gpc_refresh(c, KVMMU_GPC_REFRESH_FORCE) == 0 && counts(c).refreshes == 2 &&
	     gpc_read(c, 0, buf, 200) == 0 && !memcmp(buf, p1, 200);
	ktap_result(ok, "refresh_of_valid_cache_maps_nothing_force_maps_again");

	/* By hva, outside every slot; and a baseline cache alongside. */
	fill(hmem, 2 * pg, 4);
	int h = gpc_create((uintptr_t)hmem + pg - 16, 16, KVMMU_GPC_BY_HVA);
	int hb = gpc_create((uintptr_t)hmem + pg - 16, 16, KVMMU_GPC_BY_HVA | KVMMU_GPC_BASELINE);
	ok = h >= 0 && hb >= 0 && gpc_refresh(h, 0) == 0 && gpc_refresh(hb, 0) == 0 &&
	     gpc_read(h, 0, buf, 16) == 0 && !memcmp(buf, hmem + pg - 16, 16);
	fill(want, 16, 5);
	ok = ok && gpc_write(h, 8, want, 8) == 0 && !memcmp(hmem + pg - 8, want, 8) &&
	     gpc_read(hb, 0, buf, 16) == 0 && !memcmp(buf, hmem + pg - 16, 16);
	ktap_result(ok, "hva_cache_read_write_both_ways (exact and baseline caches)");

	/* Dirty logging: a write through a cache logs its page, a read not. */
	int d = gpc_create(G1 + 2 * pg + 8, 8, 0);
	ok = d >= 0 && gpc_refresh(d, 0) == 0 && dirty_bits(1, &bits) == 0;
	ok = ok && gpc_read(d, 0, buf, 8) == 0 && dirty_bits(1, &bits) == 0 && bits == 0;
	ok = ok && gpc_write(d, 0, want, 8) == 0 && dirty_bits(1, &bits) == 0 && bits == 1u << 2 &&
	     !memcmp(logmem + 2 * pg + 8, want, 8);
	if (!ok)
		ktap_diag("dirty bits 0x%llx (%s)", (unsigned long long)bits, strerror(errno));
	ktap_result(ok, "write_through_cache_in_logging_slot_logs_its_page_only");
	ok = dirty_bits(1, &bits) == 0 && bits == 0 && gpc_read(d, 0, buf, 8) == 0 &&
	     dirty_bits(1, &bits) == 0 && bits == 0;
	ktap_result(ok, "dirty_log_cleared_read_logs_nothing");
	gpc_destroy(d);

	/* MADV_DONTNEED of neighbouring pages: nothing happens to the cache. */
	s0 = counts(c);
	ok = madvise(mem, pg, MADV_DONTNEED) == 0 && madvise(mem + 2 * pg, pg, MADV_DONTNEED) == 0;
	s = counts(c);
	ok = ok && gpc_read(c, 0, buf, 200) == 0 && !memcmp(buf, p1, 200) && counts_eq(&s, &s0);
	ktap_result(ok, "dontneed_of_neighbour_pages_leaves_cache_valid");

	/* MADV_DONTNEED of its page: EAGAIN until the refresh maps the new one. */
	memcpy(want, p1, 200);
	ok = madvise(mem + pg, pg, MADV_DONTNEED) == 0;
	s = counts(c);
	ok = ok && gpc_read(c, 0, buf, 8) == -1 && errno == EAGAIN && s.invalidations == s0.invalidations + 1 &&
	     s.refreshes == s0.refreshes;
	ok = ok && gpc_write(c, 0, want, 8) == -1 && errno == EAGAIN && gpc_read(c, 0, buf, 8) == -1 &&
	     errno == EAGAIN;
	if (!ok)
		diag_counts("after MADV_DONTNEED", &s);
	ktap_result(ok, "dontneed_of_its_page_EAGAIN_until_refresh (invalidations +1)");
	memset(want, 0, 200);
	ok = gpc_refresh(c, 0) == 0 && gpc_read(c, 0, buf, 200) == 0 && !memcmp(buf, want, 200) &&
	     !memcmp(p1, want, 200);
	fill(want, 200, 6);
	ok = ok && gpc_write(c, 0, want, 200) == 0 && !memcmp(p1, want, 200);
	s = counts(c);
	ok = ok && s.refreshes == s0.refreshes + 1 && s.retries == 0 && s.waits == 0;
	if (!ok)
		diag_counts("after the refresh", &s);
	ktap_result(ok, "refresh_maps_the_new_zero_page_process_shares_it");

	/* The same for a cache by hva. */
	s0 = counts(h);
	ok = madvise(hmem, pg, MADV_DONTNEED) == 0 && gpc_read(h, 0, buf, 16) == -1 && errno == EAGAIN &&
	     gpc_read(hb, 0, buf, 16) == -1 && errno == EAGAIN && counts(h).invalidations == s0.invalidations + 1;
	memset(want, 0, 16);
	ok = ok && gpc_refresh(h, 0) == 0 && gpc_read(h, 0, buf, 16) == 0 && !memcmp(buf, want, 16) &&
	     gpc_refresh(hb, 0) == 0 && gpc_read(hb, 0, buf, 16) == 0 && !memcmp(buf, want, 16);
	hmem[pg - 1] = 0x7e;
	ok = ok && gpc_read(h, 15, buf, 1) == 0 && buf[0] == 0x7e;
	ktap_result(ok, "hva_cache_dontneed_EAGAIN_then_refresh_maps_new_page");

	/* A memslot change: caches by gpa must refresh, caches by hva not. */
	ok = kvmmu_set_region(vm, 4, 0, G4, pg, hmem + pg) == 0 && gpc_read(c, 0, buf, 8) == -1 &&
	     errno == EAGAIN && gpc_read(h, 0, buf, 8) == 0;
	ok = ok && gpc_refresh(c, 0) == 0 && gpc_read(c, 0, buf, 200) == 0 && !memcmp(buf, p1, 200);
	ok = ok && kvmmu_delete_region(vm, 4) == 0 && gpc_read(c, 0, buf, 8) == -1 && errno == EAGAIN &&
	     gpc_refresh(c, 0) == 0;
	ktap_result(ok, "memslot_change_invalidates_gpa_caches_only");
	/* Its own slot deleted: EAGAIN, then ENOENT; back: the same bytes. */
	ok = kvmmu_delete_region(vm, 0) == 0 && gpc_read(c, 0, buf, 8) == -1 && errno == EAGAIN &&
	     gpc_refresh(c, 0) == -1 && errno == ENOENT && gpc_read(c, 0, buf, 8) == -1 && errno == EAGAIN;
	ok = ok && kvmmu_set_region(vm, 0, 0, G0, NP0 * pg, mem) == 0 && gpc_refresh(c, 0) == 0 &&
	     gpc_read(c, 0, buf, 200) == 0 && !memcmp(buf, p1, 200);
	ktap_result(ok, "slot_deleted_refresh_ENOENT_recreated_refresh_ok");

	/* Refresh errors. */
	int r = gpc_create(G2 + 64, 8, 0);
	KTAP_EXPECT_ERRNO(gpc_refresh(r, 0), EPERM, "refresh_readonly_slot_EPERM");
	gpc_destroy(r);
	r = gpc_create(G0 + NP0 * pg, 8, 0);
	KTAP_EXPECT_ERRNO(gpc_refresh(r, 0), ENOENT, "refresh_no_slot_ENOENT");
	gpc_destroy(r);
	r = gpc_create((uintptr_t)rdonly, 8, KVMMU_GPC_BY_HVA);
	KTAP_EXPECT_ERRNO(gpc_refresh(r, 0), EPERM, "refresh_readonly_mapping_EPERM");
	gpc_destroy(r);
	r = gpc_create((uintptr_t)hole + 8, 8, KVMMU_GPC_BY_HVA);
	KTAP_EXPECT_ERRNO(gpc_refresh(r, 0), EFAULT, "refresh_unmapped_hva_EFAULT");
	gpc_destroy(r);
	r = gpc_create(kvmmu_kernel_addr(), 8, KVMMU_GPC_BY_HVA);
	KTAP_EXPECT_ERRNO(gpc_refresh(r, 0), EFAULT, "refresh_kernel_hva_EFAULT");
	gpc_destroy(r);
	/* A cache whose mapping went: munmap of its page. */
	char *tmp = map_pages(1);
	r = gpc_create((uintptr_t)tmp, 8, KVMMU_GPC_BY_HVA);
	ok = tmp && r >= 0 && gpc_refresh(r, 0) == 0 && munmap(tmp, pg) == 0 &&
	     gpc_read(r, 0, buf, 8) == -1 && errno == EAGAIN && gpc_refresh(r, 0) == -1 && errno == EFAULT;
	ktap_result(ok, "munmap_of_its_page_EAGAIN_then_refresh_EFAULT");
	gpc_destroy(r);

	uffd_cases();

	/* Destroy: the id is unknown from then on. */
	ok = gpc_destroy(c) == 0 && gpc_read(c, 0, buf, 8) == -1 && errno == ENOENT &&
	     gpc_refresh(c, 0) == -1 && errno == ENOENT && gpc_stats(c, &s) == -1 && errno == ENOENT &&
	     gpc_destroy(c) == -1 && errno == ENOENT;
	ktap_result(ok, "destroyed_cache_every_op_ENOENT");
	gpc_destroy(h);
	gpc_destroy(hb);
}

/* --- (c) churn --------------------------------------------------------- */

static int churn_stop;

struct churn {
	pthread_t th;
	int kind;		/* 0: MADV_DONTNEED (a touch every 64th); 1: mmap, touch, munmap */
	uint64_t ops;
	int failed;
};

static void *churn_main(void *arg)
{
	struct churn *c = arg;
	const size_t len = 16 * pg;
	char *own = c->kind == 0 ? map_pages(16) : NULL;

	if (c->kind == 0 && !own)
		c->failed = 1;
	while (!c->failed && !__atomic_load_n(&churn_stop, __ATOMIC_RELAXED)) {
		if (c->kind == 0) {
			/*
			 * Mostly an empty range (an invalidation all the same,
			 * and no TLB-flush IPI, which TCG makes slow); now and
			 * then a page to free.
			 */
			if (c->ops % 64 == 0)
				own[(c->ops / 64 % 16) * pg] = 1;
			if (madvise(own, len, MADV_DONTNEED))
				c->failed = 1;
		} else {
			char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (p == MAP_FAILED) {
				c->failed = 1;
				break;
			}
			p[0] = 1;
			if (munmap(p, len))
				c->failed = 1;
		}
		c->ops++;
	}
	if (own)
		munmap(own, len);
	return NULL;
}

static int churn_start(struct churn *c, int n)
{
	__atomic_store_n(&churn_stop, 0, __ATOMIC_RELAXED);
	memset(c, 0, n * sizeof(*c));
	for (int i = 0; i < n; i++) {
		c[i].kind = i & 1;
		if (start_thread(&c[i].th, churn_main, &c[i]))
			return i;
	}
	return n;
}

/* Joins the threads; @ops[0] MADV_DONTNEEDs, @ops[1] mmap/munmap pairs. */
static int churn_end(struct churn *c, int n, uint64_t ops[2])
{
	int failed = 0;

	__atomic_store_n(&churn_stop, 1, __ATOMIC_RELAXED);
	ops[0] = ops[1] = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(c[i].th, NULL);
		ops[c[i].kind] += c[i].ops;
		failed |= c[i].failed;
	}
	return failed;
}

struct loop_result {
	uint64_t done, eintr, other, bad_data;
	int first_errno;
};

/*
 * REFRESH (FORCE: a real lookup) + read of cache @id for @ns, checking the
 * bytes against @want (@len). With @bound_ms each refresh is bounded by a
 * one-shot SIGALRM (EINTR then counts apart).
 */
static struct loop_result refresh_loop(uint32_t id, const char *want, uint32_t len, uint64_t ns,
				       long bound_ms)
{
	struct loop_result r;
	struct itimerval on = {.it_value = {.tv_sec = 0, .tv_usec = bound_ms * 1000}}, off;
	char buf[64];
	uint64_t end = kvmmu_now_ns() + ns;

	memset(&r, 0, sizeof(r));
	memset(&off, 0, sizeof(off));
	while (kvmmu_now_ns() < end) {
		if (bound_ms)
			setitimer(ITIMER_REAL, &on, NULL);
		int ret = gpc_refresh(id, KVMMU_GPC_REFRESH_FORCE), e = errno;
		if (bound_ms)
			setitimer(ITIMER_REAL, &off, NULL);
		if (ret == 0)
			ret = gpc_read(id, 0, buf, len), e = errno;
		if (ret == 0) {
			r.done++;
			r.bad_data += memcmp(buf, want, len) != 0;
		} else if (e == EINTR) {
			r.eintr++;
		} else if (!r.other++) {
			r.first_errno = e;
		}
	}
	return r;
}

static void churn_unrelated(void)
{
	const double quiet_s = 0.5, alone_s = 0.3, churn_s = 2.0, base_s = 0.5;
	struct kvmmu_vm_stats v0, v1;
	struct kvmmu_gpc_stats s0, s1, b0, b1;
	struct churn c[2];
	struct loop_result q, r, b;
	uint64_t ops[2], ops_alone[2], ops_b[2];
	int n, failed, ok;

	fill(mem, NP0 * pg, 8);
	int e = gpc_create(G0 + 5 * pg + 24, 32, 0);
	int bl = gpc_create(G0 + 6 * pg + 24, 32, KVMMU_GPC_BASELINE);
	if (e < 0 || bl < 0 || gpc_refresh(e, 0) || gpc_refresh(bl, 0)) {
		ktap_diag("caches: %s", strerror(errno));
		ktap_result(0, "churn_refresh_loop_keeps_completing");
		ktap_result(0, "churn_exact_rule_no_retries_no_waits");
		ktap_result(0, "churn_baseline_control_retries");
		return;
	}
	q = refresh_loop(e, mem + 5 * pg + 24, 32, quiet_s * 1e9, 0);

	/* The churn on its own, for reference. */
	n = churn_start(c, 2);
	sleep_ms(alone_s * 1000);
	failed = churn_end(c, n, ops_alone);

	s0 = counts(e);
	kvmmu_get_stats(vm, &v0);
	n = churn_start(c, 2);
	r = refresh_loop(e, mem + 5 * pg + 24, 32, churn_s * 1e9, 0);
	failed |= churn_end(c, n, ops);
	kvmmu_get_stats(vm, &v1);
	s1 = counts(e);

	/* The control: the baseline rule under the same churn, bounded. */
	b0 = counts(bl);
	n = churn_start(c, 2);
	b = refresh_loop(bl, mem + 6 * pg + 24, 32, base_s * 1e9, 20);
	failed |= churn_end(c, n, ops_b);
	b1 = counts(bl);

	double qrate = q.done / quiet_s, rate = r.done / churn_s;
	ktap_diag("churn alone: %.0f MADV_DONTNEED/s, %.0f mmap+munmap/s", ops_alone[0] / alone_s,
		  ops_alone[1] / alone_s);
	ktap_diag("quiet: %llu refresh+read in %.1fs (%.0f/s); with churn (%.0f MADV_DONTNEED/s, "
		  "%.0f mmap+munmap/s, %llu invalidations): %llu in %.1fs (%.0f/s, %.2f x quiet)",
		  (unsigned long long)q.done, quiet_s, qrate, ops[0] / churn_s, ops[1] / churn_s,
		  (unsigned long long)(v1.invalidate_range_start - v0.invalidate_range_start),
		  (unsigned long long)r.done, churn_s, rate, qrate ? rate / qrate : 0);
	ok = !failed && n == 2 && ops[0] >= 50 && ops[1] >= 50 && q.done && r.done >= 200 &&
	     rate >= 0.1 * qrate && !q.other && !r.other && !q.eintr && !r.eintr && !q.bad_data &&
	     !r.bad_data;
	if (q.other || r.other)
		ktap_diag("errors: %llu quiet, %llu churn, first %s", (unsigned long long)q.other,
			  (unsigned long long)r.other, strerror(q.other ? q.first_errno : r.first_errno));
	if (q.bad_data || r.bad_data)
		ktap_diag("wrong bytes read: %llu quiet, %llu churn", (unsigned long long)q.bad_data,
			  (unsigned long long)r.bad_data);
	ktap_result(ok, "churn_refresh_loop_keeps_completing (>= 200 and >= 0.1x quiet)");
	diag_counts("exact cache during churn (delta)",
		    &(struct kvmmu_gpc_stats){.refreshes = s1.refreshes - s0.refreshes,
					      .retries = s1.retries - s0.retries,
					      .waits = s1.waits - s0.waits,
					      .invalidations = s1.invalidations - s0.invalidations});
	ok = s1.retries == 0 && s1.waits == 0 && s1.refreshes - s0.refreshes == r.done;
	ktap_result(ok, "churn_exact_rule_no_retries_no_waits (every refresh published once)");
	ktap_diag("baseline control: %llu completed, %llu EINTR (20 ms bound) in %.1fs; retries %llu "
		  "(%.0f MADV_DONTNEED/s, %.0f mmap+munmap/s)", (unsigned long long)b.done,
		  (unsigned long long)b.eintr, base_s, (unsigned long long)(b1.retries - b0.retries),
		  ops_b[0] / base_s, ops_b[1] / base_s);
	ok = !b.other && !b.bad_data && b1.retries > b0.retries && b.done + b.eintr > 0;
	if (b.other)
		ktap_diag("baseline: %llu errors, first %s", (unsigned long long)b.other,
			  strerror(b.first_errno));
	ktap_result(ok, "churn_baseline_control_retries (the churn is felt; only 0 or EINTR)");
	gpc_destroy(e);
	gpc_destroy(bl);
}

/*
 * The cache's own page replaced under readers. Page contents: word 0 is
 * VER_TAG | version, word 1 its complement. The writer prepares version v
 * in a fresh page, publishes started = v, moves the page over the target
 * with mremap(MREMAP_MAYMOVE | MREMAP_FIXED) (the old page is unmapped and
 * freed), then publishes completed = v. A reader loads completed (c0),
 * reads through the cache, then loads started (s1): a successful read must
 * be a well-formed version with c0 <= v <= s1. A version < c0 is data the
 * process no longer maps (the cache survived the invalidation); v > s1, a
 * decoy or garbage, is a page the kernel already reused. The writer
 * drops a decoy page before each mremap and writes it right after, so the
 * freed page is likely to be the decoy's next page and a stale mapping
 * would read DECOY_TAG.
 */
#define VER_TAG 0x7e5ull
#define DECOY_TAG 0xdec0ull

static uint64_t started, completed;
static uint64_t remaps, remap_errors, remap_errno;
static char *target, *decoy;

static uint64_t ver(uint64_t v)
{
	return VER_TAG << 48 | v;
}

static void *remapper(void *arg)
{
	uint64_t end = *(uint64_t *)arg, n = 0;

	while (kvmmu_now_ns() < end) {
		uint64_t v = completed + 1;
		uint64_t *p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED) {
			if (!remap_errors++)
				remap_errno = errno;
			break;
		}
		p[0] = ver(v);
		p[1] = ~ver(v);
		madvise(decoy, pg, MADV_DONTNEED);
		__atomic_store_n(&started, v, __ATOMIC_SEQ_CST);
		if (mremap(p, pg, pg, MREMAP_MAYMOVE | MREMAP_FIXED, target) != target) {
			if (!remap_errors++)
				remap_errno = errno;
			munmap(p, pg);
			break;
		}
		__atomic_store_n(&completed, v, __ATOMIC_SEQ_CST);
		((uint64_t *)decoy)[0] = DECOY_TAG << 48 | ++n;
		((uint64_t *)decoy)[1] = ~(DECOY_TAG << 48 | n);
		remaps++;
	}
	return NULL;
}

struct rreader {
	pthread_t th;
	uint32_t ids[2];
	uint64_t end;
	uint64_t reads[2], eagain, refreshes, errors, stale;
	int first_errno;
	char first_stale[160];
};

static void *remap_reader(void *arg)
{
	struct rreader *r = arg;

	for (uint64_t i = 0; kvmmu_now_ns() < r->end; i++) {
		int k = i & 1;
		uint64_t w[2] = {0, 0};
		uint64_t c0 = __atomic_load_n(&completed, __ATOMIC_SEQ_CST);
		int ret = gpc_read(r->ids[k], 0, w, 16), e = errno;
		uint64_t s1 = __atomic_load_n(&started, __ATOMIC_SEQ_CST);

		if (ret == 0) {
			r->reads[k]++;
			uint64_t v = w[0] & 0xffffffffffffull;
			if (w[0] >> 48 != VER_TAG || w[1] != ~w[0] || v < c0 || v > s1) {
				if (!r->stale++)
					snprintf(r->first_stale, sizeof(r->first_stale),
						 "%s cache read 0x%016llx/0x%016llx; completed before "
						 "%llu, started after %llu", k ? "hva" : "gpa",
						 (unsigned long long)w[0], (unsigned long long)w[1],
						 (unsigned long long)c0, (unsigned long long)s1);
			}
			continue;
		}
		if (e != EAGAIN) {
			if (!r->errors++)
				r->first_errno = e;
			continue;
		}
		r->eagain++;
		if (gpc_refresh(r->ids[k], 0)) {
			if (!r->errors++)
				r->first_errno = errno;
		} else {
			r->refreshes++;
		}
	}
	return NULL;
}

static void churn_own_page(void)
{
	const double seconds = 2.5;
	struct kvmmu_vm_stats v0, v1;
	struct kvmmu_gpc_stats s[2];
	struct rreader rd;
	pthread_t w;
	uint64_t end, buf[2];
	int ok;

	rmem = map_pages(3);
	decoy = map_pages(1);
	if (!rmem || !decoy || kvmmu_set_region(vm, 3, 0, G3, 3 * pg, rmem)) {
		ktap_diag("remap setup: %s", strerror(errno));
		for (int i = 0; i < 5; i++)
			ktap_result(0, "remap_race_setup");
		return;
	}
	target = rmem + pg;
	((uint64_t *)target)[0] = ver(1);
	((uint64_t *)target)[1] = ~ver(1);
	started = completed = 1;
	memset(&rd, 0, sizeof(rd));
	int g = gpc_create(G3 + pg, 16, 0);
	int h = gpc_create((uintptr_t)target, 16, KVMMU_GPC_BY_HVA);
	ok = g >= 0 && h >= 0 && gpc_refresh(g, 0) == 0 && gpc_refresh(h, 0) == 0;
	rd.ids[0] = g;
	rd.ids[1] = h;
	kvmmu_get_stats(vm, &v0);
	end = kvmmu_now_ns() + (uint64_t)(seconds * 1e9);
	rd.end = end;
	ok = ok && pthread_create(&w, NULL, remapper, &end) == 0;
	if (ok && pthread_create(&rd.th, NULL, remap_reader, &rd)) {
		pthread_join(w, NULL);
		ok = 0;
	}
	if (ok) {
		pthread_join(w, NULL);
		pthread_join(rd.th, NULL);
	}
	kvmmu_get_stats(vm, &v1);
	s[0] = counts(g);
	s[1] = counts(h);
	ktap_diag("%.1fs: %llu remaps (version %llu); reads %llu via gpa, %llu via hva; %llu EAGAIN, "
		  "%llu refreshes; invalidations %llu", seconds, (unsigned long long)remaps,
		  (unsigned long long)completed, (unsigned long long)rd.reads[0],
		  (unsigned long long)rd.reads[1], (unsigned long long)rd.eagain,
		  (unsigned long long)rd.refreshes,
		  (unsigned long long)(v1.invalidate_range_start - v0.invalidate_range_start));
	diag_counts("gpa cache", &s[0]);
	diag_counts("hva cache", &s[1]);
	if (remap_errors)
		ktap_diag("%llu remap errors, first %s", (unsigned long long)remap_errors,
			  strerror((int)remap_errno));
	ktap_result(ok && !remap_errors && remaps >= 100 && rd.reads[0] >= 50 && rd.reads[1] >= 50 &&
		    rd.eagain > 0, "remap_race_ran (remaps, reads through both caches, EAGAINs)");
	if (rd.stale)
		ktap_diag("first stale read: %s", rd.first_stale);
	ktap_result(ok && !rd.stale, "remap_no_read_older_than_a_completed_replacement (%llu bad)",
		    (unsigned long long)rd.stale);
	if (rd.errors)
		ktap_diag("%llu unexpected errors, first %s", (unsigned long long)rd.errors,
			  strerror(rd.first_errno));
	ktap_result(ok && !rd.errors, "remap_only_EAGAIN_and_refreshes_that_succeed");

	/* Quiet again: both caches map exactly the process's page. */
	ok = 1;
	for (int k = 0; k < 2; k++) {
		ok &= gpc_refresh(rd.ids[k], 0) == 0 && gpc_read(rd.ids[k], 0, buf, 16) == 0 &&
		      buf[0] == ver(completed) && !memcmp(buf, target, 16);
	}
	uint64_t nv[2] = {ver(completed + 1), ~ver(completed + 1)};
	ok = ok && gpc_write(g, 0, nv, 16) == 0 && !memcmp(target, nv, 16) &&
	     gpc_read(h, 0, buf, 16) == 0 && !memcmp(buf, nv, 16);
	ktap_result(ok, "remap_after_the_race_caches_map_the_current_page");
	ok = v1.invalidate_range_start == v1.invalidate_range_end;
	ktap_result(ok, "invalidations_balanced (%llu)", (unsigned long long)v1.invalidate_range_start);
	gpc_destroy(g);
	gpc_destroy(h);
}

/* --- check mode -------------------------------------------------------- */

static int setup(void)
{
	struct kvmmu_vm_info info;

	pg = kvmmu_page_size();
	dev = kvmmu_open();
	vm = dev >= 0 ? kvmmu_create_vm(dev) : -1;
	if (!ktap_result(vm >= 0, "create_vm")) {
		ktap_diag("%s", strerror(errno));
		return -1;
	}
	memset(&info, 0, sizeof(info));
	if (ioctl(vm, KVMMU_GET_VM_INFO, &info) || info.gpa_bits < 32 || info.gpa_bits > 60) {
		ktap_diag("GET_VM_INFO: %s, gpa_bits %u", strerror(errno), info.gpa_bits);
		return -1;
	}
	gpa_bits = info.gpa_bits;
	install_handlers();
	return 0;
}

static int check_mode(void)
{
	int ok;

	ktap_start(PLANNED);
	if (setup())
		return ktap_finish();
	mem = map_pages(NP0);
	logmem = map_pages(4);
	romem = map_pages(1);
	hmem = map_pages(2);
	hole = map_pages(2);
	rdonly = map_pages(2);
	ok = mem && logmem && romem && hmem && hole && rdonly;
	/*
	 * hole: a good page followed by an unmapped one; rdonly: a page of
	 * zeros, then rdcreate, a valid kvmmu_gpc_create; both read-only.
	 */
	if (ok) {
		struct kvmmu_gpc_create c = {.addr = G0 + 8, .len = 8};

		rdcreate = rdonly + pg;
		memcpy(rdcreate, &c, sizeof(c));
	}
	ok = ok && munmap(hole + pg, pg) == 0 && mprotect(rdonly, 2 * pg, PROT_READ) == 0;
	hole += pg;
	if (ok) {
		memset(logmem, 1, 4 * pg);
		memset(romem, 2, pg);
	}
	ok = ok && kvmmu_set_region(vm, 0, 0, G0, NP0 * pg, mem) == 0 &&
	     kvmmu_set_region(vm, 1, KVMMU_MEM_LOG_DIRTY_PAGES, G1, 4 * pg, logmem) == 0 &&
	     kvmmu_set_region(vm, 2, KVMMU_MEM_READONLY, G2, pg, romem) == 0;
	ktap_diag("page %ld, gpa_bits %u", pg, gpa_bits);
	if (!ktap_result(ok, "memory_and_slots")) {
		ktap_diag("%s", strerror(errno));
		return ktap_finish();
	}
	uint64_t t0 = kvmmu_now_ns();
	bad_input();
	basics();
	uint64_t t1 = kvmmu_now_ns();
	churn_unrelated();
	uint64_t t2 = kvmmu_now_ns();
	churn_own_page();
	uint64_t t3 = kvmmu_now_ns();
	ktap_diag("times: bad input + basics %.1fs, unrelated churn %.1fs, own-page churn %.1fs",
		  (t1 - t0) / 1e9, (t2 - t1) / 1e9, (t3 - t2) / 1e9);

	/* The VM goes with caches still there (one valid, one not). */
	int a = gpc_create(G0 + 8, 8, 0), b = gpc_create((uintptr_t)hmem, 8, KVMMU_GPC_BY_HVA);
	ok = a >= 0 && b >= 0 && gpc_refresh(a, 0) == 0 && close(vm) == 0;
	vm = kvmmu_create_vm(dev);
	ok = ok && vm >= 0 && gpc_create_on(vm, (uintptr_t)hmem, 8, KVMMU_GPC_BY_HVA) == 0;
	ktap_result(ok, "vm_closed_with_live_caches");
	close(vm);
	close(dev);
	return ktap_finish();
}

/* --- perf mode --------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

#define PERF_SECONDS 1.5
#define BOUND_MS 20
#define MAX_SAMPLES 400000
#define MAX_CHURN 2

struct phase {
	uint64_t done, eintr, other, retries, invals, ticks;
	double rate, p99, seconds;
	int first_errno;
};

static int perf_stop;
static uint64_t perf_ops;

static void *dontneed_main(void *arg)
{
	char *p = arg;

	while (!__atomic_load_n(&perf_stop, __ATOMIC_RELAXED)) {
		madvise(p, 16 * pg, MADV_DONTNEED);
		__atomic_fetch_add(&perf_ops, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/*
 * REFRESH FORCE of @id for PERF_SECONDS while @churn threads (0..MAX_CHURN)
 * MADV_DONTNEED 16 unrelated pages each. ITIMER_REAL fires every BOUND_MS
 * (SIGALRM to this thread only; no SA_RESTART): a refresh still retrying
 * at a tick returns EINTR, so none takes longer than BOUND_MS. A periodic
 * timer costs the loop nothing, where arming one per refresh would cost
 * two system calls a refresh.
 */
static int phase(uint32_t id, int churn, char *unrelated, uint64_t *lat, struct phase *ph)
{
	struct itimerval on = {.it_interval = {.tv_sec = 0, .tv_usec = BOUND_MS * 1000},
			       .it_value = {.tv_sec = 0, .tv_usec = BOUND_MS * 1000}}, off;
	struct kvmmu_vm_stats v0, v1;
	struct kvmmu_gpc_stats s0, s1;
	pthread_t th[MAX_CHURN];
	uint64_t n = 0, t0, t1, start, end;

	memset(ph, 0, sizeof(*ph));
	memset(&off, 0, sizeof(off));
	perf_ops = 0;
	__atomic_store_n(&perf_stop, 0, __ATOMIC_RELAXED);
	for (int t = 0; t < churn; t++) {
		if (start_thread(&th[t], dontneed_main, unrelated + (size_t)t * 16 * pg)) {
			__atomic_store_n(&perf_stop, 1, __ATOMIC_RELAXED);
			while (t--)
				pthread_join(th[t], NULL);
			return -1;
		}
	}
	if (churn)
		sleep_ms(50); /* under way */
	s0 = counts(id);
	kvmmu_get_stats(vm, &v0);
	sigalrm_seen = 0;
	setitimer(ITIMER_REAL, &on, NULL);
	start = kvmmu_now_ns();
	end = start + (uint64_t)(PERF_SECONDS * 1e9);
	for (t1 = start; t1 < end;) {
		t0 = kvmmu_now_ns();
		int r = gpc_refresh(id, KVMMU_GPC_REFRESH_FORCE), e = errno;
		t1 = kvmmu_now_ns();
		if (r == 0) {
			if (n < MAX_SAMPLES)
				lat[n++] = t1 - t0;
			ph->done++;
		} else if (e == EINTR) {
			ph->eintr++;
		} else if (!ph->other++) {
			ph->first_errno = e;
		}
	}
	ph->seconds = (kvmmu_now_ns() - start) / 1e9;
	setitimer(ITIMER_REAL, &off, NULL);
	kvmmu_get_stats(vm, &v1);
	s1 = counts(id);
	__atomic_store_n(&perf_stop, 1, __ATOMIC_RELAXED);
	for (int t = 0; t < churn; t++)
		pthread_join(th[t], NULL);
	ph->ticks = sigalrm_seen;
	ph->retries = s1.retries - s0.retries;
	ph->invals = v1.invalidate_range_start - v0.invalidate_range_start;
	ph->rate = ph->done / ph->seconds;
	if (n) {
		qsort(lat, n, sizeof(*lat), cmp_u64);
		ph->p99 = (double)lat[n * 99 / 100];
	} else {
		ph->p99 = BOUND_MS * 1e6; /* none completed: the bound */
	}
	return 0;
}

static int perf_mode(void)
{
	static const char *const pname[6] = { "quiet", "quiet", "churn1", "churn1", "churn2", "churn2" };
	/* quiet, 1 and 2 churn threads; each exact, then baseline */
	struct phase ph[6];
	uint64_t *lat = malloc(MAX_SAMPLES * sizeof(*lat));
	int ok;

	ktap_start(5);
	if (setup())
		return ktap_finish();
	mem = map_pages(4);
	char *unrelated = map_pages(16 * MAX_CHURN);
	fill(mem, 4 * pg, 9);
	int e = -1, b = -1;
	ok = lat && mem && unrelated && kvmmu_set_region(vm, 0, 0, G0, 4 * pg, mem) == 0;
	if (ok) {
		e = gpc_create(G0 + pg, 8, 0);
		b = gpc_create(G0 + 2 * pg, 8, KVMMU_GPC_BASELINE);
	}
	ok = ok && e >= 0 && b >= 0 && gpc_refresh(e, 0) == 0 && gpc_refresh(b, 0) == 0;
	if (!ktap_result(ok, "perf_setup (exact and baseline caches)")) {
		ktap_diag("%s", strerror(errno));
		return ktap_finish();
	}
	ktap_diag("page %ld; REFRESH FORCE in a loop, SIGALRM (no SA_RESTART) every %d ms; %.1fs a phase",
		  pg, BOUND_MS, PERF_SECONDS);
	ok = 1;
	for (int i = 0; i < 6 && ok; i++) {
		ok = phase(i & 1 ? b : e, i / 2, unrelated, lat, &ph[i]) == 0 && !ph[i].other;
		ktap_diag("%s %s: %llu completed, %llu EINTR (%llu ticks), %llu other%s%s in %.2fs; %.1f "
			  "retries per completion; %llu invalidations (%llu MADV_DONTNEED), p99 %.0f ns",
			  pname[i], i & 1 ? "baseline" : "exact", (unsigned long long)ph[i].done,
			  (unsigned long long)ph[i].eintr, (unsigned long long)ph[i].ticks,
			  (unsigned long long)ph[i].other,
			  ph[i].other ? ", first: " : "", ph[i].other ? strerror(ph[i].first_errno) : "",
			  ph[i].seconds, ph[i].done ? (double)ph[i].retries / ph[i].done : (double)ph[i].retries,
			  (unsigned long long)ph[i].invals, (unsigned long long)perf_ops, ph[i].p99);
	}
	/* Exact refreshes complete, quiet and under churn; baseline only 0 or EINTR. */
	if (!ktap_result(ok && ph[0].done && ph[2].done && ph[4].done && ph[1].done, "perf_phases_ran")) {
		gpc_destroy(e);
		gpc_destroy(b);
		return ktap_finish();
	}
	for (int i = 0; i < 6; i++)
		printf("bench: pfncache.refresh_rate_%s%s = %.0f refreshes/s\n", pname[i],
		       i & 1 ? "_baseline" : "", ph[i].rate);
	/* No baseline completion at all: 1 is the denominator (a lower bound). */
	if (!ph[3].done)
		ktap_diag("no baseline refresh completed under churn: the ratio below is a lower bound");
	printf("bench: pfncache.refresh_rate_churn1_exact_vs_baseline = %.2f x\n",
	       ph[2].rate / (ph[3].done ? ph[3].rate : 1 / ph[3].seconds));
	if (!ph[5].done)
		ktap_diag("no baseline refresh completed under 2 churn threads: the ratio below is a lower bound");
	printf("bench: pfncache.refresh_rate_churn2_exact_vs_baseline = %.2f x\n",
	       ph[4].rate / (ph[5].done ? ph[5].rate : 1 / ph[5].seconds));
	for (int i = 0; i < 6; i++)
		printf("bench: pfncache.refresh_p99_%s%s = %.0f ns\n", pname[i], i & 1 ? "_baseline" : "",
		       ph[i].p99);
	printf("bench: pfncache.refresh_p99_churn1_vs_quiet = %.2f x\n", ph[2].p99 / ph[0].p99);
	printf("bench: pfncache.refresh_p99_churn2_vs_quiet = %.2f x\n", ph[4].p99 / ph[0].p99);
	printf("bench: pfncache.refresh_p99_churn1_vs_quiet_baseline = %.2f x\n", ph[3].p99 / ph[1].p99);
	printf("bench: pfncache.refresh_p99_quiet_exact_vs_baseline = %.2f x\n", ph[0].p99 / ph[1].p99);
	for (int i = 2; i < 6; i++)
		printf("bench: pfncache.refresh_interrupted_%s%s = %.1f %%\n", pname[i], i & 1 ? "_baseline" : "",
		       100.0 * ph[i].eintr / (ph[i].done + ph[i].eintr ? ph[i].done + ph[i].eintr : 1));
	ok = ph[2].retries == 0 && !ph[2].eintr;
	ktap_result(ok, "perf_exact_rule_no_retries_under_churn (%llu retries, %llu EINTR)",
		    (unsigned long long)ph[2].retries, (unsigned long long)ph[2].eintr);
	ok = ph[4].retries == 0 && !ph[4].eintr;
	ktap_result(ok, "perf_exact_rule_no_retries_under_churn2 (%llu retries, %llu EINTR)",
		    (unsigned long long)ph[4].retries, (unsigned long long)ph[4].eintr);
	gpc_destroy(e);
	gpc_destroy(b);
	close(vm);
	close(dev);
	free(lat);
	return ktap_finish();
}

int main(int argc, char **argv)
{
	const char *env = getenv("KVMMU_PERF");
	int perf = (env && !strcmp(env, "1")) || (argc > 1 && !strcmp(argv[1], "--perf"));

	pthread_t wd;

	/* A wait that never ends must not hang the run. */
	start_thread(&wd, watchdog, NULL);
	return perf ? perf_mode() : check_mode();
}
