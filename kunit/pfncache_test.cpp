// SPDX-License-Identifier: GPL-2.0
// KUnit bodies for the pfn cache (pfncache/, docs/pfncache.md) on real user
// memory and the debug kernel. The case thread has adopted the loading
// process's mm (kunit/glue.c); a VM with a real mmu_notifier on it has one
// memslot over fresh anonymous memory, and the caches map its pages.
//
// pfncache_lifecycle: the kvmmu_gpc_* hooks, their results and what the
// mapping reads. pfncache_race: kernel threads (kt.hpp) refreshing,
// reading and invalidating at once, and scripted interleavings through the
// cache's test hook; invalidations are scripted on the cache's page with
// the VM's invalidate_range_start/end, around rewrites of the page through
// the user mapping. No case allocates, sleeps or touches user memory while
// it holds a cache's read lock.
#include <kvmmu/atomic.hpp>
#include <kvmmu/error.hpp>
#include <kvmmu/hooks.h>
#include <kvmmu/platform.h>
#include <kvmmu/types.hpp>

#include "kt.hpp"

#include "kt_mm.h"
#include "../mmu/vm.hpp"
#include "../pfncache/pfncache.hpp"

using namespace kvmmu;

namespace {

constexpr u64 kGpcGpa = u64(1) << 32;
constexpr unsigned kGpcPages = 8;
// Words written at the start of every page of the memory when it is set up.
constexpr unsigned kGpcWords = 16;

// Named apart from other test files' constants: core.cpp is one unit.
constexpr int kGpcInval = Error(Errno::inval).to_errno();
constexpr int kGpcNoent = Error(Errno::noent).to_errno();
constexpr int kGpcPerm = Error(Errno::perm).to_errno();
constexpr int kGpcFault = Error(Errno::fault).to_errno();
constexpr int kGpcIo = Error(Errno::io).to_errno();

// Word i of page p of the memory, as set up.
constexpr u64 gpc_tag(unsigned p, unsigned i) { return 0x6b766d6d75000000ull | (u64(p) << 8) | i; }

// A VM over kGpcPages pages of fresh user memory at kGpcGpa (slot 0), each
// page starting with its gpc_tag() words, plus a user buffer of one page
// outside every slot. Fields stay zero when setup fails.
struct GpcVm {
	void *kt;
	kvmmu_vm *vm = nullptr;
	void *notifier = nullptr;
	u64 mem = 0, buf = 0;

	explicit GpcVm(void *t, u32 flags = 0) : kt(t)
	{
		mem = kvmmu_kt_user_map(kGpcPages * kPageSize);
		buf = kvmmu_kt_user_map(kPageSize);
		KT_EXPECT(mem && buf);
		if (!mem || !buf)
			return;
		for (unsigned p = 0; p < kGpcPages; p++) {
			u64 w[kGpcWords];
			for (unsigned i = 0; i < kGpcWords; i++)
				w[i] = gpc_tag(p, i);
			KT_EXPECT_EQ(kvmmu_kt_user_write(hva(p), w, sizeof(w)), 0);
		}
		KT_EXPECT_EQ(kvmmu_vm_create(0, &vm), 0);
		if (!vm)
			return;
		notifier = kvmmu_kt_notifier_attach(vm);
		KT_EXPECT(notifier != nullptr);
		kvmmu_memory_region r{0, flags, kGpcGpa, kGpcPages * kPageSize, mem};
		KT_EXPECT_EQ(kvmmu_vm_set_memory_region(vm, &r), 0);
	}
	~GpcVm()
	{
		kvmmu_kt_notifier_detach(notifier);
		kvmmu_vm_destroy(vm);
		if (mem)
			kvmmu_kt_user_unmap(mem, kGpcPages * kPageSize);
		if (buf)
			kvmmu_kt_user_unmap(buf, kPageSize);
	}
	bool ok() const { return vm && notifier; }
	u64 hva(unsigned p) const { return mem + u64(p) * kPageSize; }
	Vm &v() { return *reinterpret_cast<Vm *>(vm); }
	u64 word(u64 at)
	{
		u64 x = 0;
		KT_EXPECT_EQ(kvmmu_kt_user_read(&x, at, sizeof(x)), 0);
		return x;
	}
	void put(u64 at, u64 x) { KT_EXPECT_EQ(kvmmu_kt_user_write(at, &x, sizeof(x)), 0); }
	int start(u64 s, u64 e) { return kvmmu_vm_invalidate_range_start(vm, s, e, true); }
	int end(u64 s, u64 e) { return kvmmu_vm_invalidate_range_end(vm, s, e); }
	unsigned indexed()
	{
		PfnCacheHub *h = PfnCacheHub::find(v());
		return h ? h->indexed() : 0;
	}
};

// A cache of the VM, destroyed with the object (before the VM: declare it
// after the GpcVm).
struct Gpc {
	kvmmu_gpc *g = nullptr;
	Gpc(void *kt, kvmmu_vm *vm, u32 flags = 0)
	{
		if (vm)
			KT_EXPECT_EQ(kvmmu_gpc_init(vm, flags, &g), 0);
	}
	~Gpc() { kvmmu_gpc_destroy(g); }
	PfnCache &c() { return *reinterpret_cast<PfnCache *>(g); }
	kvmmu_gpc_counts counts()
	{
		kvmmu_gpc_counts n{};
		kvmmu_gpc_get_counts(g, &n);
		return n;
	}
};

// A reader: check(len) under the read lock and, if it passed, the u64 at
// byte `off` of the cache's range. Only the check and the load run under
// the lock.
int gpc_read(kvmmu_gpc *g, u64 len, u64 off, u64 *out)
{
	kvmmu_gpc_read_lock(g);
	int r = kvmmu_gpc_check(g, len);
	if (r == 1)
		*out = *reinterpret_cast<volatile u64 *>(static_cast<u8 *>(kvmmu_gpc_khva(g)) + off);
	kvmmu_gpc_read_unlock(g);
	return r;
}

// Counts refresh()'s points (PfnCache::set_test_hook); `act` runs at each.
struct GpcPoints {
	Atomic<u32> at[4];
	void (*act)(PfnCache &c, PfnCache::Point p, unsigned nth, void *arg) = nullptr;
	void *arg = nullptr;

	static void hook(PfnCache &c, PfnCache::Point p, void *self)
	{
		auto &s = *static_cast<GpcPoints *>(self);
		unsigned nth = s.at[unsigned(p)].fetch_add(1) + 1;
		if (s.act)
			s.act(c, p, nth, s.arg);
	}
	u32 lookups() const { return at[unsigned(PfnCache::Point::before_lookup)].load(); }
	u32 retrying() const { return at[unsigned(PfnCache::Point::retrying)].load(); }
	u32 published() const { return at[unsigned(PfnCache::Point::after_publish)].load(); }
};

u64 gpc_ms_since(u64 t0) { return (kvmmu_kt_now_ns() - t0) / 1000000; }

// Ends invalidations in flight, in order, once a refresh of `c` is waiting
// (its wait count passed `waits0`): a pause, then `ended` is bumped just
// before each end.
struct GpcEnder {
	void *kt;
	kvmmu_vm *vm;
	PfnCache *c;
	u64 waits0;
	unsigned n;
	u64 ranges[3][2];
	unsigned pause_ms;
	Atomic<u32> ended;
	Atomic<u32> saw_wait;

