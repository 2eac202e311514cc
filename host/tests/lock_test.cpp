// SPDX-License-Identifier: GPL-2.0
// Host tests of the lock wrappers and guards, and of the context checks the
// host platform makes (assert_held, might_sleep, GFP_KERNEL in atomic
// context), which abort like a debug kernel's lockdep and might_sleep.
#include <atomic>
#include <thread>
#include <vector>

#include <kvmmu/alloc.hpp>
#include <kvmmu/lock.hpp>

#include "host_test.hpp"

namespace {

namespace gfp = kvmmu::gfp;
using kvmmu::u64;

constexpr int kThreads = 4;
constexpr int kIters = 50000;

// Runs fn(thread index) on kThreads threads, released together so that
// they really contend.
template <class Fn>
void run_threads(Fn fn)
{
	std::atomic<int> waiting{kThreads};
	std::vector<std::thread> threads;

	for (int i = 0; i < kThreads; i++) {
		threads.emplace_back([&, i] {
			waiting.fetch_sub(1);
			while (waiting.load())
				std::this_thread::yield();
			fn(i);
		});
	}
	for (auto &t : threads)
		t.join();
}

// The guarded counters are plain variables: without mutual exclusion
// increments get lost (and TSan reports the race).
using LockTest = HostTest;

TEST_F(LockTest, SpinGuardExcludes)
{
	kvmmu::SpinLock lock;
	u64 counter = 0;

	KVMMU_LOCK_INIT(lock);
	run_threads([&](int) {
		for (int i = 0; i < kIters; i++) {
			kvmmu::SpinGuard g(lock);
			lock.assert_held();
			counter++;
		}
	});
	EXPECT_EQ(counter, u64(kThreads) * kIters);
}

TEST_F(LockTest, MutexGuardExcludes)
{
	kvmmu::Mutex lock;
	u64 counter = 0;

	KVMMU_LOCK_INIT(lock);
	run_threads([&](int) {
		for (int i = 0; i < kIters; i++) {
			kvmmu::MutexGuard g(lock);
			lock.assert_held();
			KVMMU_MIGHT_SLEEP(); // a mutex may be held across sleeps
			counter++;
		}
	});
	EXPECT_EQ(counter, u64(kThreads) * kIters);
}

TEST_F(LockTest, RwLockGuardsExclude)
{
	kvmmu::RwLock lock;
	u64 a = 0, b = 0;

	KVMMU_LOCK_INIT(lock);
	// Even threads write a and b together, odd ones check they stay equal.
	run_threads([&](int id) {
		for (int i = 0; i < kIters; i++) {
			if (id % 2 == 0) {
				kvmmu::WriteGuard g(lock);
				lock.assert_held_write();
				lock.assert_held();
				a++;
				b++;
			} else {
				kvmmu::ReadGuard g(lock);
				lock.assert_held();
				ASSERT_EQ(a, b);
			}
		}
	});
	EXPECT_EQ(a, u64(kThreads / 2) * kIters);
	EXPECT_EQ(b, a);
}

TEST_F(LockTest, ReadersShare)
{
	kvmmu::RwLock lock;

	KVMMU_LOCK_INIT(lock);
	kvmmu::ReadGuard outer(lock);
	std::thread other([&] {
		kvmmu::ReadGuard g(lock); // would block forever if readers excluded
		lock.assert_held();
	});
	other.join();
	kvmmu::ReadGuard nested(lock); // rwlock_t read locks nest
	lock.assert_held();
}

TEST_F(LockTest, NestedLocks)
{
	kvmmu::Mutex outer;
	kvmmu::SpinLock inner;

	KVMMU_LOCK_INIT(outer);
	KVMMU_LOCK_INIT(inner);
	{
		kvmmu::MutexGuard m(outer);
		kvmmu::SpinGuard s(inner);
		outer.assert_held();
		inner.assert_held();
	}
	// Released: sleeping and GFP_KERNEL are fine again.
	KVMMU_MIGHT_SLEEP();
	void *p = kvmmu::kmalloc(16, 1, gfp::kernel);
	EXPECT_NE(p, nullptr);
	kvmmu::kfree(p);
}

TEST_F(LockTest, AtomicAllocationUnderSpinLock)
{
	kvmmu::SpinLock lock;

	KVMMU_LOCK_INIT(lock);
	kvmmu::SpinGuard g(lock);
	void *p = kvmmu::kmalloc(64, 8, gfp::atomic);
	void *q = kvmmu::kmalloc(64, 8, gfp::nowait | gfp::zero);
	EXPECT_NE(p, nullptr);
	EXPECT_NE(q, nullptr);
	kvmmu::kfree(p);
	kvmmu::kfree(q);
}

// --- what a debug kernel would catch -------------------------------------------

kvmmu::SpinLock never_initialised; // static: zero-filled, no magic

class LockDeathTest : public HostTest {
protected:
	void SetUp() override
	{
		HostTest::SetUp();
		KVMMU_LOCK_INIT(spin);
		KVMMU_LOCK_INIT(rw);
		KVMMU_LOCK_INIT(mutex);
	}

