// SPDX-License-Identifier: GPL-2.0
// The hooks of include/kvmmu/hooks.h whose device-memory half is
// passthrough's: kvmmu_vm_access() and kvmmu_vm_mmio_access() access RAM
// through the kernel's map (mmu/) and device memory through MmioAccess.
#include <kvmmu/hooks.h>

#include "../mmu/vm.hpp"
#include "mmio.hpp"

using namespace kvmmu;

extern "C" {

int kvmmu_vm_access(struct kvmmu_vm *vm, uint64_t gpa, uint64_t len, uint64_t ubuf, bool write)
{
	if (!vm)
		return Error(Errno::inval).to_errno();
	return reinterpret_cast<Vm *>(vm)->access(Gpa(gpa), len, ubuf, write, &MmioAccess::get()).to_errno();
}

int kvmmu_vm_mmio_access(struct kvmmu_vm *vm, uint64_t gpa, uint32_t len, void *buf, bool write)
{
	if (!vm)
		return Error(Errno::inval).to_errno();
	return reinterpret_cast<Vm *>(vm)
		->access_kernel(Gpa(gpa), len, static_cast<u8 *>(buf), write, &MmioAccess::get())
		.to_errno();
}

} // extern "C"
