// SPDX-License-Identifier: GPL-2.0
/*
 * Stage-2 fault-in and invalidation cost.
 *
 * Check mode (default; make check): a small version that can fail.
 * KVMMU_PRE_FAULT of 8 MiB of base pages maps every page writable with
 * base-page leaves pointing at the pages pagemap reports and counts its
 * faults; the same over THP-backed memory maps blocks (leaves[1] > 0)
 * where THP is available; invalidating one page drops exactly one leaf,
 * invalidating all drops all; PRE_FAULT's bad input gets its errors.
 *
 * Perf mode (`fault_perf_test --perf` or KVMMU_PERF=1; make bench):
 *   bench: mmu.fault_in_4k = <pages/s> pages/s
 *	PRE_FAULT (write) of 256 MiB of populated MADV_NOHUGEPAGE memory
 *   bench: mmu.fault_in_thp = <pages/s> pages/s
 *	the same over 256 MiB of MADV_HUGEPAGE memory, in base pages
 *   bench: mmu.fault_in_thp_vs_4k = <ratio> x
 *   bench: mmu.invalidate_4k_of_<S> = <ns> ns
 *	median MADV_DONTNEED of one base page of a VM with S of THP-backed
 *	memory mapped (S = 1g if it fits the machine, else 512m, else 256m)
 *   bench: mmu.invalidate_all_<S> = <ns> ns
 *	MADV_DONTNEED of all S (median of 3)
 *   bench: mmu.invalidate_ratio_all_vs_4k = <ratio> x
 * Only the stage-2 fault-in is timed: the memory is populated by the
 * process first. "4k" names the base page, which is 64K on ppc64le.
 *
 * Faults under unrelated invalidations (issue 10, defect 3): the main
 * thread faults the pages of an 8 MiB slot in one at a time (PRE_FAULT,
 * write, of one base page; the slot is dropped with MADV_DONTNEED before
 * each pass, so every fault allocates a host page: a real host fault),
 * while 0, 1 or 4 threads mmap, touch and munmap anonymous regions that
 * never overlap the slot (heap churn: each munmap is an invalidation of
 * the mm, which the notifier hands to the VM). Only the PRE_FAULT calls are
 * timed, for CHURN_SECONDS of them each, first with the range-exact retry
 * rule, then with the legacy rule (the per-VM debugfs knob
 * kvmmu/vm-<pid>-<n>/legacy_retry, root only) as the baseline:
 *   bench: mmu.fault_rate_{quiet,churn1,churn4,churn1_nice,churn4_nice,
 *          present_quiet,present_churn1,present_churn4}[_legacy] = <faults/s> faults/s
 *   bench: mmu.fault_rate_<churn>_vs_quiet[_legacy] = <ratio> x
 * (goal: churn >= 0.5x quiet with the range-exact rule). The churn threads
 * also compete for the guest's two CPUs and for the mmap lock, which the
 * slow path of every such fault takes: at equal priority the ratio is not
 * the retry rule's alone. The _nice figures run the churn at nice 19, so
 * the CPU goes to the faults and what remains is the rule and the mmap
 * lock. The present_ figures keep the host pages (only the stage-2 leaves
 * are dropped between passes), so faults take GUP-fast and not the mmap
 * lock; they are compared with present_quiet. The retries per fault of
 * each run are printed as diagnostics.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../lib/ktap.h"
#include "../lib/kvmmu_util.h"

static int vm, vm_errno;
static long pg;
static int root;

static char *populated(uint64_t size, uint64_t align, int advice)
{
	char *p = kvmmu_mmap_aligned(size, align);

	if (!p) {
		ktap_diag("mmap %llu: %s", (unsigned long long)size, strerror(errno));
		return NULL;
	}
	madvise(p, size, advice);
	for (uint64_t off = 0; off < size; off += pg)
		p[off] = (char)(off / pg + 1);
	return p;
}

static int pre_fault_all(uint64_t gpa, uint64_t size)
{
	if (kvmmu_pre_fault_all(vm, gpa, size, KVMMU_ACCESS_WRITE)) {
		ktap_diag("PRE_FAULT 0x%llx+0x%llx: %s", (unsigned long long)gpa,
			  (unsigned long long)size, strerror(errno));
		return -1;
	}
	return 0;
}

static int pre_fault_raw(uint64_t gpa, uint64_t size, uint32_t flags, uint32_t pad, uint64_t res)
{
	struct kvmmu_pre_fault p;

	memset(&p, 0, sizeof(p));
	p.gpa = gpa;
	p.size = size;
	p.flags = flags;
	p.pad = pad;
	p.reserved[1] = res;
	return ioctl(vm, KVMMU_PRE_FAULT, &p);
}

static struct kvmmu_vm_stats stats(void)
{
	struct kvmmu_vm_stats st;

	if (kvmmu_get_stats(vm, &st))
		ktap_diag("GET_STATS: %s", strerror(errno));
	return st;
}

/* This VM's debugfs knob kvmmu/vm-<pid>-<n>/legacy_retry (one VM per process). */
static char knob[300];

