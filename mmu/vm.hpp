// SPDX-License-Identifier: GPL-2.0
// A VM: the unit that owns guest memory state and receives the host's
// mmu-notifier events for the address space that backs it.
#pragma once

#include <kvmmu/atomic.hpp>
#include <kvmmu/error.hpp>
#include <kvmmu/hooks.h>
#include <kvmmu/lock.hpp>
#include <kvmmu/types.hpp>

namespace kvmmu {

class Vm : Pinned {
public:
	// Process context; may sleep.
	static Result<Vm *> create(u32 flags);
	~Vm();

	Result<void> invalidate_range_start(Hva start, Hva end, bool blockable);
	Result<void> invalidate_range_end(Hva start, Hva end);
	Result<bool> clear_flush_young(Hva start, Hva end);
	Result<bool> clear_young(Hva start, Hva end);
	Result<bool> test_young(Hva hva);
	Result<void> change_pte(Hva hva);
	void release();

	kvmmu_vm_counters counters() const;
	u64 invalidations_in_flight() const { return in_flight_.load(); }
	bool released() const { return released_.load(); }

	static kvmmu_module_stats module_stats();

private:
	template <class T, class... Args> friend T *make(Gfp, Args &&...);
	Vm();

	struct Counters {
		Atomic<u64> invalidate_range_start;
		Atomic<u64> invalidate_range_end;
		Atomic<u64> clear_flush_young;
		Atomic<u64> clear_young;
		Atomic<u64> test_young;
		Atomic<u64> change_pte;
		Atomic<u64> release;
	};

	// Serialises updates of the in-flight invalidation count with the
	// (future) installation of mappings.
	SpinLock mmu_lock_;
	Atomic<u64> in_flight_;
	Atomic<bool> released_;
	Counters counters_;
};

} // namespace kvmmu
