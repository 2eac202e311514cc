// SPDX-License-Identifier: GPL-2.0
// Host tests of the pfn cache (pfncache/): lifecycle and errors, which
// invalidations hit a cache (and only those), scripted interleavings of
// refresh() with invalidations at each step of its protocol
// (pfncache/model/README.md), the /dev/kvmmu entry points, and a stress
// test of the readers' guarantee for TSan.
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <kvmmu/hooks.h>

#include "../../pfncache/front.h"
#include "../../pfncache/pfncache.hpp"
#include "host_test.hpp"

namespace {

// Create as the ioctl does, when the cookie is of no interest.
int gpc_create(struct kvmmu_vm *vm, uint64_t addr, uint64_t len, uint32_t flags, uint32_t *id)
{
	uint64_t cookie;
	return kvmmu_vm_gpc_create(vm, addr, len, flags, id, &cookie);
}

using kvmmu::Gpa;
using kvmmu::Hva;
using kvmmu::PfnCache;
using kvmmu::PfnCacheHub;
using Point = PfnCache::Point;
using Rule = PfnCache::Rule;
using namespace std::chrono_literals;

constexpr uint64_t kPage = 4096;

// include/uapi/linux/kvmmu.h
constexpr uint32_t kUapiByHva = 1u << 0;
constexpr uint32_t kUapiBaseline = 1u << 1;
constexpr uint32_t kUapiRefreshForce = 1u << 0;

constexpr uint64_t kNone = 0xdeaddeaddeaddeadull; // "check() did not pass"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// Waits (bounded: a broken protocol must fail, not hang) until pred().
template <class Pred> bool wait_for(Pred &&pred, std::chrono::milliseconds limit = 5000ms)
{
	const auto until = std::chrono::steady_clock::now() + limit;
	while (!pred()) {
		if (std::chrono::steady_clock::now() > until)
			return false;
		std::this_thread::sleep_for(200us);
	}
	return true;
}

// Refresh's scripted interleavings: fn[p] runs at each Point p (with its
// occurrence number), and the points are recorded in order. The hook runs
// on the refreshing thread.
struct Script {
	std::function<void(PfnCache &, int)> at[4];
	std::vector<Point> points;
	int n[4] = {};

	static void hook(PfnCache &c, Point p, void *arg)
	{
		auto *s = static_cast<Script *>(arg);
		const int i = int(p);
		s->points.push_back(p);
		const int k = s->n[i]++;
		if (s->at[i])
			s->at[i](c, k);
	}
	// B: before_lookup, L: after_lookup, P: after_publish, R: retrying.
	std::string trace() const
	{
		std::string t;
		for (Point p : points)
			t += "BLPR"[int(p)];
		return t;
	}
};

// The host's GUP hook ("during the lookup"), one shot.
std::function<void()> g_gup_fn;
void gup_trampoline(void *)
{
	std::function<void()> f = std::move(g_gup_fn);
	g_gup_fn = nullptr;
	if (f)
		f();
}
void on_gup(std::function<void()> f)
{
	g_gup_fn = std::move(f);
	kvmmu_host_set_gup_hook(gup_trampoline, nullptr);
}

class PfnCacheTest : public HostTest {
protected:
	static constexpr uint64_t kHva = 0x40000000;
	static constexpr uint64_t kGpa = 0x80000000;
	static constexpr uint64_t kPages = 64;
	static constexpr uint64_t kOff = 0x100; // the caches' offset in their page
	static constexpr uint64_t kLen = 64;
	static constexpr uint64_t kPg = 9;	  // the interleaving tests' page
	static constexpr uint64_t kP = kHva + kPg * kPage;

	void SetUp() override
	{
		HostTest::SetUp();
		refs_ = kvmmu_host_pfn_refs_total();
		maps_ = kvmmu_host_long_maps();
		mm_ = kvmmu_host_mm_create();
		kvmmu_host_set_current_mm(mm_);
		ASSERT_EQ(kvmmu_vm_create(0, &cvm_), 0);
		vm_ = reinterpret_cast<kvmmu::Vm *>(cvm_);
	}

	void TearDown() override
	{
		for (PfnCache *c : caches_)
			kvmmu::destroy(c);
		caches_.clear();
		if (cvm_)
			kvmmu_vm_destroy(cvm_);
		kvmmu_host_set_current_mm(nullptr);
		kvmmu_host_set_signal_pending(false);
		kvmmu_host_set_gup_hook(nullptr, nullptr);
		g_gup_fn = nullptr;
		// (The caches made through the ioctls went with the VM.)
		EXPECT_EQ(kvmmu_host_long_maps(), maps_) << "kmap_long/memremap leaked";
		EXPECT_EQ(kvmmu_host_pfn_refs_total(), refs_) << "page references leaked";
		kvmmu_host_mm_destroy(mm_);
		HostTest::TearDown();
	}

	PfnCache *cache(Rule rule = Rule::exact)
	{
		auto r = PfnCache::create(*vm_, rule);
		EXPECT_TRUE(r.ok());
		if (!r)
			return nullptr;
		caches_.push_back(r.value());
		return r.value();
	}

	void drop(PfnCache *c)
	{
		caches_.erase(std::find(caches_.begin(), caches_.end(), c));
		kvmmu::destroy(c);
	}

	int slot(uint32_t id, uint64_t gpa, uint64_t size, uint64_t hva, uint32_t flags = 0)
	{
		kvmmu_memory_region r{id, flags, gpa, size, hva};
		return kvmmu_vm_set_memory_region(cvm_, &r);
	}

	// kPages writable pages at kHva, slot 0 maps them at kGpa.
	void memory(uint32_t slot_flags = 0)
	{
		ASSERT_EQ(kvmmu_host_mm_map(mm_, kHva, kPages * kPage, KVMMU_HOST_MAP_WRITE), 0);
		ASSERT_EQ(slot(0, kGpa, kPages * kPage, kHva, slot_flags), 0);
	}

	// Host memory at `hva`, through the fake mm (not through a cache).
	void put(uint64_t hva, uint64_t v)
	{
		void *p = kvmmu_host_mm_page(mm_, hva);
		ASSERT_NE(p, nullptr);
		memcpy(p, &v, sizeof(v));
	}
	uint64_t peek(uint64_t hva)
	{
		uint64_t v = kNone;
		if (void *p = kvmmu_host_mm_page(mm_, hva))
			memcpy(&v, p, sizeof(v));
		return v;
	}

	// check(len) under the read lock: 1, 0 or -errno.
	static int chk(PfnCache *c, uint64_t len = 8)
	{
		c->read_lock();
		auto r = c->check(len);
		c->read_unlock();
		return r ? int(r.value()) : r.to_errno();
	}
	// The first 8 bytes through the cache, or kNone if check() fails.
	static uint64_t via(PfnCache *c)
	{
		uint64_t v = kNone;
		c->read_lock();
		auto r = c->check(8);
		if (r && r.value())
			memcpy(&v, c->khva(), sizeof(v));
		c->read_unlock();
		return v;
	}

	void start(uint64_t s, uint64_t e) { EXPECT_EQ(vm_->invalidate_range_start(Hva(s), Hva(e), true).to_errno(), 0); }
	void end(uint64_t s, uint64_t e) { EXPECT_EQ(vm_->invalidate_range_end(Hva(s), Hva(e)).to_errno(), 0); }
	// The host replaces the page at `page` by a new one holding `v` at kOff
	// (the caller brackets it with start and end).
	void bump(uint64_t page, uint64_t v)
	{
		kvmmu_host_mm_replace_page(mm_, page);
		put(page + kOff, v);
	}
	// A whole overlapping invalidation that leaves version v.
	void full(uint64_t page, uint64_t v)
	{
		start(page, page + kPage);
		bump(page, v);
		end(page, page + kPage);
	}

	// Ends [page, page + kPage) from another thread once the cache slept
	// `waits` times (or after 5 s, so a broken refresh fails instead of
	// hanging), after a pause in which a refresh that did not sleep would
	// have returned.
	struct Later {
		std::thread t;
		bool saw_wait = false;
		bool refresh_returned_before_end = false;
	};
	// (Not started if the script's point never came.)
	static void join(Later &l)
	{
		if (l.t.joinable())
			l.t.join();
	}
	void end_later(Later &l, PfnCache *c, uint64_t waits, uint64_t page, const std::atomic<bool> &refreshed)
	{
		l.t = std::thread([this, &l, c, waits, page, &refreshed] {
			l.saw_wait = wait_for([&] { return c->stats().waits >= waits; });
			std::this_thread::sleep_for(20ms);
			l.refresh_returned_before_end = refreshed.load();
			end(page, page + kPage);
		});
	}

