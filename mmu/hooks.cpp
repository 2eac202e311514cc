// SPDX-License-Identifier: GPL-2.0
// The extern-C hooks of include/kvmmu/hooks.h: argument checks and the
// conversion of Result to -errno. No logic beyond that lives here.
#include <kvmmu/hooks.h>

#include "vm.hpp"

using namespace kvmmu;

namespace {
Vm *to_vm(kvmmu_vm *vm) { return reinterpret_cast<Vm *>(vm); }

int young_ret(const Result<bool> &r) { return r.ok() ? (r.value() ? 1 : 0) : r.to_errno(); }
} // namespace

extern "C" {

int kvmmu_vm_create(uint32_t flags, struct kvmmu_vm **vmp)
{
	if (!vmp)
		return Error(Errno::inval).to_errno();
	auto r = Vm::create(flags);
	if (!r)
		return r.to_errno();
	*vmp = reinterpret_cast<kvmmu_vm *>(r.value());
	return 0;
}

void kvmmu_vm_destroy(struct kvmmu_vm *vm)
{
	KVMMU_MIGHT_SLEEP();
	destroy(to_vm(vm));
}

int kvmmu_vm_invalidate_range_start(struct kvmmu_vm *vm, uint64_t start, uint64_t end,
				    bool blockable)
{
	if (!vm)
		return Error(Errno::inval).to_errno();
	return to_vm(vm)->invalidate_range_start(Hva(start), Hva(end), blockable).to_errno();
}

int kvmmu_vm_invalidate_range_end(struct kvmmu_vm *vm, uint64_t start, uint64_t end)
{
	if (!vm)
		return Error(Errno::inval).to_errno();
	return to_vm(vm)->invalidate_range_end(Hva(start), Hva(end)).to_errno();
}

int kvmmu_vm_clear_flush_young(struct kvmmu_vm *vm, uint64_t start, uint64_t end)
{
	if (!vm)
		return Error(Errno::inval).to_errno();
	return young_ret(to_vm(vm)->clear_flush_young(Hva(start), Hva(end)));
}

int kvmmu_vm_clear_young(struct kvmmu_vm *vm, uint64_t start, uint64_t end)
{
	if (!vm)
		return Error(Errno::inval).to_errno();
	return young_ret(to_vm(vm)->clear_young(Hva(start), Hva(end)));
}

int kvmmu_vm_test_young(struct kvmmu_vm *vm, uint64_t hva)
{
	if (!vm)
		return Error(Errno::inval).to_errno();
	return young_ret(to_vm(vm)->test_young(Hva(hva)));
}

int kvmmu_vm_change_pte(struct kvmmu_vm *vm, uint64_t hva)
{
	if (!vm)
		return Error(Errno::inval).to_errno();
	return to_vm(vm)->change_pte(Hva(hva)).to_errno();
}

int kvmmu_vm_release(struct kvmmu_vm *vm)
{
	if (!vm)
		return Error(Errno::inval).to_errno();
	to_vm(vm)->release();
	return 0;
}

int kvmmu_vm_get_counters(struct kvmmu_vm *vm, struct kvmmu_vm_counters *out)
{
	if (!vm || !out)
		return Error(Errno::inval).to_errno();
	*out = to_vm(vm)->counters();
	return 0;
}

int kvmmu_get_module_stats(struct kvmmu_module_stats *out)
{
	if (!out)
		return Error(Errno::inval).to_errno();
	*out = Vm::module_stats();
	return 0;
}

} // extern "C"
