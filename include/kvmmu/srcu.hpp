// SPDX-License-Identifier: GPL-2.0
// Sleepable RCU for C++ code: readers may sleep inside a read section.
#pragma once

#include <kvmmu/error.hpp>
#include <kvmmu/lock.hpp>
#include <kvmmu/platform.h>
#include <kvmmu_layout.h>

namespace kvmmu {

class Srcu : Pinned {
public:
	Result<void> init(const char *name, LockClassKey *key)
	{
		return from_kernel_ret(kvmmu_plat_srcu_init(s_, name, key->storage));
	}
	void cleanup() { kvmmu_plat_srcu_cleanup(s_); }
	int read_lock() { return kvmmu_plat_srcu_read_lock(s_); }
	void read_unlock(int idx) { kvmmu_plat_srcu_read_unlock(s_, idx); }
	// Waits for every read section that began before the call.
	void synchronize() { kvmmu_plat_synchronize_srcu(s_); }

private:
	alignas(KVMMU_SRCU_ALIGN) unsigned char s_[KVMMU_SRCU_SIZE];
};

} // namespace kvmmu

// Initialise an Srcu with a lockdep class of its own for this init site.
#define KVMMU_SRCU_INIT(srcu)                                               \
	({                                                                  \
		static ::kvmmu::LockClassKey kvmmu_srcu_key__;              \
		(srcu).init(#srcu, &kvmmu_srcu_key__);                      \
	})