	kvmmu_host_mm *mm_ = nullptr;
	kvmmu_vm *cvm_ = nullptr;
	kvmmu::Vm *vm_ = nullptr;
	long refs_ = 0, maps_ = 0;
	std::vector<PfnCache *> caches_;
};

// ---------------------------------------------------------------------------
// 1. Lifecycle and errors
// ---------------------------------------------------------------------------

TEST_F(PfnCacheTest, LifecycleMapsThePageWithoutAReferenceAndUndoesEverything)
{
	memory();
	const uint64_t hva = kHva + 3 * kPage + kOff;
	put(hva, 0x1122334455667788);
	PfnCache *c = cache();
	ASSERT_NE(c, nullptr);
	EXPECT_EQ(chk(c), -EINVAL); // inactive
	EXPECT_EQ(c->refresh().to_errno(), -EINVAL);

	ASSERT_TRUE(c->activate_hva(Hva(hva), kLen).ok());
	EXPECT_EQ(c->length(), kLen);
	EXPECT_EQ(chk(c), 0); // activated, not mapped
	EXPECT_EQ(kvmmu_host_long_maps(), maps_);
	ASSERT_EQ(c->refresh().to_errno(), 0);
	EXPECT_EQ(chk(c, 1), 1);
	EXPECT_EQ(chk(c, kLen), 1);
	EXPECT_EQ(chk(c, kLen + 1), -EINVAL);
	EXPECT_EQ(chk(c, 0), -EINVAL);
	EXPECT_EQ(via(c), 0x1122334455667788u);
	EXPECT_EQ(kvmmu_host_long_maps(), maps_ + 1);
	// The mapping, not a page reference, is what the cache keeps.
	EXPECT_EQ(kvmmu_host_pfn_refs(kvmmu_host_mm_pfn(mm_, hva)), 0);
	EXPECT_EQ(kvmmu_host_pfn_refs_total(), refs_);

	// Writes go to the guest's page.
	const uint64_t w = 0xabcdef;
	c->read_lock();
	auto ok = c->check(16);
	const bool valid = ok && ok.value();
	if (valid)
		memcpy(static_cast<char *>(c->khva()) + 8, &w, 8);
	c->read_unlock();
	ASSERT_TRUE(valid);
	EXPECT_EQ(peek(hva + 8), w);

	// A valid cache: refresh does nothing; force looks up again.
	ASSERT_EQ(c->refresh().to_errno(), 0);
	EXPECT_EQ(c->stats().refreshes, 1u);
	ASSERT_EQ(c->refresh(true).to_errno(), 0);
	EXPECT_EQ(c->stats().refreshes, 2u);
	EXPECT_EQ(kvmmu_host_long_maps(), maps_ + 1);
	const kvmmu::PfnCacheStats s = c->stats();
	EXPECT_EQ(s.retries, 0u);
	EXPECT_EQ(s.waits, 0u);
	EXPECT_EQ(s.invalidations, 0u);
	EXPECT_EQ(PfnCacheHub::find(*vm_)->indexed(), 1u);

	drop(c);
	EXPECT_EQ(kvmmu_host_long_maps(), maps_);
	EXPECT_EQ(kvmmu_host_pfn_refs_total(), refs_);
	EXPECT_EQ(PfnCacheHub::find(*vm_)->indexed(), 0u);
	// An inactive cache, created and destroyed.
	c = cache(Rule::baseline);
	ASSERT_NE(c, nullptr);
	drop(c);
}

TEST_F(PfnCacheTest, BadActivationsAreEinvalAndChangeNothing)
{
	memory();
	const uint64_t hva = kHva + 3 * kPage + kOff;
	put(hva, 77);
	PfnCache *c = cache();
	ASSERT_NE(c, nullptr);
	const uint64_t lim = vm_->gpa_limit();
	// On an inactive cache: it stays inactive.
	EXPECT_EQ(c->activate_hva(Hva(hva), 0).to_errno(), -EINVAL);
	EXPECT_EQ(c->activate_gpa(Gpa(lim + kOff), 8).to_errno(), -EINVAL);
	EXPECT_EQ(chk(c), -EINVAL);

	ASSERT_TRUE(c->activate_gpa(Gpa(kGpa + 3 * kPage + kOff), kLen).ok());
	ASSERT_EQ(c->refresh().to_errno(), 0);
	ASSERT_EQ(via(c), 77u);
	const long maps = kvmmu_host_long_maps();
	const uint64_t page = kHva + 3 * kPage;
	struct {
		bool gpa;
		uint64_t addr, len;
	} bad[] = {
		{false, hva, 0},
		{true, kGpa + 5 * kPage, 0},
		{false, page + kPage - 8, 9},	   // crosses a page
		{true, kGpa + 4 * kPage - 1, 2},   // crosses a page
		{false, page, kPage + 1},
		{true, lim, 8},			   // at the limit
		{true, lim + kOff, 8},		   // beyond it, inside a page
		{true, ~0ull - 7, 8},
		{true, ~0ull & ~(kPage - 1), kPage},
	};
	for (auto &b : bad) {
		auto r = b.gpa ? c->activate_gpa(Gpa(b.addr), b.len) : c->activate_hva(Hva(b.addr), b.len);
		EXPECT_EQ(r.to_errno(), -EINVAL) << std::hex << b.addr << " " << b.len;
		EXPECT_EQ(chk(c, kLen), 1) << std::hex << b.addr << " " << b.len;
		EXPECT_EQ(c->length(), kLen);
		EXPECT_EQ(via(c), 77u);
		EXPECT_EQ(kvmmu_host_long_maps(), maps);
	}
	EXPECT_EQ(c->stats().refreshes, 1u);
	// The last page below the limit is fine (no slot there: -ENOENT).
	EXPECT_TRUE(c->activate_gpa(Gpa(lim - kPage + kOff), 8).ok());
	EXPECT_EQ(c->refresh().to_errno(), -ENOENT);
	EXPECT_TRUE(c->activate_hva(Hva(page), kPage).ok()); // a whole page
	EXPECT_EQ(c->refresh().to_errno(), 0);
	EXPECT_EQ(chk(c, kPage), 1);
}

TEST_F(PfnCacheTest, DeactivateIsIdempotentAndReactivationMoves)
{
	memory();
	const uint64_t a = kHva + 3 * kPage, b = kHva + 7 * kPage;
	put(a + kOff, 3);
	put(b + kOff, 7);
	PfnCache *c = cache();
	ASSERT_NE(c, nullptr);
	c->deactivate(); // never active
	ASSERT_TRUE(c->activate_hva(Hva(a + kOff), kLen).ok());
	ASSERT_EQ(c->refresh().to_errno(), 0);
	EXPECT_EQ(via(c), 3u);
	c->deactivate();
	EXPECT_EQ(chk(c), -EINVAL);
	EXPECT_EQ(kvmmu_host_long_maps(), maps_);
	EXPECT_EQ(PfnCacheHub::find(*vm_)->indexed(), 0u);
	EXPECT_EQ(c->refresh().to_errno(), -EINVAL);
	c->deactivate();
	EXPECT_EQ(chk(c), -EINVAL);

	ASSERT_TRUE(c->activate_hva(Hva(a + kOff), kLen).ok());
	EXPECT_EQ(chk(c), 0);
	ASSERT_EQ(c->refresh().to_errno(), 0);
	EXPECT_EQ(via(c), 3u);
	// Moving unmaps the old page at once; the next refresh maps the new.
	ASSERT_TRUE(c->activate_hva(Hva(b + kOff), kLen).ok());
	EXPECT_EQ(chk(c), 0);
	EXPECT_EQ(kvmmu_host_long_maps(), maps_);
	ASSERT_EQ(c->refresh().to_errno(), 0);
	EXPECT_EQ(via(c), 7u);
	EXPECT_EQ(kvmmu_host_long_maps(), maps_ + 1);
	EXPECT_EQ(PfnCacheHub::find(*vm_)->indexed(), 1u);
	// Indexed under the new page only.
	full(a, 30);
	EXPECT_EQ(c->stats().invalidations, 0u);
	EXPECT_EQ(chk(c), 1);
	full(b, 70);
	EXPECT_EQ(c->stats().invalidations, 1u);
	EXPECT_EQ(chk(c), 0);
	// From hva to gpa: the gpa's page.
	ASSERT_TRUE(c->activate_gpa(Gpa(kGpa + 3 * kPage + kOff), kLen).ok());
	ASSERT_EQ(c->refresh().to_errno(), 0);
	EXPECT_EQ(via(c), 30u);
	EXPECT_EQ(PfnCacheHub::find(*vm_)->indexed(), 1u);
}

TEST_F(PfnCacheTest, RefreshErrorsLeaveTheCacheInvalidAndNothingHeld)
{
	// Slot 0: writable RAM; slot 1: the same memory, read-only slot;
	// slot 2: device memory (PFNMAP); slot 3: a read-only VMA; slot 4:
	// nothing mapped.
	ASSERT_EQ(kvmmu_host_mm_map(mm_, kHva, 16 * kPage, KVMMU_HOST_MAP_WRITE), 0);
	ASSERT_EQ(kvmmu_host_mm_map(mm_, kHva + 32 * kPage, 4 * kPage,
				    KVMMU_HOST_MAP_WRITE | KVMMU_HOST_MAP_PFNMAP), 0);
	ASSERT_EQ(kvmmu_host_mm_map(mm_, kHva + 48 * kPage, 4 * kPage, 0), 0);
	ASSERT_EQ(slot(0, kGpa, 16 * kPage, kHva), 0);
	ASSERT_EQ(slot(1, kGpa + 64 * kPage, 16 * kPage, kHva, KVMMU_MEMSLOT_READONLY), 0);
	ASSERT_EQ(slot(2, kGpa + 128 * kPage, 4 * kPage, kHva + 32 * kPage), 0);
	ASSERT_EQ(slot(3, kGpa + 192 * kPage, 4 * kPage, kHva + 48 * kPage), 0);
	ASSERT_EQ(slot(4, kGpa + 256 * kPage, 4 * kPage, kHva + 80 * kPage), 0);
	kvmmu_host_mm_set_poison(mm_, kHva + 5 * kPage, true);
	PfnCache *c = cache();
	ASSERT_NE(c, nullptr);
	struct {
		bool gpa;
		uint64_t addr;
		int err;
	} cases[] = {
		{true, kGpa + 1000 * kPage, -ENOENT},	// no slot
		{true, kGpa + 66 * kPage, -EPERM},	// read-only slot
		{true, kGpa + 129 * kPage, -EOPNOTSUPP}, // device memory
		{false, kHva + 33 * kPage, -EOPNOTSUPP},
		{true, kGpa + 193 * kPage, -EPERM},	// read-only host memory
		{true, kGpa + 5 * kPage, -EHWPOISON},
		{true, kGpa + 257 * kPage, -EFAULT},	// no VMA
		{false, kHva + 200 * kPage, -EFAULT},
	};
	for (auto &k : cases) {
		auto a = k.gpa ? c->activate_gpa(Gpa(k.addr + kOff), kLen) : c->activate_hva(Hva(k.addr + kOff), kLen);
		ASSERT_TRUE(a.ok());
		EXPECT_EQ(c->refresh().to_errno(), k.err) << std::hex << k.addr;
		EXPECT_EQ(chk(c), 0) << std::hex << k.addr;
		EXPECT_EQ(kvmmu_host_long_maps(), maps_) << std::hex << k.addr;
		EXPECT_EQ(kvmmu_host_pfn_refs_total(), refs_) << std::hex << k.addr;
	}
	const kvmmu::PfnCacheStats s = c->stats();
	EXPECT_EQ(s.refreshes, 0u);
	EXPECT_EQ(s.retries, 0u);
	EXPECT_EQ(s.waits, 0u);
	// And then a good one.
	put(kHva + 6 * kPage + kOff, 6);
	ASSERT_TRUE(c->activate_gpa(Gpa(kGpa + 6 * kPage + kOff), kLen).ok());
	ASSERT_EQ(c->refresh().to_errno(), 0);
	EXPECT_EQ(via(c), 6u);
}

TEST_F(PfnCacheTest, MemslotChangesFailCheckUntilTheNextRefreshMapsTheNewBacking)
{
	const uint64_t a = kHva, b = kHva + 64 * kPage;
	ASSERT_EQ(kvmmu_host_mm_map(mm_, a, 16 * kPage, KVMMU_HOST_MAP_WRITE), 0);
	ASSERT_EQ(kvmmu_host_mm_map(mm_, b, 16 * kPage, KVMMU_HOST_MAP_WRITE), 0);
	put(a + 5 * kPage + kOff, 0xa5);
	put(b + 5 * kPage + kOff, 0xb5);
	ASSERT_EQ(slot(0, kGpa, 16 * kPage, a), 0);
	PfnCache *c = cache();
	PfnCache *h = cache(); // by hva: memslots do not concern it
	ASSERT_TRUE(c && h);
	ASSERT_TRUE(c->activate_gpa(Gpa(kGpa + 5 * kPage + kOff), kLen).ok());
	ASSERT_TRUE(h->activate_hva(Hva(a + 5 * kPage + kOff), kLen).ok());
	ASSERT_EQ(c->refresh().to_errno(), 0);
	ASSERT_EQ(h->refresh().to_errno(), 0);
	EXPECT_EQ(via(c), 0xa5u);

	// Deleted: no slot any more.
	ASSERT_EQ(slot(0, kGpa, 0, a), 0);
	EXPECT_EQ(chk(c), 0);
	EXPECT_EQ(chk(h), 1);
	EXPECT_EQ(c->refresh().to_errno(), -ENOENT);
	// Recreated over other memory: the next refresh maps that.
	ASSERT_EQ(slot(0, kGpa, 16 * kPage, b), 0);
	EXPECT_EQ(chk(c), 0);
	ASSERT_EQ(c->refresh().to_errno(), 0);
	EXPECT_EQ(via(c), 0xb5u);
	// The old page's invalidations no longer concern c, the new one's do.
	full(a + 5 * kPage, 1);
	EXPECT_EQ(chk(c), 1);
	EXPECT_EQ(chk(h), 0);
	full(b + 5 * kPage, 2);
	EXPECT_EQ(chk(c), 0);
	ASSERT_EQ(c->refresh().to_errno(), 0);
	EXPECT_EQ(via(c), 2u);
	// Moved away (same slot, new gpa): the gpa has no slot.
	ASSERT_EQ(slot(0, kGpa + 0x40000000, 16 * kPage, b), 0);
	EXPECT_EQ(chk(c), 0);
	EXPECT_EQ(c->refresh().to_errno(), -ENOENT);
	// Another slot moved over the gpa.
	ASSERT_EQ(slot(1, kGpa, 16 * kPage, a), 0);
	EXPECT_EQ(chk(c), 0);
	ASSERT_EQ(c->refresh().to_errno(), 0);
	EXPECT_EQ(via(c), 1u);
	EXPECT_EQ(chk(h), 0); // (invalidated above, not by the slots)
	EXPECT_EQ(c->stats().retries, 0u);
}

TEST_F(PfnCacheTest, MarkDirtyLogsIntoADirtyLoggingSlot)
{
	memory(KVMMU_MEMSLOT_LOG_DIRTY_PAGES);
	PfnCache *c = cache();
	PfnCache *h = cache();
	ASSERT_TRUE(c && h);
	ASSERT_TRUE(c->activate_gpa(Gpa(kGpa + 3 * kPage + kOff), kLen).ok());
	ASSERT_TRUE(h->activate_hva(Hva(kHva + 5 * kPage + kOff), kLen).ok());
	ASSERT_EQ(c->refresh().to_errno(), 0);
	ASSERT_EQ(h->refresh().to_errno(), 0);
	std::vector<uint64_t> bm(kPages / 64, ~0ull);
	const uint64_t ubm = reinterpret_cast<uintptr_t>(bm.data());
	ASSERT_EQ(kvmmu_vm_get_dirty_log(cvm_, 0, ubm), 0);
	h->mark_dirty(); // by hva: not logged
	EXPECT_EQ(kvmmu_vm_get_dirty_log(cvm_, 0, ubm), 0);
	c->mark_dirty();
	EXPECT_EQ(kvmmu_vm_get_dirty_log(cvm_, 0, ubm), 1);
	EXPECT_EQ(bm[0], 1ull << 3);
	EXPECT_EQ(kvmmu_vm_get_dirty_log(cvm_, 0, ubm), 0);
	// Logging off: nothing to log into.
	ASSERT_EQ(slot(0, kGpa, kPages * kPage, kHva), 0);
	c->mark_dirty();
	EXPECT_EQ(kvmmu_vm_get_dirty_log(cvm_, 0, ubm), -ENOENT);
}

TEST_F(PfnCacheTest, ReleasedAddressSpaceInvalidatesAndRefreshFailsWithEio)
{
	memory();
	PfnCache *c = cache();
	ASSERT_NE(c, nullptr);
	ASSERT_TRUE(c->activate_gpa(Gpa(kGpa + kOff), kLen).ok());
	ASSERT_EQ(c->refresh().to_errno(), 0);
	ASSERT_EQ(kvmmu_vm_release(cvm_), 0);
	EXPECT_EQ(chk(c), 0);
	EXPECT_EQ(c->refresh().to_errno(), -EIO);
}

// Review finding: deactivate (and activate) took the cache out of the
// index while it was still valid, so an invalidation arriving in between
// missed it and a reader then passed check() on the old page. The write-
// lock hook runs such an invalidation just before the cache's lock is
// first taken for write.
TEST_F(PfnCacheTest, DeactivateNeverLeavesAValidCacheOutOfTheIndex)
{
	memory();
	for (int activate = 0; activate < 2; activate++) {
		PfnCache *c = cache();
		ASSERT_NE(c, nullptr);
		ASSERT_TRUE(c->activate_gpa(Gpa(kGpa + kOff), kLen).ok());
		ASSERT_EQ(c->refresh().to_errno(), 0);
		struct Ctx {
			kvmmu::Vm *vm;
			PfnCache *c;
			int seen;
		} ctx{vm_, c, -1};
		kvmmu_host_set_write_lock_hook(
			[](void *a) {
				auto *x = static_cast<Ctx *>(a);
				ASSERT_TRUE(x->vm->invalidate_range_start(Hva(kHva), Hva(kHva + kPage), true).ok());
				// The start returned: no reader may pass check() now.
				x->c->read_lock();
				auto r = x->c->check(8);
				x->seen = r ? int(r.value()) : r.to_errno();
				x->c->read_unlock();
				ASSERT_TRUE(x->vm->invalidate_range_end(Hva(kHva), Hva(kHva + kPage)).ok());
			},
			&ctx);
		if (activate) {
			ASSERT_TRUE(c->activate_gpa(Gpa(kGpa + 2 * kPage + kOff), kLen).ok());
		} else {
			c->deactivate();
		}
		kvmmu_host_set_write_lock_hook(nullptr, nullptr);
		EXPECT_EQ(ctx.seen, 0) << (activate ? "activate" : "deactivate");
		drop(c);
	}
}

// Review finding: after the notifier's release no end is reported, so a
// refresh waiting for an in-flight range must be woken by release and fail.
TEST_F(PfnCacheTest, ReleaseWakesARefreshWaitingForAnEnd)
{
	memory();
	PfnCache *c = cache();
	ASSERT_NE(c, nullptr);
	ASSERT_TRUE(c->activate_gpa(Gpa(kGpa + kOff), kLen).ok());
	ASSERT_TRUE(vm_->invalidate_range_start(Hva(kHva), Hva(kHva + kPage), true).ok());
	std::atomic<int> r{1};
	std::thread t([&] { r = c->refresh().to_errno(); });
	const auto until = std::chrono::steady_clock::now() + 5s;
	while (c->stats().waits == 0 && std::chrono::steady_clock::now() < until)
		std::this_thread::sleep_for(1ms);
	EXPECT_EQ(c->stats().waits, 1u);
	ASSERT_EQ(kvmmu_vm_release(cvm_), 0);
	while (r.load() == 1 && std::chrono::steady_clock::now() < until)
		std::this_thread::sleep_for(1ms);
	EXPECT_EQ(r.load(), -EIO);
	if (r.load() == 1) { // hung: end it so the thread can be joined
		EXPECT_TRUE(vm_->invalidate_range_end(Hva(kHva), Hva(kHva + kPage)).ok());
	}
	t.join();
}

// Review finding: undoing a create (the id could not be copied out) must
// not destroy another cache that reuses the id meanwhile.
TEST_F(PfnCacheTest, IoctlAbandonOnlyUndoesItsOwnCreate)
{
	memory();
	uint32_t id = 99, id2 = 99;
	uint64_t cookie = 0, cookie2 = 0;
	ASSERT_EQ(kvmmu_vm_gpc_create(cvm_, kHva, 8, kUapiByHva, &id, &cookie), 0);
	ASSERT_EQ(kvmmu_vm_gpc_destroy(cvm_, id), 0); // someone guessed it
	ASSERT_EQ(kvmmu_vm_gpc_create(cvm_, kHva, 8, kUapiByHva, &id2, &cookie2), 0);
	ASSERT_EQ(id2, id);
	EXPECT_NE(cookie, cookie2);
	EXPECT_EQ(kvmmu_vm_gpc_abandon(cvm_, id, cookie), -ENOENT);
	EXPECT_EQ(kvmmu_vm_gpc_refresh(cvm_, id2, 0), 0); // still there
	EXPECT_EQ(kvmmu_vm_gpc_abandon(cvm_, id2, cookie2), 0);
	EXPECT_EQ(kvmmu_vm_gpc_refresh(cvm_, id2, 0), -ENOENT);
}

TEST_F(PfnCacheTest, KvmCoreHooks)
{
	memory();
	put(kHva + 2 * kPage + kOff, 22);
	kvmmu_gpc *g = nullptr;
	EXPECT_EQ(kvmmu_gpc_init(cvm_, 2, &g), -EINVAL);
	EXPECT_EQ(kvmmu_gpc_init(nullptr, 0, &g), -EINVAL);
	EXPECT_EQ(g, nullptr);
	ASSERT_EQ(kvmmu_gpc_init(cvm_, 0, &g), 0);
	EXPECT_EQ(kvmmu_gpc_check(g, 8), -EINVAL);
	EXPECT_EQ(kvmmu_gpc_refresh(g), -EINVAL);
	EXPECT_EQ(kvmmu_gpc_activate_gpa(g, kGpa + kPage - 4, 8), -EINVAL);
	ASSERT_EQ(kvmmu_gpc_activate_gpa(g, kGpa + 2 * kPage + kOff, kLen), 0);
	kvmmu_gpc_read_lock(g);
	while (kvmmu_gpc_check(g, 8) != 1) {
		kvmmu_gpc_read_unlock(g);
		ASSERT_EQ(kvmmu_gpc_refresh(g), 0);
		kvmmu_gpc_read_lock(g);
	}
	uint64_t v;
	memcpy(&v, kvmmu_gpc_khva(g), 8);
	kvmmu_gpc_read_unlock(g);
	EXPECT_EQ(v, 22u);
	kvmmu_gpc_counts n{};
	ASSERT_EQ(kvmmu_gpc_get_counts(g, &n), 0);
	EXPECT_EQ(n.refreshes, 1u);
	EXPECT_EQ(kvmmu_gpc_get_counts(g, nullptr), -EINVAL);
	kvmmu_gpc_deactivate(g);
	kvmmu_gpc_deactivate(g);
	EXPECT_EQ(kvmmu_gpc_check(g, 8), -EINVAL);
	ASSERT_EQ(kvmmu_gpc_activate_hva(g, kHva + 2 * kPage + kOff, 8), 0);
	ASSERT_EQ(kvmmu_gpc_refresh(g), 0);
	kvmmu_gpc_destroy(g);
	kvmmu_gpc_destroy(nullptr);
	EXPECT_EQ(kvmmu_host_long_maps(), maps_);
}

// ---------------------------------------------------------------------------
// 2. Which invalidations hit a cache
// ---------------------------------------------------------------------------

TEST_F(PfnCacheTest, OnlyOverlappingInvalidationsHitAndBeforeStartReturns)
{
	memory();
	const uint64_t p = kHva + 3 * kPage;
	PfnCache *c = cache();
	ASSERT_NE(c, nullptr);
	ASSERT_TRUE(c->activate_hva(Hva(p + kOff), kLen).ok());
	ASSERT_EQ(c->refresh().to_errno(), 0);
	// Touching the page on either side, elsewhere in the slot, outside
	// every slot: none of them is the cache's business.
	const uint64_t miss[][2] = {
		{p + kPage, p + 2 * kPage},
		{p - kPage, p},
		{kHva, p},
		{p + kPage, kHva + kPages * kPage},
		{0x10000000, 0x20000000},
		{0x7f0000000000, 0x7f0000001000},
	};
	for (auto &m : miss) {
		start(m[0], m[1]);
		EXPECT_EQ(chk(c), 1) << std::hex << m[0];
		end(m[0], m[1]);
	}
	EXPECT_EQ(chk(c), 1);
	EXPECT_EQ(c->stats().invalidations, 0u);
	EXPECT_EQ(c->stats().refreshes, 1u);

	// One byte of the page, not even the cache's bytes: the page goes.
	start(p + kPage - 1, p + kPage);
	EXPECT_EQ(chk(c), 0); // as soon as start returned
	EXPECT_EQ(c->stats().invalidations, 1u);
	end(p + kPage - 1, p + kPage);
	EXPECT_EQ(chk(c), 0);
	ASSERT_EQ(c->refresh().to_errno(), 0);
	EXPECT_EQ(chk(c), 1);
	// A range over many pages, the cache's among them.
	start(kHva, kHva + kPages * kPage);
	EXPECT_EQ(chk(c), 0);
	EXPECT_EQ(c->stats().invalidations, 2u);
	end(kHva, kHva + kPages * kPage);
	// An inactive or never refreshed cache is not hit (nothing to drop).
	PfnCache *d = cache();
	ASSERT_NE(d, nullptr);
	ASSERT_TRUE(d->activate_hva(Hva(p + kOff), kLen).ok());
	full(p, 5);
	EXPECT_EQ(d->stats().invalidations, 0u);
	EXPECT_EQ(c->stats().invalidations, 3u); // invalid already, but indexed: counted
}

// 1000 caches on 1000 pages: an invalidation visits the caches in its
// range and nothing else.
TEST_F(PfnCacheTest, ThousandCachesAnInvalidationHitsOnlyTheOverlappingOnes)
{
	constexpr unsigned kN = 1000;
	ASSERT_EQ(kvmmu_host_mm_map(mm_, kHva, 1024 * kPage, KVMMU_HOST_MAP_WRITE), 0);
	std::vector<PfnCache *> cs;
	for (unsigned i = 0; i < kN; i++) {
		PfnCache *c = cache();
		ASSERT_NE(c, nullptr);
		ASSERT_TRUE(c->activate_hva(Hva(kHva + i * kPage + (i % 8) * 16), 8).ok());
		cs.push_back(c);
	}
	// Indexed in an order unrelated to their pages.
	std::vector<unsigned> order(kN);
	for (unsigned i = 0; i < kN; i++)
		order[i] = i;
	std::shuffle(order.begin(), order.end(), std::mt19937(42));
	for (unsigned i : order)
		ASSERT_EQ(cs[i]->refresh().to_errno(), 0) << i;
	EXPECT_EQ(PfnCacheHub::find(*vm_)->indexed(), kN);
	EXPECT_EQ(kvmmu_host_long_maps(), maps_ + long(kN));
	auto hits = [&] {
		uint64_t n = 0;
		for (PfnCache *c : cs)
			n += c->stats().invalidations;
		return n;
	};
	auto valid = [&] {
		unsigned n = 0;
		for (PfnCache *c : cs)
			n += chk(c) == 1;
		return n;
	};

	full(kHva + 500 * kPage, 1);
	EXPECT_EQ(hits(), 1u);
	EXPECT_EQ(cs[500]->stats().invalidations, 1u);
	EXPECT_EQ(chk(cs[500]), 0);
	EXPECT_EQ(valid(), kN - 1);

	// Pages 10..19: ten caches.
	start(kHva + 10 * kPage + 5, kHva + 20 * kPage - 5);
	EXPECT_EQ(hits(), 11u);
	for (unsigned i = 10; i < 20; i++)
		EXPECT_EQ(cs[i]->stats().invalidations, 1u) << i;
	EXPECT_EQ(valid(), kN - 11);
	end(kHva + 10 * kPage + 5, kHva + 20 * kPage - 5);
	// First and last, and around them: nothing.
	start(kHva - kPage, kHva);
	end(kHva - kPage, kHva);
	start(kHva + kN * kPage, kHva + 1024 * kPage);
	end(kHva + kN * kPage, kHva + 1024 * kPage);
	EXPECT_EQ(hits(), 11u);
	full(kHva, 2);
	full(kHva + (kN - 1) * kPage, 3);
	EXPECT_EQ(hits(), 13u);
	EXPECT_EQ(cs[0]->stats().invalidations, 1u);
	EXPECT_EQ(cs[kN - 1]->stats().invalidations, 1u);

	// A second cache on page 700, and cache 3 moved to page 1010: both
	// found where they are now, and only there.
	PfnCache *twin = cache();
	ASSERT_NE(twin, nullptr);
	ASSERT_TRUE(twin->activate_hva(Hva(kHva + 700 * kPage + 200), 8).ok());
	ASSERT_EQ(twin->refresh().to_errno(), 0);
	ASSERT_TRUE(cs[3]->activate_hva(Hva(kHva + 1010 * kPage), 8).ok());
	ASSERT_EQ(cs[3]->refresh().to_errno(), 0);
	EXPECT_EQ(PfnCacheHub::find(*vm_)->indexed(), kN + 1);
	full(kHva + 700 * kPage, 4);
	EXPECT_EQ(hits(), 14u);
	EXPECT_EQ(twin->stats().invalidations, 1u);
	full(kHva + 3 * kPage, 5);
	EXPECT_EQ(hits(), 14u);
	full(kHva + 1010 * kPage, 6);
	EXPECT_EQ(hits(), 15u);
	EXPECT_EQ(cs[3]->stats().invalidations, 1u);
	// Everything at once.
	start(kHva, kHva + 1024 * kPage);
	end(kHva, kHva + 1024 * kPage);
	EXPECT_EQ(hits(), 15u + kN);
	EXPECT_EQ(valid(), 0u);
	for (PfnCache *c : cs)
		drop(c);
	EXPECT_EQ(PfnCacheHub::find(*vm_)->indexed(), 1u);
}

// ---------------------------------------------------------------------------
// 3. Scripted interleavings of refresh() with invalidations of its page.
//    The cache is by gpa, on page kPg (version 1); invalidations replace
//    the page by one with the next version.
// ---------------------------------------------------------------------------

class PfnCacheRaceTest : public PfnCacheTest {
protected:
	void SetUp() override
	{
		PfnCacheTest::SetUp();
		memory();
		put(kP + kOff, 1);
	}

