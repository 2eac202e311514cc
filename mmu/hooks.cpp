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

int kvmmu_vm_attach_core(struct kvmmu_vm *vm, const struct kvmmu_core_config *cfg)
{
	if (!vm || !cfg)
		return Error(Errno::inval).to_errno();
	return to_vm(vm)->attach_core(*cfg).to_errno();
}

int kvmmu_vm_stage2_geometry(struct kvmmu_vm *vm, struct kvmmu_stage2_geometry *out)
{
	if (!vm || !out)
		return Error(Errno::inval).to_errno();
	auto r = to_vm(vm)->geometry();
	if (r)
		*out = r.value();
	return r.to_errno();
}

int kvmmu_vm_unmap(struct kvmmu_vm *vm, uint64_t gpa, uint64_t size)
{
	if (!vm)
		return Error(Errno::inval).to_errno();
	return to_vm(vm)->unmap(Gpa(gpa), size).to_errno();
}

int kvmmu_vm_write_protect(struct kvmmu_vm *vm, uint64_t gpa, uint64_t size, bool blockable)
{
	if (!vm)
		return Error(Errno::inval).to_errno();
	return to_vm(vm)->write_protect(Gpa(gpa), size, blockable).to_errno();
}

int kvmmu_vm_gpa_bits(struct kvmmu_vm *vm)
{
	if (!vm)
		return Error(Errno::inval).to_errno();
	return int(to_vm(vm)->gpa_bits());
}

int kvmmu_vm_set_memory_region(struct kvmmu_vm *vm, const struct kvmmu_memory_region *r)
{
	if (!vm || !r)
		return Error(Errno::inval).to_errno();
	static_assert(KVMMU_MEMSLOT_LOG_DIRTY_PAGES == kMemLogDirtyPages, "flag values");
	static_assert(KVMMU_MEMSLOT_READONLY == kMemReadonly, "flag values");
	static_assert(KVMMU_MEMSLOT_MAX == kMaxMemslots, "slot limit");
	MemslotDesc d;
	d.id = r->slot;
	d.flags = r->flags;
	d.gpa = r->guest_phys_addr;
	d.size = r->memory_size;
	d.hva = r->userspace_addr;
	return to_vm(vm)->set_memory_region(d).to_errno();
}

int kvmmu_vm_gfn_to_pfn(struct kvmmu_vm *vm, uint64_t gfn, uint32_t flags, struct kvmmu_pfn *out)
{
	static_assert(KVMMU_PFN_WRITE == kPfnWrite && KVMMU_PFN_MAP_WRITABLE == kPfnMapWritable &&
		      KVMMU_PFN_NOWAIT == kPfnNoWait && KVMMU_PFN_ATOMIC == kPfnAtomic, "flag values");
	if (!vm || !out)
		return Error(Errno::inval).to_errno();
	auto r = to_vm(vm)->gfn_to_pfn(Gfn(gfn), flags);
	if (!r)
		return r.to_errno();
	out->pfn = r.value().pfn.raw();
	out->writable = r.value().writable;
	out->referenced = r.value().referenced;
	out->has_page = r.value().has_page;
	return 0;
}

void kvmmu_release_pfn(const struct kvmmu_pfn *p, bool dirty, bool accessed)
{
	if (!p)
		return;
	PfnInfo i;
	i.pfn = Pfn(p->pfn);
	i.writable = p->writable;
	i.referenced = p->referenced;
	i.has_page = p->has_page;
	release_pfn(i, dirty, accessed);
}

int kvmmu_vm_invalidate_seq(struct kvmmu_vm *vm, uint64_t *seq)
{
	if (!vm || !seq)
		return Error(Errno::inval).to_errno();
	*seq = to_vm(vm)->invalidate_seq();
	return 0;
}

int kvmmu_vm_retry(struct kvmmu_vm *vm, uint64_t start, uint64_t end, uint64_t seq)
{
	if (!vm)
		return Error(Errno::inval).to_errno();
	return young_ret(to_vm(vm)->retry(Gfn(start), Gfn(end), seq));
}

