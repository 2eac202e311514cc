// SPDX-License-Identifier: GPL-2.0
// The pfn-cache hooks of include/kvmmu/hooks.h and the entry points of the
// /dev/kvmmu pfn-cache ioctls (kernel/glue.h): argument checks and the
// conversion of Result to -errno.
#include <kvmmu/alloc.hpp>
#include <kvmmu/hooks.h>
#include <kvmmu/platform.h>

#include "front.h"
#include "pfncache.hpp"

using namespace kvmmu;

namespace {
PfnCache *to_gpc(kvmmu_gpc *g) { return reinterpret_cast<PfnCache *>(g); }
Vm *vm_of(kvmmu_vm *vm) { return reinterpret_cast<Vm *>(vm); }
int gpc_einval() { return Error(Errno::inval).to_errno(); }

// The uapi's flag values (include/uapi/linux/kvmmu.h; that header is
// the kernel's, not C++'s): kept in step by the static_asserts of
// kernel/vmfd.c.
constexpr u32 kUapiByHva = 1u << 0;
constexpr u32 kUapiBaseline = 1u << 1;
constexpr u32 kUapiCreateValid = kUapiByHva | kUapiBaseline;
constexpr u32 kUapiRefreshForce = 1u << 0;

kvmmu_gpc_counts counts_of(const PfnCache &c)
{
	const PfnCacheStats s = c.stats();
	return kvmmu_gpc_counts{s.refreshes, s.retries, s.waits, s.invalidations};
}
} // namespace

