// SPDX-License-Identifier: GPL-2.0
// The userspace implementation of include/kvmmu/platform.h, for host tests.
//
// kmalloc is malloc, so libstdc++'s operator delete can free what the core
// allocated, with fault injection and a count of live allocations. Locks
// are pthread locks plus a per-thread list of the locks held, which stands
// in for lockdep: assert_held, might_sleep, mutex_lock and GFP_KERNEL
// allocations check it and abort like the checks of a debug kernel would
// BUG or WARN.
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <sched.h>
#include <shared_mutex>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include <kvmmu/platform.h>
#include <kvmmu_host.h>
#include <kvmmu_layout.h>

namespace {

[[noreturn]] __attribute__((format(printf, 1, 2))) void die(const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	flockfile(stderr);
	fputs("kvmmu: ", stderr);
	vfprintf(stderr, fmt, args);
	fputc('\n', stderr);
	funlockfile(stderr);
	va_end(args);
	abort();
}

// --- allocation -------------------------------------------------------------

static_assert(alignof(max_align_t) >= KVMMU_KMALLOC_MINALIGN,
	      "malloc does not give KVMMU_KMALLOC_MINALIGN");

std::atomic<long> live_allocs;
// -1: no fault injection; otherwise how many allocations may still succeed.
std::atomic<long> allocs_before_failure{-1};

bool inject_failure()
{
	long n = allocs_before_failure.load();

	while (n > 0 && !allocs_before_failure.compare_exchange_weak(n, n - 1))
		;
	return n == 0;
}

bool is_pow2(size_t v) { return v && !(v & (v - 1)); }

// --- locks --------------------------------------------------------------------

// A lock's kind doubles as its magic: a lock used before init, after
// destroy or through the wrong lock type is caught.
enum Kind : unsigned {
	spin = 0x5350494e,
	rwlock = 0x52574c4b,
	mutex = 0x4d555458,
};

const char *kind_name(Kind k)
{
	switch (k) {
	case spin:
		return "spinlock";
	case rwlock:
		return "rwlock";
	case mutex:
		return "mutex";
	}
	return "lock";
}

template <class Native>
struct HostLock {
	Native native;
	const char *name;
	unsigned magic;
};

using HostMutex = HostLock<pthread_mutex_t>; // spinlock_t and struct mutex
using HostRwlock = HostLock<pthread_rwlock_t>;

static_assert(sizeof(HostMutex) <= KVMMU_SPINLOCK_SIZE &&
	      alignof(HostMutex) <= KVMMU_SPINLOCK_ALIGN, "host spinlock does not fit");
static_assert(sizeof(HostRwlock) <= KVMMU_RWLOCK_SIZE &&
	      alignof(HostRwlock) <= KVMMU_RWLOCK_ALIGN, "host rwlock does not fit");
static_assert(sizeof(HostMutex) <= KVMMU_MUTEX_SIZE &&
	      alignof(HostMutex) <= KVMMU_MUTEX_ALIGN, "host mutex does not fit");

template <class Native>
HostLock<Native> *lock_of(const void *p, Kind kind)
{
	auto *l = static_cast<HostLock<Native> *>(const_cast<void *>(p));

	if (l->magic != kind)
		die("%s at %p used uninitialised (bad magic %#x)", kind_name(kind), p, l->magic);
	return l;
}

HostMutex *mutex_of(const void *p, Kind kind) { return lock_of<pthread_mutex_t>(p, kind); }
HostRwlock *rwlock_of(const void *p) { return lock_of<pthread_rwlock_t>(p, rwlock); }

void check(int err, const char *op, const char *name)
{
	if (err)
		die("%s('%s') failed: %s", op, name, strerror(err));
}

// The locks this thread holds, innermost last (lockdep's held_locks).
struct Held {
	const void *lock;
	const char *name;
	Kind kind;
	bool write; // exclusively: spinlock, mutex, rwlock for write
};

constexpr int kMaxHeld = 48; // lockdep's MAX_LOCK_DEPTH

thread_local struct {
	Held locks[kMaxHeld];
	int depth;
} held;

const Held *find_held(const void *lock)
{
	for (int i = held.depth - 1; i >= 0; i--) {
		if (held.locks[i].lock == lock)
			return &held.locks[i];
	}
	return nullptr;
}

// Innermost non-sleeping lock held (spinlock or rwlock), or nullptr.
const Held *atomic_context()
{
	for (int i = held.depth - 1; i >= 0; i--) {
		if (held.locks[i].kind != mutex)
			return &held.locks[i];
	}
	return nullptr;
}

void sleep_check(const char *what)
{
	const Held *h = atomic_context();

	if (h)
		die("BUG: sleeping function called from invalid context: %s while holding %s '%s'",
		    what, kind_name(h->kind), h->name);
}

// Before blocking on @lock: taking a lock this thread already holds
// deadlocks, except one more read lock of an rwlock held for read.
void deadlock_check(const void *lock, const char *name, Kind kind, bool write)
{
	const Held *h = find_held(lock);

	if (h && (write || h->write))
		die("recursive locking of %s '%s' would deadlock", kind_name(kind), name);
}

void push_held(const void *lock, const char *name, Kind kind, bool write)
{
	if (held.depth == kMaxHeld)
		die("more than %d locks held, taking %s '%s'", kMaxHeld, kind_name(kind), name);
	held.locks[held.depth++] = Held{lock, name, kind, write};
}

void pop_held(const void *lock, const char *name, Kind kind, bool write)
{
	for (int i = held.depth - 1; i >= 0; i--) {
		if (held.locks[i].lock != lock)
			continue;
		if (held.locks[i].write != write)
			break;
		memmove(&held.locks[i], &held.locks[i + 1], (held.depth - i - 1) * sizeof(Held));
		held.depth--;
		return;
	}
	die("unlocking %s '%s', not held %sby this thread", kind_name(kind), name,
	    kind != rwlock ? "" : write ? "for write " : "for read ");
}

void assert_held(const void *lock, const char *name, Kind kind, bool write)
{
	const Held *h = find_held(lock);

	if (!h || (write && !h->write))
		die("lockdep_assert_held%s: %s '%s' not held by this thread", write ? "_write" : "",
		    kind_name(kind), name);
}

void mutex_init(void *lock, const char *name, Kind kind)
{
	auto *l = new (lock) HostMutex{};

	check(pthread_mutex_init(&l->native, nullptr), "pthread_mutex_init", name);
	l->name = name;
	l->magic = kind;
}

// The kernel's spinlock_t and rwlock_t spin: a waiter for a lock held a
// few hundred nanoseconds never sleeps. Host "spinning" locks try for a
// while before they block in pthreads, so that timing (benchmarks: a
// reader against a stream of brief writers) is not dominated by futex
// sleeps and wake-ups the kernel would not have; blocking after the
// bound keeps a host thread preempted while holding the lock (which a
// kernel spinlock holder never is) from being spun on for its whole
// time slice. Mutexes block at once, as in the kernel.
constexpr int kSpinTries = 512;

inline void cpu_relax()
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	asm volatile("yield" ::: "memory");
#endif
}

