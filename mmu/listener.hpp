// SPDX-License-Identifier: GPL-2.0
// The one way a component built on mmu/ (the pfn caches, nested shadow
// MMUs, the TCE tables) hears what happens to a VM's host memory, without
// the VM knowing the component: it attaches a listener to the VM.
//
// A component keeps one listener per VM, found again by its key (the
// address of a static ListenerKey of the component's own), and indexes
// whatever it keeps in it: the VM calls each listener once per event,
// never once per object of a component.
//
// Lifetime: attached listeners stay until the VM is destroyed, which calls
// detach() on each (the listener frees itself); a component's objects must
// be gone by then (docs/interfaces.md).
#pragma once

#include <kvmmu/types.hpp>
#include <kvmmu/util.hpp>

namespace kvmmu {

class Vm;

// Identifies a component's listener: one static instance per component.
struct ListenerKey {
	const char *name;
};

class VmListener {
public:
	explicit VmListener(const ListenerKey &key) : key_(&key) {}

	// invalidate_range_start of [start, end): called with the VM's MMU
	// lock held for write, after the range is recorded as in flight (a
	// lookup that takes the MMU lock from now on sees it) and before the
	// call returns to the kernel. Must not sleep or allocate. From its
	// return until the matching end, nothing the component derived from
	// the range may be used.
	virtual void invalidate_start(Hva start, Hva end) = 0;
	// The matching invalidate_range_end, after the range left the
	// in-flight set; no VM lock held. Must not sleep.
	virtual void invalidate_end(Hva start, Hva end) = 0;
	// The address space is going away (mmu_notifier release): no further
	// invalidation will be reported, so everything derived from host
	// memory goes now. May sleep.
	virtual void released() = 0;
	// The VM is being destroyed: free the listener.
	virtual void detach() = 0;

	const ListenerKey *key() const { return key_; }

protected:
	~VmListener() = default;

private:
	friend class Vm;
	const ListenerKey *key_;
	VmListener *next_ = nullptr;
};

} // namespace kvmmu
