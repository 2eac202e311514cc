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

#include <atomic>
#include <mutex>
#include <new>
#include <unordered_map>

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

void mutex_lock(void *lock, Kind kind)
{
	HostMutex *l = mutex_of(lock, kind);

	deadlock_check(l, l->name, kind, true);
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
		check(pthread_rwlock_wrlock(&l->native), "pthread_rwlock_wrlock", l->name);
	else
		check(pthread_rwlock_rdlock(&l->native), "pthread_rwlock_rdlock", l->name);
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

// Pages: aligned_alloc of 2^order pages, reference counts in a side table
// (the kernel keeps them in struct page), the identity as "linear map".
namespace {
std::mutex page_refs_lock;
std::unordered_map<const void *, int> page_refs;

int &page_ref(const void *va)
{
	auto it = page_refs.find(va);
	if (it == page_refs.end())
		die("page reference count of %p, which is not an allocated page", va);
	return it->second;
}
} // namespace

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
		page_refs[p] = 1;
	}
	live_allocs.fetch_add(1);
	return p;
}

void kvmmu_plat_free_pages(void *va, unsigned int)
{
	{
		std::lock_guard<std::mutex> g(page_refs_lock);
		int refs = page_ref(va);
		if (refs != 1)
			die("freeing page %p with reference count %d", va, refs);
		page_refs.erase(va);
	}
	live_allocs.fetch_sub(1);
	free(va);
}

void kvmmu_plat_page_ref_add(void *va, int n)
{
	std::lock_guard<std::mutex> g(page_refs_lock);
	page_ref(va) += n;
}

int kvmmu_plat_page_ref_sub_return(void *va, int n)
{
	std::lock_guard<std::mutex> g(page_refs_lock);
	int &r = page_ref(va);
	r -= n;
	if (r <= 0)
		die("page %p reference count dropped to %d", va, r);
	return r;
}

void kvmmu_plat_page_ref_set(void *va, int count)
{
	std::lock_guard<std::mutex> g(page_refs_lock);
	page_ref(va) = count;
}

int kvmmu_plat_page_refs(const void *va)
{
	std::lock_guard<std::mutex> g(page_refs_lock);
	return page_ref(va);
}

uint64_t kvmmu_plat_virt_to_phys(const void *va)
{
	return reinterpret_cast<uintptr_t>(va);
}

void *kvmmu_plat_phys_to_virt(uint64_t pa)
{
	return reinterpret_cast<void *>(uintptr_t(pa));
}

// SRCU: a reader-preferring rwlock; synchronize takes it for writing once,
// which waits for every read section in progress.
static_assert(sizeof(pthread_rwlock_t) <= KVMMU_SRCU_SIZE, "host srcu does not fit");

int kvmmu_plat_srcu_init(void *ssp, const char *, void *)
{
	return -pthread_rwlock_init(static_cast<pthread_rwlock_t *>(ssp), nullptr);
}

void kvmmu_plat_srcu_cleanup(void *ssp)
{
	pthread_rwlock_destroy(static_cast<pthread_rwlock_t *>(ssp));
}

int kvmmu_plat_srcu_read_lock(void *ssp)
{
	check(pthread_rwlock_rdlock(static_cast<pthread_rwlock_t *>(ssp)), "srcu_read_lock", "srcu");
	return 0;
}

void kvmmu_plat_srcu_read_unlock(void *ssp, int)
{
	check(pthread_rwlock_unlock(static_cast<pthread_rwlock_t *>(ssp)), "srcu_read_unlock", "srcu");
}

void kvmmu_plat_synchronize_srcu(void *ssp)
{
	sleep_check("synchronize_srcu");
	auto *l = static_cast<pthread_rwlock_t *>(ssp);
	check(pthread_rwlock_wrlock(l), "synchronize_srcu", "srcu");
	check(pthread_rwlock_unlock(l), "synchronize_srcu", "srcu");
}

// x86-64 user space: below 2^47.
bool kvmmu_plat_user_range_ok(uint64_t hva, uint64_t size)
{
	const uint64_t limit = uint64_t(1) << 47;
	return hva <= limit && size <= limit - hva;
}

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
void kvmmu_plat_write_lock(void *lock) { rwlock_lock(lock, true); }
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