static int find_knob(void)
{
	char prefix[32];
	struct dirent *e;
	DIR *d = opendir("/sys/kernel/debug/kvmmu");
	int n = 0;

	if (!d)
		return -1;
	snprintf(prefix, sizeof(prefix), "vm-%d-", (int)getpid());
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, prefix, strlen(prefix)) && ++n == 1)
			snprintf(knob, sizeof(knob), "/sys/kernel/debug/kvmmu/%s/legacy_retry",
				 e->d_name);
	closedir(d);
	return n == 1 ? 0 : -1;
}

/* Writes @val to the knob: 0, or -1 with errno. */
static int set_legacy(const char *val)
{
	int fd = open(knob, O_WRONLY | O_CLOEXEC), e;
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	e = errno;
	close(fd);
	errno = e;
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

/* Every page of [gpa, + size) maps the process's page @p writable. */
static int all_mapped(uint64_t gpa, const char *p, uint64_t size, uint64_t leaf)
{
	for (uint64_t off = 0; off < size; off += pg) {
		struct kvmmu_translation t;
		uint64_t host = root ? kvmmu_host_pfn(p + off) : 0;

		if (kvmmu_translate(vm, gpa + off, &t) || !t.mapped || t.size != leaf ||
		    !(t.prot & KVMMU_PROT_WRITE) || t.pfn != host) {
			ktap_diag("gpa 0x%llx: mapped %u size 0x%llx prot 0x%x pfn 0x%llx (pagemap 0x%llx)",
				  (unsigned long long)(gpa + off), t.mapped, (unsigned long long)t.size,
				  t.prot, (unsigned long long)t.pfn, (unsigned long long)host);
			return 0;
		}
	}
	return 1;
}

static int check_mode(void)
{
	const uint64_t size = 8ull << 20, npages = size / pg;
	const uint64_t g0 = 4ull << 30, g1 = 8ull << 30, g2 = 12ull << 30;
	struct kvmmu_vm_stats a, b;
	int ok;

	ktap_start(24);
	if (!ktap_result(vm >= 0, "create_vm")) {
		ktap_diag("%s", strerror(vm_errno));
		return ktap_finish();
	}

	/* Base pages. */
	char *m = populated(size, pg, MADV_NOHUGEPAGE);
	if (!m || kvmmu_set_region(vm, 0, 0, g0, size, m))
		return 1;
	a = stats();
	KTAP_EXPECT_ERRNO(kvmmu_pre_fault(vm, g0, size, KVMMU_ACCESS_WRITE), 0, "pre_fault_4k");
	b = stats();
	ok = b.faults - a.faults >= npages && b.leaves[0] - a.leaves[0] == npages;
	ktap_result(ok, "pre_fault_4k_stats (faults +%llu, leaves[0] +%llu, pages %llu)",
		    (unsigned long long)(b.faults - a.faults),
		    (unsigned long long)(b.leaves[0] - a.leaves[0]), (unsigned long long)npages);
	ktap_result(all_mapped(g0, m, size, pg), "pre_fault_4k_maps_every_page_writable");
	ok = kvmmu_pre_fault(vm, g0, size, KVMMU_ACCESS_WRITE) == 0;
	ktap_result(ok && stats().leaves[0] == b.leaves[0], "pre_fault_again_changes_nothing");

	a = stats();
	madvise(m + 17 * pg, pg, MADV_DONTNEED);
	b = stats();
	struct kvmmu_translation t;
	ok = b.leaves[0] == a.leaves[0] - 1 && b.pages_unmapped - a.pages_unmapped == 1 &&
	     kvmmu_translate(vm, g0 + 17 * pg, &t) == 0 && !t.mapped &&
	     b.invalidate_range_start == b.invalidate_range_end;
	ktap_result(ok, "invalidate_one_page_drops_one_leaf (leaves %llu -> %llu, unmapped +%llu)",
		    (unsigned long long)a.leaves[0], (unsigned long long)b.leaves[0],
		    (unsigned long long)(b.pages_unmapped - a.pages_unmapped));
	munmap(m, size);
	a = b;
	b = stats();
	ok = b.leaves[0] == 0 && b.pages_unmapped - a.pages_unmapped == npages - 1 &&
	     b.invalidate_range_start == b.invalidate_range_end;
	ktap_result(ok, "invalidate_all_drops_all (leaves %llu, unmapped +%llu)",
		    (unsigned long long)b.leaves[0],
		    (unsigned long long)(b.pages_unmapped - a.pages_unmapped));
	KTAP_EXPECT_ERRNO(kvmmu_pre_fault(vm, g0, size, 0), EFAULT, "pre_fault_unbacked_EFAULT");

	/* Bad input. */
	char *sm = populated(4 * pg, pg, MADV_NOHUGEPAGE);
	if (!sm || kvmmu_set_region(vm, 2, 0, g2, 4 * pg, sm))
		return 1;
	KTAP_EXPECT_ERRNO(pre_fault_raw(g2, 0, 0, 0, 0), EINVAL, "size_0_EINVAL");
	KTAP_EXPECT_ERRNO(pre_fault_raw(g2 + 8, pg, 0, 0, 0), EINVAL, "gpa_misaligned_EINVAL");
	KTAP_EXPECT_ERRNO(pre_fault_raw(g2, pg + 8, 0, 0, 0), EINVAL, "size_misaligned_EINVAL");
	KTAP_EXPECT_ERRNO(pre_fault_raw(g2, KVMMU_PRE_FAULT_MAX + pg, 0, 0, 0), EINVAL,
			  "size_over_1g_EINVAL");
	KTAP_EXPECT_ERRNO(pre_fault_raw(g2, pg, 1u << 1, 0, 0), EINVAL, "flag_bit1_EINVAL");
	KTAP_EXPECT_ERRNO(pre_fault_raw(g2, pg, 1u << 31, 0, 0), EINVAL, "flag_bit31_EINVAL");
	KTAP_EXPECT_ERRNO(pre_fault_raw(g2, pg, 0, 1, 0), EINVAL, "pad_EINVAL");
	KTAP_EXPECT_ERRNO(pre_fault_raw(g2, pg, 0, 0, 1), EINVAL, "reserved_EINVAL");
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_PRE_FAULT, NULL), EFAULT, "null_arg_EFAULT");
	KTAP_EXPECT_ERRNO(pre_fault_raw(16ull << 30, pg, 0, 0, 0), ENOENT, "no_slot_ENOENT");
	KTAP_EXPECT_ERRNO(pre_fault_raw(g2 + 2 * pg, 4 * pg, 0, 0, 0), ENOENT,
			  "past_slot_end_ENOENT");
	ok = stats().leaves[0] <= 2 && kvmmu_translate(vm, g2, &t) == 0 && !t.mapped;
	ktap_result(ok, "invalid_pre_faults_mapped_nothing_else");

	/* The benchmarks' retry-rule knob: root only, write-only, 0 or 1. */
	if (!root) {
		ktap_skip("legacy_retry_knob (not root)");
	} else {
		struct stat sb;
		int e1, e2;

		ok = find_knob() == 0 && stat(knob, &sb) == 0 && (sb.st_mode & 0777) == 0200;
		ok = ok && set_legacy("1") == 0 && set_legacy("0") == 0;
		e1 = set_legacy("2") == -1 ? errno : 0;
		e2 = set_legacy("-1") == -1 ? errno : 0;
		ok = ok && e1 == EINVAL && e2 == EINVAL;
		ktap_result(ok, "legacy_retry_knob (%s: 0/1 taken, 2 -> %s, -1 -> %s)", knob,
			    strerror(e1), strerror(e2));
	}

	/* THP-backed memory. */
	uint64_t H = kvmmu_thp_size();
	unsigned int lvl = 0;
	uint64_t block = H ? kvmmu_s2_block_le(H, &lvl) : 0;
	uint64_t tsize = H && 2 * H > size ? 2 * H : size;
	char *h = H && H <= (64ull << 20) ? populated(tsize, H, MADV_HUGEPAGE) : NULL;
	uint64_t chunks = 0;
	for (uint64_t off = 0; h && off < tsize; off += H)
		chunks += kvmmu_is_thp_mapped(h + off, H);
	if (!h || !chunks || !lvl) {
		ktap_diag("THP size %llu, %llu THPs, stage-2 block level %u",
			  (unsigned long long)H, (unsigned long long)chunks, lvl);
		ktap_skip("pre_fault_thp (no THP backing)");
		ktap_skip("pre_fault_thp_block_leaves");
		ktap_skip("pre_fault_thp_translate");
		return ktap_finish();
	}
	if (kvmmu_set_region(vm, 1, 0, g1, tsize, h))
		return 1;
	a = stats();
	KTAP_EXPECT_ERRNO(kvmmu_pre_fault(vm, g1, tsize, KVMMU_ACCESS_WRITE), 0, "pre_fault_thp");
	b = stats();
	ok = b.leaves[lvl] - a.leaves[lvl] == chunks * (H / block) && b.faults > a.faults;
	ktap_result(ok, "pre_fault_thp_block_leaves (leaves[%u] +%llu for %llu THPs)", lvl,
		    (unsigned long long)(b.leaves[lvl] - a.leaves[lvl]), (unsigned long long)chunks);
	ok = 1;
	for (uint64_t off = 0; off < tsize; off += H)
		if (kvmmu_is_thp_mapped(h + off, H))
			ok &= all_mapped(g1 + off, h + off, H, block);
	ktap_result(ok, "pre_fault_thp_translate (block 0x%llx, pfns as pagemap)",
		    (unsigned long long)block);
	munmap(h, tsize);
	return ktap_finish();
}

