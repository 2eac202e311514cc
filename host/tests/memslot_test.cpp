// SPDX-License-Identifier: GPL-2.0
// Host tests of memslots: KVM's update rules, lookups by gfn and by host
// address, generations, failure atomicity, and readers racing updates.
#include <errno.h>

#include <atomic>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "../../mmu/memslot.hpp"

#include "host_test.hpp"

namespace {

using namespace kvmmu;

constexpr u64 kPg = kPageSize;

class MemslotTest : public HostTest {
protected:
	void SetUp() override
	{
		HostTest::SetUp();
		slots_ = std::make_unique<Memslots>();
		ASSERT_TRUE(slots_->init().ok());
	}
	void TearDown() override
	{
		slots_.reset(); // everything freed before the leak check
		HostTest::TearDown();
	}

	int set(u32 id, u64 gpa, u64 size, u64 hva, u32 flags = 0)
	{
		MemslotDesc d;
		d.id = id;
		d.gpa = gpa;
		d.size = size;
		d.hva = hva;
		d.flags = flags;
		return slots_->update(d).to_errno();
	}
	const Memslot *find(u64 gpa)
	{
		Memslots::ReadSection r(*slots_);
		return r.set().find_gfn(to_gfn(Gpa(gpa)));
	}
	u32 count()
	{
		Memslots::ReadSection r(*slots_);
		return r.set().count();
	}