	PfnCache *gpc(Rule rule = Rule::exact)
	{
		PfnCache *c = cache(rule);
		if (c) {
			EXPECT_TRUE(c->activate_gpa(Gpa(kGpa + kPg * kPage + kOff), kLen).ok());
			c->set_test_hook(Script::hook, &s_);
		}
		return c;
	}

	void expect_stats(PfnCache *c, uint64_t refreshes, uint64_t retries, uint64_t waits, uint64_t invalidations)
	{
		const kvmmu::PfnCacheStats s = c->stats();
		EXPECT_EQ(s.refreshes, refreshes);
		EXPECT_EQ(s.retries, retries);
		EXPECT_EQ(s.waits, waits);
		EXPECT_EQ(s.invalidations, invalidations);
	}

	Script s_;
};

// Starts, changes and ends while the cache is indexed and needs_inval is
// cleared, before the lookup: the lookup finds the new page, but the
// protocol cannot tell it from a stale one and looks again.
TEST_F(PfnCacheRaceTest, InvalidationBeforeLookupRetriesOnce)
{
	PfnCache *c = gpc();
	ASSERT_NE(c, nullptr);
	s_.at[int(Point::before_lookup)] = [&](PfnCache &, int k) {
		if (k == 0)
			full(kP, 2);
	};
	ASSERT_EQ(c->refresh().to_errno(), 0);
	EXPECT_EQ(s_.trace(), "BLRBLP");
	EXPECT_EQ(via(c), 2u);
	expect_stats(c, 1, 1, 0, 1);
}

// Started and changed before the lookup, ended later by another thread:
// the lookup is thrown away, then refresh sleeps until the end.
TEST_F(PfnCacheRaceTest, InFlightFromBeforeLookupIsThrownAwayThenWaitedFor)
{
	PfnCache *c = gpc();
	ASSERT_NE(c, nullptr);
	std::atomic<bool> refreshed{false};
	Later l;
	s_.at[int(Point::before_lookup)] = [&](PfnCache &cc, int k) {
		if (k != 0)
			return;
		start(kP, kP + kPage);
		bump(kP, 2);
		end_later(l, &cc, 1, kP, refreshed);
	};
	EXPECT_EQ(c->refresh().to_errno(), 0);
	refreshed = true;
	join(l);
	EXPECT_TRUE(l.saw_wait);
	EXPECT_FALSE(l.refresh_returned_before_end);
	EXPECT_EQ(s_.trace(), "BLRBLP");
	EXPECT_EQ(via(c), 2u);
	expect_stats(c, 1, 1, 1, 1);
}

// During the lookup (in GUP, after the old page was found): thrown away.
TEST_F(PfnCacheRaceTest, InvalidationDuringLookupRetriesAndReleasesTheStalePage)
{
	PfnCache *c = gpc();
	ASSERT_NE(c, nullptr);
	const uint64_t old_pfn = kvmmu_host_mm_pfn(mm_, kP);
	on_gup([&] { full(kP, 2); });
	ASSERT_EQ(c->refresh().to_errno(), 0);
	EXPECT_EQ(s_.trace(), "BLRBLP");
	EXPECT_EQ(via(c), 2u);
	EXPECT_NE(kvmmu_host_mm_pfn(mm_, kP), old_pfn);
	EXPECT_EQ(kvmmu_host_pfn_refs(old_pfn), 0);
	EXPECT_EQ(kvmmu_host_long_maps(), maps_ + 1); // the stale mapping undone
	expect_stats(c, 1, 1, 0, 1);
}

// The upstream reviewer's case: an invalidation that starts after the
// lookup and before the publish. Its start returns before the publish:
// the lookup is thrown away, never published; the retry then sleeps
// until the end.
TEST_F(PfnCacheRaceTest, StartAfterLookupBeforePublishIsNeverPublishedStale)
{
	PfnCache *c = gpc();
	ASSERT_NE(c, nullptr);
	std::atomic<bool> refreshed{false};
	Later l;
	int at_retry = -2, refreshes_at_retry = -1;
	uint64_t seen_at_retry = 0;
	s_.at[int(Point::after_lookup)] = [&](PfnCache &, int k) {
		if (k != 0)
			return;
		start(kP, kP + kPage);
		bump(kP, 2);
	};
	s_.at[int(Point::retrying)] = [&](PfnCache &cc, int k) {
		if (k != 0)
			return;
		at_retry = chk(&cc);
		seen_at_retry = via(&cc);
		refreshes_at_retry = int(cc.stats().refreshes);
		end_later(l, &cc, 1, kP, refreshed);
	};
	EXPECT_EQ(c->refresh().to_errno(), 0);
	refreshed = true;
	if (l.t.joinable())
		l.t.join();
	else
		end(kP, kP + kPage);
	EXPECT_EQ(at_retry, 0);
	EXPECT_EQ(seen_at_retry, kNone);
	EXPECT_EQ(refreshes_at_retry, 0);
	EXPECT_TRUE(l.saw_wait);
	EXPECT_FALSE(l.refresh_returned_before_end);
	EXPECT_EQ(s_.trace(), "BLRBLP");
	EXPECT_EQ(via(c), 2u);
	expect_stats(c, 1, 1, 1, 1);
}

// The same with the whole invalidation between lookup and publish.
TEST_F(PfnCacheRaceTest, WholeInvalidationAfterLookupRetries)
{
	PfnCache *c = gpc();
	ASSERT_NE(c, nullptr);
	s_.at[int(Point::after_lookup)] = [&](PfnCache &, int k) {
		if (k == 0)
			full(kP, 2);
	};
	ASSERT_EQ(c->refresh().to_errno(), 0);
	EXPECT_EQ(s_.trace(), "BLRBLP");
	EXPECT_EQ(via(c), 2u);
	expect_stats(c, 1, 1, 0, 1);
}

// The reviewer's case the other way round: the start has begun (it is
// about to take the MMU lock) when the refresh publishes the old page. The
// publish is allowed, because start invalidates the cache before it
// returns: check() fails as soon as it has.
TEST_F(PfnCacheRaceTest, PublishWhileAStartIsUnderwayIsInvalidatedBeforeStartReturns)
{
	PfnCache *c = gpc();
	ASSERT_NE(c, nullptr);
	std::atomic<bool> began{false}, published{false}, returned{false}, checked{false};
	std::thread t;
	int check_after_start = -2;
	struct Gate {
		std::atomic<bool> *began, *published;
	} gate{&began, &published};
	s_.at[int(Point::after_lookup)] = [&](PfnCache &, int k) {
		if (k != 0)
			return;
		t = std::thread([&] {
			kvmmu_host_set_write_lock_hook(
				[](void *a) {
					auto *g = static_cast<Gate *>(a);
					g->began->store(true);
					wait_for([&] { return g->published->load(); });
				},
				&gate);
			start(kP, kP + kPage);
			returned = true;
			wait_for([&] { return checked.load(); });
			bump(kP, 2);
			end(kP, kP + kPage);
		});
		EXPECT_TRUE(wait_for([&] { return began.load(); }));
	};
	s_.at[int(Point::after_publish)] = [&](PfnCache &cc, int k) {
		if (k != 0)
			return;
		published = true;
		EXPECT_TRUE(wait_for([&] { return returned.load(); }));
		check_after_start = chk(&cc);
		checked = true;
	};
	EXPECT_EQ(c->refresh().to_errno(), 0);
	if (t.joinable())
		t.join();
	EXPECT_EQ(check_after_start, 0);
	EXPECT_EQ(s_.trace(), "BLP");
	expect_stats(c, 1, 0, 0, 1);
	EXPECT_EQ(chk(c), 0);
	ASSERT_EQ(c->refresh().to_errno(), 0);
	EXPECT_EQ(s_.trace(), "BLPBLP");
	EXPECT_EQ(via(c), 2u);
	expect_stats(c, 2, 0, 0, 1);
}

// After the publish: the refresh is done, the invalidation makes the next
// check fail, and the next refresh maps the new page.
TEST_F(PfnCacheRaceTest, InvalidationAfterPublishNeedsTheNextRefresh)
{
	PfnCache *c = gpc();
	ASSERT_NE(c, nullptr);
	s_.at[int(Point::after_publish)] = [&](PfnCache &, int k) {
		if (k == 0)
			full(kP, 2);
	};
	ASSERT_EQ(c->refresh().to_errno(), 0);
	EXPECT_EQ(s_.trace(), "BLP");
	EXPECT_EQ(chk(c), 0);
	expect_stats(c, 1, 0, 0, 1);
	ASSERT_EQ(c->refresh().to_errno(), 0);
	EXPECT_EQ(s_.trace(), "BLPBLP");
	EXPECT_EQ(via(c), 2u);
	expect_stats(c, 2, 0, 0, 1);
}

// While the refresh retries (a first invalidation during the lookup), a
// second one starts and stays in flight: the retry sleeps until it ends.
TEST_F(PfnCacheRaceTest, InvalidationWhileRetryingIsWaitedFor)
{
	PfnCache *c = gpc();
	ASSERT_NE(c, nullptr);
	std::atomic<bool> refreshed{false};
	Later l;
	on_gup([&] { full(kP, 2); });
	s_.at[int(Point::retrying)] = [&](PfnCache &cc, int k) {
		if (k != 0)
			return;
		start(kP, kP + kPage);
		bump(kP, 3);
		end_later(l, &cc, 1, kP, refreshed);
	};
	EXPECT_EQ(c->refresh().to_errno(), 0);
	refreshed = true;
	join(l);
	EXPECT_TRUE(l.saw_wait);
	EXPECT_FALSE(l.refresh_returned_before_end);
	EXPECT_EQ(s_.trace(), "BLRBLP");
	EXPECT_EQ(via(c), 3u);
	expect_stats(c, 1, 1, 1, 2);
}

// An overlapping invalidation already in flight when refresh starts:
// refresh sleeps (no lookup, no retry) and returns only after the end.
TEST_F(PfnCacheRaceTest, OverlappingInFlightAtStartSleepsUntilTheEnd)
{
	PfnCache *c = gpc();
	ASSERT_NE(c, nullptr);
	start(kP, kP + kPage);
	bump(kP, 2);
	std::atomic<bool> refreshed{false};
	Later l;
	end_later(l, c, 1, kP, refreshed);
	EXPECT_EQ(c->refresh().to_errno(), 0);
	refreshed = true;
	join(l);
	EXPECT_TRUE(l.saw_wait);
	EXPECT_FALSE(l.refresh_returned_before_end);
	EXPECT_EQ(s_.trace(), "BLP");
	EXPECT_EQ(via(c), 2u);
	expect_stats(c, 1, 0, 1, 0); // not indexed when it started
}

// A valid cache, then an overlapping start: the forced refresh sleeps too.
TEST_F(PfnCacheRaceTest, ForcedRefreshOfAnInvalidatedCacheSleeps)
{
	PfnCache *c = gpc();
	ASSERT_NE(c, nullptr);
	ASSERT_EQ(c->refresh().to_errno(), 0);
	start(kP, kP + kPage);
	EXPECT_EQ(chk(c), 0);
	bump(kP, 2);
	std::atomic<bool> refreshed{false};
	Later l;
	end_later(l, c, 1, kP, refreshed);
	EXPECT_EQ(c->refresh(true).to_errno(), 0);
	refreshed = true;
	join(l);
	EXPECT_TRUE(l.saw_wait);
	EXPECT_FALSE(l.refresh_returned_before_end);
	EXPECT_EQ(s_.trace(), "BLPBLP");
	EXPECT_EQ(via(c), 2u);
	expect_stats(c, 2, 0, 1, 1);
}

// A signal ends the sleep with -EINTR; the cache stays invalid.
TEST_F(PfnCacheRaceTest, SignalWhileWaitingIsEintr)
{
	PfnCache *c = gpc();
	ASSERT_NE(c, nullptr);
	start(kP, kP + kPage);
	kvmmu_host_set_signal_pending(true);
	EXPECT_EQ(c->refresh().to_errno(), -EINTR);
	kvmmu_host_set_signal_pending(false);
	EXPECT_EQ(chk(c), 0);
	EXPECT_EQ(s_.trace(), "");
	expect_stats(c, 0, 0, 1, 0);
	bump(kP, 2);
	end(kP, kP + kPage);
	ASSERT_EQ(c->refresh().to_errno(), 0);
	EXPECT_EQ(via(c), 2u);
	EXPECT_EQ(kvmmu_host_long_maps(), maps_ + 1);
}

// The address space goes while a refresh looks up: the lookup is thrown
// away and the refresh fails with -EIO.
TEST_F(PfnCacheRaceTest, ReleaseDuringTheLookupIsEio)
{
	PfnCache *c = gpc();
	ASSERT_NE(c, nullptr);
	s_.at[int(Point::before_lookup)] = [&](PfnCache &, int k) {
		if (k == 0) {
			EXPECT_EQ(kvmmu_vm_release(cvm_), 0);
		}
	};
	EXPECT_EQ(c->refresh().to_errno(), -EIO);
	EXPECT_EQ(s_.trace(), "BLR");
	EXPECT_EQ(chk(c), 0);
	EXPECT_EQ(kvmmu_host_long_maps(), maps_);
	expect_stats(c, 0, 1, 0, 1);
}

// Unrelated invalidations (another page of the slot; outside every slot),
// ended during the lookup or still in flight at publish, or in flight
// when refresh starts: kvmmu's rule neither retries nor sleeps.
TEST_F(PfnCacheRaceTest, UnrelatedInvalidationsNeverRetryOrWait)
{
	PfnCache *c = gpc();
	ASSERT_NE(c, nullptr);
	const uint64_t u1 = kHva + 20 * kPage, u2 = 0x10000000;
	on_gup([&] {
		start(u1, u1 + kPage);
		end(u1, u1 + kPage);
		start(u2, u2 + kPage); // in flight across the publish
		start(kP + kPage, kP + 2 * kPage);
	});
	ASSERT_EQ(c->refresh().to_errno(), 0);
	EXPECT_EQ(s_.trace(), "BLP");
	expect_stats(c, 1, 0, 0, 0);
	EXPECT_EQ(chk(c), 1);
	// Still in flight when the next refresh starts.
	ASSERT_EQ(c->refresh(true).to_errno(), 0);
	EXPECT_EQ(s_.trace(), "BLPBLP");
	expect_stats(c, 2, 0, 0, 0);
	end(u2, u2 + kPage);
	end(kP + kPage, kP + 2 * kPage);
	EXPECT_EQ(via(c), 1u);
}

// The upstream (baseline) rule with the same unrelated invalidations: it
// retries for each, and spins as long as one is in flight.
TEST_F(PfnCacheRaceTest, BaselineRuleRetriesForUnrelatedInvalidations)
{
	PfnCache *c = gpc(Rule::baseline);
	ASSERT_NE(c, nullptr);
	const uint64_t u1 = kHva + 20 * kPage, u2 = 0x10000000;
	// One ended during the lookup: one retry.
	on_gup([&] {
		start(u1, u1 + kPage);
		end(u1, u1 + kPage);
	});
	ASSERT_EQ(c->refresh().to_errno(), 0);
	EXPECT_EQ(s_.trace(), "BLRBLP");
	expect_stats(c, 1, 1, 0, 0);
	// One in flight from before the refresh: retries until it ends (here
	// at the fifth retry).
	start(u2, u2 + kPage);
	s_.at[int(Point::retrying)] = [&](PfnCache &, int k) {
		if (k == 5) // (k counts the first refresh's retry too)
			end(u2, u2 + kPage);
	};
	ASSERT_EQ(c->refresh(true).to_errno(), 0);
	EXPECT_EQ(s_.trace(), "BLRBLP" "BLRBLRBLRBLRBLR" "BLP");
	expect_stats(c, 2, 6, 0, 0);
	EXPECT_EQ(via(c), 1u);
	// Baseline is still safe: an overlapping one during the lookup.
	on_gup([&] { full(kP, 2); });
	ASSERT_EQ(c->refresh(true).to_errno(), 0);
	EXPECT_EQ(via(c), 2u);
	expect_stats(c, 3, 7, 0, 1);
}

// ---------------------------------------------------------------------------
// The /dev/kvmmu entry points (pfncache/hooks.cpp)
// ---------------------------------------------------------------------------

TEST_F(PfnCacheTest, IoctlEntryPoints)
{
	memory();
	put(kHva + 3 * kPage + kOff, 33);
	put(kHva + 5 * kPage + kOff, 55);
	uint64_t buf[4] = {};
	const uint64_t ubuf = reinterpret_cast<uintptr_t>(buf);
	kvmmu_gpc_counts n{};
	uint32_t id = 99;
	// No cache yet.
	EXPECT_EQ(kvmmu_vm_gpc_refresh(cvm_, 0, 0), -ENOENT);
	EXPECT_EQ(kvmmu_vm_gpc_access(cvm_, 0, 0, 8, ubuf, false), -ENOENT);
	EXPECT_EQ(kvmmu_vm_gpc_destroy(cvm_, 0), -ENOENT);
	EXPECT_EQ(kvmmu_vm_gpc_counts(cvm_, 0, &n), -ENOENT);
	EXPECT_EQ(gpc_create(cvm_, kGpa, 8, 4, &id), -EINVAL);
	EXPECT_EQ(id, 99u);

	uint32_t g, h, b;
	ASSERT_EQ(gpc_create(cvm_, kGpa + 3 * kPage + kOff, kLen, 0, &g), 0);
	ASSERT_EQ(gpc_create(cvm_, kHva + 5 * kPage + kOff, kLen, kUapiByHva, &h), 0);
	ASSERT_EQ(gpc_create(cvm_, kGpa + 3 * kPage + kOff, kLen, kUapiBaseline, &b), 0);
	EXPECT_EQ(g, 0u);
	EXPECT_EQ(h, 1u);
	EXPECT_EQ(b, 2u);
	// Bad ids.
	for (uint32_t bad : {3u, 77u, 1023u, 1024u, 5000u, ~0u}) {
		EXPECT_EQ(kvmmu_vm_gpc_refresh(cvm_, bad, 0), -ENOENT) << bad;
		EXPECT_EQ(kvmmu_vm_gpc_access(cvm_, bad, 0, 8, ubuf, false), -ENOENT) << bad;
		EXPECT_EQ(kvmmu_vm_gpc_counts(cvm_, bad, &n), -ENOENT) << bad;
		EXPECT_EQ(kvmmu_vm_gpc_destroy(cvm_, bad), -ENOENT) << bad;
	}
	EXPECT_EQ(kvmmu_vm_gpc_refresh(nullptr, g, 0), -EINVAL);
	EXPECT_EQ(kvmmu_vm_gpc_counts(cvm_, g, nullptr), -EINVAL);

	// Not refreshed: stale.
	EXPECT_EQ(kvmmu_vm_gpc_access(cvm_, g, 0, 8, ubuf, false), -EAGAIN);
	EXPECT_EQ(kvmmu_vm_gpc_refresh(cvm_, g, 2), -EINVAL);
	ASSERT_EQ(kvmmu_vm_gpc_refresh(cvm_, g, 0), 0);
	ASSERT_EQ(kvmmu_vm_gpc_refresh(cvm_, h, 0), 0);
	ASSERT_EQ(kvmmu_vm_gpc_access(cvm_, g, 0, 8, ubuf, false), 0);
	EXPECT_EQ(buf[0], 33u);
	ASSERT_EQ(kvmmu_vm_gpc_access(cvm_, h, 0, 8, ubuf, false), 0);
	EXPECT_EQ(buf[0], 55u);
	// The range: offset + len inside the cache's length.
	EXPECT_EQ(kvmmu_vm_gpc_access(cvm_, g, kLen - 8, 8, ubuf, false), 0);
	EXPECT_EQ(kvmmu_vm_gpc_access(cvm_, g, kLen - 4, 8, ubuf, false), -EINVAL);
	EXPECT_EQ(kvmmu_vm_gpc_access(cvm_, g, 0, kLen + 1, ubuf, false), -EINVAL);
	EXPECT_EQ(kvmmu_vm_gpc_access(cvm_, g, kLen, 1, ubuf, false), -EINVAL);
	EXPECT_EQ(kvmmu_vm_gpc_access(cvm_, g, 0, 0, ubuf, false), -EINVAL);
	EXPECT_EQ(kvmmu_vm_gpc_access(cvm_, g, ~0ull - 3, 8, ubuf, false), -EINVAL);
	EXPECT_EQ(kvmmu_vm_gpc_access(cvm_, g, 8, ~0ull - 3, ubuf, false), -EINVAL);
	// Writes go to the page; a bad buffer changes nothing.
	buf[0] = 0x5151;
	buf[1] = 0x5252;
	ASSERT_EQ(kvmmu_vm_gpc_access(cvm_, g, 8, 16, ubuf, true), 0);
	EXPECT_EQ(peek(kHva + 3 * kPage + kOff + 8), 0x5151u);
	EXPECT_EQ(peek(kHva + 3 * kPage + kOff + 16), 0x5252u);
	EXPECT_EQ(kvmmu_vm_gpc_access(cvm_, g, 8, 8, 0x10, true), -EFAULT);
	EXPECT_EQ(peek(kHva + 3 * kPage + kOff + 8), 0x5151u);
	EXPECT_EQ(kvmmu_vm_gpc_access(cvm_, g, 8, 8, 0x10, false), -EFAULT);

	// An invalidation of the page: stale until refreshed.
	full(kHva + 3 * kPage, 34);
	EXPECT_EQ(kvmmu_vm_gpc_access(cvm_, g, 0, 8, ubuf, false), -EAGAIN);
	ASSERT_EQ(kvmmu_vm_gpc_access(cvm_, h, 0, 8, ubuf, false), 0); // h's page untouched
	ASSERT_EQ(kvmmu_vm_gpc_refresh(cvm_, g, 0), 0);
	ASSERT_EQ(kvmmu_vm_gpc_access(cvm_, g, 0, 8, ubuf, false), 0);
	EXPECT_EQ(buf[0], 34u);
	ASSERT_EQ(kvmmu_vm_gpc_counts(cvm_, g, &n), 0);
	EXPECT_EQ(n.refreshes, 2u);
	EXPECT_EQ(n.invalidations, 1u);
	EXPECT_EQ(n.retries, 0u);
	EXPECT_EQ(n.waits, 0u);
	ASSERT_EQ(kvmmu_vm_gpc_refresh(cvm_, g, kUapiRefreshForce), 0);
	ASSERT_EQ(kvmmu_vm_gpc_counts(cvm_, g, &n), 0);
	EXPECT_EQ(n.refreshes, 3u);
	ASSERT_EQ(kvmmu_vm_gpc_refresh(cvm_, b, 0), 0);
	ASSERT_EQ(kvmmu_vm_gpc_access(cvm_, b, 0, 8, ubuf, false), 0);
	EXPECT_EQ(buf[0], 34u);

	// Destroy; the id is free again, and taken by the next create.
	const long maps = kvmmu_host_long_maps();
	ASSERT_EQ(kvmmu_vm_gpc_destroy(cvm_, g), 0);
	EXPECT_EQ(kvmmu_host_long_maps(), maps - 1);
	EXPECT_EQ(kvmmu_vm_gpc_destroy(cvm_, g), -ENOENT);
	EXPECT_EQ(kvmmu_vm_gpc_access(cvm_, g, 0, 8, ubuf, false), -ENOENT);
	EXPECT_EQ(kvmmu_vm_gpc_refresh(cvm_, g, 0), -ENOENT);
	uint32_t g2;
	ASSERT_EQ(gpc_create(cvm_, kHva + 7 * kPage, 8, kUapiByHva, &g2), 0);
	EXPECT_EQ(g2, g);
	EXPECT_EQ(kvmmu_vm_gpc_access(cvm_, g2, 0, 8, ubuf, false), -EAGAIN); // a new cache
	ASSERT_EQ(kvmmu_vm_gpc_refresh(cvm_, g2, 0), 0);
	// The caches left go with the VM (the fixture checks that nothing
	// stays mapped or allocated).
}

TEST_F(PfnCacheTest, IoctlCreateFailuresLeaveNothingBehind)
{
	memory();
	const long allocs = kvmmu_host_live_allocs();
	const uint64_t lim = vm_->gpa_limit();
	uint32_t id = 99;
	struct {
		uint64_t addr, len;
		uint32_t flags;
	} bad[] = {
		{kGpa, 0, 0},
		{kGpa + kPage - 4, 8, 0},
		{kGpa, kPage + 1, 0},
		{lim, 8, 0},
		{lim + kOff, 8, 0},
		{~0ull - 7, 8, 0},
		{kHva + kPage - 4, 8, kUapiByHva},
		{kHva, 0, kUapiByHva},
		{kHva, 8, 4},
		{kHva, 8, ~0u},
	};
	for (auto &x : bad) {
		EXPECT_EQ(gpc_create(cvm_, x.addr, x.len, x.flags, &id), -EINVAL) << std::hex << x.addr;
		EXPECT_EQ(id, 99u);
	}
	EXPECT_EQ(PfnCacheHub::find(*vm_), nullptr); // nothing created at all
	EXPECT_EQ(kvmmu_host_live_allocs(), allocs);
	EXPECT_EQ(gpc_create(nullptr, kGpa, 8, 0, &id), -EINVAL);
	EXPECT_EQ(gpc_create(cvm_, kGpa, 8, 0, nullptr), -EINVAL);

	// Every allocation failing in turn: -ENOMEM, no id taken.
	int r = -1;
	for (long n = 0; n < 20; n++) {
		kvmmu_host_fail_alloc_after(n);
		r = gpc_create(cvm_, kGpa + kOff, 8, 0, &id);
		kvmmu_host_fail_alloc_reset();
		if (r == 0)
			break;
		EXPECT_EQ(r, -ENOMEM) << n;
		EXPECT_EQ(id, 99u) << n;
	}
	ASSERT_EQ(r, 0);
	EXPECT_EQ(id, 0u);
	ASSERT_EQ(kvmmu_vm_gpc_destroy(cvm_, 0), 0);

	// With the hub and the id table in place: a failure leaves exactly
	// what was there.
	const long before = kvmmu_host_live_allocs();
	kvmmu_host_fail_alloc_after(0);
	EXPECT_EQ(gpc_create(cvm_, kGpa + kOff, 8, 0, &id), -ENOMEM);
	kvmmu_host_fail_alloc_reset();
	EXPECT_EQ(kvmmu_host_live_allocs(), before);
	EXPECT_EQ(PfnCacheHub::find(*vm_)->indexed(), 0u);

	// All ids taken: -ENOSPC, and the cache it made is gone again.
	for (uint32_t i = 0; i < PfnCacheHub::kMaxIds; i++) {
		ASSERT_EQ(gpc_create(cvm_, kHva + (i % kPages) * kPage, 8, kUapiByHva, &id), 0);
		ASSERT_EQ(id, i);
	}
	const long full_allocs = kvmmu_host_live_allocs();
	id = 99;
	EXPECT_EQ(gpc_create(cvm_, kHva, 8, kUapiByHva, &id), -ENOSPC);
	EXPECT_EQ(id, 99u);
	EXPECT_EQ(kvmmu_host_live_allocs(), full_allocs);
	ASSERT_EQ(kvmmu_vm_gpc_destroy(cvm_, 500), 0);
	ASSERT_EQ(gpc_create(cvm_, kHva, 8, kUapiByHva, &id), 0);
	EXPECT_EQ(id, 500u);
}

// ---------------------------------------------------------------------------
// 4. Stress (for TSan): a refresher that reads, a pure reader, an
//    invalidator of the cache's page and one of unrelated ranges.
//
// Versions: round v of the invalidator is start, then `started = v`, then
// a new page holding v at both ends of the cache's range, then end. A
// reader loads `started` (s) before it takes the read lock; if check()
// passes, the page it reads must hold one version at both ends, and at
// least s: from the return of a start on, no mapping of an older page may
// be used.
// ---------------------------------------------------------------------------

TEST_F(PfnCacheTest, StressReadersNeverUseAPageOlderThanAReturnedStart)
{
	const uint64_t kRounds = 20000;
	memory();
	const uint64_t page = kHva + 9 * kPage;
	PfnCache *c = cache();
	ASSERT_NE(c, nullptr);
	ASSERT_TRUE(c->activate_gpa(Gpa(kGpa + 9 * kPage + kOff), kLen).ok());
	// Version 0: the initial zeroed page.

	std::atomic<uint64_t> started{0};
	std::atomic<bool> done{false};
	std::atomic<uint64_t> reads{0}, refreshes{0}, unrelated{0};
	std::atomic<uint64_t> bad{0}, bad_seen{0}, bad_floor{0}, refresh_errors{0};

	auto read_once = [&]() -> bool {
		const uint64_t s = started.load(std::memory_order_acquire);
		c->read_lock();
		auto r = c->check(kLen);
		const bool ok = r && r.value();
		uint64_t a = 0, z = 0;
		if (ok) {
			memcpy(&a, c->khva(), 8);
			memcpy(&z, static_cast<char *>(c->khva()) + kLen - 8, 8);
		}
		c->read_unlock();
		if (ok) {
			reads++;
			if (a != z || a < s) {
				if (bad.fetch_add(1) == 0) {
					bad_seen = a != z ? ~0ull : a;
					bad_floor = s;
				}
			}
		}
		return ok;
	};

	// Pauses of varying length after each round, some until the cache was
	// published again: without them a refresh sleeps through most rounds.
	auto pause = [&](std::mt19937 &rng) {
		switch (rng() % 4) {
		case 0:
			break;
		case 1:
			sched_yield();
			break;
		case 2: {
			const uint64_t n = c->stats().refreshes;
			wait_for([&] { return c->stats().refreshes != n || done.load(); }, 2ms);
			break;
		}
		default: {
			// Busy, 0 to 100 us: sweeps the next start across a
			// refresh's wake-up, lookup and publish.
			const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(rng() % 100);
			while (std::chrono::steady_clock::now() < until)
				asm volatile("" ::: "memory");
		}
		}
	};
	auto window_pause = [&](std::mt19937 &rng) {
		switch (rng() % 3) {
		case 0:
			break;
		case 1:
			sched_yield();
			break;
		default: {
			const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(rng() % 50);
			while (std::chrono::steady_clock::now() < until)
				asm volatile("" ::: "memory");
		}
		}
	};
	// Bounded in rounds and in time (a loaded machine, TSan).
	const auto deadline = std::chrono::steady_clock::now() + (kSanitized ? 5s : 3s);
	std::atomic<uint64_t> last{0};
	std::thread invalidator([&] {
		std::mt19937 rng(1);
		for (uint64_t v = 1; v <= kRounds && std::chrono::steady_clock::now() < deadline; v++) {
			start(page, page + kPage);
			started.store(v, std::memory_order_release);
			// The host takes its time to change the page, inside
			// the window as outside.
			window_pause(rng);
			kvmmu_host_mm_replace_page(mm_, page);
			window_pause(rng);
			char *p = static_cast<char *>(kvmmu_host_mm_page(mm_, page + kOff));
			memcpy(p, &v, 8);
			memcpy(p + kLen - 8, &v, 8);
			window_pause(rng);
			end(page, page + kPage);
			last = v;
			pause(rng);
		}
		done = true;
	});
	std::thread other([&] {
		const uint64_t r[][2] = {
			{page + kPage, page + 2 * kPage},
			{kHva, page},
			{0x10000000, 0x10001000},
		};
		for (unsigned i = 0; !done.load(); i++) {
			start(r[i % 3][0], r[i % 3][1]);
			sched_yield();
			end(r[i % 3][0], r[i % 3][1]);
			unrelated++;
		}
	});
	std::thread refresher([&] {
		kvmmu_host_set_current_mm(mm_);
		while (!done.load()) {
			if (read_once()) {
				sched_yield();
				continue;
			}
			if (c->refresh().to_errno())
				refresh_errors++;
			refreshes++;
		}
	});
	std::thread reader([&] {
		while (!done.load()) {
			read_once();
			sched_yield();
		}
	});
	invalidator.join();
	other.join();
	refresher.join();
	reader.join();

	EXPECT_EQ(bad.load(), 0u) << "read version " << bad_seen.load() << " after start of "
				 << bad_floor.load() << " returned (~0: torn)";
	EXPECT_EQ(refresh_errors.load(), 0u);
	ASSERT_EQ(c->refresh().to_errno(), 0);
	EXPECT_EQ(via(c), last.load());
	EXPECT_GE(last.load(), 100u); // (it did run)
	const kvmmu::PfnCacheStats s = c->stats();
	// Only invalidations of the page count; each sets needs_inval once
	// and costs at most one retry and one sleep of the one refresher.
	EXPECT_LE(s.invalidations, last.load());
	EXPECT_LE(s.retries, s.invalidations);
	EXPECT_LE(s.waits, last.load());
	printf("stress: %llu rounds, %llu unrelated, %llu reads passed, %llu refresh calls; "
	       "cache: %llu published, %llu retries, %llu waits, %llu invalidations\n",
	       (unsigned long long)last.load(), (unsigned long long)unrelated.load(), (unsigned long long)reads.load(),
	       (unsigned long long)refreshes.load(), (unsigned long long)s.refreshes,
	       (unsigned long long)s.retries, (unsigned long long)s.waits, (unsigned long long)s.invalidations);
}

} // namespace
