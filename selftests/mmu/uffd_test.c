// SPDX-License-Identifier: GPL-2.0
/*
 * Guest memory managed by userfaultfd (MISSING mode), the post-copy
 * pattern: a handler thread reads the fault events and fills each missing
 * page with UFFDIO_COPY. A guest access to a missing page (KVMMU_GPA_ACCESS
 * read and write, KVMMU_PRE_FAULT read and write) must wait for the handler
 * and then see the handler's bytes (and the process the guest's), with one
 * fault event per page, of the right kind. An access left unresolved must
 * end with EINTR when a signal (handler installed without SA_RESTART)
 * arrives, and a later access, once the page is filled, must work.
 *
 * SKIPs when userfaultfd is unavailable (ENOSYS: not built in; EPERM: not
 * allowed to this user).
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/userfaultfd.h>

#include "../lib/ktap.h"
#include "../lib/kvmmu_util.h"

#define NPAGES 16
#define MAX_EVENTS 64
#define PLANNED 19

static int vm, uffd;
static long pg;
static char *mem;
static const uint64_t g0 = 1ull << 30;

/* The handler thread's state, under ev_lock. */
static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	uint64_t addr;
	uint64_t flags;
} events[MAX_EVENTS];
static int nevents;
static int resolve = 1;		/* fill pages as their faults arrive */
static int copy_errors;
static int stop;

/* Pattern word @w of page @i: what the handler fills the page with. */
static uint64_t pat(uint64_t i, uint64_t w)
{
	return 0x5eedull << 48 | (i & 0xffff) << 32 | (w & 0xffffffff);
}

static void fill_pattern(void *buf, uint64_t i)
{
	uint64_t *p = buf;

	for (uint64_t w = 0; w < (uint64_t)pg / 8; w++)
		p[w] = pat(i, w);
}

static int is_pattern(const void *buf, uint64_t i)
{
	const uint64_t *p = buf;

	for (uint64_t w = 0; w < (uint64_t)pg / 8; w++)
		if (p[w] != pat(i, w))
			return 0;
	return 1;
}

/* UFFDIO_COPY of page @i's pattern; 0 or -errno. */
static int copy_page(uint64_t i)
{
	struct uffdio_copy c;
	void *src = aligned_alloc(pg, pg);
	int r;

	fill_pattern(src, i);
	memset(&c, 0, sizeof(c));
	c.dst = (uintptr_t)(mem + i * pg);
	c.src = (uintptr_t)src;
	c.len = pg;
	r = ioctl(uffd, UFFDIO_COPY, &c) ? -errno : 0;
	free(src);
	return r;
}

static void *handler(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		struct pollfd p = {.fd = uffd, .events = POLLIN};
		struct uffd_msg msg;

		if (poll(&p, 1, 20) <= 0)
			continue;
		if (read(uffd, &msg, sizeof(msg)) != sizeof(msg))
			continue;
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		uint64_t addr = msg.arg.pagefault.address & ~(uint64_t)(pg - 1);
		pthread_mutex_lock(&ev_lock);
		if (nevents < MAX_EVENTS) {
			events[nevents].addr = addr;
			events[nevents].flags = msg.arg.pagefault.flags;
		}
		nevents++;
		int fill = resolve;
		pthread_mutex_unlock(&ev_lock);
		if (fill && copy_page((addr - (uintptr_t)mem) / pg) && errno != EEXIST) {
			pthread_mutex_lock(&ev_lock);
			copy_errors++;
			pthread_mutex_unlock(&ev_lock);
		}
	}
	return NULL;
}

static int events_now(void)
{
	pthread_mutex_lock(&ev_lock);
	int n = nevents;
	pthread_mutex_unlock(&ev_lock);
	return n;
}

/*
 * Events since @from: exactly one per page of [first, first + n), each a
 * write fault iff @write. Diagnoses what differs.
 */
static int events_are(int from, uint64_t first, uint64_t n, int write)
{
	int ok = 1;

	pthread_mutex_lock(&ev_lock);
	if (nevents - from != (int)n) {
		ktap_diag("%d fault events, expected %llu", nevents - from, (unsigned long long)n);
		ok = 0;
	}
	for (int e = from; ok && e < nevents && e < MAX_EVENTS; e++) {
		uint64_t i = (events[e].addr - (uintptr_t)mem) / pg;
		int w = !!(events[e].flags & UFFD_PAGEFAULT_FLAG_WRITE);
		int dup = 0;

		for (int f = from; f < e; f++)
			dup |= events[f].addr == events[e].addr;
		if (i < first || i >= first + n || w != write || dup) {
			ktap_diag("event %d: page %llu, %s%s", e, (unsigned long long)i,
				  w ? "write" : "read", dup ? ", again" : "");
			ok = 0;
		}
	}
	if (copy_errors) {
		ktap_diag("%d UFFDIO_COPY failures", copy_errors);
		ok = 0;
	}
	pthread_mutex_unlock(&ev_lock);
	return ok;
}