	static void run(void *arg)
	{
		auto &e = *static_cast<GpcEnder *>(arg);
		void *kt = e.kt;
		// Bounded: a refresh that never waits must not hang the case.
		for (unsigned i = 0; i < 2000 && e.c->stats().waits == e.waits0; i++)
			kvmmu_kt_msleep(5);
		e.saw_wait.store(e.c->stats().waits > e.waits0);
		for (unsigned i = 0; i < e.n; i++) {
			kvmmu_kt_msleep(e.pause_ms);
			e.ended.store(i + 1);
			KT_EXPECT_EQ(kvmmu_vm_invalidate_range_end(e.vm, e.ranges[i][0], e.ranges[i][1]), 0);
		}
	}
};

} // namespace

// ---------------------------------------------------------------------------
// pfncache_lifecycle
// ---------------------------------------------------------------------------

KT_TEST(pfncache_lifecycle, by_gpa_reads_user_memory)
{
	if (!kvmmu_kt_have_user_mm(kt))
		return;
	GpcVm u(kt, KVMMU_MEMSLOT_LOG_DIRTY_PAGES);
	if (!u.ok())
		return;
	Gpc c(kt, u.vm);
	if (!c.g)
		return;
	u64 v = 0;
	// Inactive: check and refresh refuse.
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), kGpcInval);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(c.g), kGpcInval);
	KT_EXPECT_EQ(u.indexed(), 0u);

	// 32 bytes from word 8 of page 3: nothing mapped until a refresh.
	const u64 off = 8 * sizeof(u64);
	KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(c.g, kGpcGpa + 3 * kPageSize + off, 32), 0);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 0);
	KT_EXPECT_EQ(gpc_read(c.g, 33, 0, &v), kGpcInval);
	KT_EXPECT_EQ(gpc_read(c.g, 0, 0, &v), kGpcInval);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(c.g), 0);
	for (unsigned i = 0; i < 4; i++) {
		v = 0;
		KT_EXPECT_EQ(gpc_read(c.g, 32, i * sizeof(u64), &v), 1);
		KT_EXPECT_EQ(v, gpc_tag(3, 8 + i));
	}
	KT_EXPECT_EQ(gpc_read(c.g, 33, 0, &v), kGpcInval);
	KT_EXPECT_EQ(u.indexed(), 1u);
	kvmmu_gpc_counts n = c.counts();
	KT_EXPECT_EQ(n.refreshes, 1u);
	KT_EXPECT_EQ(n.retries, 0u);
	KT_EXPECT_EQ(n.waits, 0u);
	KT_EXPECT_EQ(n.invalidations, 0u);
	// A valid cache: refreshing maps nothing new.
	KT_EXPECT_EQ(kvmmu_gpc_refresh(c.g), 0);
	KT_EXPECT_EQ(c.counts().refreshes, 1u);

	// Userspace writes, the cache reads the same page.
	u.put(u.hva(3) + off, 0x1234abcd);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(v, 0x1234abcdu);
	// Written through the cache: userspace reads it, and the page is
	// logged dirty once the cache says so.
	kvmmu_gpc_read_lock(c.g);
	int ok = kvmmu_gpc_check(c.g, 16);
	if (ok == 1)
		*reinterpret_cast<volatile u64 *>(static_cast<u8 *>(kvmmu_gpc_khva(c.g)) + 8) = 0xfeedface;
	kvmmu_gpc_read_unlock(c.g);
	KT_EXPECT_EQ(ok, 1);
	KT_EXPECT_EQ(u.word(u.hva(3) + off + 8), 0xfeedfaceu);
	kvmmu_gpc_mark_dirty(c.g);
	KT_EXPECT_EQ(kvmmu_vm_get_dirty_log(u.vm, 0, u.buf), 1);
	KT_EXPECT_EQ(u.word(u.buf), u64(1) << 3);
}

KT_TEST(pfncache_lifecycle, by_hva_and_moving)
{
	if (!kvmmu_kt_have_user_mm(kt))
		return;
	GpcVm u(kt);
	if (!u.ok())
		return;
	Gpc c(kt, u.vm);
	if (!c.g)
		return;
	u64 v = 0;
	KT_EXPECT_EQ(kvmmu_gpc_activate_hva(c.g, u.hva(5) + 8, 16), 0);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(c.g), 0);
	KT_EXPECT_EQ(gpc_read(c.g, 16, 0, &v), 1);
	KT_EXPECT_EQ(v, gpc_tag(5, 1));
	KT_EXPECT_EQ(gpc_read(c.g, 16, 8, &v), 1);
	KT_EXPECT_EQ(v, gpc_tag(5, 2));

	// Moved to an address outside every memslot: invalid until refreshed,
	// then it reads the new page.
	u.put(u.buf + 64, 0x5151);
	KT_EXPECT_EQ(kvmmu_gpc_activate_hva(c.g, u.buf + 64, 8), 0);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 0);
	KT_EXPECT_EQ(gpc_read(c.g, 9, 0, &v), kGpcInval);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(c.g), 0);
	v = 0;
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(v, 0x5151u);
	KT_EXPECT_EQ(u.indexed(), 1u);

	// A cache by hva does not depend on the memslots.
	kvmmu_memory_region r{0, 0, kGpcGpa, 0, u.mem};
	KT_EXPECT_EQ(kvmmu_vm_set_memory_region(u.vm, &r), 0);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 1);

	// Back to the (slot-less) memory; the index follows the move.
	KT_EXPECT_EQ(kvmmu_gpc_activate_hva(c.g, u.hva(6), 8), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(c.g), 0);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(v, gpc_tag(6, 0));
	KT_EXPECT_EQ(u.indexed(), 1u);
	KT_EXPECT_EQ(c.counts().refreshes, 3u);
	// An invalidation of its old page no longer reaches it.
	KT_EXPECT_EQ(u.start(u.buf, u.buf + kPageSize), 0);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(u.end(u.buf, u.buf + kPageSize), 0);
	KT_EXPECT_EQ(c.counts().invalidations, 0u);
}

