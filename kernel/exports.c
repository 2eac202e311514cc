// SPDX-License-Identifier: GPL-2.0
/* The hooks a KVM core calls, exported in the KVMMU namespace. */
#include <linux/export.h>

#include <kvmmu/hooks.h>

EXPORT_SYMBOL_NS_GPL(kvmmu_vm_create, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_vm_destroy, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_vm_invalidate_range_start, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_vm_invalidate_range_end, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_vm_clear_flush_young, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_vm_clear_young, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_vm_test_young, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_vm_change_pte, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_vm_release, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_vm_get_counters, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_get_module_stats, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_vm_gpa_bits, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_vm_set_memory_region, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_vm_gfn_to_pfn, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_release_pfn, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_vm_invalidate_seq, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_vm_retry, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_vm_fault, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_vm_pre_fault, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_vm_translate, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_vm_access, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_vm_mmio_access, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_vm_get_dirty_log, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_vm_get_mmu_stats, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_gpc_init, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_gpc_activate_gpa, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_gpc_activate_hva, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_gpc_refresh, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_gpc_read_lock, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_gpc_read_unlock, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_gpc_check, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_gpc_khva, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_gpc_mark_dirty, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_gpc_deactivate, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_gpc_destroy, KVMMU);
EXPORT_SYMBOL_NS_GPL(kvmmu_gpc_get_counts, KVMMU);