/* A guest access run on its own thread, to be interrupted. */
struct blocked {
	pthread_t th;
	int pre_fault;		/* PRE_FAULT (else GPA_ACCESS read) */
	uint64_t page;
	int ret, err;
	int done;
	char buf[64];
};

static volatile sig_atomic_t signals_seen;

static void on_usr1(int sig)
{
	(void)sig;
	signals_seen++;
}

static void *blocked_access(void *arg)
{
	struct blocked *b = arg;
	uint64_t gpa = g0 + b->page * pg;

	b->ret = b->pre_fault ? kvmmu_pre_fault(vm, gpa, pg, 0)
			      : kvmmu_gpa_read(vm, gpa, b->buf, sizeof(b->buf));
	b->err = errno;
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000};

	nanosleep(&ts, NULL);
}

/*
 * Starts an access of page @page that finds it missing with nobody filling
 * it, waits for its fault event, then signals the thread: the access must
 * end with EINTR. Fills the page afterwards in any case (so the thread
 * ends), then checks an access now works.
 */
static void interrupted(uint64_t page, int pre_fault)
{
	struct blocked b;
	const char *what = pre_fault ? "pre_fault" : "gpa_read";
	int from = events_now(), waited = 0, got_event;

	memset(&b, 0, sizeof(b));
	b.page = page;
	b.pre_fault = pre_fault;
	signals_seen = 0;
	pthread_create(&b.th, NULL, blocked_access, &b);
	/* The handler sees the fault: the access is waiting in the kernel. */
	while (events_now() == from && !__atomic_load_n(&b.done, __ATOMIC_ACQUIRE) && waited < 5000)
		sleep_ms(10), waited += 10;
	got_event = events_now() > from;
	sleep_ms(100);
	pthread_kill(b.th, SIGUSR1);
	for (waited = 0; !__atomic_load_n(&b.done, __ATOMIC_ACQUIRE) && waited < 5000; waited += 10)
		sleep_ms(10);
	int ended = __atomic_load_n(&b.done, __ATOMIC_ACQUIRE);
	/* Unblock it if it still waits (the test fails then). */
	copy_page(page);
	pthread_join(b.th, NULL);
	if (!got_event)
		ktap_diag("%s of a missing page: no fault event (ret %d, %s)", what, b.ret,
			  b.ret ? strerror(b.err) : "-");
	if (!ended)
		ktap_diag("%s did not end on the signal", what);
	ktap_result(got_event && ended && b.ret == -1 && b.err == EINTR && signals_seen == 1,
		    "%s_unresolved_ends_with_EINTR_on_signal", what);
	if (b.ret != -1 || b.err != EINTR)
		ktap_diag("got %d (%s), signals %d", b.ret, b.ret ? strerror(b.err) : "-",
			  (int)signals_seen);

	char buf[64];
	int ok;
	if (pre_fault) {
		struct kvmmu_translation t;
		ok = kvmmu_pre_fault(vm, g0 + page * pg, pg, 0) == 0 &&
		     kvmmu_translate(vm, g0 + page * pg, &t) == 0 && t.mapped &&
		     kvmmu_gpa_read(vm, g0 + page * pg, buf, sizeof(buf)) == 0;
	} else {
		ok = kvmmu_gpa_read(vm, g0 + page * pg, buf, sizeof(buf)) == 0;
	}
	ok = ok && is_pattern(mem + page * pg, page) && !memcmp(buf, mem + page * pg, sizeof(buf));
	if (!ok)
		ktap_diag("%s after filling: %s", what, strerror(errno));
	ktap_result(ok, "%s_after_filling_the_page_works", what);
}