	std::unique_ptr<Memslots> slots_;
};

TEST_F(MemslotTest, CreateAndLookUp)
{
	u64 g0 = slots_->generation();
	ASSERT_EQ(set(0, 0x100000, 16 * kPg, 0x7000'0000), 0);
	EXPECT_EQ(slots_->generation(), g0 + 1);
	const Memslot *s = find(0x100000 + 3 * kPg);
	ASSERT_NE(s, nullptr);
	EXPECT_EQ(s->id(), 0u);
	EXPECT_EQ(s->npages(), 16u);
	EXPECT_EQ(s->gfn_to_hva(to_gfn(Gpa(0x100000 + 3 * kPg))).raw(), 0x7000'0000 + 3 * kPg);
	EXPECT_EQ(find(0x100000 + 16 * kPg), nullptr);
	EXPECT_EQ(find(0x100000 - kPg), nullptr);
	EXPECT_FALSE(s->readonly());
	EXPECT_FALSE(s->logging_dirty());
}

TEST_F(MemslotTest, BadInputIsEinvalAndChangesNothing)
{
	ASSERT_EQ(set(1, 0x200000, 4 * kPg, 0x7000'0000), 0);
	u64 gen = slots_->generation();
	const u64 top = ~u64(0) & ~(kPg - 1);
	EXPECT_EQ(set(2, 0, kPg, 0x6000'0000, 1u << 2), -EINVAL);	// unknown flag
	EXPECT_EQ(set(kMaxMemslots, 0, kPg, 0x6000'0000), -EINVAL);	// id
	EXPECT_EQ(set(2, 0x1001, kPg, 0x6000'0000), -EINVAL);		// gpa
	EXPECT_EQ(set(2, 0, kPg + 1, 0x6000'0000), -EINVAL);		// size
	EXPECT_EQ(set(2, 0, kPg, 0x6000'0001), -EINVAL);		// hva
	EXPECT_EQ(set(2, top, 2 * kPg, 0x6000'0000), -EINVAL);		// gpa overflow
	EXPECT_EQ(set(2, 0, 2 * kPg, top), -EINVAL);			// hva overflow
	EXPECT_EQ(set(2, 0, (kMaxSlotPages + 1) * kPg, 0x1000), -EINVAL); // too big
	EXPECT_EQ(set(2, 0, kPg, u64(1) << 47), -EINVAL);		// kernel address
	EXPECT_EQ(set(3, 0, 0, 0), -EINVAL);				// delete missing
	EXPECT_EQ(slots_->generation(), gen);
	EXPECT_EQ(count(), 1u);
}

TEST_F(MemslotTest, OverlapIsEexist)
{
	ASSERT_EQ(set(0, 0x100000, 16 * kPg, 0x7000'0000), 0);
	u64 gen = slots_->generation();
	EXPECT_EQ(set(1, 0x100000 - kPg, 2 * kPg, 0x6000'0000), -EEXIST);	// head
	EXPECT_EQ(set(1, 0x100000 + 15 * kPg, 2 * kPg, 0x6000'0000), -EEXIST); // tail
	EXPECT_EQ(set(1, 0x100000 + kPg, kPg, 0x6000'0000), -EEXIST);	// inside
	EXPECT_EQ(set(1, 0, 64 * kPg + 0x100000, 0x6000'0000), -EEXIST);	// around
	EXPECT_EQ(slots_->generation(), gen);
	// Adjacent is fine, and the same host range may back two slots.
	EXPECT_EQ(set(1, 0x100000 + 16 * kPg, kPg, 0x7000'0000), 0);
}

TEST_F(MemslotTest, DeleteMoveAndFlags)
{
	ASSERT_EQ(set(0, 0x100000, 8 * kPg, 0x7000'0000), 0);
	ASSERT_EQ(set(1, 0x400000, 8 * kPg, 0x7100'0000, kMemReadonly), 0);
	// Existing slots keep host range, size and read-only-ness.
	EXPECT_EQ(set(0, 0x100000, 8 * kPg, 0x7200'0000), -EINVAL);
	EXPECT_EQ(set(0, 0x100000, 4 * kPg, 0x7000'0000), -EINVAL);
	EXPECT_EQ(set(0, 0x100000, 8 * kPg, 0x7000'0000, kMemReadonly), -EINVAL);
	EXPECT_EQ(set(1, 0x400000, 8 * kPg, 0x7100'0000, 0), -EINVAL);
	// No change: success without a new generation.
	u64 gen = slots_->generation();
	EXPECT_EQ(set(0, 0x100000, 8 * kPg, 0x7000'0000), 0);
	EXPECT_EQ(slots_->generation(), gen);
	// Move, not onto another slot.
	EXPECT_EQ(set(0, 0x400000 + 4 * kPg, 8 * kPg, 0x7000'0000), -EEXIST);
	EXPECT_EQ(set(0, 0x800000, 8 * kPg, 0x7000'0000), 0);
	EXPECT_EQ(find(0x100000), nullptr);
	ASSERT_NE(find(0x800000), nullptr);
	EXPECT_EQ(find(0x800000)->id(), 0u);
	// Dirty logging on and off.
	EXPECT_EQ(set(0, 0x800000, 8 * kPg, 0x7000'0000, kMemLogDirtyPages), 0);
	EXPECT_TRUE(find(0x800000)->logging_dirty());
	EXPECT_EQ(set(0, 0x800000, 8 * kPg, 0x7000'0000, 0), 0);
	EXPECT_FALSE(find(0x800000)->logging_dirty());
	// Delete.
	EXPECT_EQ(set(1, 0, 0, 0), 0);
	EXPECT_EQ(find(0x400000), nullptr);
	EXPECT_EQ(count(), 1u);
	EXPECT_GT(slots_->generation(), gen);
}

TEST_F(MemslotTest, DirtyBitmap)
{
	ASSERT_EQ(set(0, 0x100000, 100 * kPg, 0x7000'0000, kMemLogDirtyPages), 0);
	Memslots::ReadSection r(*slots_);
	Memslot *s = const_cast<Memslot *>(r.set().find_gfn(to_gfn(Gpa(0x100000))));
	ASSERT_NE(s, nullptr);
	EXPECT_EQ(s->dirty_bitmap_bytes(), 16u);
	s->mark_dirty(to_gfn(Gpa(0x100000)) + 65);
	s->mark_dirty(to_gfn(Gpa(0x100000)) + 100); // outside: ignored
	EXPECT_EQ(s->dirty_bitmap()[0], 0u);
	EXPECT_EQ(s->dirty_bitmap()[1], 2u);
}

TEST_F(MemslotTest, HostRangeQueries)
{
	ASSERT_EQ(set(0, 0x000000, 4 * kPg, 0x7000'0000), 0);
	ASSERT_EQ(set(1, 0x100000, 4 * kPg, 0x7000'0000), 0); // alias
	ASSERT_EQ(set(2, 0x200000, 64 * kPg, 0x6000'0000), 0); // long, earlier
	ASSERT_EQ(set(3, 0x400000, 4 * kPg, 0x7000'4000 + 4 * kPg), 0);
	auto ids = [&](u64 s, u64 e) {
		u32 mask = 0;
		Memslots::ReadSection r(*slots_);
		r.set().for_each_hva_overlap(Hva(s), Hva(e), [&](const Memslot &m) { mask |= 1u << m.id(); });
		return mask;
	};
	EXPECT_EQ(ids(0x7000'0000, 0x7000'0000 + kPg), 0b0011u);
	EXPECT_EQ(ids(0x6000'0000 + 63 * kPg, 0x7000'0000 + kPg), 0b0111u);
	EXPECT_EQ(ids(0x6000'0000 + 64 * kPg, 0x7000'0000), 0u);
	EXPECT_EQ(ids(0x7000'4000 + 4 * kPg, 0x7000'4000 + 5 * kPg), 0b1000u);
	EXPECT_EQ(ids(0, ~u64(0)), 0b1111u);
}

TEST_F(MemslotTest, AllocationFailureChangesNothing)
{
	ASSERT_EQ(set(0, 0x100000, 8 * kPg, 0x7000'0000), 0);
	u64 gen = slots_->generation();
	for (long n = 0; n < 3; n++) {
		kvmmu_host_fail_alloc_after(n);
		int r = set(1, 0x400000, 8 * kPg, 0x7100'0000, kMemLogDirtyPages);
		kvmmu_host_fail_alloc_reset();
		EXPECT_EQ(r, -ENOMEM) << n;
		EXPECT_EQ(slots_->generation(), gen);
		EXPECT_EQ(find(0x400000), nullptr);
	}
}

TEST_F(MemslotTest, ManySlots)
{
	const u32 n = 4096;
	for (u32 i = 0; i < n; i++)
		ASSERT_EQ(set(i, u64(i) * 4 * kPg, 2 * kPg, 0x1000'0000 + u64(n - i) * 2 * kPg), 0);
	EXPECT_EQ(count(), n);
	for (u32 i = 0; i < n; i += 7) {
		const Memslot *s = find(u64(i) * 4 * kPg + kPg);
		ASSERT_NE(s, nullptr);
		EXPECT_EQ(s->id(), i);
		EXPECT_EQ(find(u64(i) * 4 * kPg + 2 * kPg), nullptr);
	}
}

// Readers never see a torn set: every lookup finds a slot that contains
// the gfn, or none, while a writer moves slots around.
TEST_F(MemslotTest, ConcurrentReadersAndUpdates)
{
	for (u32 i = 0; i < 8; i++)
		ASSERT_EQ(set(i, u64(i) * 64 * kPg, 16 * kPg, 0x7000'0000 + i * 16 * kPg), 0);
	std::atomic<bool> stop{false};
	std::atomic<long> bad{0}, hits{0};
	std::vector<std::thread> readers;
	for (int t = 0; t < 3; t++) {
		readers.emplace_back([&, t] {
			u64 x = t + 1;
			while (!stop.load()) {
				x = x * 6364136223846793005ull + 1442695040888963407ull;
				Gfn g((x >> 33) % (8 * 64));
				Memslots::ReadSection r(*slots_);
				const Memslot *s = r.set().find_gfn(g);
				if (s && !s->contains(g))
					bad++;
				hits += s != nullptr;
			}
		});
	}
	while (hits.load() < 3)
		std::this_thread::yield();
	for (int round = 0; round < 2000; round++) {
		u32 i = round % 8;
		u64 gpa = (u64(i) * 64 + (round % 2 ? 32 : 0)) * kPg;
		ASSERT_EQ(set(i, gpa, 16 * kPg, 0x7000'0000 + i * 16 * kPg), 0);
	}
	stop = true;
	for (auto &t : readers)
		t.join();
	EXPECT_EQ(bad.load(), 0);
	EXPECT_GT(hits.load(), 0);
}

} // namespace

namespace {

// The gfn index against a linear scan, over random layouts: slots of one
// page to gigabytes, clustered and sparse, near gfn 0 and far up, with
// holes; and enough tiny clustered slots to exhaust the node budget.
TEST_F(MemslotTest, IndexAgreesWithLinearSearch)
{
	std::mt19937_64 rng(7);
	for (int layout = 0; layout < 12; layout++) {
		slots_ = std::make_unique<Memslots>();
		ASSERT_TRUE(slots_->init().ok());
		struct S {
			u64 gfn, pages;
		};
		std::vector<S> made;
		const unsigned n = layout < 4 ? 1 + rng() % 8 : layout < 10 ? 200 + rng() % 600 : 1500;
		u64 gfn = layout % 3 == 0 ? 0 : rng() % (u64(1) << 30);
		for (unsigned i = 0; i < n; i++) {
			u64 pages = layout >= 10 ? 1 : 1 + (rng() % 4 == 0 ? rng() % 300000 : rng() % 600);
			if (gfn + pages > (u64(1) << (64 - kPageShift - 1)))
				break;
			ASSERT_EQ(set(i, gfn << kPageShift, pages << kPageShift, 0x10000000000 + u64(i) * 0x40000000),
				  0) << "layout " << layout << " slot " << i;
			made.push_back({gfn, pages});
			u64 gap = rng() % 4 == 0 ? 0 : rng() % 3 == 0 ? rng() % (u64(1) << 28) : rng() % 2000;
			gfn += pages + gap;
		}
		auto linear = [&](u64 g) -> int {
			for (size_t i = 0; i < made.size(); i++)
				if (made[i].gfn <= g && g < made[i].gfn + made[i].pages)
					return int(i);
			return -1;
		};
		Memslots::ReadSection r(*slots_);
		for (int q = 0; q < 4000; q++) {
			u64 g;
			const S &s = made[rng() % made.size()];
			switch (rng() % 4) {
			case 0: g = s.gfn; break;
			case 1: g = s.gfn + s.pages - 1; break;
			case 2: g = s.gfn + s.pages; break; // often a hole
			default: g = rng() % (made.back().gfn + made.back().pages + 1000); break;
			}
			const Memslot *m = r.set().find_gfn(Gfn(g));
			int want = linear(g);
			ASSERT_EQ(m ? int(m->id()) : -1, want) << "layout " << layout << " gfn " << g;
		}
		EXPECT_EQ(r.set().find_gfn(Gfn(~u64(0) >> kPageShift)), nullptr);
	}
}

} // namespace

namespace {

// Deleting or moving a slot hides it from gfn lookups first while host
// address lookups (invalidations) still find it; the listener drops its
// mappings in that window, then the final set is published.
struct WindowProbe final : MemslotListener {
	Memslots *m = nullptr;
	u64 old_gpa = 0, hva = 0;
	int retiring_calls = 0, committed_calls = 0;
	bool hidden_from_faults = false, seen_by_invalidations = false;
	void retiring(const Memslot *old) override
	{
		retiring_calls++;
		Memslots::ReadSection r(*m);
		hidden_from_faults = r.set().find_gfn(to_gfn(Gpa(old_gpa))) == nullptr &&
				     r.set().find_id(old->id()) == nullptr;
		r.set().for_each_hva_overlap(Hva(hva), Hva(hva + kPg), [&](const Memslot &s) {
			seen_by_invalidations |= &s == old;
		});
	}
	void committed(const Memslot *, const Memslot *) override { committed_calls++; }
};

TEST_F(MemslotTest, RetiringSlotStaysVisibleToInvalidations)
{
	WindowProbe p;
	p.m = slots_.get();
	p.old_gpa = 0x100000;
	p.hva = 0x7000000;
	ASSERT_EQ(set(1, 0x100000, 16 * kPg, 0x7000000), 0);
	ASSERT_EQ(set(2, 0x900000, 16 * kPg, 0x8000000), 0);
	const u64 gen = slots_->generation();
	MemslotDesc d;
	d.id = 1;
	d.gpa = 0x400000; // move
	d.size = 16 * kPg;
	d.hva = 0x7000000;
	ASSERT_TRUE(slots_->update(d, &p).ok());
	EXPECT_EQ(p.retiring_calls, 1);
	EXPECT_EQ(p.committed_calls, 1);
	EXPECT_TRUE(p.hidden_from_faults);
	EXPECT_TRUE(p.seen_by_invalidations);
	EXPECT_EQ(slots_->generation(), gen + 2);
	EXPECT_EQ(find(0x100000), nullptr);
	ASSERT_NE(find(0x400000), nullptr);

	// Delete: the same window.
	p = WindowProbe();
	p.m = slots_.get();
	p.old_gpa = 0x900000;
	p.hva = 0x8000000;
	d = MemslotDesc();
	d.id = 2;
	ASSERT_TRUE(slots_->update(d, &p).ok());
	EXPECT_TRUE(p.hidden_from_faults);
	EXPECT_TRUE(p.seen_by_invalidations);
	EXPECT_EQ(count(), 1u);

	// A flags-only change replaces the slot in place: no window.
	p = WindowProbe();
	d.id = 1;
	d.gpa = 0x400000;
	d.size = 16 * kPg;
	d.hva = 0x7000000;
	d.flags = kMemLogDirtyPages;
	ASSERT_TRUE(slots_->update(d, &p).ok());
	EXPECT_EQ(p.retiring_calls, 0);
	EXPECT_EQ(p.committed_calls, 1);
}

// A logging slot that moves keeps the bits not yet harvested.
TEST_F(MemslotTest, MoveKeepsUnharvestedDirtyBits)
{
	ASSERT_EQ(set(1, 0x100000, 128 * kPg, 0x7000000, kMemLogDirtyPages), 0);
	{
		Memslots::ReadSection r(*slots_);
		const Memslot *s = r.set().find_id(1);
		s->mark_dirty(s->base_gfn() + 3);
		s->mark_dirty(s->base_gfn() + 100);
	}
	ASSERT_EQ(set(1, 0x800000, 128 * kPg, 0x7000000, kMemLogDirtyPages), 0);
	Memslots::ReadSection r(*slots_);
	const Memslot *s = r.set().find_id(1);
	ASSERT_NE(s, nullptr);
	EXPECT_EQ(s->take_dirty_word(0), u64(1) << 3);
	EXPECT_EQ(s->take_dirty_word(1), u64(1) << 36);
}

} // namespace