/* Heap churn elsewhere in the process: mmap, touch, munmap. */
struct churn {
	pthread_t th;
	uint64_t ops;
	int failed;
	int nice;	/* run at nice 19: background churn, the CPU goes to faults */
};
static int churn_stop;

static void *churn_main(void *arg)
{
	struct churn *c = arg;
	const size_t len = 16 * pg;

	if (c->nice && setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19))
		c->failed = 1;
	while (!__atomic_load_n(&churn_stop, __ATOMIC_RELAXED)) {
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED) {
			c->failed = 1;
			break;
		}
		p[0] = 1; /* a block is used before it is freed */
		if (munmap(p, len)) {
			c->failed = 1;
			break;
		}
		c->ops++;
	}
	return NULL;
}

#define CHURN_SECONDS 0.5

/*
 * Faults per second of time spent in PRE_FAULT, one base page each, over
 * [@gpa, + @size) backed by @m, with @nchurn churn threads and the retry
 * rule @legacy. 0, or -1 after a diagnostic.
 */
static int fault_rate(char *m, uint64_t gpa, uint64_t size, int nchurn, int nice, int present,
		      int legacy, double *rate, double *retries)
{
	struct churn c[4];
	struct kvmmu_vm_stats a, b;
	uint64_t in_faults = 0, faults = 0, ops = 0;
	const uint64_t budget = (uint64_t)(CHURN_SECONDS * 1e9);
	int r = 0, failed = 0;

	/* Without the knob (not root) only the default, range-exact rule. */
	if ((legacy || knob[0]) && set_legacy(legacy ? "1" : "0")) {
		ktap_diag("%s: %s", knob, strerror(errno));
		return -1;
	}
	memset(c, 0, sizeof(c));
	__atomic_store_n(&churn_stop, 0, __ATOMIC_RELAXED);
	for (int i = 0; i < nchurn; i++) {
		c[i].nice = nice;
		if (pthread_create(&c[i].th, NULL, churn_main, &c[i])) {
			ktap_diag("pthread_create failed");
			nchurn = i;
			r = -1;
			break;
		}
	}
	for (uint64_t off = 0; present && off < size; off += pg)
		m[off] = 1; /* every host page there, writable */
	a = stats();
	while (!r && in_faults < budget) {
		/*
		 * Every fault of this pass allocates its host page (GUP's slow
		 * path, under the mmap lock munmap takes for write); or, with
		 * @present, the host pages stay and only the stage-2 leaves go
		 * (the slot is deleted and created again, outside the timing),
		 * so faults find their page with GUP-fast, as a vCPU mostly does.
		 */
		if (present)
			r = kvmmu_delete_region(vm, 0) || kvmmu_set_region(vm, 0, 0, gpa, size, m);
		else
			r = madvise(m, size, MADV_DONTNEED);
		for (uint64_t off = 0; !r && off < size && in_faults < budget; off += pg) {
			uint64_t t0 = kvmmu_now_ns();

			r = kvmmu_pre_fault(vm, gpa + off, pg, KVMMU_ACCESS_WRITE);
			in_faults += kvmmu_now_ns() - t0;
			faults += !r;
		}
	}
	if (r)
		ktap_diag("churn %d legacy %d: fault: %s", nchurn, legacy, strerror(errno));
	b = stats();
	__atomic_store_n(&churn_stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < nchurn; i++) {
		pthread_join(c[i].th, NULL);
		ops += c[i].ops;
		failed |= c[i].failed;
	}
	*rate = faults / (in_faults / 1e9);
	*retries = faults ? (double)(b.fault_retries - a.fault_retries) / faults : 0;
	ktap_diag("churn %d%s%s, %s rule: %llu faults in %.3fs, %.3f retries per fault, %llu munmaps",
		  nchurn, nice ? " (nice 19)" : "", present ? " (pages present)" : "",
		  legacy ? "legacy" : "exact",
		  (unsigned long long)faults, in_faults / 1e9, *retries, (unsigned long long)ops);
	if (failed)
		ktap_diag("churn %d: mmap/munmap failed", nchurn);
	if (legacy)
		set_legacy("0");
	return r || failed || !faults || (nchurn && !ops) ? -1 : 0;
}