int main(void)
{
	struct uffdio_api api;
	struct uffdio_register reg;
	struct kvmmu_translation t;
	pthread_t th;
	int dev, ok, from;

	alarm(300); /* a wait that never ends must not hang the run */
	pg = kvmmu_page_size();
	ktap_start(PLANNED);
	dev = kvmmu_open();
	vm = dev >= 0 ? kvmmu_create_vm(dev) : -1;
	if (!ktap_result(vm >= 0, "create_vm")) {
		ktap_diag("%s", strerror(errno));
		return ktap_finish();
	}

	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0 && (errno == ENOSYS || errno == EPERM)) {
		ktap_diag("userfaultfd: %s", strerror(errno));
		while (ktap_n < PLANNED)
			ktap_skip("userfaultfd unavailable");
		return ktap_finish();
	}
	memset(&api, 0, sizeof(api));
	api.api = UFFD_API;
	ok = uffd >= 0 && ioctl(uffd, UFFDIO_API, &api) == 0;
	if (!ktap_result(ok, "userfaultfd_api")) {
		ktap_diag("%s", strerror(errno));
		return ktap_finish();
	}

	mem = mmap(NULL, NPAGES * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	madvise(mem, NPAGES * pg, MADV_NOHUGEPAGE);
	memset(&reg, 0, sizeof(reg));
	reg.range.start = (uintptr_t)mem;
	reg.range.len = NPAGES * pg;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	ok = mem != MAP_FAILED && ioctl(uffd, UFFDIO_REGISTER, &reg) == 0 &&
	     (reg.ioctls & (1ull << _UFFDIO_COPY)) &&
	     kvmmu_set_region(vm, 0, 0, g0, NPAGES * pg, mem) == 0;
	if (!ktap_result(ok, "register_and_create_slot")) {
		ktap_diag("%s", strerror(errno));
		return ktap_finish();
	}
	pthread_create(&th, NULL, handler, NULL);

	/* (a) The handler fills pages; guest accesses wait for it. */
	char *buf = malloc(4 * pg), *want = malloc(4 * pg);

	from = events_now();
	ok = kvmmu_gpa_read(vm, g0, buf, pg) == 0;
	if (!ok)
		ktap_diag("GPA_ACCESS read: %s", strerror(errno));
	ktap_result(ok && is_pattern(buf, 0) && is_pattern(mem, 0), "gpa_read_waits_for_handler_fill");
	ktap_result(events_are(from, 0, 1, 0), "gpa_read_one_read_fault_event");

	/* Across a page boundary: two faults, in order. */
	from = events_now();
	ok = kvmmu_gpa_read(vm, g0 + 2 * pg - 16, buf, 32) == 0;
	fill_pattern(want, 1);
	fill_pattern(want + pg, 2);
	ktap_result(ok && !memcmp(buf, want + pg - 16, 32), "gpa_read_across_two_missing_pages");
	ktap_result(events_are(from, 1, 2, 0), "two_read_fault_events");

	/* A guest write: the handler fills, the write lands on top of it. */
	from = events_now();
	for (int k = 0; k < 100; k++)
		want[k] = (char)(0x80 + k);
	ok = kvmmu_gpa_write(vm, g0 + 3 * pg + 40, want, 100) == 0;
	if (!ok)
		ktap_diag("GPA_ACCESS write: %s", strerror(errno));
	fill_pattern(buf, 3);
	memcpy(buf + 40, want, 100);
	ktap_result(ok && !memcmp(mem + 3 * pg, buf, pg), "gpa_write_waits_process_sees_it");
	ktap_result(events_are(from, 3, 1, 1), "gpa_write_one_write_fault_event");

	/* PRE_FAULT, read then write. */
	from = events_now();
	ok = kvmmu_pre_fault(vm, g0 + 4 * pg, 3 * pg, 0) == 0;
	if (!ok)
		ktap_diag("PRE_FAULT: %s", strerror(errno));
	for (uint64_t i = 4; ok && i < 7; i++)
		ok = kvmmu_translate(vm, g0 + i * pg, &t) == 0 && t.mapped && is_pattern(mem + i * pg, i);
	ktap_result(ok, "pre_fault_read_waits_and_maps");
	ktap_result(events_are(from, 4, 3, 0), "pre_fault_read_fault_events");

	from = events_now();
	ok = kvmmu_pre_fault(vm, g0 + 7 * pg, 2 * pg, KVMMU_ACCESS_WRITE) == 0;
	if (!ok)
		ktap_diag("PRE_FAULT write: %s", strerror(errno));
	for (uint64_t i = 7; ok && i < 9; i++)
		ok = kvmmu_gpa_writable(vm, g0 + i * pg) == 1 && is_pattern(mem + i * pg, i);
	ktap_result(ok, "pre_fault_write_waits_and_maps_writable");
	ktap_result(events_are(from, 7, 2, 1), "pre_fault_write_fault_events");

	/* Both ways through the filled pages: process -> guest -> process. */
	from = events_now();
	memset(mem + 5 * pg, 0x3c, 64);
	ok = kvmmu_gpa_read(vm, g0 + 5 * pg, buf, 64) == 0 && !memcmp(buf, mem + 5 * pg, 64);
	memset(want, 0xc3, 64);
	ok = ok && kvmmu_gpa_write(vm, g0 + 8 * pg + 8, want, 64) == 0 &&
	     !memcmp(mem + 8 * pg + 8, want, 64) && events_now() == from;
	ktap_result(ok, "filled_pages_coherent_both_ways_no_more_events");

	/* (b) Nobody fills: a signal ends the wait with EINTR. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1; /* no SA_RESTART */
	sigaction(SIGUSR1, &sa, NULL);
	pthread_mutex_lock(&ev_lock);
	resolve = 0;
	pthread_mutex_unlock(&ev_lock);
	interrupted(10, 0);
	interrupted(11, 1);

	/* Filled again by the handler: still waits and works after that. */
	pthread_mutex_lock(&ev_lock);
	resolve = 1;
	pthread_mutex_unlock(&ev_lock);
	from = events_now();
	ok = kvmmu_gpa_read(vm, g0 + 12 * pg, buf, pg) == 0 && is_pattern(buf, 12);
	ktap_result(ok && events_are(from, 12, 1, 0), "handler_fills_after_interrupted_accesses");

	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	close(vm);
	close(uffd);
	return ktap_finish();
}
