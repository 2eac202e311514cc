// SPDX-License-Identifier: GPL-2.0
#include "vm.hpp"

namespace kvmmu {

namespace {
// Constant-initialised (constexpr constructors): no global constructor.
Atomic<u64> g_vms_created;
Atomic<u64> g_vms_live;

bool valid_range(Hva start, Hva end) { return start < end; }
} // namespace

Vm::Vm()
{
	KVMMU_LOCK_INIT(mmu_lock_);
	g_vms_created.fetch_add(1);
	g_vms_live.fetch_add(1);
}

Vm::~Vm() { g_vms_live.fetch_sub(1); }

Result<Vm *> Vm::create(u32 flags)
{
	if (flags & ~KVMMU_VM_CREATE_FLAGS_VALID)
		return Errno::inval;
	KVMMU_MIGHT_SLEEP();
	Vm *vm = make<Vm>(gfp::kernel | gfp::account);
	if (!vm)
		return Errno::nomem;
	return vm;
}

Result<void> Vm::invalidate_range_start(Hva start, Hva end, bool blockable)
{
	(void)blockable; // nothing here sleeps yet
	if (!valid_range(start, end))
		return Errno::inval;
	SpinGuard g(mmu_lock_);
	in_flight_.fetch_add(1);
	counters_.invalidate_range_start.fetch_add(1, Order::relaxed);
	return {};
}

Result<void> Vm::invalidate_range_end(Hva start, Hva end)
{
	if (!valid_range(start, end))
		return Errno::inval;
	SpinGuard g(mmu_lock_);
	if (in_flight_.load() == 0)
		return Errno::inval; // unpaired end
	in_flight_.fetch_sub(1);
	counters_.invalidate_range_end.fetch_add(1, Order::relaxed);
	return {};
}

Result<bool> Vm::clear_flush_young(Hva start, Hva end)
{
	if (!valid_range(start, end))
		return Errno::inval;
	counters_.clear_flush_young.fetch_add(1, Order::relaxed);
	return false; // nothing is mapped yet
}

Result<bool> Vm::clear_young(Hva start, Hva end)
{
	if (!valid_range(start, end))
		return Errno::inval;
	counters_.clear_young.fetch_add(1, Order::relaxed);
	return false;
}

Result<bool> Vm::test_young(Hva hva)
{
	(void)hva;
	counters_.test_young.fetch_add(1, Order::relaxed);
	return false;
}

Result<void> Vm::change_pte(Hva hva)
{
	(void)hva;
	counters_.change_pte.fetch_add(1, Order::relaxed);
	return {};
}

void Vm::release()
{
	released_.store(true);
	counters_.release.fetch_add(1, Order::relaxed);
}

kvmmu_vm_counters Vm::counters() const
{
	kvmmu_vm_counters c{};
	c.invalidate_range_start = counters_.invalidate_range_start.load(Order::relaxed);
	c.invalidate_range_end = counters_.invalidate_range_end.load(Order::relaxed);
	c.clear_flush_young = counters_.clear_flush_young.load(Order::relaxed);
	c.clear_young = counters_.clear_young.load(Order::relaxed);
	c.test_young = counters_.test_young.load(Order::relaxed);
	c.change_pte = counters_.change_pte.load(Order::relaxed);
	c.release = counters_.release.load(Order::relaxed);
	return c;
}

kvmmu_module_stats Vm::module_stats()
{
	kvmmu_module_stats s{};
	s.vms_created = g_vms_created.load();
	s.vms_live = g_vms_live.load();
	return s;
}

} // namespace kvmmu
