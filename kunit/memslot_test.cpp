// SPDX-License-Identifier: GPL-2.0
// KUnit bodies for memslots in the kernel: KVM's update rules with the
// kernel's access_ok(), SRCU-protected lookups, and updates under lockdep.
#include "../mmu/memslot.hpp"

#include "kt.hpp"

using namespace kvmmu;

namespace {

int set(Memslots &m, u32 id, u64 gpa, u64 size, u64 hva, u32 flags = 0)
{
	MemslotDesc d;
	d.id = id;
	d.gpa = gpa;
	d.size = size;
	d.hva = hva;
	d.flags = flags;
	return m.update(d).to_errno();
}

const int kSlotInval = Error(Errno::inval).to_errno();
const int kSlotExist = Error(Errno::exist).to_errno();

} // namespace

KT_TEST(mmu_memslot, rules)
{
	Memslots *m = make<Memslots>(gfp::kernel);
	KT_EXPECT(m != nullptr);
	if (!m)
		return;
	KT_EXPECT(m->init().ok());
	const u64 pg = kPageSize, ua = 0x10000000;
	u64 gen = m->generation();
	KT_EXPECT_EQ(set(*m, 0, 0x100000 * pg / 4096, 16 * pg, ua), 0);
	KT_EXPECT_EQ(m->generation(), gen + 1);
	KT_EXPECT_EQ(set(*m, 1, 0x100000 * pg / 4096 + 8 * pg, 16 * pg, ua), kSlotExist);
	KT_EXPECT_EQ(set(*m, 1, 0, pg, ua + 1), kSlotInval);
	KT_EXPECT_EQ(set(*m, 1, 1, pg, ua), kSlotInval);
	KT_EXPECT_EQ(set(*m, 1, 0, pg, ua, 1u << 7), kSlotInval);
	KT_EXPECT_EQ(set(*m, kMaxMemslots, 0, pg, ua), kSlotInval);
	KT_EXPECT_EQ(set(*m, 2, 0, 0, 0), kSlotInval); // delete of nothing
	// Not user memory: what access_ok() refuses is refused.
	KT_EXPECT_EQ(set(*m, 1, 0, pg, ~u64(0) & ~(pg - 1)), kSlotInval);
	KT_EXPECT_EQ(m->generation(), gen + 1);
	{
		Memslots::ReadSection r(*m);
		const Memslot *s = r.set().find_gfn(Gfn(0x100000 / 4096 * 1 + 3));
		KT_EXPECT(s != nullptr);
		if (s)
			KT_EXPECT_EQ(s->gfn_to_hva(s->base_gfn() + 3).raw(), ua + 3 * pg);
	}
	// Move, then dirty logging on, then delete.
	KT_EXPECT_EQ(set(*m, 0, 0x200000 * pg / 4096, 16 * pg, ua), 0);
	KT_EXPECT_EQ(set(*m, 0, 0x200000 * pg / 4096, 16 * pg, ua, kMemLogDirtyPages), 0);
	{
		Memslots::ReadSection r(*m);
		const Memslot *s = r.set().find_id(0);
		KT_EXPECT(s && s->logging_dirty());
	}
	KT_EXPECT_EQ(set(*m, 0, 0, 0, 0), 0);
	{
		Memslots::ReadSection r(*m);
		KT_EXPECT_EQ(r.set().count(), 0u);
	}
	destroy(m);
}