template <class Try, class Block>
void spin_then_block(Try &&try_lock, Block &&block, const char *op, const char *name)
{
	for (int i = 0; i < kSpinTries; i++) {
		int r = try_lock();
		if (r == 0)
			return;
		if (r != EBUSY)
			check(r, op, name);
		cpu_relax();
	}
	check(block(), op, name);
}

void mutex_lock(void *lock, Kind kind)
{
	HostMutex *l = mutex_of(lock, kind);

	deadlock_check(l, l->name, kind, true);
	if (kind == spin)
		spin_then_block([&] { return pthread_mutex_trylock(&l->native); },
				[&] { return pthread_mutex_lock(&l->native); }, "pthread_mutex_lock", l->name);
	else
		check(pthread_mutex_lock(&l->native), "pthread_mutex_lock", l->name);
	push_held(l, l->name, kind, true);
}

void mutex_unlock(void *lock, Kind kind)
{
	HostMutex *l = mutex_of(lock, kind);

	pop_held(l, l->name, kind, true);
	check(pthread_mutex_unlock(&l->native), "pthread_mutex_unlock", l->name);
}

void rwlock_lock(void *lock, bool write)
{
	HostRwlock *l = rwlock_of(lock);

	deadlock_check(l, l->name, rwlock, write);
	if (write)
		spin_then_block([&] { return pthread_rwlock_trywrlock(&l->native); },
				[&] { return pthread_rwlock_wrlock(&l->native); }, "pthread_rwlock_wrlock", l->name);
	else
		spin_then_block([&] { return pthread_rwlock_tryrdlock(&l->native); },
				[&] { return pthread_rwlock_rdlock(&l->native); }, "pthread_rwlock_rdlock", l->name);
	push_held(l, l->name, rwlock, write);
}

void rwlock_unlock(void *lock, bool write)
{
	HostRwlock *l = rwlock_of(lock);

	pop_held(l, l->name, rwlock, write);
	check(pthread_rwlock_unlock(&l->native), "pthread_rwlock_unlock", l->name);
}

} // namespace