KT_TEST(pfncache_lifecycle, overlapping_invalidation_fails_check)
{
	if (!kvmmu_kt_have_user_mm(kt))
		return;
	GpcVm u(kt);
	if (!u.ok())
		return;
	Gpc c(kt, u.vm);
	if (!c.g)
		return;
	u64 v = 0;
	const u64 P = u.hva(2), pg = kPageSize;
	KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(c.g, kGpcGpa + 2 * pg, 8), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(c.g), 0);

	// Ranges next to the page, or elsewhere, leave the cache alone.
	const u64 others[][2] = {{P - pg, P}, {P + pg, P + 2 * pg}, {u.hva(6), u.hva(8)}, {u.buf, u.buf + pg}};
	for (const auto &o : others) {
		KT_EXPECT_EQ(u.start(o[0], o[1]), 0);
		KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 1);
		KT_EXPECT_EQ(u.end(o[0], o[1]), 0);
	}
	KT_EXPECT_EQ(c.counts().invalidations, 0u);

	// One byte of the page is enough. Invalid from the start on, and
	// after the end until a refresh.
	KT_EXPECT_EQ(u.start(P + pg - 1, P + pg + 1), 0);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 0);
	KT_EXPECT_EQ(c.counts().invalidations, 1u);
	KT_EXPECT_EQ(u.end(P + pg - 1, P + pg + 1), 0);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(c.g), 0);
	v = 0;
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(v, gpc_tag(2, 0));

	// Nested windows: invalid until the last one ends and a refresh.
	KT_EXPECT_EQ(u.start(P, P + pg), 0);
	KT_EXPECT_EQ(u.start(P - pg, P + 2 * pg), 0);
	KT_EXPECT_EQ(c.counts().invalidations, 3u);
	KT_EXPECT_EQ(u.end(P, P + pg), 0);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 0);
	KT_EXPECT_EQ(u.end(P - pg, P + 2 * pg), 0);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(c.g), 0);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 1);
	kvmmu_gpc_counts n = c.counts();
	KT_EXPECT_EQ(n.refreshes, 3u);
	KT_EXPECT_EQ(n.waits, 0u);
	KT_EXPECT_EQ(n.retries, 0u);

	// The real notifier: munmap of another page of the memory leaves the
	// cache valid; of its own page, invalidates it, and a refresh finds
	// nothing mapped there.
	KT_EXPECT_EQ(kvmmu_kt_user_unmap(u.hva(5), pg), 0);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(c.counts().invalidations, 3u);
	KT_EXPECT_EQ(kvmmu_kt_user_unmap(P, pg), 0);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 0);
	KT_EXPECT(c.counts().invalidations >= 4);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(c.g), kGpcFault);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 0);
}

KT_TEST(pfncache_lifecycle, deactivate_and_destroy)
{
	if (!kvmmu_kt_have_user_mm(kt))
		return;
	GpcVm u(kt);
	if (!u.ok())
		return;
	Gpc a(kt, u.vm), b(kt, u.vm), c(kt, u.vm), d(kt, u.vm);
	if (!a.g || !b.g || !c.g || !d.g)
		return;
	u64 v = 0;
	const u64 P1 = u.hva(1), P4 = u.hva(4), pg = kPageSize;
	KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(a.g, kGpcGpa + pg, 8), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(a.g), 0);
	KT_EXPECT_EQ(gpc_read(a.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(u.indexed(), 1u);

	// Deactivated: inactive (check and refresh refuse), out of the index,
	// out of reach of invalidations; deactivating again changes nothing.
	kvmmu_gpc_deactivate(a.g);
	KT_EXPECT_EQ(gpc_read(a.g, 8, 0, &v), kGpcInval);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(a.g), kGpcInval);
	kvmmu_gpc_deactivate(a.g);
	KT_EXPECT_EQ(u.indexed(), 0u);
	KT_EXPECT_EQ(u.start(P1, P1 + pg), 0);
	KT_EXPECT_EQ(u.end(P1, P1 + pg), 0);
	KT_EXPECT_EQ(a.counts().invalidations, 0u);
	// And active again.
	KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(a.g, kGpcGpa + pg, 8), 0);
	KT_EXPECT_EQ(gpc_read(a.g, 8, 0, &v), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(a.g), 0);
	KT_EXPECT_EQ(gpc_read(a.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(v, gpc_tag(1, 0));

	// Several caches: an invalidation reaches exactly those on its page.
	KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(b.g, kGpcGpa + pg + 16, 8), 0);
	KT_EXPECT_EQ(kvmmu_gpc_activate_hva(c.g, P1 + 24, 8), 0);
	KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(d.g, kGpcGpa + 4 * pg, 8), 0);
	Gpc *const bcd[] = {&b, &c, &d}, *const abc[] = {&a, &b, &c};
	for (Gpc *x : bcd)
		KT_EXPECT_EQ(kvmmu_gpc_refresh(x->g), 0);
	KT_EXPECT_EQ(u.indexed(), 4u);
	KT_EXPECT_EQ(u.start(P1, P1 + pg), 0);
	for (Gpc *x : abc)
		KT_EXPECT_EQ(gpc_read(x->g, 8, 0, &v), 0);
	KT_EXPECT_EQ(gpc_read(d.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(u.end(P1, P1 + pg), 0);
	for (Gpc *x : abc)
		KT_EXPECT_EQ(x->counts().invalidations, 1u);
	KT_EXPECT_EQ(d.counts().invalidations, 0u);

	// Destroying one in the middle of the index keeps the others'.
	kvmmu_gpc_destroy(b.g);
	b.g = nullptr;
	KT_EXPECT_EQ(u.indexed(), 3u);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(a.g), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(c.g), 0);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(v, gpc_tag(1, 3));
	KT_EXPECT_EQ(u.start(P4, P4 + pg), 0);
	KT_EXPECT_EQ(gpc_read(d.g, 8, 0, &v), 0);
	KT_EXPECT_EQ(gpc_read(a.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(u.end(P4, P4 + pg), 0);

	// Destroying an active, valid cache; NULL is ignored. The rest keep
	// working.
	kvmmu_gpc_destroy(a.g);
	a.g = nullptr;
	kvmmu_gpc_destroy(nullptr);
	KT_EXPECT_EQ(u.indexed(), 2u);
	KT_EXPECT_EQ(u.start(P1, P4 + pg), 0);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 0);
	KT_EXPECT_EQ(u.end(P1, P4 + pg), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(c.g), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(d.g), 0);
	KT_EXPECT_EQ(gpc_read(d.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(v, gpc_tag(4, 0));
}

KT_TEST(pfncache_lifecycle, error_codes)
{
	if (!kvmmu_kt_have_user_mm(kt))
		return;
	GpcVm u(kt);
	if (!u.ok())
		return;
	const u64 pg = kPageSize;
	kvmmu_gpc *g = nullptr;
	KT_EXPECT_EQ(kvmmu_gpc_init(nullptr, 0, &g), kGpcInval);
	KT_EXPECT_EQ(kvmmu_gpc_init(u.vm, 0, nullptr), kGpcInval);
	KT_EXPECT_EQ(kvmmu_gpc_init(u.vm, 1u << 5, &g), kGpcInval);
	KT_EXPECT(g == nullptr);
	kvmmu_gpc_counts n{};
	KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(nullptr, kGpcGpa, 8), kGpcInval);
	KT_EXPECT_EQ(kvmmu_gpc_activate_hva(nullptr, u.mem, 8), kGpcInval);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(nullptr), kGpcInval);
	KT_EXPECT_EQ(kvmmu_gpc_check(nullptr, 8), kGpcInval);
	KT_EXPECT_EQ(kvmmu_gpc_get_counts(nullptr, &n), kGpcInval);
	KT_EXPECT(kvmmu_gpc_khva(nullptr) == nullptr);
	kvmmu_gpc_deactivate(nullptr);
	kvmmu_gpc_mark_dirty(nullptr);

	Gpc c(kt, u.vm);
	if (!c.g)
		return;
	KT_EXPECT_EQ(kvmmu_gpc_get_counts(c.g, nullptr), kGpcInval);
	u64 v = 0;
	KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(c.g, kGpcGpa + pg, 8), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(c.g), 0);

	// Bad ranges: -EINVAL, and the cache stays as it was (valid).
	const int bits = kvmmu_vm_gpa_bits(u.vm);
	KT_EXPECT(bits >= 36 && bits <= 52);
	const u64 lim = u64(1) << bits;
	KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(c.g, kGpcGpa, 0), kGpcInval);
	KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(c.g, kGpcGpa + pg - 8, 16), kGpcInval);
	KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(c.g, kGpcGpa, pg + 1), kGpcInval);
	KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(c.g, lim, 8), kGpcInval);
	KT_EXPECT_EQ(kvmmu_gpc_activate_hva(c.g, u.hva(2), 0), kGpcInval);
	KT_EXPECT_EQ(kvmmu_gpc_activate_hva(c.g, u.hva(2) + 8, pg), kGpcInval);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(v, gpc_tag(1, 0));
	KT_EXPECT_EQ(c.counts().refreshes, 1u);

	// The last bytes below the limit are a valid address, in no slot.
	KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(c.g, lim - 8, 8), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(c.g), kGpcNoent);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 0);
	KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(c.g, kGpcGpa - pg, 8), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(c.g), kGpcNoent);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 0);

	// A read-only slot: caches are written through.
	const u64 ro = kvmmu_kt_user_map(pg);
	KT_EXPECT(ro != 0);
	if (ro) {
		u.put(ro, 1);
		kvmmu_memory_region r{1, KVMMU_MEMSLOT_READONLY, kGpcGpa + 64 * pg, pg, ro};
		KT_EXPECT_EQ(kvmmu_vm_set_memory_region(u.vm, &r), 0);
		KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(c.g, kGpcGpa + 64 * pg, 8), 0);
		KT_EXPECT_EQ(kvmmu_gpc_refresh(c.g), kGpcPerm);
		KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 0);
	}

	// Nothing mapped at the address.
	const u64 gone = kvmmu_kt_user_map(pg);
	KT_EXPECT(gone != 0);
	if (gone) {
		KT_EXPECT_EQ(kvmmu_kt_user_unmap(gone, pg), 0);
		KT_EXPECT_EQ(kvmmu_gpc_activate_hva(c.g, gone + 8, 8), 0);
		KT_EXPECT_EQ(kvmmu_gpc_refresh(c.g), kGpcFault);
		KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 0);
	}

	// The address space goes: the cache fails its check, refreshes fail
	// with -EIO.
	KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(c.g, kGpcGpa + 2 * pg, 8), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(c.g), 0);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(kvmmu_vm_release(u.vm), 0);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(c.g), kGpcIo);
	KT_EXPECT_EQ(gpc_read(c.g, 8, 0, &v), 0);
	n = c.counts();
	KT_EXPECT_EQ(n.retries, 0u);
	KT_EXPECT_EQ(n.waits, 0u);
	if (ro)
		kvmmu_kt_user_unmap(ro, pg);
}