int kvmmu_vm_fault(struct kvmmu_vm *vm, uint64_t gpa, uint32_t access, struct kvmmu_fault_info *out)
{
	static_assert(KVMMU_FAULT_LOG == kAccessLog, "access values");
	static_assert(KVMMU_FAULT_WRITE == kAccessWrite && KVMMU_FAULT_EXEC == kAccessExec,
		      "access values");
	if (!vm)
		return Error(Errno::inval).to_errno();
	auto r = to_vm(vm)->fault(Gpa(gpa), access);
	if (!r)
		return r.to_errno();
	if (out) {
		out->level = r.value().level;
		out->writable = r.value().writable;
		out->size = r.value().size;
		out->pfn = r.value().pfn.raw();
	}
	return 0;
}

int kvmmu_vm_pre_fault(struct kvmmu_vm *vm, uint64_t gpa, uint64_t size, uint32_t access)
{
	if (!vm)
		return Error(Errno::inval).to_errno();
	return to_vm(vm)->pre_fault(Gpa(gpa), size, access).to_errno();
}

int kvmmu_vm_translate(struct kvmmu_vm *vm, uint64_t gpa, struct kvmmu_leaf_info *out)
{
	static_assert(KVMMU_LEAF_PROT_READ == pgt::kRead && KVMMU_LEAF_PROT_WRITE == pgt::kWrite &&
		      KVMMU_LEAF_PROT_EXEC == pgt::kExec, "prot values");
	static_assert(KVMMU_LEAF_MT_NORMAL_WB == u32(pgt::MemType::normal_wb) &&
		      KVMMU_LEAF_MT_NORMAL_NC == u32(pgt::MemType::normal_nc) &&
		      KVMMU_LEAF_MT_DEVICE == u32(pgt::MemType::device), "memtype values");
	if (!vm || !out)
		return Error(Errno::inval).to_errno();
	auto r = to_vm(vm)->translate(Gpa(gpa));
	if (!r)
		return r.to_errno();
	const pgt::Leaf &l = r.value();
	*out = {};
	out->mapped = l.mapped;
	if (l.mapped) {
		out->young = l.young;
		out->dirty = l.dirty;
		out->level = l.level;
		out->prot = l.attrs.prot;
		out->memtype = u32(l.attrs.mt);
		out->size = l.size;
		out->pfn = l.oa >> kPageShift;
	}
	return 0;
}

int64_t kvmmu_vm_get_dirty_log(struct kvmmu_vm *vm, uint32_t slot, uint64_t ubuf)
{
	if (!vm)
		return Error(Errno::inval).to_errno();
	auto r = to_vm(vm)->get_dirty_log(slot, ubuf);
	return r ? int64_t(r.value()) : r.to_errno();
}

int kvmmu_vm_get_mmu_stats(struct kvmmu_vm *vm, struct kvmmu_vm_mmu_stats *out)
{
	if (!vm || !out)
		return Error(Errno::inval).to_errno();
	VmStats s = to_vm(vm)->stats();
	*out = {};
	out->faults = s.faults;
	out->fault_retries = s.fault_retries;
	out->dirty_faults = s.dirty_faults;
	out->pages_unmapped = s.pages_unmapped;
	for (unsigned i = 0; i < 3; i++)
		out->leaves[i] = s.leaves[i];
	out->table_pages = s.table_pages;
	out->tlb_flushes = s.tlb_flushes;
	return 0;
}

int kvmmu_get_module_stats(struct kvmmu_module_stats *out)
{
	if (!out)
		return Error(Errno::inval).to_errno();
	*out = Vm::module_stats();
	return 0;
}

// Not a hook of hooks.h: the module's own debugfs knob (kernel/glue.h
// declares it for the C glue), selecting the invalidation tracker's legacy
// retry rule for benchmark baselines (InvalidationTracker::Rule).
int kvmmu_vm_set_legacy_retry(struct kvmmu_vm *vm, bool legacy);
int kvmmu_vm_set_legacy_retry(struct kvmmu_vm *vm, bool legacy)
{
	if (!vm)
		return Error(Errno::inval).to_errno();
	to_vm(vm)->set_legacy_retry(legacy);
	return 0;
}

} // extern "C"