extern "C" {

// --- test controls (kvmmu_host.h) --------------------------------------------

void kvmmu_host_fail_alloc_after(long n)
{
	if (n < 0)
		die("kvmmu_host_fail_alloc_after(%ld): negative count", n);
	allocs_before_failure.store(n);
}

void kvmmu_host_fail_alloc_reset(void) { allocs_before_failure.store(-1); }

long kvmmu_host_live_allocs(void) { return live_allocs.load(); }

// --- platform.h -------------------------------------------------------------

void *kvmmu_plat_kmalloc(size_t size, unsigned int gfp)
{
	if (gfp & ~unsigned(KVMMU_GFP_VALID_MASK) ||
	    (gfp & KVMMU_GFP_KIND_MASK) == KVMMU_GFP_KIND_MASK)
		die("kmalloc: invalid gfp flags %#x", gfp);
	if ((gfp & KVMMU_GFP_KIND_MASK) == KVMMU_GFP_KERNEL)
		sleep_check("kmalloc(GFP_KERNEL)");
	if (inject_failure())
		return nullptr;
	void *p = is_pow2(size) ? aligned_alloc(size, size) : malloc(size);
	if (!p)
		return nullptr;
	if (gfp & KVMMU_GFP_ZERO)
		memset(p, 0, size);
	live_allocs.fetch_add(1);
	return p;
}

// Pages: aligned_alloc of 2^order pages, reference counts and table counts
// in a side table (the kernel keeps them in struct page), the identity as
// "linear map". free_pages() drops the allocation's reference like
// __free_pages(): with a speculative reference still held (a test's
// kvmmu_host_page_get()), the memory is freed by the last put instead.
namespace {
struct AllocPage {
	int refs = 1;
	int table_count = -12345;	// undefined until set, like the kernel's
	bool freed = false;		// free_pages() was called
};
std::mutex page_refs_lock;
std::unordered_map<const void *, AllocPage> page_refs;

AllocPage &alloc_page(const void *va)
{
	auto it = page_refs.find(va);
	if (it == page_refs.end() || it->second.freed)
		die("page state of %p, which is not an allocated page", va);
	return it->second;
}

// Called with page_refs_lock held; true if the memory is to be freed.
bool page_put_locked(const void *va)
{
	auto it = page_refs.find(va);
	if (it == page_refs.end())
		die("put of %p, which is not a page", va);
	if (--it->second.refs < 0)
		die("page %p reference count underflow", va);
	if (it->second.refs)
		return false;
	if (!it->second.freed)
		die("page %p lost its last reference while still allocated", va);
	page_refs.erase(it);
	return true;
}
} // namespace

void kvmmu_host_page_get(void *va)
{
	std::lock_guard<std::mutex> g(page_refs_lock);
	auto it = page_refs.find(va);
	if (it == page_refs.end())
		die("get of %p, which is not a page", va);
	it->second.refs++;
}

void kvmmu_host_page_put(void *va)
{
	bool free_it;
	{
		std::lock_guard<std::mutex> g(page_refs_lock);
		free_it = page_put_locked(va);
	}
	if (free_it) {
		live_allocs.fetch_sub(1);
		free(va);
	}
}

int kvmmu_host_page_refs(const void *va)
{
	std::lock_guard<std::mutex> g(page_refs_lock);
	auto it = page_refs.find(va);
	return it == page_refs.end() ? 0 : it->second.refs;
}

void *kvmmu_plat_alloc_pages(unsigned int order, unsigned int gfp)
{
	if (gfp & ~unsigned(KVMMU_GFP_VALID_MASK) ||
	    (gfp & KVMMU_GFP_KIND_MASK) == KVMMU_GFP_KIND_MASK)
		die("alloc_pages: invalid gfp flags %#x", gfp);
	if ((gfp & KVMMU_GFP_KIND_MASK) == KVMMU_GFP_KERNEL)
		sleep_check("alloc_pages(GFP_KERNEL)");
	if (inject_failure())
		return nullptr;
	size_t bytes = size_t(1) << (KVMMU_PAGE_SHIFT + order);
	void *p = aligned_alloc(bytes, bytes);
	if (!p)
		return nullptr;
	if (gfp & KVMMU_GFP_ZERO)
		memset(p, 0, bytes);
	{
		std::lock_guard<std::mutex> g(page_refs_lock);
		if (page_refs.count(p))
			die("page %p allocated twice", p);
		page_refs[p] = AllocPage{};
	}
	live_allocs.fetch_add(1);
	return p;
}

void kvmmu_plat_free_pages(void *va, unsigned int)
{
	bool free_it;
	{
		std::lock_guard<std::mutex> g(page_refs_lock);
		AllocPage &ps = alloc_page(va);
		if (ps.table_count != 0 && ps.table_count != -12345)
			die("freeing page %p with table count %d", va, ps.table_count);
		ps.freed = true;
		free_it = page_put_locked(va);
	}
	if (free_it) {
		live_allocs.fetch_sub(1);
		free(va);
	}
}

void kvmmu_plat_table_count_set(void *va, int count)
{
	std::lock_guard<std::mutex> g(page_refs_lock);
	alloc_page(va).table_count = count;
}

int kvmmu_plat_table_count_add_return(void *va, int n)
{
	std::lock_guard<std::mutex> g(page_refs_lock);
	int &c = alloc_page(va).table_count;
	c += n;
	if (c <= 0)
		die("table %p count dropped to %d", va, c);
	return c;
}

int kvmmu_plat_table_count(const void *va)
{
	std::lock_guard<std::mutex> g(page_refs_lock);
	return alloc_page(va).table_count;
}

uint64_t kvmmu_plat_virt_to_phys(const void *va)
{
	return reinterpret_cast<uintptr_t>(va);
}

void *kvmmu_plat_phys_to_virt(uint64_t pa)
{
	return reinterpret_cast<void *>(uintptr_t(pa));
}

// SRCU, modelled as the kernel's works: readers never block (they only
// count themselves in one of two counters), and synchronize flips the
// counter new readers use and waits for the old one to drain. No lock is
// shared between readers and updaters, so lock-order checkers (TSan) see
// what lockdep sees in the kernel: a read section nests in any lock, and
// any lock nests in a read section.
namespace {
struct HostSrcu {
	std::atomic<long> readers[2];
	std::atomic<int> idx;
	pthread_mutex_t sync;	// one synchronize at a time (the kernel's srcu_gp_mutex)
};
thread_local int srcu_sections; // read sections this thread is in (any srcu)
} // namespace
static_assert(sizeof(HostSrcu) <= KVMMU_SRCU_SIZE, "host srcu does not fit");

int kvmmu_plat_srcu_init(void *ssp, const char *, void *)
{
	auto *s = new (ssp) HostSrcu;
	s->readers[0].store(0);
	s->readers[1].store(0);
	s->idx.store(0);
	return -pthread_mutex_init(&s->sync, nullptr);
}

void kvmmu_plat_srcu_cleanup(void *ssp)
{
	auto *s = static_cast<HostSrcu *>(ssp);
	if (s->readers[0].load() || s->readers[1].load())
		die("srcu_cleanup with readers in their read sections");
	pthread_mutex_destroy(&s->sync);
	s->~HostSrcu();
}

int kvmmu_plat_srcu_read_lock(void *ssp)
{
	auto *s = static_cast<HostSrcu *>(ssp);
	for (;;) {
		int i = s->idx.load();
		s->readers[i].fetch_add(1);
		// Counted where a synchronize that flipped meanwhile would not
		// wait for us: back off and count in the new one.
		if (s->idx.load() == i) {
			srcu_sections++;
			return i;
		}
		s->readers[i].fetch_sub(1);
	}
}

void kvmmu_plat_srcu_read_unlock(void *ssp, int idx)
{
	auto *s = static_cast<HostSrcu *>(ssp);
	if (idx < 0 || idx > 1 || s->readers[idx].fetch_sub(1) <= 0)
		die("srcu_read_unlock without its read_lock");
	srcu_sections--;
}

void kvmmu_plat_synchronize_srcu(void *ssp)
{
	sleep_check("synchronize_srcu");
	auto *s = static_cast<HostSrcu *>(ssp);
	// The kernel would wait forever (lockdep: "synchronize_srcu in a
	// read section"); any srcu, as the host cannot tell them apart here.
	if (srcu_sections)
		die("synchronize_srcu inside an srcu read section");
	check(pthread_mutex_lock(&s->sync), "synchronize_srcu", "srcu");
	const int old = s->idx.load();
	s->idx.store(1 - old);
	while (s->readers[old].load())
		sched_yield();
	check(pthread_mutex_unlock(&s->sync), "synchronize_srcu", "srcu");
}

// x86-64 user space: below 2^47.
bool kvmmu_plat_user_range_ok(uint64_t hva, uint64_t size)
{
	const uint64_t limit = uint64_t(1) << 47;
	return hva <= limit && size <= limit - hva;
}

void *kvmmu_plat_kvmalloc(size_t size, unsigned int gfp) { return kvmmu_plat_kmalloc(size, gfp); }
void kvmmu_plat_kvfree(const void *ptr) { kvmmu_plat_kfree(ptr); }
uint64_t kvmmu_plat_untagged_addr(uint64_t hva) { return hva; }

void kvmmu_plat_kfree(const void *ptr)
{
	if (!ptr)
		return;
	live_allocs.fetch_sub(1);
	free(const_cast<void *>(ptr));
}

void kvmmu_plat_spin_init(void *lock, const char *name, void *)
{
	mutex_init(lock, name, spin);
}

void kvmmu_plat_spin_lock(void *lock) { mutex_lock(lock, spin); }
void kvmmu_plat_spin_unlock(void *lock) { mutex_unlock(lock, spin); }

void kvmmu_plat_spin_assert_held(const void *lock)
{
	assert_held(lock, mutex_of(lock, spin)->name, spin, false);
}

void kvmmu_plat_rwlock_init(void *lock, const char *name, void *)
{
	auto *l = new (lock) HostRwlock{};

	check(pthread_rwlock_init(&l->native, nullptr), "pthread_rwlock_init", name);
	l->name = name;
	l->magic = rwlock;
}

void kvmmu_plat_read_lock(void *lock) { rwlock_lock(lock, false); }
void kvmmu_plat_read_unlock(void *lock) { rwlock_unlock(lock, false); }
namespace {
thread_local void (*write_lock_hook)(void *);
thread_local void *write_lock_hook_arg;
} // namespace

void kvmmu_host_set_write_lock_hook(void (*fn)(void *arg), void *arg)
{
	write_lock_hook_arg = arg;
	write_lock_hook = fn;
}

void kvmmu_plat_write_lock(void *lock)
{
	if (void (*fn)(void *) = write_lock_hook) {
		write_lock_hook = nullptr; // one shot
		fn(write_lock_hook_arg);
	}
	rwlock_lock(lock, true);
}
void kvmmu_plat_write_unlock(void *lock) { rwlock_unlock(lock, true); }

void kvmmu_plat_rwlock_assert_held(const void *lock)
{
	assert_held(lock, rwlock_of(lock)->name, rwlock, false);
}

void kvmmu_plat_rwlock_assert_held_write(const void *lock)
{
	assert_held(lock, rwlock_of(lock)->name, rwlock, true);
}

void kvmmu_plat_mutex_init(void *lock, const char *name, void *)
{
	mutex_init(lock, name, mutex);
}

void kvmmu_plat_mutex_destroy(void *lock)
{
	HostMutex *l = mutex_of(lock, mutex);

	check(pthread_mutex_destroy(&l->native), "pthread_mutex_destroy", l->name);
	l->magic = 0;
}

void kvmmu_plat_mutex_lock(void *lock)
{
	sleep_check("mutex_lock()");
	mutex_lock(lock, mutex);
}

void kvmmu_plat_mutex_unlock(void *lock) { mutex_unlock(lock, mutex); }

void kvmmu_plat_mutex_assert_held(const void *lock)
{
	assert_held(lock, mutex_of(lock, mutex)->name, mutex, false);
}

void kvmmu_plat_might_sleep(const char *file, int line)
{
	const Held *h = atomic_context();

	if (h)
		die("BUG: sleeping function called from invalid context at %s:%d while holding %s '%s'",
		    file, line, kind_name(h->kind), h->name);
}

void kvmmu_plat_cond_resched(void)
{
	sleep_check("cond_resched");
	sched_yield();
}

// --- fake host address spaces ---------------------------------------------------

} // extern "C"