KT_TEST(pfncache_lifecycle, memslot_changes)
{
	if (!kvmmu_kt_have_user_mm(kt))
		return;
	GpcVm u(kt);
	if (!u.ok())
		return;
	Gpc byg(kt, u.vm), byh(kt, u.vm);
	if (!byg.g || !byh.g)
		return;
	const u64 pg = kPageSize;
	u64 v = 0;
	KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(byg.g, kGpcGpa + 3 * pg + 16, 8), 0);
	KT_EXPECT_EQ(kvmmu_gpc_activate_hva(byh.g, u.hva(3) + 16, 8), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(byg.g), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(byh.g), 0);
	KT_EXPECT_EQ(gpc_read(byg.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(v, gpc_tag(3, 2));

	// Another slot appears: the gpa cache is re-resolved (as upstream's).
	kvmmu_memory_region r1{1, 0, kGpcGpa + 64 * pg, pg, u.buf};
	KT_EXPECT_EQ(kvmmu_vm_set_memory_region(u.vm, &r1), 0);
	KT_EXPECT_EQ(gpc_read(byg.g, 8, 0, &v), 0);
	KT_EXPECT_EQ(gpc_read(byh.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(byg.g), 0);
	KT_EXPECT_EQ(gpc_read(byg.g, 8, 0, &v), 1);

	// Slot 0 deleted: no slot for the gpa. Re-created one page further
	// into the memory: the same gpa reads page 4. The hva cache stays
	// on page 3 throughout.
	kvmmu_memory_region r0{0, 0, kGpcGpa, 0, u.mem};
	KT_EXPECT_EQ(kvmmu_vm_set_memory_region(u.vm, &r0), 0);
	KT_EXPECT_EQ(gpc_read(byg.g, 8, 0, &v), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(byg.g), kGpcNoent);
	r0 = {0, 0, kGpcGpa, (kGpcPages - 1) * pg, u.hva(1)};
	KT_EXPECT_EQ(kvmmu_vm_set_memory_region(u.vm, &r0), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(byg.g), 0);
	KT_EXPECT_EQ(gpc_read(byg.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(v, gpc_tag(4, 2));
	KT_EXPECT_EQ(gpc_read(byh.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(v, gpc_tag(3, 2));
	// The gpa cache moved to page 4: invalidations of page 3 reach only
	// the hva cache now.
	KT_EXPECT_EQ(u.start(u.hva(3), u.hva(4)), 0);
	KT_EXPECT_EQ(gpc_read(byg.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(gpc_read(byh.g, 8, 0, &v), 0);
	KT_EXPECT_EQ(u.end(u.hva(3), u.hva(4)), 0);

	// Re-flagged (dirty logging on): re-resolved; then written through
	// the cache and logged.
	r0.flags = KVMMU_MEMSLOT_LOG_DIRTY_PAGES;
	KT_EXPECT_EQ(kvmmu_vm_set_memory_region(u.vm, &r0), 0);
	KT_EXPECT_EQ(gpc_read(byg.g, 8, 0, &v), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(byg.g), 0);
	KT_EXPECT_EQ(gpc_read(byg.g, 8, 0, &v), 1);
	kvmmu_gpc_mark_dirty(byg.g);
	kvmmu_gpc_mark_dirty(byh.g); // by hva: nothing to log
	KT_EXPECT_EQ(kvmmu_vm_get_dirty_log(u.vm, 0, u.buf), 1);
	KT_EXPECT_EQ(u.word(u.buf), u64(1) << 3);
	kvmmu_gpc_counts n = byg.counts();
	KT_EXPECT_EQ(n.refreshes, 4u);
	KT_EXPECT_EQ(n.retries, 0u);
}

// ---------------------------------------------------------------------------
// pfncache_race
// ---------------------------------------------------------------------------

namespace {

// State shared by the threads of the reader/refresher/invalidator cases.
struct GpcRace {
	void *kt;
	GpcVm *u;
	PfnCache *c;
	u64 len;		// the cache's length: version word, then tag word
	u64 version_hva;	// the version word, in the user mapping
	u64 tag;		// the word after it, as set up
	u64 range[2];		// the cache's page

	// Invalidation k of the invalidator: `phase` is 2k-1 from the return
	// of its start until just before its end, 2k otherwise; `min_version`
	// is k from the return of its start on (it writes version k to the
	// page inside the window).
	Atomic<u64> phase, min_version;
	Atomic<u32> stop;

	Atomic<u64> reads_ok, reads_invalid, stale, open_hits, bad_tag, check_errors;
	Atomic<u64> first_stale_seen, first_stale_min;
	Atomic<u64> refreshes_ok, refresh_errors;
	Atomic<int> first_refresh_error;
	Atomic<u64> invalidations;

	// One read: under the read lock only the check, the loads and the
	// phase; the verdicts after it.
	void read_once()
	{
		const u64 min = min_version.load(Order::acquire);
		c->read_lock();
		auto r = c->check(len);
		const bool ok = r.ok() && r.value();
		u64 ph = 0, v = 0, t = 0;
		if (ok) {
			ph = phase.load(Order::acquire);
			const volatile u64 *w = static_cast<const volatile u64 *>(c->khva());
			v = w[0];
			t = w[1];
		}
		c->read_unlock();
		if (!r.ok()) {
			check_errors.fetch_add(1);
			return;
		}
		if (!ok) {
			reads_invalid.fetch_add(1, Order::relaxed);
			return;
		}
		reads_ok.fetch_add(1, Order::relaxed);
		if (v < min && !stale.fetch_add(1)) {
			first_stale_seen.store(v);
			first_stale_min.store(min);
		}
		if (ph & 1)
			open_hits.fetch_add(1);
		if (t != tag)
			bad_tag.fetch_add(1);
	}

	static void reader(void *arg)
	{
		auto &s = *static_cast<GpcRace *>(arg);
		while (!s.stop.load(Order::acquire)) {
			s.read_once();
			kvmmu_plat_cond_resched();
		}
	}

	// Refreshes, forcing a new lookup every other time, and sleeps
	// between them (the readers' turn with a valid cache).
	static void refresher(void *arg)
	{
		auto &s = *static_cast<GpcRace *>(arg);
		for (unsigned i = 0; !s.stop.load(Order::acquire); i++) {
			auto r = s.c->refresh(i % 2 == 0);
			if (r.ok()) {
				s.refreshes_ok.fetch_add(1, Order::relaxed);
			} else if (!s.refresh_errors.fetch_add(1)) {
				s.first_refresh_error.store(r.to_errno());
			}
			kvmmu_kt_msleep(1);
		}
	}

	// The refresher's lookups: every other one lasts a while (the hook
	// runs in refresh() with no lock but the refresh mutex held), so that
	// invalidations start between lookups and publishes.
	Atomic<u32> lookups;
	static void hook(PfnCache &, PfnCache::Point p, void *arg)
	{
		auto &s = *static_cast<GpcRace *>(arg);
		if (p == PfnCache::Point::after_lookup && s.lookups.fetch_add(1) % 2 == 0)
			kvmmu_kt_msleep(1);
	}

	static constexpr unsigned kInvalidations = 200;

	// Scripted invalidations of the cache's page (whole, partly, or with
	// its neighbours), each rewriting the version inside its window.
	static void invalidator(void *arg)
	{
		auto &s = *static_cast<GpcRace *>(arg);
		void *kt = s.kt;
		const u64 P = s.range[0], pg = kPageSize;
		for (u64 k = 1; k <= kInvalidations; k++) {
			u64 a = P, b = P + pg;
			if (k % 3 == 1) {
				a = P - pg;
				b = P + 2 * pg;
			} else if (k % 3 == 2) {
				a = s.version_hva;
				b = s.version_hva + sizeof(u64);
			}
			KT_EXPECT_EQ(s.u->start(a, b), 0);
			s.phase.store(2 * k - 1, Order::release);
			s.min_version.store(k, Order::release);
			// Some windows stay open a while: readers find the cache
			// invalid, the refresher sleeps.
			if (k % 4 == 0)
				kvmmu_kt_msleep(2);
			KT_EXPECT_EQ(kvmmu_kt_user_write(s.version_hva, &k, sizeof(k)), 0);
			s.phase.store(2 * k, Order::release);
			KT_EXPECT_EQ(s.u->end(a, b), 0);
			s.invalidations.fetch_add(1);
			if (k % 2)
				kvmmu_kt_msleep(1);
			else
				kvmmu_plat_cond_resched();
		}
		s.stop.store(1, Order::release);
	}
};

// Unrelated invalidations, nested, in a loop until told to stop; `rounds`
// counts the rounds whose ranges all started and ended.
struct GpcChurn {
	void *kt;
	GpcVm *u;
	u64 ranges[4][2];
	Atomic<u32> stop;
	Atomic<u64> rounds;

	static void run(void *arg)
	{
		auto &s = *static_cast<GpcChurn *>(arg);
		void *kt = s.kt;
		while (!s.stop.load(Order::acquire)) {
			for (const auto &r : s.ranges)
				KT_EXPECT_EQ(s.u->start(r[0], r[1]), 0);
			for (unsigned i = 4; i-- > 0;)
				KT_EXPECT_EQ(s.u->end(s.ranges[i][0], s.ranges[i][1]), 0);
			s.rounds.fetch_add(1);
			kvmmu_plat_cond_resched();
		}
	}
};

} // namespace

// An overlapping invalidation in flight: refresh sleeps (once) until the
// last overlapping one ends, through wake-ups by unrelated and partial
// ends, and looks up once.
KT_TEST(pfncache_race, refresh_sleeps_until_end)
{
	if (!kvmmu_kt_have_user_mm(kt))
		return;
	GpcVm u(kt);
	if (!u.ok())
		return;
	Gpc g(kt, u.vm);
	if (!g.g)
		return;
	u64 v = 0;
	const u64 P = u.hva(2), pg = kPageSize;
	KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(g.g, kGpcGpa + 2 * pg + 8, 8), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(g.g), 0);

	// Ended in this order: an unrelated range (wakes the refresh, which
	// must sleep on), a wide overlapping one, the page itself.
	GpcEnder e{kt, u.vm, &g.c(), g.c().stats().waits, 3,
		   {{u.hva(6), u.hva(7)}, {P - pg, P + 2 * pg}, {P, P + pg}}, 50};
	for (unsigned i = 3; i-- > 0;)
		KT_EXPECT_EQ(u.start(e.ranges[i][0], e.ranges[i][1]), 0);
	KT_EXPECT_EQ(gpc_read(g.g, 8, 0, &v), 0);

	GpcPoints pts;
	g.c().set_test_hook(GpcPoints::hook, &pts);
	const PfnCacheStats s0 = g.c().stats();
	void *t = kvmmu_kt_thread_start(GpcEnder::run, &e, "ender");
	KT_EXPECT(t != nullptr);
	if (!t) {
		g.c().set_test_hook(nullptr, nullptr);
		for (auto &r : e.ranges)
			KT_EXPECT_EQ(u.end(r[0], r[1]), 0);
		return;
	}
	const u64 t0 = kvmmu_kt_now_ns();
	auto r = g.c().refresh();
	const u64 ms = gpc_ms_since(t0);
	const u32 ended = e.ended.load();
	kvmmu_kt_thread_join(t);
	g.c().set_test_hook(nullptr, nullptr);

	KT_EXPECT(r.ok());
	KT_EXPECT_EQ(ended, 3u);	// returned only after the last end
	KT_EXPECT(e.saw_wait.load());
	const PfnCacheStats s1 = g.c().stats();
	KT_EXPECT_EQ(s1.waits - s0.waits, 1u);
	KT_EXPECT_EQ(s1.retries - s0.retries, 0u);
	KT_EXPECT_EQ(s1.refreshes - s0.refreshes, 1u);
	KT_EXPECT_EQ(pts.lookups(), 1u);
	KT_EXPECT_EQ(pts.retrying(), 0u);
	KT_EXPECT(ms >= 150);
	v = 0;
	KT_EXPECT_EQ(gpc_read(g.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(v, gpc_tag(2, 1));
	kvmmu_plat_log(KVMMU_LOG_INFO, "kt pfncache refresh_sleeps_until_end: refresh took %llu ms\n",
		       (unsigned long long)ms);
}

namespace {

// After the first lookup: start an invalidation of the page (and end it at
// once, or leave it to an ender thread).
struct GpcLookupInval {
	GpcVm *u;
	u64 range[2];
	bool end_now;
	int start_r = 1, end_r = 1;

	static void act(PfnCache &, PfnCache::Point p, unsigned nth, void *arg)
	{
		auto &s = *static_cast<GpcLookupInval *>(arg);
		if (p != PfnCache::Point::after_lookup || nth != 1)
			return;
		s.start_r = s.u->start(s.range[0], s.range[1]);
		if (s.end_now)
			s.end_r = s.u->end(s.range[0], s.range[1]);
	}
};

} // namespace

// An overlapping invalidation that starts between the lookup and the
// publish: the lookup is thrown away (once) and the refresh completes;
// if that invalidation is still in flight, the refresh sleeps first.
KT_TEST(pfncache_race, invalidation_during_lookup_retries)
{
	if (!kvmmu_kt_have_user_mm(kt))
		return;
	GpcVm u(kt);
	if (!u.ok())
		return;
	Gpc g(kt, u.vm);
	if (!g.g)
		return;
	u64 v = 0;
	const u64 P = u.hva(3), pg = kPageSize;
	KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(g.g, kGpcGpa + 3 * pg, 8), 0);

	// Started and ended during the lookup.
	GpcLookupInval li{&u, {P, P + pg}, true};
	GpcPoints pts;
	pts.act = GpcLookupInval::act;
	pts.arg = &li;
	g.c().set_test_hook(GpcPoints::hook, &pts);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(g.g), 0);
	g.c().set_test_hook(nullptr, nullptr);
	KT_EXPECT_EQ(li.start_r, 0);
	KT_EXPECT_EQ(li.end_r, 0);
	KT_EXPECT_EQ(pts.lookups(), 2u);
	KT_EXPECT_EQ(pts.retrying(), 1u);
	KT_EXPECT_EQ(pts.published(), 1u);
	kvmmu_gpc_counts n = g.counts();
	KT_EXPECT_EQ(n.refreshes, 1u);
	KT_EXPECT_EQ(n.retries, 1u);
	KT_EXPECT_EQ(n.waits, 0u);
	KT_EXPECT_EQ(n.invalidations, 1u);
	KT_EXPECT_EQ(gpc_read(g.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(v, gpc_tag(3, 0));

	// Started during the lookup and still in flight at the retry: the
	// refresh sleeps until another thread ends it.
	KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(g.g, kGpcGpa + 3 * pg + 8, 8), 0); // moved: invalid
	GpcLookupInval li2{&u, {P - pg, P + pg}, false};
	GpcPoints pts2;
	pts2.act = GpcLookupInval::act;
	pts2.arg = &li2;
	GpcEnder e{kt, u.vm, &g.c(), g.c().stats().waits, 1, {{P - pg, P + pg}}, 30};
	void *t = kvmmu_kt_thread_start(GpcEnder::run, &e, "ender");
	KT_EXPECT(t != nullptr);
	if (!t)
		return;
	const PfnCacheStats s0 = g.c().stats();
	g.c().set_test_hook(GpcPoints::hook, &pts2);
	auto r = g.c().refresh();
	const u32 ended = e.ended.load();
	g.c().set_test_hook(nullptr, nullptr);
	kvmmu_kt_thread_join(t);
	if (li2.start_r == 0 && !e.ended.load())
		KT_EXPECT_EQ(u.end(P - pg, P + pg), 0);
	KT_EXPECT(r.ok());
	KT_EXPECT_EQ(li2.start_r, 0);
	KT_EXPECT_EQ(ended, 1u);
	KT_EXPECT_EQ(pts2.lookups(), 2u);
	KT_EXPECT_EQ(pts2.retrying(), 1u);
	const PfnCacheStats s1 = g.c().stats();
	KT_EXPECT_EQ(s1.retries - s0.retries, 1u);
	KT_EXPECT_EQ(s1.waits - s0.waits, 1u);
	KT_EXPECT_EQ(s1.refreshes - s0.refreshes, 1u);
	KT_EXPECT_EQ(gpc_read(g.g, 8, 0, &v), 1);
	KT_EXPECT_EQ(v, gpc_tag(3, 1));
}

namespace {

// During the first `count` lookups: an invalidation of a range that does
// not overlap the cache's page starts and ends (and, if `leave`, one more
// starts and stays in flight until the test ends it).
struct GpcLookupUnrelated {
	GpcVm *u;
	u64 range[2], leave_range[2];
	unsigned count;
	bool leave;
	Atomic<u32> errors;
	Atomic<u32> left;

	static void act(PfnCache &, PfnCache::Point p, unsigned nth, void *arg)
	{
		auto &s = *static_cast<GpcLookupUnrelated *>(arg);
		if (p != PfnCache::Point::after_lookup || nth > s.count)
			return;
		if (s.u->start(s.range[0], s.range[1]) || s.u->end(s.range[0], s.range[1]))
			s.errors.fetch_add(1);
		if (s.leave && !s.left.load()) {
			if (s.u->start(s.leave_range[0], s.leave_range[1]))
				s.errors.fetch_add(1);
			else
				s.left.store(1);
		}
	}
};

} // namespace

// Invalidations of other pages, in flight at the in-flight check or
// starting and ending during the lookup, never make kvmmu's refresh wait
// or retry; upstream's rule (the baseline) retries for each one.
KT_TEST(pfncache_race, unrelated_invalidations_never_retry)
{
	if (!kvmmu_kt_have_user_mm(kt))
		return;
	GpcVm u(kt);
	if (!u.ok())
		return;
	const u64 P = u.hva(3), pg = kPageSize;
	u64 v = 0;
	{
		Gpc g(kt, u.vm);
		if (!g.g)
			return;
		KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(g.g, kGpcGpa + 3 * pg, 8), 0);
		// In flight before the refresh starts, next to the page.
		KT_EXPECT_EQ(u.start(P + pg, P + 2 * pg), 0);
		GpcLookupUnrelated un{&u, {P - pg, P}, {u.hva(6), u.hva(8)}, 1, true};
		GpcPoints pts;
		pts.act = GpcLookupUnrelated::act;
		pts.arg = &un;
		g.c().set_test_hook(GpcPoints::hook, &pts);
		for (unsigned i = 0; i < 5; i++) {
			KT_EXPECT_EQ(g.c().refresh(true).to_errno(), 0);
			KT_EXPECT_EQ(gpc_read(g.g, 8, 0, &v), 1);
		}
		g.c().set_test_hook(nullptr, nullptr);
		KT_EXPECT_EQ(un.errors.load(), 0u);
		KT_EXPECT_EQ(pts.lookups(), 5u);
		KT_EXPECT_EQ(pts.retrying(), 0u);
		kvmmu_gpc_counts n = g.counts();
		KT_EXPECT_EQ(n.refreshes, 5u);
		KT_EXPECT_EQ(n.retries, 0u);
		KT_EXPECT_EQ(n.waits, 0u);
		KT_EXPECT_EQ(n.invalidations, 0u);
		KT_EXPECT_EQ(u.end(P + pg, P + 2 * pg), 0);
		if (un.left.load())
			KT_EXPECT_EQ(u.end(u.hva(6), u.hva(8)), 0);
	}
	{
		// The baseline, same script (nothing left in flight: it would
		// retry for as long as that lasts): one retry per unrelated
		// invalidation during a lookup.
		Gpc g(kt, u.vm, KVMMU_GPC_INIT_BASELINE);
		if (!g.g)
			return;
		KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(g.g, kGpcGpa + 3 * pg, 8), 0);
		GpcLookupUnrelated un{&u, {P - pg, P}, {0, 0}, 3, false};
		GpcPoints pts;
		pts.act = GpcLookupUnrelated::act;
		pts.arg = &un;
		g.c().set_test_hook(GpcPoints::hook, &pts);
		KT_EXPECT_EQ(kvmmu_gpc_refresh(g.g), 0);
		g.c().set_test_hook(nullptr, nullptr);
		KT_EXPECT_EQ(un.errors.load(), 0u);
		KT_EXPECT_EQ(pts.lookups(), 4u);
		kvmmu_gpc_counts n = g.counts();
		KT_EXPECT_EQ(n.retries, 3u);
		KT_EXPECT_EQ(n.refreshes, 1u);
		KT_EXPECT_EQ(n.invalidations, 0u);
		KT_EXPECT_EQ(gpc_read(g.g, 8, 0, &v), 1);
	}
}

// A refresher kthread and two readers (a kthread and the test thread)
// against an invalidator kthread that rewrites the cache's page inside
// scripted invalidation windows: no reader sees a version older than the
// newest whose invalidation had started before it took the read lock, nor
// a passing check inside an open window; refreshes keep completing.
KT_TEST(pfncache_race, readers_never_see_stale)
{
	if (!kvmmu_kt_have_user_mm(kt))
		return;
	GpcVm u(kt);
	if (!u.ok())
		return;
	Gpc g(kt, u.vm);
	if (!g.g)
		return;
	const u64 pg = kPageSize, off = 64;
	GpcRace s{};
	s.kt = kt;
	s.u = &u;
	s.c = &g.c();
	s.len = 16;
	s.version_hva = u.hva(1) + off;
	s.tag = gpc_tag(1, off / sizeof(u64) + 1);
	s.range[0] = u.hva(1);
	s.range[1] = u.hva(1) + pg;
	s.phase.store(0);
	s.min_version.store(0);
	u.put(s.version_hva, 0);
	KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(g.g, kGpcGpa + pg + off, s.len), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(g.g), 0);
	const PfnCacheStats s0 = g.c().stats();

	g.c().set_test_hook(GpcRace::hook, &s);
	void *refresher = kvmmu_kt_thread_start(GpcRace::refresher, &s, "refresher");
	void *reader = kvmmu_kt_thread_start(GpcRace::reader, &s, "reader");
	void *inval = kvmmu_kt_thread_start(GpcRace::invalidator, &s, "invalidator");
	KT_EXPECT(refresher && reader && inval);
	if (!inval)
		s.stop.store(1);
	const u64 t0 = kvmmu_kt_now_ns();
	while (!s.stop.load(Order::acquire)) {
		s.read_once();
		kvmmu_plat_cond_resched();
	}
	kvmmu_kt_thread_join(inval);
	kvmmu_kt_thread_join(reader);
	kvmmu_kt_thread_join(refresher);
	g.c().set_test_hook(nullptr, nullptr);
	const u64 ms = gpc_ms_since(t0);

	KT_EXPECT_EQ(s.stale.load(), 0u);
	KT_EXPECT_EQ(s.first_stale_seen.load(), 0u);
	KT_EXPECT_EQ(s.first_stale_min.load(), 0u);
	KT_EXPECT_EQ(s.open_hits.load(), 0u);
	KT_EXPECT_EQ(s.bad_tag.load(), 0u);
	KT_EXPECT_EQ(s.check_errors.load(), 0u);
	KT_EXPECT_EQ(s.refresh_errors.load(), 0u);
	KT_EXPECT_EQ(s.first_refresh_error.load(), 0);
	KT_EXPECT(s.reads_ok.load() > 0);
	KT_EXPECT(s.refreshes_ok.load() > 0);
	KT_EXPECT_EQ(s.invalidations.load(), u64(GpcRace::kInvalidations));
	const PfnCacheStats s1 = g.c().stats();
	KT_EXPECT(s1.invalidations - s0.invalidations >= GpcRace::kInvalidations);
	KT_EXPECT(s1.refreshes > s0.refreshes);
	// Quiet again: the cache maps the last version.
	KT_EXPECT_EQ(kvmmu_gpc_refresh(g.g), 0);
	u64 v = 0;
	KT_EXPECT_EQ(gpc_read(g.g, 16, 0, &v), 1);
	KT_EXPECT_EQ(v, u64(GpcRace::kInvalidations));
	kvmmu_plat_log(KVMMU_LOG_INFO,
		       "kt pfncache readers_never_see_stale: %llu ms, reads %llu valid / %llu invalid, "
		       "refresh calls %llu, published %llu, retries %llu, waits %llu, invalidations %llu\n",
		       (unsigned long long)ms, (unsigned long long)s.reads_ok.load(),
		       (unsigned long long)s.reads_invalid.load(), (unsigned long long)s.refreshes_ok.load(),
		       (unsigned long long)(s1.refreshes - s0.refreshes),
		       (unsigned long long)(s1.retries - s0.retries), (unsigned long long)(s1.waits - s0.waits),
		       (unsigned long long)(s1.invalidations - s0.invalidations));
}

namespace {

// Before each lookup: note the churn's rounds; after it, wait (bounded)
// until a whole unrelated round started and ended inside the lookup's
// window, so each publish follows unrelated invalidations.
struct GpcChurnWindow {
	GpcChurn *churn;
	u64 at_lookup = 0;
	unsigned overlapped = 0;

	static void act(PfnCache &, PfnCache::Point p, unsigned, void *arg)
	{
		auto &s = *static_cast<GpcChurnWindow *>(arg);
		if (p == PfnCache::Point::before_lookup) {
			s.at_lookup = s.churn->rounds.load();
		} else if (p == PfnCache::Point::after_lookup) {
			const u64 t0 = kvmmu_kt_now_ns();
			while (s.churn->rounds.load() < s.at_lookup + 2 && gpc_ms_since(t0) < 2000)
				kvmmu_plat_cond_resched();
			if (s.churn->rounds.load() >= s.at_lookup + 2)
				s.overlapped++;
		}
	}
};

} // namespace

// A kthread churns invalidations of other pages (next to the cache's, and
// elsewhere) while the test thread refreshes with forced lookups and a
// reader kthread reads: every refresh completes at once, without a retry
// or a wait, though unrelated invalidations run through each lookup.
KT_TEST(pfncache_race, refresh_progresses_under_unrelated_churn)
{
	if (!kvmmu_kt_have_user_mm(kt))
		return;
	GpcVm u(kt);
	if (!u.ok())
		return;
	Gpc g(kt, u.vm);
	if (!g.g)
		return;
	const u64 P = u.hva(4), pg = kPageSize;
	KT_EXPECT_EQ(kvmmu_gpc_activate_gpa(g.g, kGpcGpa + 4 * pg + 8, 16), 0);
	KT_EXPECT_EQ(kvmmu_gpc_refresh(g.g), 0);

	GpcChurn churn{kt, &u, {{P - pg, P}, {P + pg, P + 2 * pg}, {u.hva(0), u.hva(2)}, {u.buf, u.buf + pg}}};
	GpcRace s{};
	s.kt = kt;
	s.u = &u;
	s.c = &g.c();
	s.len = 16;
	s.tag = gpc_tag(4, 2);
	GpcChurnWindow w{&churn};
	GpcPoints pts;
	pts.act = GpcChurnWindow::act;
	pts.arg = &w;

	void *ct = kvmmu_kt_thread_start(GpcChurn::run, &churn, "churn");
	void *rt = kvmmu_kt_thread_start(GpcRace::reader, &s, "reader");
	KT_EXPECT(ct && rt);
	if (!ct || !rt) {
		churn.stop.store(1);
		s.stop.store(1);
		kvmmu_kt_thread_join(ct);
		kvmmu_kt_thread_join(rt);
		return;
	}
	// Churning before the first refresh.
	for (unsigned i = 0; i < 2000 && !churn.rounds.load(); i++)
		kvmmu_kt_msleep(1);
	const PfnCacheStats s0 = g.c().stats();
	g.c().set_test_hook(GpcPoints::hook, &pts);
	constexpr unsigned kRefreshes = 100;
	unsigned ok = 0, valid_after = 0;
	u64 worst_ms = 0;
	for (unsigned i = 0; i < kRefreshes; i++) {
		const u64 t0 = kvmmu_kt_now_ns();
		if (g.c().refresh(true).ok())
			ok++;
		worst_ms = max(worst_ms, gpc_ms_since(t0));
		u64 v = 0;
		if (gpc_read(g.g, 16, 8, &v) == 1 && v == gpc_tag(4, 2))
			valid_after++;
		// Valid a while, churn or not: the reader's turn.
		kvmmu_kt_msleep(1);
	}
	g.c().set_test_hook(nullptr, nullptr);
	churn.stop.store(1);
	s.stop.store(1);
	kvmmu_kt_thread_join(ct);
	kvmmu_kt_thread_join(rt);

	const PfnCacheStats s1 = g.c().stats();
	KT_EXPECT_EQ(ok, kRefreshes);
	// Valid right after each refresh: nothing overlapping ran.
	KT_EXPECT_EQ(valid_after, kRefreshes);
	KT_EXPECT_EQ(s1.refreshes - s0.refreshes, u64(kRefreshes));
	KT_EXPECT_EQ(s1.retries - s0.retries, 0u);
	KT_EXPECT_EQ(s1.waits - s0.waits, 0u);
	KT_EXPECT_EQ(s1.invalidations - s0.invalidations, 0u);
	KT_EXPECT_EQ(pts.lookups(), kRefreshes);
	KT_EXPECT_EQ(w.overlapped, kRefreshes);
	KT_EXPECT(churn.rounds.load() >= 2 * kRefreshes);
	KT_EXPECT(s.reads_ok.load() > 0);
	KT_EXPECT_EQ(s.bad_tag.load(), 0u);
	KT_EXPECT_EQ(s.check_errors.load(), 0u);
	kvmmu_plat_log(KVMMU_LOG_INFO,
		       "kt pfncache refresh_progresses_under_unrelated_churn: %u refreshes, worst %llu ms, "
		       "churn rounds %llu, reads %llu valid / %llu invalid\n",
		       ok, (unsigned long long)worst_ms, (unsigned long long)churn.rounds.load(),
		       (unsigned long long)s.reads_ok.load(), (unsigned long long)s.reads_invalid.load());
}
