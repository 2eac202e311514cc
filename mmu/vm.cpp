// SPDX-License-Identifier: GPL-2.0
#include "vm.hpp"

#include <kvmmu/platform.h>

#include "pgtable/pgtable_impl.hpp"

namespace kvmmu {

namespace {
// Constant-initialised (constexpr constructors): no global constructor.
Atomic<u64> g_vms_created;
Atomic<u64> g_vms_live;
// VMs a core attached to; the rest summed at their destruction.
Atomic<u64> g_core_vms_created;
Atomic<u64> g_core_vms_live;
struct CoreTotals {
	Atomic<u64> faults, dirty_faults, invalidations, pages_unmapped, tlb_flushes, cache_maintenance;
} g_core;

bool valid_range(Hva start, Hva end) { return start < end; }

// Tables one fault can need: one per level below the root.
constexpr unsigned kFaultTables = S2Format::levels - 1;

u64 leaf_pfn(const pgt::Leaf &l) { return l.oa >> kPageShift; }

// Is a leaf's page copied through the kernel's map by access()? Only
// cacheable RAM the kernel maps; anything else is device memory to it.
bool kernel_copyable(const pgt::Leaf &l)
{
	return l.attrs.mt == pgt::MemType::normal_wb && kvmmu_plat_pfn_kmappable(leaf_pfn(l));
}

// The stage-2 memory type of a pfn: what the host mapping asks for. An
// uncached mapping (MMIO) is device memory (EPT UC, arm64 Device-nGnRE,
// ppc64 cache-inhibited + guarded); a write-combining one is normal
// non-cacheable (EPT WC, arm64 Normal-NC, ppc64 cache-inhibited, not
// guarded); a cacheable one is normal write-back, RAM or not.
pgt::MemType leaf_memtype(const PfnInfo &p)
{
	switch (p.cache) {
	case KVMMU_CACHE_WB:
		return pgt::MemType::normal_wb;
	case KVMMU_CACHE_WC:
		return pgt::MemType::normal_nc;
	default:
		return pgt::MemType::device;
	}
}

// The final state of leaves an invalidation removes goes to the host
// pages: dirty if the guest wrote them, accessed if the guest touched them.
struct HostPageSink final : pgt::LeafSink {
	u64 pages = 0;
	void removed(u64, u64 size, u64 oa, pgt::Attrs attrs, bool young, bool dirty) override
	{
		pages += size >> kPageShift;
		if (!attrs.host_page)
			return; // not referenced through GUP: never touch its struct page
		u64 pfn = oa >> kPageShift;
		if (dirty && (attrs.prot & pgt::kWrite))
			kvmmu_plat_pfn_mark_dirty(pfn);
		if (young)
			kvmmu_plat_pfn_mark_accessed(pfn);
	}
};
} // namespace

Vm::Vm(void *mm) : mm_(mm), vm_cache_(Pt::table_alloc_bytes()), ops_(vm_cache_),
		   spare_(Pt::table_alloc_bytes())
{
	KVMMU_LOCK_INIT(mmu_lock_);
	KVMMU_LOCK_INIT(spare_lock_);
	KVMMU_LOCK_INIT(listener_lock_);
	g_vms_created.fetch_add(1);
	g_vms_live.fetch_add(1);
}

Vm::~Vm()
{
	for (VmListener *l = listeners_.load(Order::acquire), *n; l; l = n) {
		n = l->next_;
		l->detach();
	}
	destroy(pt_);
	if (ops_.core) {
		g_core.faults.fetch_add(counters_.faults.load());
		g_core.dirty_faults.fetch_add(counters_.dirty_faults.load());
		g_core.invalidations.fetch_add(counters_.invalidate_range_start.load());
		g_core.pages_unmapped.fetch_add(counters_.pages_unmapped.load());
		g_core.tlb_flushes.fetch_add(ops_.flushes.load());
		g_core.cache_maintenance.fetch_add(ops_.dcache_ops.load());
		g_core_vms_live.fetch_sub(1);
	}
	if (mm_)
		kvmmu_plat_mm_drop(mm_);
	g_vms_live.fetch_sub(1);
}

Result<void> Vm::init()
{
	KVMMU_TRY_VOID(slots_.init());
	KVMMU_TRY(pt, Pt::create(ops_, mmu_lock_, gfp::kernel | gfp::account));
	pt_ = pt;
	return {};
}

Result<Vm *> Vm::create(u32 flags)
{
	if (flags & ~KVMMU_VM_CREATE_FLAGS_VALID)
		return Errno::inval;
	KVMMU_MIGHT_SLEEP();
	void *mm = kvmmu_plat_mm_grab_current();
	Vm *vm = make<Vm>(gfp::kernel | gfp::account, mm);
	if (!vm) {
		if (mm)
			kvmmu_plat_mm_drop(mm);
		return Errno::nomem;
	}
	auto r = vm->init();
	if (!r) {
		destroy(vm);
		return r.error();
	}
	return vm;
}

// ---------------------------------------------------------------------------
// A KVM core's hardware walks the table
// ---------------------------------------------------------------------------

namespace {
template <class F> void set_format_fwb(bool on)
{
	if constexpr (F::has_fwb)
		F::set_fwb(on);
}
} // namespace

Result<void> Vm::attach_core(const kvmmu_core_config &cfg)
{
	if (cfg.flags & ~KVMMU_CORE_FLAGS_VALID)
		return Errno::inval;
	const kvmmu_core_ops *o = cfg.ops;
	if (!o || !o->tlb_flush_range || !o->tlb_flush_all || !o->dcache_clean_poc || !o->icache_inval_pou)
		return Errno::inval;
	if ((cfg.flags & KVMMU_CORE_FWB) && !S2Format::has_fwb)
		return Errno::inval;
	if (!cfg.ipa_bits || cfg.ipa_bits > 64)
		return Errno::inval;
	// The root is at a fixed level: the walk must start there, which the
	// architecture allows only for IPA sizes the root level resolves.
	if (cfg.ipa_bits < S2Format::min_walk_ia_bits || cfg.ipa_bits > S2Format::ia_bits)
		return Errno::opnotsupp;
	KVMMU_MIGHT_SLEEP();
	MutexGuard m(listener_lock_);
	if (ops_.core || slots_.generation())
		return Errno::busy;
	set_format_fwb<S2Format>(cfg.flags & KVMMU_CORE_FWB);
	WriteGuard g(mmu_lock_);
	ops_.core_ctx = cfg.ctx;
	ops_.core_flags = cfg.flags;
	ops_.core = o;
	gpa_bits_ = cfg.ipa_bits;
	g_core_vms_created.fetch_add(1);
	g_core_vms_live.fetch_add(1);
	return {};
}

Result<kvmmu_stage2_geometry> Vm::geometry() const
{
	if (!ops_.core)
		return Errno::inval;
	kvmmu_stage2_geometry g{};
	g.root_pa = pt_->root_pa();
	g.page_shift = S2Format::page_shift;
	g.levels = S2Format::levels;
	g.start_level = S2Format::arch_start_level;
	g.ipa_bits = gpa_bits_;
	g.concatenated = 1;
	return g;
}

void Vm::S2Ops::maintain(Pfn pfn, u64 size, bool clean, bool inval)
{
	clean = clean && !(core_flags & KVMMU_CORE_FWB);
	inval = inval && !(core_flags & KVMMU_CORE_DIC);
	if (!core || (!clean && !inval))
		return;
	for (u64 off = 0; off < size; off += kPageSize) {
		const u64 pf = pfn.raw() + (off >> kPageShift);
		// RAM outside the linear map (mem=, mapped from /dev/mem) has
		// no kernel address to clean by: docs/kvm.md.
		if (!kvmmu_plat_pfn_kmappable(pf))
			continue;
		void *va = kvmmu_plat_kmap_pfn(pf);
		if (clean)
			core->dcache_clean_poc(core_ctx, va, kPageSize);
		if (inval)
			core->icache_inval_pou(core_ctx, va, kPageSize);
		kvmmu_plat_kunmap(va);
	}
	dcache_ops.fetch_add(1, Order::relaxed);
}

// Only slots map anything (a retiring slot included, until retiring()
// zaps it): walk their parts of the range, not the range, which for a
// whole 48-bit IPA space would be four million empty pieces.
Result<void> Vm::unmap(Gpa gpa, u64 size)
{
	if (!size || !page_aligned(gpa.raw()) || !page_aligned(size) || !gpa_range_ok(gpa.raw(), size))
		return Errno::inval;
	KVMMU_MIGHT_SLEEP();
	const u64 start = gpa.raw(), end = start + size;
	Memslots::ReadSection rs(slots_);
	WriteGuard g(mmu_lock_);
	for_each_slot_part(rs.set(), start, end, [&](u64 a, u64 b) { zap_gpa(a, b, true); });
	return {};
}

Result<void> Vm::write_protect(Gpa gpa, u64 size, bool may_yield)
{
	if (!size || !page_aligned(gpa.raw()) || !page_aligned(size) || !gpa_range_ok(gpa.raw(), size))
		return Errno::inval;
	if (may_yield)
		KVMMU_MIGHT_SLEEP();
	const u64 start = gpa.raw(), end = start + size;
	Memslots::ReadSection rs(slots_); // only slots map anything (see unmap())
	WriteGuard g(mmu_lock_);
	HostPageSink dirty; // write access ends: hand over what was written
	for_each_slot_part(rs.set(), start, end, [&](u64 a0, u64 b0) {
		in_pieces(a0, b0, may_yield, [&](u64 a, u64 b) {
			auto r = pt_->wrprotect(a, b - a, &dirty);
			(void)r; // the range was checked above
		});
	});
	return {};
}

// ---------------------------------------------------------------------------
// Memslots
// ---------------------------------------------------------------------------
Result<void> Vm::set_memory_region(const MemslotDesc &d)
{
	// Guest memory the stage-2 format cannot address is refused up front.
	if (d.size && !gpa_range_ok(d.gpa, d.size))
		return Errno::inval;
	if (released_.load())
		return Errno::io; // the address space is gone
	return slots_.update(d, this);
}

// A deleted or moved slot, hidden from faults but still found by
// invalidations: what it mapped goes.
// Also an invalidation of the slot's host range, as far as retry() is
// concerned: a caller of the hooks (a KVM core: invalidate_seq(), then
// gfn_to_pfn(), then retry()) holds no memslot read section across them,
// so an invalidation that ends while no slot covers its range (this one
// was deleted meanwhile, perhaps to be created again at once) would
// otherwise not count for a pfn it looked up through this slot.
void Vm::retiring(const Memslot *old_slot)
{
	WriteGuard g(mmu_lock_);
	zap_gpa(to_gpa(old_slot->base_gfn()).raw(), to_gpa(old_slot->end_gfn()).raw(), true);
	inval_.ended(old_slot->hva().raw(), old_slot->hva_end().raw());
}

// A slot that starts logging has its pages write-protected, so the next
// write to each is seen.
void Vm::committed(const Memslot *old_slot, const Memslot *new_slot)
{
	if (!old_slot || !new_slot || !new_slot->logging_dirty() || old_slot->logging_dirty() ||
	    old_slot->base_gfn() != new_slot->base_gfn())
		return;
	WriteGuard g(mmu_lock_);
	HostPageSink dirty; // write access ends: hand over what was written
	const u64 start = to_gpa(new_slot->base_gfn()).raw();
	in_pieces(start, start + (new_slot->npages() << kPageShift), true, [&](u64 a, u64 b) {
		auto r = pt_->wrprotect(a, b - a, &dirty);
		(void)r; // a range checked at creation: cannot fail
	});
}

// ---------------------------------------------------------------------------
// Invalidation
// ---------------------------------------------------------------------------

Result<void> Vm::set_piece_bytes(u64 bytes)
{
	if (bytes < kPageSize || (bytes & (bytes - 1)))
		return Errno::inval;
	piece_bytes_ = bytes;
	return {};
}

// Calls fn(a, b) for consecutive pieces [a, b) covering [start, end)
// widened to whole leaves, with the MMU lock held for write throughout
// except, if may_yield, between pieces. A piece starts where a leaf starts
// and ends at a piece_bytes_ boundary or, if a leaf crosses that (or end),
// at the leaf's end, so fn never sees part of a leaf: an unmap must never
// be left to split a block, it has no memory for that. Whatever the caller
// relies on across a break (a range recorded as in flight, a slot hidden
// from faults, released_) must keep faults out of the rest. A block a
// fault maps meanwhile across the next piece's start would have to avoid
// all of that, which the formats' block sizes and the default piece rule
// out; it would be taken whole all the same.
template <class Fn>
void Vm::in_pieces(u64 start, u64 end, bool may_yield, Fn &&fn)
{
	mmu_lock_.assert_held_write();
	bool look = true; // start may be inside a leaf: at first, after a break
	while (start < end) {
		if (look) {
			pgt::Leaf s = pt_->get_leaf(start);
			if (s.mapped && s.ia < start)
				start = s.ia;
		}
		u64 b = (start | (piece_bytes_ - 1)) + 1;
		if (b > end || b < start)
			b = end;
		pgt::Leaf l = pt_->get_leaf(b - 1);
		if (l.mapped && l.ia + l.size > b)
			b = l.ia + l.size;
		fn(start, b);
		start = b;
		look = may_yield && start < end && mmu_lock_.cond_resched_write();
	}
}

// Invalidation cannot fail: a failed zap would leave a stale mapping behind.
void Vm::zap_checked(u64 ia, u64 size, pgt::LeafSink &sink)
{
	auto r = pt_->zap(ia, size, &sink);
	if (KVMMU_UNLIKELY(!r))
		kvmmu_plat_bug(__FILE__, __LINE__, "stage-2 zap failed");
}

// Unmaps [start, end) of guest physical space, widened to whole leaves: an
// invalidation never splits a block (that would need memory here), it
// drops it; the next fault maps what is still valid.
void Vm::zap_gpa(u64 start, u64 end, bool may_yield)
{
	HostPageSink sink;
	in_pieces(start, end, may_yield, [&](u64 a, u64 b) {
		// zap() takes leaves whole: it needs no memory, and the range
		// lies inside the stage-2 format's (checked at slot creation).
		zap_checked(a, b - a, sink);
	});
	counters_.pages_unmapped.fetch_add(sink.pages, Order::relaxed);
}

void Vm::zap_hva(const MemslotSet &set, Hva start, Hva end, bool may_yield)
{
	set.for_each_hva_overlap(start, end, [&](const Memslot &s) {
		Hva from = max(start, s.hva());
		Hva to = min(end, s.hva_end());
		u64 gpa = to_gpa(s.base_gfn()).raw() + (from - s.hva());
		zap_gpa(gpa & ~(kPageSize - 1), (gpa + (to - from) + kPageSize - 1) & ~(kPageSize - 1),
			may_yield);
	});
}

Result<void> Vm::invalidate_range_start(Hva start, Hva end, bool blockable)
{
	// A non-blockable range (the OOM reaper) is unmapped all the same, only
	// without giving up the lock: that can sleep.
	if (!valid_range(start, end))
		return Errno::inval;
	unsigned n;
	{
		WriteGuard g(mmu_lock_);
		// Recorded before the unmap: a fault that gets the lock after us
		// sees the range in flight and does not map it again.
		inval_.start(start.raw(), end.raw());
		n = inval_.in_flight();
		// Components stop using what they derived from the range before
		// this returns; they see it in flight from now on.
		for (VmListener *l = listeners_.load(Order::acquire); l; l = l->next_)
			l->invalidate_start(start, end);
		// The slots are picked only now, after the range is recorded
		// (docs/locking.md): a fault that mapped the range before this
		// point did so through a slot of this set or of one that was
		// retired (and zapped) since, never through a slot published
		// after the set read here.
		Memslots::ReadSection rs(slots_);
		// Faults stay out of the range while the zap breaks the lock:
		// it is in flight.
		zap_hva(rs.set(), start, end, blockable);
	}
	counters_.invalidate_range_start.fetch_add(1, Order::relaxed);
	kvmmu_plat_trace_invalidate_start(this, start.raw(), end.raw(), n);
	return {};
}

Result<void> Vm::invalidate_range_end(Hva start, Hva end)
{
	if (!valid_range(start, end))
		return Errno::inval;
	u64 seq;
	{
		WriteGuard g(mmu_lock_);
		// Only a range that overlaps a slot now can matter to a fault in
		// progress: such a fault holds its slot in the set (or, retiring,
		// in the host-address order) until it is done.
		bool relevant = false;
		{
			Memslots::ReadSection rs(slots_);
			rs.set().for_each_hva_overlap(start, end, [&](const Memslot &) { relevant = true; });
		}
		KVMMU_TRY_VOID(inval_.end(start.raw(), end.raw(), relevant));
		seq = inval_.seq();
		ends_total_++;
	}
	// After the range left the in-flight set: a waiter woken now sees it
	// gone.
	for (VmListener *l = listeners_.load(Order::acquire); l; l = l->next_)
		l->invalidate_end(start, end);
	counters_.invalidate_range_end.fetch_add(1, Order::relaxed);
	kvmmu_plat_trace_invalidate_end(this, start.raw(), end.raw(), seq);
	return {};
}

void Vm::set_legacy_retry(bool legacy)
{
	WriteGuard g(mmu_lock_);
	inval_.set_rule(legacy ? InvalidationTracker::Rule::legacy : InvalidationTracker::Rule::exact);
}

u64 Vm::invalidations_in_flight()
{
	ReadGuard g(mmu_lock_);
	return inval_.in_flight();
}

Result<bool> Vm::retry(Gfn start, Gfn end, u64 seq)
{
	if (!(start < end))
		return Errno::inval;
	bool r = false;
	Memslots::ReadSection rs(slots_);
	ReadGuard g(mmu_lock_);
	// The range may span slots (and holes): check each slot's part.
	rs.set().for_each_gfn_overlap(start, end, [&](const Memslot &s) {
		Gfn g0 = max(start, s.base_gfn()), g1 = min(end, s.end_gfn());
		r |= inval_.retry(s.gfn_to_hva(g0).raw(), s.gfn_to_hva(g1).raw(), seq);
	});
	return r;
}

Result<bool> Vm::age_hva(Hva start, Hva end, bool flush)
{
	if (!valid_range(start, end))
		return Errno::inval;
	bool young = false;
	Memslots::ReadSection rs(slots_);
	ReadGuard g(mmu_lock_);
	rs.set().for_each_hva_overlap(start, end, [&](const Memslot &s) {
		Hva from = max(start, s.hva());
		Hva to = min(end, s.hva_end());
		u64 gpa = (to_gpa(s.base_gfn()).raw() + (from - s.hva())) & ~(kPageSize - 1);
		u64 gend = (to_gpa(s.base_gfn()).raw() + (to - s.hva()) + kPageSize - 1) & ~(kPageSize - 1);
		auto r = pt_->test_clear_young(gpa, gend - gpa);
		if (r && r.value()) {
			young = true;
			if (flush)
				ops_.flush_tlb_range(gpa, gend - gpa);
		}
	});
	return young;
}

Result<bool> Vm::clear_flush_young(Hva start, Hva end)
{
	if (!valid_range(start, end))
		return Errno::inval; // counted only when accepted
	counters_.clear_flush_young.fetch_add(1, Order::relaxed);
	return age_hva(start, end, true);
}

Result<bool> Vm::clear_young(Hva start, Hva end)
{
	if (!valid_range(start, end))
		return Errno::inval;
	counters_.clear_young.fetch_add(1, Order::relaxed);
	return age_hva(start, end, false);
}

Result<bool> Vm::test_young(Hva hva)
{
	counters_.test_young.fetch_add(1, Order::relaxed);
	bool young = false;
	Hva page(hva.raw() & ~(kPageSize - 1));
	Memslots::ReadSection rs(slots_);
	ReadGuard g(mmu_lock_);
	rs.set().for_each_hva_overlap(page, page + kPageSize, [&](const Memslot &s) {
		u64 gpa = to_gpa(s.base_gfn()).raw() + (page - s.hva());
		young |= pt_->get_leaf(gpa).young;
	});
	return young;
}

Result<void> Vm::change_pte(Hva hva)
{
	// Called only inside an invalidate_range_start/end pair of the same
	// range, which has already dropped the mapping: the next fault maps
	// the new pte.
	(void)hva;
	counters_.change_pte.fetch_add(1, Order::relaxed);
	return {};
}

void Vm::release()
{
	{
		Memslots::ReadSection rs(slots_);
		WriteGuard g(mmu_lock_);
		// Faults map nothing once this is set, so the lock may break.
		released_.store(true);
		// Leaves lie inside slots (retiring ones included), piece by piece;
		// then one walk for anything else, which finds nothing to visit.
		for_each_slot_part(rs.set(), 0, ~u64(0), [&](u64 a, u64 b) { zap_gpa(a, b, true); });
		HostPageSink sink;
		zap_checked(0, Pt::kIaLimit, sink);
		counters_.pages_unmapped.fetch_add(sink.pages, Order::relaxed);
	}
	for (VmListener *l = listeners_.load(Order::acquire); l; l = l->next_)
		l->released();
	counters_.release.fetch_add(1, Order::relaxed);
}

// ---------------------------------------------------------------------------
// gfn_to_pfn and the fault path
// ---------------------------------------------------------------------------
Result<PfnInfo> Vm::gfn_to_pfn(Gfn gfn, u32 flags)
{
	if (flags & ~kPfnFlagsValid)
		return Errno::inval;
	Memslots::ReadSection rs(slots_);
	const Memslot *s = rs.set().find_gfn(gfn);
	if (!s)
		return Errno::noent;
	if (s->readonly()) {
		if (flags & kPfnWrite)
			return Errno::perm;
		flags &= ~kPfnMapWritable;
	}
	if (!mm_)
		return Errno::fault;
	return kvmmu::hva_to_pfn(mm_, s->gfn_to_hva(gfn), flags);
}

Result<Vm::HvaInfo> Vm::gfn_to_hva(Gfn gfn)
{
	Memslots::ReadSection rs(slots_);
	const Memslot *s = rs.set().find_gfn(gfn);
	if (!s)
		return Errno::noent;
	return HvaInfo{s->gfn_to_hva(gfn), rs.set().generation(), s->readonly()};
}

Result<PfnInfo> Vm::hva_to_pfn(Hva hva, u32 flags)
{
	if (!mm_)
		return Errno::fault;
	return kvmmu::hva_to_pfn(mm_, hva, flags);
}

void Vm::mark_dirty(Gfn gfn)
{
	Memslots::ReadSection rs(slots_);
	const Memslot *s = rs.set().find_gfn(gfn);
	if (s && s->logging_dirty())
		s->mark_dirty(gfn);
}

bool Vm::in_flight_overlaps(Hva start, Hva end)
{
	ReadGuard g(mmu_lock_);
	return inval_.in_flight_overlaps(start.raw(), end.raw());
}

Result<void> Vm::topup(pgt::TableCache &c)
{
	{
		SpinGuard g(spare_lock_);
		while (c.count() < kFaultTables && spare_.count())
			c.push(spare_.pop());
	}
	return c.topup(kFaultTables, gfp::kernel | gfp::account);
}

void Vm::give_back(pgt::TableCache &c)
{
	SpinGuard g(spare_lock_);
	while (c.count() && spare_.count() < pgt::TableCache::kCapacity)
		spare_.push(c.pop());
	// What does not fit is freed by c's destructor.
}

// Can a block of `size` bytes around gpa map it: the same offsets in guest
// and host space, and the whole block inside the slot?
bool Vm::block_fits(const Memslot &slot, Gpa gpa, Hva hva, u64 size)
{
	const u64 gbase = gpa.raw() & ~(size - 1);
	return (gpa.raw() - gbase) == (hva.raw() & (size - 1)) && to_gfn(Gpa(gbase)) >= slot.base_gfn() &&
	       to_gfn(Gpa(gbase + size)) <= slot.end_gfn();
}

// The largest leaf level whose block lies inside the slot, maps the same
// offsets in guest and host space, is no larger than the host's own
// mapping and is backed by physically aligned memory.
unsigned Vm::pick_level(const Memslot &slot, Gpa gpa, Hva hva, const PfnInfo &p, bool logging)
{
	if (logging || !mm_)
		return 0;
	// Remapped pfns (no page): a block only where hva_to_pfn() found the
	// host mapping of the whole block contiguous, with the same attributes
	// throughout (a partly populated BAR, mixed types or a misaligned BAR
	// give base pages).
	unsigned host_shift = p.has_page ? kvmmu_plat_host_mapping_shift(mm_, hva.raw()) : 0;
	if (!p.has_page) {
		if (!p.referenced && p.contig > kPageSize)
			host_shift = __builtin_ctzll(p.contig);
		else
			return 0;
	}
	for (unsigned level = S2Format::levels - 2; level > 0; level--) {
		if (!S2Format::leaf_ok(level))
			continue;
		const u64 size = S2Format::size_of(level);
		if (S2Format::shift_of(level) > host_shift || !block_fits(slot, gpa, hva, size))
			continue;
		const u64 gbase = gpa.raw() & ~(size - 1);
		u64 pa = (p.pfn.raw() << kPageShift) - (gpa.raw() - gbase);
		if (pa & (size - 1))
			continue;
		return level;
	}
	return 0;
}

Result<FaultResult> Vm::fault_once(const Memslot &slot, Gpa gpa, u32 access, bool &again)
{
	again = false;
	const bool write = access & kAccessWrite;
	const Gfn gfn = to_gfn(gpa);
	gpa = to_gpa(gfn); // the page: leaves map whole pages
	// The slot logs, or the core logs this slot's pages (KVMMU_FAULT_LOG).
	const bool logging = slot.logging_dirty() || (access & kAccessLog);
	if (write && slot.readonly())
		return Errno::perm;
	if (!mm_)
		return Errno::fault;
	const Hva hva = slot.gfn_to_hva(gfn);

	u64 seq = inval_.seq();
	u32 pf = write ? kPfnWrite : 0;
	if (!slot.readonly() && !logging)
		pf |= kPfnMapWritable;
	// Remapped memory (a BAR) may take a block leaf if the host maps the
	// whole block contiguously: find out while the mmap lock is held, and
	// only where the slot would let a block map it (the probe reads every
	// pte of the block: not for each base page of a misaligned slot).
	const u64 probe = (!logging && S2Format::leaf_ok(1) && block_fits(slot, gpa, hva, S2Format::size_of(1)))
				  ? S2Format::size_of(1)
				  : 0;
	KVMMU_TRY(p, kvmmu::hva_to_pfn(mm_, hva, pf, probe));

	pgt::TableCache cache(Pt::table_alloc_bytes());
	auto t = topup(cache);
	if (!t) {
		release_pfn(p, false, false);
		give_back(cache);
		return t.error();
	}

	// What the leaf will allow. Device memory is never executable: a fetch
	// from it cannot be satisfied by any leaf, and succeeding without
	// mapping what was asked would send a vCPU back to the same fault.
	pgt::Attrs a;
	a.prot = pgt::kRead | (p.writable ? pgt::kWrite : 0);
	a.mt = leaf_memtype(p);
	// RAM is executable; with a core whose I-cache needs maintenance, only
	// from an exec fault on (after the invalidation, as KVM does: most
	// guest pages are never executed).
	const bool lazy_exec = ops_.core && !(ops_.core_flags & KVMMU_CORE_DIC);
	if (p.ram && a.mt == pgt::MemType::normal_wb && (!lazy_exec || (access & kAccessExec)))
		a.prot |= pgt::kExec;
	// Only a page GUP referenced may later be marked through its struct
	// page (seed 004): the leaf remembers which kind it maps.
	a.host_page = p.referenced;
	const u32 need = pgt::kRead | (write ? pgt::kWrite : 0) | ((access & kAccessExec) ? pgt::kExec : 0);
	if ((a.prot & need) != need) {
		release_pfn(p, false, false);
		give_back(cache);
		return Errno::perm;
	}

	// Cache maintenance for a core's CPUs, before the leaf is published
	// (never after: the guest could see stale memory meanwhile): for the
	// largest leaf this fault may map, outside the lock. If the page is
	// mapped already this was not needed; if a smaller leaf is mapped in
	// the end it covered more than needed; both are harmless.
	// A fault that finds the page mapped already (a permission or
	// access-flag fault, a parallel fault) publishes no new memory: at most
	// exec is added to the leaf there, which needs the I-cache side only.
	const bool exec_maint = (a.prot & pgt::kExec) && !(ops_.core_flags & KVMMU_CORE_DIC);
	if (ops_.core && p.ram && a.mt == pgt::MemType::normal_wb &&
	    (!(ops_.core_flags & KVMMU_CORE_FWB) || exec_maint)) {
		pgt::Leaf cur;
		{
			ReadGuard g(mmu_lock_);
			cur = pt_->get_leaf(gpa.raw());
		}
		const bool exec = a.prot & pgt::kExec;
		if (!cur.mapped || cur.oa != (p.pfn.raw() << kPageShift)) {
			const u64 bsize = S2Format::size_of(pick_level(slot, gpa, hva, p, logging));
			const u64 first = p.pfn.raw() - ((gpa.raw() & (bsize - 1)) >> kPageShift);
			ops_.maintain(Pfn(first), bsize, true, exec);
		} else if (exec && !(cur.attrs.prot & pgt::kExec)) {
			ops_.maintain(Pfn((cur.oa - (gpa.raw() - cur.ia)) >> kPageShift), cur.size, false, true);
		}
	}

	FaultResult fr;
	Result<void> mapped = Errno::fault;
	bool leaf_writable = false;
	{
		ReadGuard g(mmu_lock_);
		if (released_.load()) {
			mapped = Errno::fault;
		} else if (inval_.retry(hva.raw(), hva.raw() + kPageSize, seq)) {
			again = true;
		} else {
			unsigned level = pick_level(slot, gpa, hva, p, logging);
			// A block must not cover a range being invalidated either.
			while (level && inval_.retry(hva.raw() & ~(S2Format::size_of(level) - 1),
						     (hva.raw() & ~(S2Format::size_of(level) - 1)) +
							     S2Format::size_of(level), seq))
				level--;
			const u64 size = S2Format::size_of(level);
			const u64 ia = gpa.raw() & ~(size - 1);
			const u64 pa = (p.pfn.raw() << kPageShift) - (gpa.raw() - ia);
			// A parallel fault may have mapped this page already, maybe
			// as a block or with more rights (a write fault racing this
			// read): a leaf of the same page that allows this access
			// stays as it is. Otherwise map, adding our rights to any
			// leaf of the same page that is there by then: a fault
			// never takes rights (or a dirty bit) away.
			pgt::Leaf cur = pt_->get_leaf(gpa.raw());
			if (cur.mapped && cur.young && cur.oa == (p.pfn.raw() << kPageShift) &&
			    (cur.attrs.prot & need) == need && cur.attrs.mt == a.mt)
				mapped = Result<void>();
			else
				mapped = pt_->map(ia, size, pa, a, nullptr, &cache, pgt::MapMode::add_rights);
			if (mapped) {
				// Report what is mapped now (it can only have
				// gained rights since: taking them needs the lock
				// for write).
				pgt::Leaf now = pt_->get_leaf(gpa.raw());
				if (!now.mapped) // between break and make of another fault
					now = cur.mapped ? cur
							 : pgt::Leaf{true, level, ia, size, pa + (gpa.raw() - ia), a};
				fr.level = now.level;
				fr.size = now.size;
				fr.pfn = p.pfn;
				leaf_writable = now.attrs.prot & pgt::kWrite;
				fr.writable = leaf_writable;
				if (logging && write) {
					if (slot.logging_dirty())
						slot.mark_dirty(gfn); // else the core logs it
					counters_.dirty_faults.fetch_add(1, Order::relaxed);
				}
			} else if (mapped.error() == Errno::again) {
				again = true; // another fault is between break and make
			}
		}
	}
	// The guest is about to access the page: accessed; dirty only if it
	// writes through a writable leaf this fault installed or found.
	const bool ok = !again && mapped.ok();
	release_pfn(p, ok && write && leaf_writable, ok);
	give_back(cache);
	if (again) {
		counters_.fault_retries.fetch_add(1, Order::relaxed);
		kvmmu_plat_trace_retry(this, gpa.raw(), seq);
		return Errno::again;
	}
	if (!mapped)
		return mapped.error();
	return fr;
}

Result<FaultResult> Vm::fault_slot(Gpa gpa, u32 access, bool &again)
{
	Memslots::ReadSection rs(slots_);
	rs.set().index(); // a large set is indexed by its first fault
	const Memslot *s = rs.set().find_gfn(to_gfn(gpa));
	if (!s)
		return Errno::noent;
	return fault_once(*s, gpa, access, again);
}

Result<FaultResult> Vm::fault(Gpa gpa, u32 access)
{
	if (access & ~kAccessValid)
		return Errno::inval;
	KVMMU_MIGHT_SLEEP();
	for (;;) {
		bool again = false;
		Result<FaultResult> r = fault_slot(gpa, access, again);
		if (again) {
			// An overlapping invalidation is in flight or just ended: try
			// again once it had its chance to finish.
			if (kvmmu_plat_signal_pending())
				return Errno::intr;
			kvmmu_plat_cond_resched();
			continue;
		}
		if (r)
			counters_.faults.fetch_add(1, Order::relaxed);
		kvmmu_plat_trace_fault(this, gpa.raw(), access, r.to_errno(),
				       r ? r.value().level : 0, r ? r.value().pfn.raw() : 0);
		return r;
	}
}

Result<void> Vm::pre_fault(Gpa gpa, u64 size, u32 access)
{
	if (!size || !page_aligned(gpa.raw()) || !page_aligned(size) || !gpa_range_ok(gpa.raw(), size))
		return Errno::inval;
	if (access & ~kAccessValid)
		return Errno::inval;
	u64 end = gpa.raw() + size;
	for (u64 a = gpa.raw(); a < end;) {
		KVMMU_TRY(fr, fault(Gpa(a), access));
		// The leaf may cover what follows: skip to its end.
		a = (a & ~(fr.size - 1)) + fr.size;
		if (kvmmu_plat_signal_pending())
			return Errno::intr;
		kvmmu_plat_cond_resched();
	}
	return {};
}

Result<pgt::Leaf> Vm::translate(Gpa gpa)
{
	if (!gpa_range_ok(gpa.raw(), 1))
		return Errno::inval;
	ReadGuard g(mmu_lock_);
	return pt_->get_leaf(gpa.raw());
}

Result<void> Vm::access(Gpa gpa, u64 len, u64 ubuf, bool write, const DeviceAccess *dev)
{
	// Which error wins is fixed (include/uapi/linux/kvmmu.h): bad
	// arguments (EINVAL, the gpa limit included), then the guest side
	// (ENOENT, EPERM), then the buffer (EFAULT), each for the whole range
	// before any page is accessed; only host-memory errors come page by
	// page.
	if (!len || !gpa_range_ok(gpa.raw(), len) || ubuf + len < ubuf)
		return Errno::inval;
	KVMMU_MIGHT_SLEEP();
	KVMMU_TRY_VOID(slots_cover(gpa, len, write));
	// The whole buffer must take the copy before any page is accessed: a
	// read's buffer is zeroed, a byte of each page of a write's is read
	// (only a buffer unmapped by another thread meanwhile can still fail
	// later, page by page).
	if (!kvmmu_plat_user_range_ok(ubuf, len))
		return Errno::fault;
	if (!write && kvmmu_plat_clear_user(ubuf, len))
		return Errno::fault;
	// Bytes move between the user buffer and this bounce page outside the
	// MMU lock (user copies may fault), and between the bounce page and
	// guest memory under it, so the page cannot be invalidated, COW-shared
	// or write-protected for dirty logging in between, and a user copy
	// that fails half-way leaves guest memory untouched.
	// A device access is one access of a page: a request over several
	// pages that reaches device memory is refused before any page is
	// accessed (pages are faulted in for reading to find out).
	if (page_offset(gpa) + len > kPageSize) {
		for (u64 a = gpa.raw() & ~(kPageSize - 1); a < gpa.raw() + len; a += kPageSize) {
			KVMMU_TRY(device, is_device_page(Gpa(a)));
			if (device)
				return Errno::inval;
		}
	}
	u8 *bounce = static_cast<u8 *>(kmalloc(kPageSize, kPageSize, gfp::kernel));
	if (!bounce)
		return Errno::nomem;
	for (u64 a = ubuf; write && a < ubuf + len; a = (a | (kPageSize - 1)) + 1) {
		if (kvmmu_plat_copy_from_user(bounce, a, 1)) {
			kfree(bounce);
			return Errno::fault;
		}
	}
	auto r = access_pages(gpa, len, ubuf, write ? kAccessWrite : 0, bounce, dev, true);
	kfree(bounce);
	return r;
}

// Every page of [gpa, gpa + len) in a slot, and a writable one for a
// write; the first page in address order that is not decides (-ENOENT,
// -EPERM).
Result<void> Vm::slots_cover(Gpa gpa, u64 len, bool write)
{
	Memslots::ReadSection rs(slots_);
	Gfn next = to_gfn(gpa);
	const Gfn end = to_gfn(Gpa(gpa.raw() + len - 1)) + 1;
	Error bad = Errno::noent;
	bool ok = true;
	rs.set().for_each_gfn_overlap(next, end, [&](const Memslot &s) {
		if (!ok)
			return;
		if (next < s.base_gfn() || (write && s.readonly())) {
			bad = next < s.base_gfn() ? Errno::noent : Errno::perm;
			ok = false;
			return;
		}
		next = s.end_gfn();
	});
	if (!ok || next < end)
		return bad;
	return {};
}

Result<void> Vm::access_kernel(Gpa gpa, u64 len, u8 *buf, bool write, const DeviceAccess *dev)
{
	if ((len != 1 && len != 2 && len != 4 && len != 8) || (gpa.raw() & (len - 1)) ||
	    !gpa_range_ok(gpa.raw(), len) || !buf)
		return Errno::inval;
	KVMMU_MIGHT_SLEEP();
	KVMMU_TRY_VOID(slots_cover(gpa, len, write));
	// One page: the buffer itself is the bounce buffer.
	return access_pages(gpa, len, 0, write ? kAccessWrite : 0, buf, dev, false);
}

// Whether access() treats the page of `gpa` as device memory; an unmapped
// page is faulted in for reading first.
Result<bool> Vm::is_device_page(Gpa gpa)
{
	for (;;) {
		{
			ReadGuard g(mmu_lock_);
			pgt::Leaf l = pt_->get_leaf(gpa.raw());
			if (l.mapped)
				return !kernel_copyable(l);
		}
		KVMMU_TRY_VOID(fault(gpa, 0));
	}
}

// One access of device memory (see access()): the page is mapped for the
// kernel outside the MMU lock (that may sleep), then, under the lock, the
// leaf is looked up again and the access made only if it still maps the
// same page the same way: an invalidation in between (the BAR unmapped)
// sends the caller back to the fault path. False: try again.
Result<bool> Vm::access_device(Gpa gpa, u64 len, pgt::Leaf l, bool write, u8 *bounce, const DeviceAccess &dev)
{
	if ((len != 1 && len != 2 && len != 4 && len != 8) || (gpa.raw() & (len - 1)))
		return Errno::inval;
	const u64 page = l.oa & ~(kPageSize - 1); // the leaf's output for gpa itself
	KVMMU_TRY(va, dev.map(page, l.attrs.mt));
	bool done = false;
	{
		ReadGuard g(mmu_lock_);
		pgt::Leaf now = pt_->get_leaf(gpa.raw());
		if (now.mapped && (now.oa & ~(kPageSize - 1)) == page &&
		    now.attrs.mt == l.attrs.mt && (!write || (now.attrs.prot & pgt::kWrite))) {
			dev.access(static_cast<u8 *>(va) + page_offset(gpa), unsigned(len), write, bounce);
			done = true;
		}
	}
	dev.unmap(va, l.attrs.mt);
	return done;
}

// `user`: bytes move between `ubuf` and `bounce` page by page; else
// `bounce` is the caller's kernel buffer (one page at most).
Result<void> Vm::access_pages(Gpa gpa, u64 len, u64 ubuf, u32 acc, u8 *bounce, const DeviceAccess *dev,
			      bool user)
{
	const bool write = acc & kAccessWrite;
	const u64 total = len;
	while (len) {
		const u64 chunk = min<u64>(len, kPageSize - page_offset(gpa));
		if (user && write && kvmmu_plat_copy_from_user(bounce, ubuf, chunk))
			return Errno::fault;
		for (;;) {
			enum { miss, done, device } what = miss;
			pgt::Leaf l;
			{
				ReadGuard g(mmu_lock_);
				l = pt_->get_leaf(gpa.raw());
				if (l.mapped && (!write || (l.attrs.prot & pgt::kWrite))) {
					const u64 pfn = leaf_pfn(l);
					// Only cacheable RAM the kernel maps is
					// copied here; device memory is not.
					if (!kernel_copyable(l)) {
						what = device;
					} else {
						u8 *va = static_cast<u8 *>(kvmmu_plat_kmap_pfn(pfn));
						if (write)
							__builtin_memcpy(va + page_offset(gpa), bounce, chunk);
						else
							__builtin_memcpy(bounce, va + page_offset(gpa), chunk);
						kvmmu_plat_kunmap(va);
						// A written page is dirty (the zero page is
						// never mapped writable); only a page GUP
						// referenced is marked (seed 004).
						if (write && l.attrs.host_page)
							kvmmu_plat_pfn_mark_dirty(pfn);
						what = done;
					}
				}
			}
			if (what == device) {
				if (!dev)
					return Errno::opnotsupp;
				// Only as the whole request.
				if (chunk != total)
					return Errno::inval;
				KVMMU_TRY(ok, access_device(gpa, len, l, write, bounce, *dev));
				if (ok)
					break;
				continue; // the leaf changed: fault it in again
			}
			if (what == done)
				break;
			auto fr = fault(gpa, acc);
			if (!fr)
				return fr.error();
		}
		if (user && !write && kvmmu_plat_copy_to_user(ubuf, bounce, chunk))
			return Errno::fault;
		gpa = gpa + chunk;
		ubuf += chunk;
		len -= chunk;
	}
	return {};
}

Result<u64> Vm::get_dirty_log(u32 slot_id, u64 ubuf)
{
	KVMMU_MIGHT_SLEEP();
	Memslots::ReadSection rs(slots_);
	const Memslot *s = rs.set().find_id(slot_id);
	if (!s || !s->logging_dirty())
		return Errno::noent;
	const u64 words = s->dirty_bitmap_bytes() / 8;
	// The whole buffer must take a write before any bit is cleared: a bad
	// buffer then loses nothing (only a buffer unmapped by another thread
	// meanwhile can still fail the copies below).
	if (!kvmmu_plat_user_range_ok(ubuf, words * 8) || kvmmu_plat_clear_user(ubuf, words * 8))
		return Errno::fault;
	// Every bit taken is kept here until the caller has it: if the copy
	// fails, all of them go back to the log (a page reported twice is
	// harmless, a page never reported is lost data).
	u64 *taken = static_cast<u64 *>(kvmmu_plat_kvmalloc(words * 8, (gfp::kernel | gfp::account).raw()));
	if (!taken)
		return Errno::nomem;
	u64 dirty = 0;
	// Bits are taken, and their pages write-protected, a chunk at a time
	// so the MMU lock is held only briefly.
	constexpr u64 kChunk = 32;
	for (u64 w0 = 0; w0 < words; w0 += kChunk) {
		u64 n = min(kChunk, words - w0);
		u64 *buf = taken + w0;
		bool any = false;
		for (u64 i = 0; i < n; i++) {
			buf[i] = s->take_dirty_word(w0 + i);
			any |= buf[i] != 0;
		}
		if (!any)
			continue;
		HostPageSink dirty_sink; // write access ends: hand over what was written
		WriteGuard g(mmu_lock_);
		for (u64 i = 0; i < n; i++) {
			u64 m = buf[i];
			while (m) {
				unsigned b = __builtin_ctzll(m);
				// A run of set bits is one write-protect call.
				unsigned e = b;
				while (e < 64 && (m >> e) & 1)
					e++;
				u64 first = (w0 + i) * 64 + b;
				u64 gpa = to_gpa(s->base_gfn() + first).raw();
				auto r = pt_->wrprotect(gpa, u64(e - b) << kPageShift, &dirty_sink);
				(void)r; // inside the slot: a valid range
				dirty += e - b;
				m = e == 64 ? 0 : m & ~((u64(1) << e) - 1);
			}
		}
	}
	if (kvmmu_plat_copy_to_user(ubuf, taken, words * 8)) {
		// The buffer went away under us: everything this call took
		// stays logged for the next one.
		for (u64 w = 0; w < words; w++)
			if (taken[w])
				s->restore_dirty_word(w, taken[w]);
		kvmmu_plat_kvfree(taken);
		return Errno::fault;
	}
	kvmmu_plat_kvfree(taken);
	kvmmu_plat_trace_dirty_log(this, slot_id, dirty);
	return dirty;
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------
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

VmStats Vm::stats()
{
	VmStats s{};
	s.notifier = counters();
	s.faults = counters_.faults.load(Order::relaxed);
	s.fault_retries = counters_.fault_retries.load(Order::relaxed);
	s.dirty_faults = counters_.dirty_faults.load(Order::relaxed);
	s.pages_unmapped = counters_.pages_unmapped.load(Order::relaxed);
	pgt::PtStats ps = pt_->stats();
	for (unsigned l = 0; l < 3 && l < S2Format::levels; l++)
		s.leaves[l] = ps.leaves[l];
	s.table_pages = ps.tables;
	s.tlb_flushes = ops_.flushes.load(Order::relaxed);
	return s;
}

kvmmu_module_stats Vm::module_stats()
{
	kvmmu_module_stats s{};
	s.vms_created = g_vms_created.load();
	s.vms_live = g_vms_live.load();
	s.core_vms_created = g_core_vms_created.load();
	s.core_vms_live = g_core_vms_live.load();
	s.core_faults = g_core.faults.load();
	s.core_dirty_faults = g_core.dirty_faults.load();
	s.core_invalidations = g_core.invalidations.load();
	s.core_pages_unmapped = g_core.pages_unmapped.load();
	s.core_tlb_flushes = g_core.tlb_flushes.load();
	s.core_cache_maintenance = g_core.cache_maintenance.load();
	return s;
}

} // namespace kvmmu