struct kvmmu_host_mm {
	std::atomic<long> count{1};	// mm_count (mmgrab/mmdrop)
	std::atomic<bool> exiting{false};
	std::shared_mutex mmap_lock;
	std::mutex lock;		// protects the maps below
	struct Vma {
		uint64_t end;
		unsigned flags;
	};
	struct Pte {
		uint64_t pfn;
		bool writable;
	};
	std::map<uint64_t, Vma> vmas;	// by start
	std::map<uint64_t, Pte> ptes;	// by page address
	std::vector<std::pair<void *, uint64_t>> chunks; // memory to free, and its size
	std::map<uint64_t, bool> poisoned, need_io;
	struct Userfault {
		int waits;	// waits until the page is filled (< 0: never)
		bool signal;	// each wait ends with a signal pending
	};
	std::map<uint64_t, Userfault> userfault; // missing pages, by page address
};

namespace {

constexpr uint64_t kHostPage = 4096;
constexpr uint64_t kHostHuge = 2 << 20;

struct PageState {
	long refs = 0;
	bool dirty = false, accessed = false, has_page = true;
};
std::mutex pages_lock;
std::unordered_map<uint64_t, PageState> pages;	// every fake page, by pfn

thread_local kvmmu_host_mm *current_mm;
thread_local bool signal_pending_now;
std::atomic<void (*)(void *)> gup_hook;
std::atomic<long> lock_break_every;	// cond_resched_rwlock_write drops every n-th call; 0: never
std::atomic<long> lock_break_calls;
std::atomic<void *> gup_hook_arg;
std::atomic<void (*)(void *)> userfault_hook;
std::atomic<void *> userfault_hook_arg;
thread_local long mmap_held;	// mmap read locks this thread holds

kvmmu_host_calls calls_;
std::mutex calls_lock;
void count(long kvmmu_host_calls::*f)
{
	std::lock_guard<std::mutex> g(calls_lock);
	calls_.*f += 1;
}

// The mmap lock must be held for VMA lookups, GUP and faults.
void mmap_check()
{
	if (mmap_held <= 0)
		count(&kvmmu_host_calls::mmap_unheld);
}

void mmap_release(kvmmu_host_mm *mm)
{
	if (mmap_held <= 0)
		die("fake mm: mmap_read_unlock without the lock held");
	mmap_held--;
	count(&kvmmu_host_calls::mmap_unlock);
	mm->mmap_lock.unlock_shared();
}

void run_gup_hook()
{
	void (*fn)(void *) = gup_hook.exchange(nullptr);
	if (fn)
		fn(gup_hook_arg.load());
}

const kvmmu_host_mm::Vma *find_vma(kvmmu_host_mm *mm, uint64_t hva, uint64_t *start)
{
	auto it = mm->vmas.upper_bound(hva);
	if (it == mm->vmas.begin())
		return nullptr;
	--it;
	if (hva >= it->second.end)
		return nullptr;
	if (start)
		*start = it->first;
	return &it->second;
}

void *alloc_chunk(kvmmu_host_mm *mm, uint64_t size, bool has_page)
{
	void *p = aligned_alloc(size, size);
	if (!p)
		die("fake mm: out of memory");
	memset(p, 0, size);
	mm->chunks.push_back({p, size});
	std::lock_guard<std::mutex> g(pages_lock);
	for (uint64_t off = 0; off < size; off += kHostPage) {
		PageState st;
		st.has_page = has_page;
		pages[(reinterpret_cast<uintptr_t>(p) + off) / kHostPage] = st;
	}
	return p;
}

// Fills the ptes of [start, end) of a VMA (mm->lock held).
void populate(kvmmu_host_mm *mm, uint64_t vstart, const kvmmu_host_mm::Vma &v, uint64_t hva)
{
	bool huge = v.flags & KVMMU_HOST_MAP_HUGE;
	uint64_t size = huge ? kHostHuge : kHostPage;
	uint64_t base = hva & ~(size - 1);
	if (base < vstart)
		base = hva & ~(kHostPage - 1), size = kHostPage;
	char *p = static_cast<char *>(alloc_chunk(mm, size, !(v.flags & KVMMU_HOST_MAP_PFNMAP)));
	for (uint64_t off = 0; off < size && base + off < v.end; off += kHostPage)
		mm->ptes[base + off] = {reinterpret_cast<uintptr_t>(p + off) / kHostPage,
					bool(v.flags & KVMMU_HOST_MAP_WRITE)};
}

PageState *page_state(uint64_t pfn)
{
	auto it = pages.find(pfn);
	return it == pages.end() ? nullptr : &it->second;
}

} // namespace