static int churn_figures(void)
{
	const uint64_t size = 8ull << 20, g0 = 4ull << 30;
	/*
	 * Churn at the faulting thread's priority, and at nice 19: on a small
	 * machine the first also measures how much CPU the churners take
	 * (the same for both rules); the second leaves the CPU to the faults,
	 * so what is left is the retry rule (and the mmap lock munmap takes).
	 */
	enum { N = 8 };
	static const int nchurn[N] = { 0, 1, 4, 1, 4, 0, 1, 4 };
	static const int niced[N] = { 0, 0, 0, 1, 1, 0, 0, 0 };
	static const int present[N] = { 0, 0, 0, 0, 0, 1, 1, 1 };
	static const char *const name[N] = { "quiet", "churn1", "churn4", "churn1_nice", "churn4_nice",
					     "present_quiet", "present_churn1", "present_churn4" };
	double rate[2][N], retries;
	int rules = 2, ok = 1;

	if (!root || find_knob()) {
		ktap_diag("no legacy_retry knob (root: %d): the legacy baseline is not measured", root);
		knob[0] = 0;
		rules = 1;
	}
	char *m = populated(size, pg, MADV_NOHUGEPAGE);
	if (!m || kvmmu_set_region(vm, 0, 0, g0, size, m))
		return 0;
	/* Interleaved, so that drift in the machine's speed hits both rules. */
	for (int n = 0; n < N && ok; n++)
		for (int legacy = 0; legacy < rules && ok; legacy++)
			ok = fault_rate(m, g0, size, nchurn[n], niced[n], present[n], legacy,
					&rate[legacy][n], &retries) == 0;
	munmap(m, size);
	kvmmu_delete_region(vm, 0);
	if (!ktap_result(ok, "fault_rate_under_churn"))
		return 0;
	for (int legacy = 0; legacy < rules; legacy++) {
		const char *sfx = legacy ? "_legacy" : "";

		for (int n = 0; n < N; n++)
			printf("bench: mmu.fault_rate_%s%s = %.0f faults/s\n", name[n], sfx,
			       rate[legacy][n]);
		/* Each against the quiet run of its own kind. */
		for (int n = 1; n < N; n++)
			if (n != 5)
				printf("bench: mmu.fault_rate_%s_vs_quiet%s = %.2f x\n", name[n], sfx,
				       rate[legacy][n] / rate[legacy][present[n] ? 5 : 0]);
	}
	return 1;
}