	kvmmu::SpinLock spin;
	kvmmu::RwLock rw;
	kvmmu::Mutex mutex;
};

TEST_F(LockDeathTest, AssertHeldWhenNotHeld)
{
	EXPECT_DEATH(spin.assert_held(), "lockdep_assert_held: spinlock 'spin' not held");
	EXPECT_DEATH(mutex.assert_held(), "lockdep_assert_held: mutex 'mutex' not held");
	EXPECT_DEATH(rw.assert_held(), "lockdep_assert_held: rwlock 'rw' not held");
	EXPECT_DEATH(rw.assert_held_write(), "lockdep_assert_held_write: rwlock 'rw' not held");
}

TEST_F(LockDeathTest, AssertHeldAfterUnlock)
{
	{
		kvmmu::SpinGuard g(spin);
	}
	EXPECT_DEATH(spin.assert_held(), "spinlock 'spin' not held");
}

TEST_F(LockDeathTest, AssertHeldOnAnotherThread)
{
	EXPECT_DEATH(
		{
			kvmmu::SpinGuard g(spin);
			std::thread t([&] { spin.assert_held(); });
			t.join();
		},
		"spinlock 'spin' not held by this thread");
}

TEST_F(LockDeathTest, AssertHeldWriteUnderReadGuard)
{
	EXPECT_DEATH(
		{
			kvmmu::ReadGuard g(rw);
			rw.assert_held();
			rw.assert_held_write();
		},
		"lockdep_assert_held_write: rwlock 'rw' not held");
}

TEST_F(LockDeathTest, MightSleepUnderSpinGuard)
{
	EXPECT_DEATH(
		{
			kvmmu::SpinGuard g(spin);
			KVMMU_MIGHT_SLEEP();
		},
		"sleeping function called from invalid context at .*lock_test.cpp:[0-9]+ "
		"while holding spinlock 'spin'");
}

TEST_F(LockDeathTest, MightSleepUnderReadGuard)
{
	EXPECT_DEATH(
		{
			kvmmu::ReadGuard g(rw);
			KVMMU_MIGHT_SLEEP();
		},
		"sleeping function called from invalid context .* rwlock 'rw'");
}

TEST_F(LockDeathTest, KernelAllocationUnderSpinGuard)
{
	EXPECT_DEATH(
		{
			kvmmu::SpinGuard g(spin);
			kvmmu::kfree(kvmmu::kmalloc(16, 1, gfp::kernel));
		},
		"kmalloc\\(GFP_KERNEL\\) while holding spinlock 'spin'");
}

TEST_F(LockDeathTest, MutexUnderSpinGuard)
{
	EXPECT_DEATH(
		{
			kvmmu::SpinGuard g(spin);
			kvmmu::MutexGuard m(mutex);
		},
		"mutex_lock\\(\\) while holding spinlock 'spin'");
}

TEST_F(LockDeathTest, RecursiveLocking)
{
	EXPECT_DEATH(
		{
			kvmmu::SpinGuard a(spin);
			kvmmu::SpinGuard b(spin);
		},
		"recursive locking of spinlock 'spin'");
	EXPECT_DEATH(
		{
			kvmmu::ReadGuard a(rw);
			kvmmu::WriteGuard b(rw);
		},
		"recursive locking of rwlock 'rw'");
}

TEST_F(LockDeathTest, UnlockWhenNotHeld)
{
	EXPECT_DEATH(spin.unlock(), "unlocking spinlock 'spin', not held by this thread");
	EXPECT_DEATH(
		{
			rw.read_lock();
			rw.write_unlock();
		},
		"unlocking rwlock 'rw', not held for write");
}

TEST_F(LockDeathTest, UninitialisedLock)
{
	EXPECT_DEATH(never_initialised.lock(), "spinlock at 0x[0-9a-f]+ used uninitialised");
}

TEST_F(LockDeathTest, Bug)
{
	EXPECT_DEATH(kvmmu_plat_bug("mmu/vm.cpp", 42, "it broke"), "BUG at mmu/vm.cpp:42: it broke");
}

} // namespace