// KVMMU_TRY for the extern-C side: returns the error as -errno.
#define KVMMU_TRY_ERRNO(var, expr)              \
	auto var##_result__ = (expr);           \
	if (!var##_result__.ok())               \
		return var##_result__.to_errno(); \
	auto var = var##_result__.take()

extern "C" {

int kvmmu_gpc_init(struct kvmmu_vm *vm, uint32_t flags, struct kvmmu_gpc **gpcp)
{
	if (!vm || !gpcp || (flags & ~KVMMU_GPC_INIT_FLAGS_VALID))
		return gpc_einval();
	auto r = PfnCache::create(*vm_of(vm), (flags & KVMMU_GPC_INIT_BASELINE) ? PfnCache::Rule::baseline
										: PfnCache::Rule::exact);
	if (!r)
		return r.to_errno();
	*gpcp = reinterpret_cast<kvmmu_gpc *>(r.value());
	return 0;
}

int kvmmu_gpc_activate_gpa(struct kvmmu_gpc *gpc, uint64_t gpa, uint64_t len)
{
	if (!gpc)
		return gpc_einval();
	return to_gpc(gpc)->activate_gpa(Gpa(gpa), len).to_errno();
}

int kvmmu_gpc_activate_hva(struct kvmmu_gpc *gpc, uint64_t hva, uint64_t len)
{
	if (!gpc)
		return gpc_einval();
	return to_gpc(gpc)->activate_hva(Hva(hva), len).to_errno();
}

int kvmmu_gpc_refresh(struct kvmmu_gpc *gpc)
{
	if (!gpc)
		return gpc_einval();
	return to_gpc(gpc)->refresh().to_errno();
}

void kvmmu_gpc_read_lock(struct kvmmu_gpc *gpc) { to_gpc(gpc)->read_lock(); }
void kvmmu_gpc_read_unlock(struct kvmmu_gpc *gpc) { to_gpc(gpc)->read_unlock(); }

int kvmmu_gpc_check(struct kvmmu_gpc *gpc, uint64_t len)
{
	if (!gpc)
		return gpc_einval();
	auto r = to_gpc(gpc)->check(len);
	return r ? (r.value() ? 1 : 0) : r.to_errno();
}

void *kvmmu_gpc_khva(struct kvmmu_gpc *gpc) { return gpc ? to_gpc(gpc)->khva() : nullptr; }

void kvmmu_gpc_mark_dirty(struct kvmmu_gpc *gpc)
{
	if (gpc)
		to_gpc(gpc)->mark_dirty();
}

void kvmmu_gpc_deactivate(struct kvmmu_gpc *gpc)
{
	if (gpc)
		to_gpc(gpc)->deactivate();
}

void kvmmu_gpc_destroy(struct kvmmu_gpc *gpc)
{
	KVMMU_MIGHT_SLEEP();
	destroy(to_gpc(gpc));
}

int kvmmu_gpc_get_counts(struct kvmmu_gpc *gpc, struct kvmmu_gpc_counts *out)
{
	if (!gpc || !out)
		return gpc_einval();
	*out = counts_of(*to_gpc(gpc));
	return 0;
}

// --- the /dev/kvmmu front end (front.h) --------------------------------------

int kvmmu_vm_gpc_create(struct kvmmu_vm *vm, uint64_t addr, uint64_t len, uint32_t flags, uint32_t *id,
			uint64_t *cookie)
{
	if (!vm || !id || !cookie || (flags & ~kUapiCreateValid))
		return gpc_einval();
	Vm &v = *vm_of(vm);
	// Checked before anything is created (a failing ioctl changes nothing).
	const u64 off = addr & (kPageSize - 1);
	if (!len || len > kPageSize - off || (!(flags & kUapiByHva) && !v.gpa_range_ok(addr, len)))
		return gpc_einval();
	auto r = PfnCache::create(v, (flags & kUapiBaseline) ? PfnCache::Rule::baseline : PfnCache::Rule::exact);
	if (!r)
		return r.to_errno();
	PfnCache *c = r.value();
	auto a = (flags & kUapiByHva) ? c->activate_hva(Hva(addr), len) : c->activate_gpa(Gpa(addr), len);
	Result<u32> n = a ? PfnCacheHub::find(v)->add_id(c) : Result<u32>(a.error());
	if (!n) {
		destroy(c);
		return n.to_errno();
	}
	*id = n.value();
	*cookie = PfnCacheHub::find(v)->serial(*c);
	return 0;
}

// Undoes a create whose id could not be told: only the cache it made (the
// id may name another one by now, if someone guessed it and destroyed ours).
int kvmmu_vm_gpc_abandon(struct kvmmu_vm *vm, uint32_t id, uint64_t cookie)
{
	if (!vm)
		return gpc_einval();
	PfnCacheHub *hub = PfnCacheHub::find(*vm_of(vm));
	if (!hub)
		return Error(Errno::noent).to_errno();
	if (!cookie)
		return gpc_einval();
	return hub->remove_id(id, cookie).to_errno();
}

int kvmmu_vm_gpc_refresh(struct kvmmu_vm *vm, uint32_t id, uint32_t flags)
{
	if (!vm || (flags & ~kUapiRefreshForce))
		return gpc_einval();
	PfnCacheHub *hub = PfnCacheHub::find(*vm_of(vm));
	if (!hub)
		return Error(Errno::noent).to_errno();
	KVMMU_TRY_ERRNO(c, hub->get(id));
	int r = c->refresh(flags & kUapiRefreshForce).to_errno();
	hub->put(c);
	return r;
}

int kvmmu_vm_gpc_access(struct kvmmu_vm *vm, uint32_t id, uint64_t offset, uint64_t len, uint64_t ubuf,
			bool write)
{
	// Sizes no cache can take are refused before the id is looked up.
	if (!vm || !len || offset > kPageSize || len > kPageSize - offset)
		return gpc_einval();
	PfnCacheHub *hub = PfnCacheHub::find(*vm_of(vm));
	if (!hub)
		return Error(Errno::noent).to_errno();
	KVMMU_TRY_ERRNO(c, hub->get(id));
	Result<void> r;
	u8 *bounce = nullptr;
	if (!len || offset > c->length() || len > c->length() - offset) {
		r = Errno::inval;
	} else if (!(bounce = static_cast<u8 *>(kmalloc(len, 8, gfp::kernel)))) {
		r = Errno::nomem;
	} else if (write && kvmmu_plat_copy_from_user(bounce, ubuf, len)) {
		r = Errno::fault;
	} else {
		// Only the copy under the read lock: no user access (it could
		// fault, and sleep) while the mapping is held.
		c->read_lock();
		auto ok = c->check(offset + len);
		if (ok && ok.value()) {
			u8 *va = static_cast<u8 *>(c->khva()) + offset;
			if (write)
				__builtin_memcpy(va, bounce, len);
			else
				__builtin_memcpy(bounce, va, len);
		}
		c->read_unlock();
		if (!ok)
			r = ok.error();
		else if (!ok.value())
			r = Errno::again;
		else if (write)
			c->mark_dirty();
		else if (kvmmu_plat_copy_to_user(ubuf, bounce, len))
			r = Errno::fault;
	}
	kfree(bounce);
	hub->put(c);
	return r.to_errno();
}

int kvmmu_vm_gpc_destroy(struct kvmmu_vm *vm, uint32_t id)
{
	if (!vm)
		return gpc_einval();
	PfnCacheHub *hub = PfnCacheHub::find(*vm_of(vm));
	if (!hub)
		return Error(Errno::noent).to_errno();
	return hub->remove_id(id).to_errno();
}

int kvmmu_vm_gpc_counts(struct kvmmu_vm *vm, uint32_t id, struct kvmmu_gpc_counts *out)
{
	if (!vm || !out)
		return gpc_einval();
	PfnCacheHub *hub = PfnCacheHub::find(*vm_of(vm));
	if (!hub)
		return Error(Errno::noent).to_errno();
	KVMMU_TRY_ERRNO(c, hub->get(id));
	*out = counts_of(*c);
	hub->put(c);
	return 0;
}

} // extern "C"
