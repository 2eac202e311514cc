// SPDX-License-Identifier: GPL-2.0
// Kernel locks for C++ code, with RAII guards.
//
// Lock objects embed the kernel's own lock structure (sizes generated from
// the kernel headers) and are initialised with KVMMU_LOCK_INIT(lock), which
// gives every init site its own lockdep class, exactly like spin_lock_init()
// and friends do in C. Guards are [[nodiscard]]: `SpinGuard{lock};` would
// unlock at the end of the statement and is rejected by the build.
#pragma once

#include <kvmmu/platform.h>
#include <kvmmu/util.hpp>
#include <kvmmu_layout.h>

namespace kvmmu {

// Storage for a lockdep class key. Must have static storage duration:
// declare it through KVMMU_LOCK_INIT, never on the stack or heap.
struct LockClassKey {
	alignas(KVMMU_LOCK_CLASS_KEY_ALIGN) unsigned char storage[KVMMU_LOCK_CLASS_KEY_SIZE + 1];
};

class SpinLock : Pinned {
public:
	void init(const char *name, LockClassKey *key) { kvmmu_plat_spin_init(s_, name, key->storage); }
	void lock() { kvmmu_plat_spin_lock(s_); }
	void unlock() { kvmmu_plat_spin_unlock(s_); }
	void assert_held() const { kvmmu_plat_spin_assert_held(s_); }

private:
	alignas(KVMMU_SPINLOCK_ALIGN) unsigned char s_[KVMMU_SPINLOCK_SIZE];
};

class RwLock : Pinned {
public:
	void init(const char *name, LockClassKey *key) { kvmmu_plat_rwlock_init(s_, name, key->storage); }
	void read_lock() { kvmmu_plat_read_lock(s_); }
	void read_unlock() { kvmmu_plat_read_unlock(s_); }
	void write_lock() { kvmmu_plat_write_lock(s_); }
	void write_unlock() { kvmmu_plat_write_unlock(s_); }
	void assert_held() const { kvmmu_plat_rwlock_assert_held(s_); }
	void assert_held_write() const { kvmmu_plat_rwlock_assert_held_write(s_); }
	// Held for write: lets a waiter or the scheduler in if one is due.
	// True if the lock was dropped (anything it protects may have changed).
	bool cond_resched_write() { return kvmmu_plat_cond_resched_rwlock_write(s_) != 0; }

private:
	alignas(KVMMU_RWLOCK_ALIGN) unsigned char s_[KVMMU_RWLOCK_SIZE];
};

class Mutex : Pinned {
public:
	void init(const char *name, LockClassKey *key) { kvmmu_plat_mutex_init(s_, name, key->storage); }
	~Mutex() { kvmmu_plat_mutex_destroy(s_); }
	void lock() { kvmmu_plat_mutex_lock(s_); }
	void unlock() { kvmmu_plat_mutex_unlock(s_); }
	void assert_held() const { kvmmu_plat_mutex_assert_held(s_); }

private:
	alignas(KVMMU_MUTEX_ALIGN) unsigned char s_[KVMMU_MUTEX_SIZE];
};

// How a guard takes its lock.
struct Exclusive {
	template <class L> static void acquire(L &l) { l.lock(); }
	template <class L> static void release(L &l) { l.unlock(); }
};
struct Shared {
	static void acquire(RwLock &l) { l.read_lock(); }
	static void release(RwLock &l) { l.read_unlock(); }
};
struct Write {
	static void acquire(RwLock &l) { l.write_lock(); }
	static void release(RwLock &l) { l.write_unlock(); }
};

template <class L, class Mode = Exclusive>
class [[nodiscard]] Guard : Pinned {
public:
	[[nodiscard]] explicit Guard(L &l) : l_(l) { Mode::acquire(l_); }
	~Guard() { Mode::release(l_); }

private:
	L &l_;
};

using SpinGuard = Guard<SpinLock>;
using MutexGuard = Guard<Mutex>;
using ReadGuard = Guard<RwLock, Shared>;
using WriteGuard = Guard<RwLock, Write>;

} // namespace kvmmu

// Initialise a lock with a lockdep class of its own for this init site.
#define KVMMU_LOCK_INIT(lock)                                         \
	do {                                                          \
		static ::kvmmu::LockClassKey kvmmu_lock_key__;        \
		(lock).init(#lock, &kvmmu_lock_key__);                \
	} while (0)

#define KVMMU_MIGHT_SLEEP() kvmmu_plat_might_sleep(__FILE__, __LINE__)
