// SPDX-License-Identifier: GPL-2.0
// Kernel wait queues for C++ code.
#pragma once

#include <kvmmu/error.hpp>
#include <kvmmu/lock.hpp>
#include <kvmmu/platform.h>
#include <kvmmu_layout.h>

namespace kvmmu {

class WaitQueue : Pinned {
public:
	// Through KVMMU_LOCK_INIT(wq): a lockdep class per init site.
	void init(const char *name, LockClassKey *key) { kvmmu_plat_waitq_init(s_, name, key->storage); }
	// Sleeps until cond() holds (checked before sleeping and after every
	// wake-up); -EINTR on a fatal signal. cond runs with the task not
	// running: spinning locks only.
	template <class Cond> Result<void> wait_killable(Cond &&cond)
	{
		KVMMU_MIGHT_SLEEP();
		auto thunk = [](void *arg) -> bool { return (*static_cast<Cond *>(arg))(); };
		if (kvmmu_plat_wait_event_killable(s_, thunk, &cond))
			return Errno::intr;
		return {};
	}
	// Wakes every waiter; after the condition changed (no lock taken if
	// nobody waits).
	void wake_all() { kvmmu_plat_wake_up_all_sleepers(s_); }

private:
	alignas(KVMMU_WAITQ_ALIGN) unsigned char s_[KVMMU_WAITQ_SIZE];
};

} // namespace kvmmu