static int perf_mode(void)
{
	const uint64_t size = 256ull << 20, npages = size / pg;
	const uint64_t g0 = 4ull << 30;
	uint64_t t0, t1;
	struct kvmmu_vm_stats st;

	ktap_start(5);
	if (!ktap_result(vm >= 0, "create_vm")) {
		ktap_diag("%s", strerror(vm_errno));
		return ktap_finish();
	}
	ktap_diag("base page %ld bytes", pg);

	/* 256 MiB of base pages. */
	char *m = populated(size, pg, MADV_NOHUGEPAGE);
	if (!m || kvmmu_set_region(vm, 0, 0, g0, size, m))
		return 1;
	t0 = kvmmu_now_ns();
	int r = pre_fault_all(g0, size);
	t1 = kvmmu_now_ns();
	double rate_4k = npages / ((t1 - t0) / 1e9);
	st = stats();
	if (ktap_result(!r && st.leaves[0] == npages, "fault_in_4k (leaves[0] %llu)",
			(unsigned long long)st.leaves[0]))
		printf("bench: mmu.fault_in_4k = %.0f pages/s\n", rate_4k);
	munmap(m, size);
	kvmmu_delete_region(vm, 0);

	/* 256 MiB of THP-backed memory, congruent with its guest addresses. */
	uint64_t H = kvmmu_thp_size();
	uint64_t align = H && H <= size ? H : (2ull << 20);
	m = populated(size, align, MADV_HUGEPAGE);
	if (!m || kvmmu_set_region(vm, 0, 0, g0, size, m))
		return 1;
	t0 = kvmmu_now_ns();
	r = pre_fault_all(g0, size);
	t1 = kvmmu_now_ns();
	double rate_thp = npages / ((t1 - t0) / 1e9);
	st = stats();
	ktap_diag("THP size %llu; leaves %llu %llu %llu", (unsigned long long)H,
		  (unsigned long long)st.leaves[0], (unsigned long long)st.leaves[1],
		  (unsigned long long)st.leaves[2]);
	if (ktap_result(!r, "fault_in_thp")) {
		printf("bench: mmu.fault_in_thp = %.0f pages/s\n", rate_thp);
		printf("bench: mmu.fault_in_thp_vs_4k = %.2f x\n", rate_thp / rate_4k);
	}
	munmap(m, size);
	kvmmu_delete_region(vm, 0);

	/* Invalidation in a VM with S of THP-backed memory mapped. */
	uint64_t avail = kvmmu_mem_available(), s;
	const char *name;
	if (avail >= (1ull << 30) + (192ull << 20)) {
		s = 1ull << 30;
		name = "1g";
	} else if (avail >= (512ull << 20) + (160ull << 20)) {
		s = 512ull << 20;
		name = "512m";
	} else {
		s = 256ull << 20;
		name = "256m";
	}
	ktap_diag("MemAvailable %llu MiB: invalidation VM maps %s", (unsigned long long)(avail >> 20),
		  name);
	enum { REPS = 3, SAMPLES = 16 };
	uint64_t one[REPS * SAMPLES], all[REPS];
	int n1 = 0, ok = 1;
	const uint64_t stride = s / SAMPLES;
	for (int rep = 0; rep < REPS && ok; rep++) {
		m = populated(s, align, MADV_HUGEPAGE);
		ok = m && kvmmu_set_region(vm, 0, 0, g0, s, m) == 0 && pre_fault_all(g0, s) == 0;
		if (!ok)
			break;
		/* One base page in each of SAMPLES different mapped blocks. */
		for (int i = 0; i < SAMPLES; i++) {
			char *page = m + i * stride + (uint64_t)(rep + 1) * 3 * pg;

			t0 = kvmmu_now_ns();
			ok &= madvise(page, pg, MADV_DONTNEED) == 0;
			t1 = kvmmu_now_ns();
			one[n1++] = t1 - t0;
		}
		t0 = kvmmu_now_ns();
		ok &= madvise(m, s, MADV_DONTNEED) == 0;
		t1 = kvmmu_now_ns();
		all[rep] = t1 - t0;
		st = stats();
		ok &= st.leaves[0] + st.leaves[1] + st.leaves[2] == 0;
		munmap(m, s);
		kvmmu_delete_region(vm, 0);
	}
	if (ktap_result(ok, "invalidate_%s", name)) {
		uint64_t ns1 = median(one, n1), nsall = median(all, REPS);

		printf("bench: mmu.invalidate_4k_of_%s = %llu ns\n", name, (unsigned long long)ns1);
		printf("bench: mmu.invalidate_all_%s = %llu ns\n", name, (unsigned long long)nsall);
		printf("bench: mmu.invalidate_ratio_all_vs_4k = %.1f x\n", (double)nsall / ns1);
	}

	churn_figures();
	return ktap_finish();
}

int main(int argc, char **argv)
{
	const char *env = getenv("KVMMU_PERF");
	int perf = (env && !strcmp(env, "1")) || (argc > 1 && !strcmp(argv[1], "--perf"));
	int dev, r;

	pg = kvmmu_page_size();
	root = geteuid() == 0;
	dev = kvmmu_open();
	vm = dev >= 0 ? kvmmu_create_vm(dev) : -1;
	vm_errno = errno;
	r = perf ? perf_mode() : check_mode();
	close(vm);
	close(dev);
	return r;
}