extern "C" {

struct kvmmu_host_mm *kvmmu_host_mm_create(void) { return new kvmmu_host_mm; }

void kvmmu_host_mm_destroy(struct kvmmu_host_mm *mm)
{
	{
		std::lock_guard<std::mutex> g(mm->lock);
		mm->exiting = true;
		mm->ptes.clear();
		mm->vmas.clear();
	}
	// The pages stay allocated until the mm is dropped, so a test can
	// still inspect references and flags.
	kvmmu_plat_mm_drop(mm);
}

void kvmmu_host_set_current_mm(struct kvmmu_host_mm *mm) { current_mm = mm; }

int kvmmu_host_mm_map(struct kvmmu_host_mm *mm, uint64_t hva, uint64_t len, unsigned int flags)
{
	uint64_t align = (flags & KVMMU_HOST_MAP_HUGE) ? kHostHuge : kHostPage;
	if (!len || (hva | len) & (kHostPage - 1) || (hva | len) & (align - 1))
		return -EINVAL;
	std::lock_guard<std::mutex> g(mm->lock);
	for (auto &v : mm->vmas)
		if (v.first < hva + len && hva < v.second.end)
			return -EEXIST;
	mm->vmas[hva] = {hva + len, flags};
	if (!(flags & KVMMU_HOST_MAP_LAZY))
		for (uint64_t a = hva; a < hva + len; a += align)
			populate(mm, hva, mm->vmas[hva], a);
	return 0;
}

void kvmmu_host_mm_unmap(struct kvmmu_host_mm *mm, uint64_t hva, uint64_t len)
{
	std::lock_guard<std::mutex> g(mm->lock);
	mm->ptes.erase(mm->ptes.lower_bound(hva), mm->ptes.lower_bound(hva + len));
	for (auto it = mm->vmas.begin(); it != mm->vmas.end();) {
		if (it->first >= hva && it->second.end <= hva + len)
			it = mm->vmas.erase(it);
		else
			++it;
	}
}

void kvmmu_host_mm_replace_page(struct kvmmu_host_mm *mm, uint64_t hva)
{
	std::lock_guard<std::mutex> g(mm->lock);
	uint64_t page = hva & ~(kHostPage - 1);
	auto it = mm->ptes.find(page);
	bool w = it != mm->ptes.end() ? it->second.writable : true;
	char *p = static_cast<char *>(alloc_chunk(mm, kHostPage, true));
	// A huge mapping around it is split by this (host_mapping_shift()
	// sees the ptes are no longer contiguous); its other pages stay.
	mm->ptes[page] = {reinterpret_cast<uintptr_t>(p) / kHostPage, w};
}

void kvmmu_host_mm_protect(struct kvmmu_host_mm *mm, uint64_t hva, uint64_t len, bool writable)
{
	std::lock_guard<std::mutex> g(mm->lock);
	for (auto it = mm->ptes.lower_bound(hva); it != mm->ptes.end() && it->first < hva + len; ++it)
		it->second.writable = writable;
	for (auto &v : mm->vmas)
		if (v.first < hva + len && hva < v.second.end) {
			if (writable)
				v.second.flags |= KVMMU_HOST_MAP_WRITE;
			else
				v.second.flags &= ~KVMMU_HOST_MAP_WRITE;
		}
}

void kvmmu_host_mm_set_poison(struct kvmmu_host_mm *mm, uint64_t hva, bool poisoned)
{
	std::lock_guard<std::mutex> g(mm->lock);
	mm->poisoned[hva & ~(kHostPage - 1)] = poisoned;
}

void kvmmu_host_mm_set_need_io(struct kvmmu_host_mm *mm, uint64_t hva, bool need_io)
{
	std::lock_guard<std::mutex> g(mm->lock);
	mm->need_io[hva & ~(kHostPage - 1)] = need_io;
}

void kvmmu_host_mm_set_userfault(struct kvmmu_host_mm *mm, uint64_t hva, int waits, bool signal)
{
	std::lock_guard<std::mutex> g(mm->lock);
	uint64_t page = hva & ~(kHostPage - 1);
	mm->ptes.erase(page);
	mm->userfault[page] = {waits, signal};
}

void kvmmu_host_mm_set_exiting(struct kvmmu_host_mm *mm) { mm->exiting = true; }

void *kvmmu_host_mm_page(struct kvmmu_host_mm *mm, uint64_t hva)
{
	uint64_t pfn = kvmmu_host_mm_pfn(mm, hva);
	return pfn ? reinterpret_cast<void *>(pfn * kHostPage + (hva & (kHostPage - 1))) : nullptr;
}

uint64_t kvmmu_host_mm_pfn(struct kvmmu_host_mm *mm, uint64_t hva)
{
	std::lock_guard<std::mutex> g(mm->lock);
	auto it = mm->ptes.find(hva & ~(kHostPage - 1));
	return it == mm->ptes.end() ? 0 : it->second.pfn;
}

long kvmmu_host_pfn_refs(uint64_t pfn)
{
	std::lock_guard<std::mutex> g(pages_lock);
	PageState *p = page_state(pfn);
	return p ? p->refs : -1;
}

bool kvmmu_host_pfn_dirty(uint64_t pfn)
{
	std::lock_guard<std::mutex> g(pages_lock);
	PageState *p = page_state(pfn);
	return p && p->dirty;
}

bool kvmmu_host_pfn_accessed(uint64_t pfn)
{
	std::lock_guard<std::mutex> g(pages_lock);
	PageState *p = page_state(pfn);
	return p && p->accessed;
}

void kvmmu_host_pfn_clear_flags(uint64_t pfn)
{
	std::lock_guard<std::mutex> g(pages_lock);
	if (PageState *p = page_state(pfn))
		p->dirty = p->accessed = false;
}

long kvmmu_host_pfn_refs_total(void)
{
	std::lock_guard<std::mutex> g(pages_lock);
	long n = 0;
	for (auto &p : pages)
		n += p.second.refs;
	return n;
}

void kvmmu_host_get_calls(struct kvmmu_host_calls *out)
{
	std::lock_guard<std::mutex> g(calls_lock);
	*out = calls_;
}

void kvmmu_host_set_signal_pending(bool pending) { signal_pending_now = pending; }

void kvmmu_host_set_gup_hook(void (*fn)(void *arg), void *arg)
{
	gup_hook_arg.store(arg);
	gup_hook.store(fn);
}

void kvmmu_host_set_userfault_hook(void (*fn)(void *arg), void *arg)
{
	userfault_hook_arg.store(arg);
	userfault_hook.store(fn);
}

long kvmmu_host_mmap_held(void) { return mmap_held; }

void kvmmu_host_set_lock_break(long every)
{
	lock_break_calls.store(0);
	lock_break_every.store(every);
}

// The kernel's version checks (__might_resched with one lock's preempt
// offset) that this is the only spinning lock held; when to break is the
// test's choice here.
int kvmmu_plat_cond_resched_rwlock_write(void *lock)
{
	HostRwlock *l = rwlock_of(lock);

	assert_held(l, l->name, rwlock, true);
	for (int i = held.depth - 1; i >= 0; i--) {
		if (held.locks[i].kind != mutex && held.locks[i].lock != l)
			die("BUG: sleeping function called from invalid context: "
			    "cond_resched_rwlock_write('%s') while holding %s '%s'",
			    l->name, kind_name(held.locks[i].kind), held.locks[i].name);
	}
	const long every = lock_break_every.load();
	if (every <= 0 || (lock_break_calls.fetch_add(1) + 1) % every)
		return 0;
	count(&kvmmu_host_calls::lock_breaks);
	rwlock_unlock(lock, true);
	sched_yield();
	rwlock_lock(lock, true);
	return 1;
}

bool kvmmu_plat_signal_pending(void) { return signal_pending_now; }
bool kvmmu_plat_capable_sys_admin(void) { return true; }

void *kvmmu_plat_mm_grab_current(void)
{
	if (current_mm)
		current_mm->count.fetch_add(1);
	return current_mm;
}

void kvmmu_plat_mm_drop(void *m)
{
	auto *mm = static_cast<kvmmu_host_mm *>(m);
	if (mm->count.fetch_sub(1) != 1)
		return;
	{
		std::lock_guard<std::mutex> g(pages_lock);
		for (auto &c : mm->chunks) {
			uint64_t pfn = reinterpret_cast<uintptr_t>(c.first) / kHostPage;
			for (uint64_t i = 0; i < c.second / kHostPage; i++)
				pages.erase(pfn + i);
			free(c.first);
		}
	}
	delete mm;
}

bool kvmmu_plat_mm_get(void *mm) { return !static_cast<kvmmu_host_mm *>(mm)->exiting.load(); }
void kvmmu_plat_mm_put(void *) {}
bool kvmmu_plat_mm_is_current(const void *mm) { return mm == current_mm; }

void kvmmu_plat_mmap_read_lock(void *mm)
{
	sleep_check("mmap_read_lock");
	count(&kvmmu_host_calls::mmap_lock);
	static_cast<kvmmu_host_mm *>(mm)->mmap_lock.lock_shared();
	mmap_held++;
}

// No fatal signals here: it always gets the lock.
int kvmmu_plat_mmap_read_lock_killable(void *mm)
{
	kvmmu_plat_mmap_read_lock(mm);
	return 0;
}

void kvmmu_plat_mmap_read_unlock(void *mm) { mmap_release(static_cast<kvmmu_host_mm *>(mm)); }

int kvmmu_plat_gup_fast_one(uint64_t hva, bool write, uint64_t *pfn)
{
	count(&kvmmu_host_calls::gup_fast);
	kvmmu_host_mm *mm = current_mm;
	if (!mm)
		return 0;
	{
		std::lock_guard<std::mutex> g(mm->lock);
		uint64_t page = hva & ~(kHostPage - 1);
		auto it = mm->ptes.find(page);
		const auto *v = find_vma(mm, page, nullptr);
		// Like the real one: only present, writable-if-asked, normal pages.
		if (it == mm->ptes.end() || !v || (v->flags & KVMMU_HOST_MAP_PFNMAP) ||
		    (write && !it->second.writable) || mm->poisoned[page])
			return 0;
		*pfn = it->second.pfn;
		std::lock_guard<std::mutex> g2(pages_lock);
		page_state(*pfn)->refs++;
	}
	run_gup_hook();
	return 1;
}

// What GUP and a fault both refuse, in the kernel's order: no VMA or a
// PFNMAP one (-EFAULT), a write the VMA does not allow (-EFAULT), a
// poisoned page (-EHWPOISON). Called with mm->lock held; 0 if none.
static int gup_vma_check(kvmmu_host_mm *mm, const kvmmu_host_mm::Vma *v, uint64_t page,
			 unsigned int gup_flags)
{
	if (!v || (v->flags & KVMMU_HOST_MAP_PFNMAP))
		return -EFAULT;
	if ((gup_flags & KVMMU_GUP_WRITE) && !(v->flags & KVMMU_HOST_MAP_WRITE))
		return -EFAULT;
	if (mm->poisoned[page])
		return -EHWPOISON;
	return 0;
}

long kvmmu_plat_gup_one(void *m, uint64_t hva, unsigned int gup_flags, uint64_t *pfn)
{
	sleep_check("get_user_pages_remote");
	count(&kvmmu_host_calls::gup);
	mmap_check();
	auto *mm = static_cast<kvmmu_host_mm *>(m);
	{
		std::lock_guard<std::mutex> g(mm->lock);
		uint64_t page = hva & ~(kHostPage - 1), vstart;
		const auto *v = find_vma(mm, page, &vstart);
		if (int e = gup_vma_check(mm, v, page, gup_flags))
			return e;
		// A missing userfaultfd page: handle_userfault() must drop the
		// lock to wait, which this GUP (no `locked`) does not allow.
		if (mm->userfault.count(page)) {
			if (gup_flags & KVMMU_GUP_NOWAIT)
				return -EBUSY;
			count(&kvmmu_host_calls::userfault_no_retry);
			return -EFAULT;
		}
		if (mm->need_io[page] && (gup_flags & KVMMU_GUP_NOWAIT))
			return -EBUSY;
		auto it = mm->ptes.find(page);
		if (it == mm->ptes.end()) {
			populate(mm, vstart, *v, page);
			it = mm->ptes.find(page);
		}
		if (gup_flags & KVMMU_GUP_WRITE)
			it->second.writable = true; // a write fault makes the pte writable
		*pfn = it->second.pfn;
		std::lock_guard<std::mutex> g2(pages_lock);
		page_state(*pfn)->refs++;
	}
	run_gup_hook();
	return 1;
}

int kvmmu_plat_fault_one(void *m, uint64_t hva, unsigned int gup_flags, bool *unlocked)
{
	sleep_check("handle_mm_fault");
	count(&kvmmu_host_calls::fault);
	mmap_check();
	auto *mm = static_cast<kvmmu_host_mm *>(m);
	*unlocked = false;
	std::unique_lock<std::mutex> g(mm->lock);
	uint64_t page = hva & ~(kHostPage - 1), vstart;
	const auto *v = find_vma(mm, page, &vstart);
	if (int e = gup_vma_check(mm, v, page, gup_flags))
		return e;
	auto uf = mm->userfault.find(page);
	const bool io = mm->need_io[page];
	if (uf == mm->userfault.end() && !io) {
		// Nothing to wait for: faulted in with the lock held.
		auto it = mm->ptes.find(page);
		if (it == mm->ptes.end()) {
			populate(mm, vstart, *v, page);
			it = mm->ptes.find(page);
		}
		if (gup_flags & KVMMU_GUP_WRITE)
			it->second.writable = true;
		return 0;
	}
	// Waits with the mmap lock dropped (handle_userfault(), or the page
	// lock while I/O completes), then reports VM_FAULT_RETRY.
	bool signal = false;
	if (uf != mm->userfault.end()) {
		count(&kvmmu_host_calls::userfault_waits);
		signal = uf->second.signal;
		if (!signal && uf->second.waits > 0 && --uf->second.waits == 0) {
			mm->userfault.erase(uf);
			if (!mm->ptes.count(page))
				populate(mm, vstart, *v, page);
		}
	} else {
		mm->need_io[page] = false;
		if (!mm->ptes.count(page))
			populate(mm, vstart, *v, page);
	}
	g.unlock();
	mmap_release(mm);
	*unlocked = true;
	if (signal)
		signal_pending_now = true;
	if (void (*fn)(void *) = userfault_hook.load())
		fn(userfault_hook_arg.load());
	return 0;
}

int kvmmu_plat_vma_flags(void *m, uint64_t hva)
{
	count(&kvmmu_host_calls::vma_lookup);
	mmap_check();
	auto *mm = static_cast<kvmmu_host_mm *>(m);
	std::lock_guard<std::mutex> g(mm->lock);
	const auto *v = find_vma(mm, hva, nullptr);
	if (!v)
		return -EFAULT;
	return KVMMU_VMA_READ | (v->flags & KVMMU_HOST_MAP_WRITE ? KVMMU_VMA_WRITE : 0) |
	       (v->flags & KVMMU_HOST_MAP_PFNMAP ? KVMMU_VMA_IO | KVMMU_VMA_PFNMAP : 0);
}

// No reference, whatever the fake page is (the kernel's contract).
int kvmmu_plat_follow_pfn(void *m, uint64_t hva, uint64_t *pfn, bool *writable, unsigned *cache)
{
	count(&kvmmu_host_calls::follow_pfn);
	auto *mm = static_cast<kvmmu_host_mm *>(m);
	std::lock_guard<std::mutex> g(mm->lock);
	auto it = mm->ptes.find(hva & ~(kHostPage - 1));
	if (it == mm->ptes.end())
		return -EINVAL;
	*pfn = it->second.pfn;
	*writable = it->second.writable;
	const auto *v = find_vma(mm, hva, nullptr);
	const unsigned f = v ? v->flags : 0;
	*cache = f & KVMMU_HOST_MAP_CACHED ? KVMMU_CACHE_WB : f & KVMMU_HOST_MAP_WC ? KVMMU_CACHE_WC : KVMMU_CACHE_UC;
	return 0;
}

int kvmmu_plat_fixup_user_fault(void *m, uint64_t hva, bool write, bool *unlocked)
{
	count(&kvmmu_host_calls::fixup);
	auto *mm = static_cast<kvmmu_host_mm *>(m);
	std::lock_guard<std::mutex> g(mm->lock);
	uint64_t page = hva & ~(kHostPage - 1), vstart;
	const auto *v = find_vma(mm, page, &vstart);
	*unlocked = false;
	if (!v || (write && !(v->flags & KVMMU_HOST_MAP_WRITE)))
		return -EFAULT;
	if (!mm->ptes.count(page))
		populate(mm, vstart, *v, page);
	return 0;
}

unsigned int kvmmu_plat_host_mapping_shift(void *m, uint64_t hva)
{
	auto *mm = static_cast<kvmmu_host_mm *>(m);
	std::lock_guard<std::mutex> g(mm->lock);
	uint64_t vstart;
	const auto *v = find_vma(mm, hva, &vstart);
	if (!v || !(v->flags & KVMMU_HOST_MAP_HUGE))
		return 12;
	uint64_t base = hva & ~(kHostHuge - 1);
	if (base < vstart || base + kHostHuge > v->end)
		return 12;
	// Huge only while all its ptes are the original contiguous ones.
	auto it = mm->ptes.find(base);
	if (it == mm->ptes.end() || it->second.pfn % (kHostHuge / kHostPage))
		return 12;
	for (uint64_t off = kHostPage; off < kHostHuge; off += kHostPage) {
		auto jt = mm->ptes.find(base + off);
		if (jt == mm->ptes.end() || jt->second.pfn != it->second.pfn + off / kHostPage)
			return 12;
	}
	return 21;
}

bool kvmmu_plat_pfn_has_page(uint64_t pfn)
{
	std::lock_guard<std::mutex> g(pages_lock);
	PageState *p = page_state(pfn);
	return p && p->has_page;
}

// Fake pages without struct page stand for device memory: not RAM.
bool kvmmu_plat_pfn_is_ram(uint64_t pfn) { return kvmmu_plat_pfn_has_page(pfn); }
// kmap_pfn() reaches every fake page, but only RAM has a "struct page".
bool kvmmu_plat_pfn_kmappable(uint64_t pfn) { return kvmmu_plat_pfn_has_page(pfn); }

void kvmmu_plat_pfn_put(uint64_t pfn)
{
	std::lock_guard<std::mutex> g(pages_lock);
	PageState *p = page_state(pfn);
	if (!p || !p->has_page || p->refs <= 0)
		die("put_page of pfn %#llx without a reference", (unsigned long long)pfn);
	p->refs--;
}

void kvmmu_plat_pfn_mark_dirty(uint64_t pfn)
{
	std::lock_guard<std::mutex> g(pages_lock);
	PageState *p = page_state(pfn);
	if (p && p->has_page)
		p->dirty = true;
}

void kvmmu_plat_pfn_mark_accessed(uint64_t pfn)
{
	std::lock_guard<std::mutex> g(pages_lock);
	PageState *p = page_state(pfn);
	if (p && p->has_page)
		p->accessed = true;
}

void *kvmmu_plat_kmap_pfn(uint64_t pfn) { return reinterpret_cast<void *>(pfn * kHostPage); }
void kvmmu_plat_kunmap(void *) {}

// Long-lived mappings: the fake pages are host memory already; the count
// of live ones lets tests see every map undone.
namespace {
std::atomic<long> long_maps{0};
} // namespace

long kvmmu_host_long_maps(void) { return long_maps.load(); }

void *kvmmu_plat_kmap_long(uint64_t pfn)
{
	if (!kvmmu_plat_pfn_kmappable(pfn))
		die("kmap of pfn %#llx without a struct page", (unsigned long long)pfn);
	long_maps++;
	return reinterpret_cast<void *>(pfn * kHostPage);
}

void kvmmu_plat_kunmap_long(uint64_t) { long_maps--; }

void *kvmmu_plat_memremap_wb(uint64_t pa, size_t)
{
	long_maps++;
	return reinterpret_cast<void *>(pa);
}

void kvmmu_plat_memunmap(void *) { long_maps--; }

// MMIO on fake device pages: ioremap gives the page's own address (the
// fake pfn is its address / page size); every access is logged.
extern "C++" {
namespace {
std::mutex mmio_lock;
kvmmu_host_mmio mmio_log[64];
unsigned mmio_n;
std::atomic<long> ioremaps{0};
thread_local bool ioremap_wc_now; // of the mapping being accessed (one at a time)

template <class T>
T mmio_read(const void *va)
{
	T v;
	memcpy(&v, va, sizeof(v));
	std::lock_guard<std::mutex> g(mmio_lock);
	mmio_log[mmio_n % 64] = {uint64_t(reinterpret_cast<uintptr_t>(va)), unsigned(sizeof(T)), false,
				 ioremap_wc_now, uint64_t(v)};
	mmio_n++;
	return v;
}

template <class T>
void mmio_write(T v, void *va)
{
	memcpy(va, &v, sizeof(v));
	std::lock_guard<std::mutex> g(mmio_lock);
	mmio_log[mmio_n % 64] = {uint64_t(reinterpret_cast<uintptr_t>(va)), unsigned(sizeof(T)), true,
				 ioremap_wc_now, uint64_t(v)};
	mmio_n++;
}
} // namespace
} // extern "C++"

void *kvmmu_plat_ioremap(uint64_t pa, size_t, bool wc)
{
	ioremaps++;
	ioremap_wc_now = wc;
	return reinterpret_cast<void *>(pa);
}
void kvmmu_plat_iounmap(void *) { ioremaps--; }
uint8_t kvmmu_plat_readb(const void *va) { return mmio_read<uint8_t>(va); }
uint16_t kvmmu_plat_readw(const void *va) { return mmio_read<uint16_t>(va); }
uint32_t kvmmu_plat_readl(const void *va) { return mmio_read<uint32_t>(va); }
uint64_t kvmmu_plat_readq(const void *va) { return mmio_read<uint64_t>(va); }
void kvmmu_plat_writeb(uint8_t v, void *va) { mmio_write(v, va); }
void kvmmu_plat_writew(uint16_t v, void *va) { mmio_write(v, va); }
void kvmmu_plat_writel(uint32_t v, void *va) { mmio_write(v, va); }
void kvmmu_plat_writeq(uint64_t v, void *va) { mmio_write(v, va); }

void kvmmu_host_mmio_log(kvmmu_host_mmio *out, unsigned max, unsigned *n)
{
	std::lock_guard<std::mutex> g(mmio_lock);
	*n = mmio_n;
	const unsigned kept = mmio_n < 64 ? mmio_n : 64;
	for (unsigned i = 0; i < kept && i < max; i++)
		out[i] = mmio_log[(mmio_n - kept + i) % 64];
}

void kvmmu_host_mmio_log_reset(void)
{
	std::lock_guard<std::mutex> g(mmio_lock);
	mmio_n = 0;
}

long kvmmu_host_ioremaps(void) { return ioremaps.load(); }

// Wait queues: a condition variable. wake_up_all() takes the queue's mutex,
// under which a waiter evaluates its condition, so a wake-up that follows
// a change of the condition's state is never lost.
namespace {
struct HostWaitq {
	std::mutex m;
	std::condition_variable cv;
	std::atomic<int> sleepers;
	unsigned magic;
};
constexpr unsigned kWaitqMagic = 0x77617174;
static_assert(sizeof(HostWaitq) <= KVMMU_WAITQ_SIZE && alignof(HostWaitq) <= KVMMU_WAITQ_ALIGN,
	      "host wait queue does not fit");

HostWaitq *waitq_of(void *p)
{
	auto *w = static_cast<HostWaitq *>(p);
	if (w->magic != kWaitqMagic)
		die("wait queue at %p used uninitialised", p);
	return w;
}
} // namespace

void kvmmu_plat_waitq_init(void *wq, const char *, void *)
{
	auto *w = new (wq) HostWaitq;
	w->sleepers.store(0);
	w->magic = kWaitqMagic;
}

int kvmmu_plat_wait_event_killable(void *wq, bool (*cond)(void *), void *arg)
{
	HostWaitq *w = waitq_of(wq);
	std::unique_lock<std::mutex> g(w->m);
	// Counted before the condition is evaluated (seq_cst, as
	// prepare_to_wait()'s queueing and barrier): a waker that misses the
	// count changed the condition before this evaluates it.
	w->sleepers.fetch_add(1);
	int r = 0;
	while (!cond(arg)) {
		if (signal_pending_now) {
			r = -KVMMU_ERESTARTSYS;
			break;
		}
		w->cv.wait(g);
	}
	w->sleepers.fetch_sub(1);
	return r;
}

void kvmmu_plat_wake_up_all_sleepers(void *wq)
{
	HostWaitq *w = waitq_of(wq);
	// A seq_cst read-modify-write: wq_has_sleeper()'s smp_mb() and load.
	if (!w->sleepers.fetch_add(0))
		return;
	std::lock_guard<std::mutex> g(w->m);
	w->cv.notify_all();
}

// "User" addresses are host addresses; the first page stands for an
// unmapped one, as NULL-ish pointers do in the kernel.
namespace {
std::atomic<long> copy_to_user_budget{-1};
} // namespace

void kvmmu_host_fail_copy_to_user_after(long n) { copy_to_user_budget.store(n); }

size_t kvmmu_plat_copy_to_user(uint64_t uaddr, const void *src, size_t n)
{
	if (uaddr < kHostPage)
		return n;
	long b = copy_to_user_budget.load();
	while (b >= 0) {
		if (b == 0)
			return n;
		if (copy_to_user_budget.compare_exchange_weak(b, b - 1))
			break;
	}
	memcpy(reinterpret_cast<void *>(uaddr), src, n);
	return 0;
}

size_t kvmmu_plat_clear_user(uint64_t uaddr, size_t n)
{
	if (uaddr < kHostPage)
		return n;
	memset(reinterpret_cast<void *>(uaddr), 0, n);
	return 0;
}

size_t kvmmu_plat_copy_from_user(void *dst, uint64_t uaddr, size_t n)
{
	if (uaddr < kHostPage)
		return n;
	memcpy(dst, reinterpret_cast<const void *>(uaddr), n);
	return 0;
}

void kvmmu_plat_trace_fault(const void *, uint64_t, unsigned int, int, unsigned int, uint64_t)
{
	count(&kvmmu_host_calls::trace_fault);
}

void kvmmu_plat_trace_invalidate_start(const void *, uint64_t, uint64_t, unsigned int)
{
	count(&kvmmu_host_calls::trace_invalidate_start);
}

void kvmmu_plat_trace_invalidate_end(const void *, uint64_t, uint64_t, uint64_t)
{
	count(&kvmmu_host_calls::trace_invalidate_end);
}

void kvmmu_plat_trace_retry(const void *, uint64_t, uint64_t)
{
	count(&kvmmu_host_calls::trace_retry);
}

void kvmmu_plat_trace_dirty_log(const void *, unsigned int, uint64_t)
{
	count(&kvmmu_host_calls::trace_dirty_log);
}

void kvmmu_plat_bug(const char *file, int line, const char *what)
{
	die("BUG at %s:%d: %s", file, line, what);
}

void kvmmu_plat_log(int level, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	flockfile(stderr);
	fprintf(stderr, "<%d>kvmmu: ", level);
	vfprintf(stderr, fmt, args);
	funlockfile(stderr);
	va_end(args);
}

} // extern "C"
