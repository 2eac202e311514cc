// SPDX-License-Identifier: GPL-2.0
// Walks page tables that live in guest memory: a guest's own x86-64 paging
// structures (shadow paging) or a guest hypervisor's arm64 stage-2 tables
// (nesting). Entries are read, and accessed/dirty flags optionally set,
// through an accessor the caller supplies (the fault path reads guest
// memory with gfn_to_pfn + kmap); the walker never touches guest memory
// itself.
#pragma once

#include <kvmmu/error.hpp>

#include "format.hpp"

namespace kvmmu::pgt {

class GuestTableAccess {
public:
	// Reads the 8-byte entry at guest physical address `gpa` (raw memory
	// representation). Errors end the walk and are returned as they are.
	virtual Result<u64> read(u64 gpa) = 0;
	// Replaces `old` with `val` at `gpa` if it still holds `old`; false if
	// it did not (the walk is then retried from the root).
	virtual Result<bool> cmpxchg(u64 gpa, u64 old, u64 val) = 0;

protected:
	~GuestTableAccess() = default;
};

enum class GuestFault : u8 {
	none,
	not_present,	// translation fault at `level`
	permission,	// the access is not allowed by the entries walked
	reserved,	// a reserved bit or an impossible encoding at `level`
	address_size,	// input address beyond what the tables translate
	access_flag,	// arm64: leaf with AF clear and no AF updating
};

struct GuestWalk {
	GuestFault fault = GuestFault::none;
	unsigned level = 0;	// leaf level, or where the walk faulted
	u64 oa = 0;		// output address of the input address
	u64 size = 0;		// bytes the leaf maps
	u32 prot = 0;		// effective permissions (kRead/kWrite/kExec)
	bool user = false;	// x86: reachable from user mode
};

// x86-64 4-level paging as a guest sets it up (SDM vol. 3, 4.5), read-only
// policy for guest_walk(): CR0.WP=1, EFER.NXE=1, no protection keys.
struct X86Guest64 : Geometry<4, 12, 9> {
	static constexpr const char *name = "x86-64-guest";
	static constexpr u64 P = bit(0), RW = bit(1), US = bit(2), A = bit(5), D = bit(6),
			     PS = bit(7), XD = bit(63);
	static constexpr u64 ADDR = bits(51, 12);

	static bool valid(u64 e) { return e & P; }
	static bool table(u64 e, unsigned level) { return valid(e) && level > 0 && !(e & PS); }
	static bool leaf(u64 e, unsigned level) { return valid(e) && (level == 0 || (e & PS)); }
	static bool reserved(u64 e, unsigned level)
	{
		if (level == 3 && (e & PS))
			return true; // no 512G pages
		if (level > 0 && (e & PS))
			return e & bits(shift_of(level) - 1, 13); // large-page address alignment
		return false;
	}
	static u64 oa(u64 e, unsigned level)
	{
		return e & ADDR & ~(leaf(e, level) && level ? size_of(level) - 1 : 0);
	}
	// Permission each entry grants; the walk ANDs R/W and U/S, ORs XD.
	static u32 prot(u64 e) { return kRead | (e & RW ? kWrite : 0) | (e & XD ? 0 : kExec); }
	static bool user(u64 e) { return e & US; }
	static bool hierarchical() { return true; }
	static u64 accessed(u64 e, unsigned) { return e | A; }
	static u64 dirtied(u64 e) { return e | D; }
	static bool needs_af() { return false; }
};

// Adapts an ArmS2 format for guest walks: permissions live in the leaf.
template <class S2>
struct ArmS2Guest : S2 {
	static bool reserved(u64 e, unsigned level) { return !S2::table(e, level) && !S2::leaf(e, level) && S2::valid(e); }
	static u32 prot(u64 e) { return S2::attrs(e).prot; }
	static bool user(u64) { return true; }
	static bool hierarchical() { return false; }
	static u64 accessed(u64 e, unsigned level) { return S2::leaf(e, level) ? e | S2::AF : e; }
	static u64 dirtied(u64 e) { return e; }
	static bool needs_af() { return true; }
};

// Translates `ia` for an access of `access` (kRead/kWrite/kExec bits;
// `user` for x86 user-mode accesses). With `update_ad`, accessed flags are
// set on the entries walked (and dirty on the leaf for writes) the way the
// hardware would; without it, an arm64 leaf with AF clear faults.
template <class F>
Result<GuestWalk> guest_walk(GuestTableAccess &mem, u64 root_gpa, u64 ia, u32 access, bool user,
			     bool update_ad)
{
	GuestWalk w;
	if (F::ia_bits < 64 && ia >> F::ia_bits) {
		w.fault = GuestFault::address_size;
		w.level = F::levels - 1;
		return w;
	}
retry:
	u64 table = root_gpa;
	u32 prot = kRWX;
	bool is_user = true;
	for (unsigned level = F::levels - 1;; level--) {
		u64 idx = (ia >> F::shift_of(level)) & ((u64(1) << F::bits_at(level)) - 1);
		u64 gpa = table + idx * 8;
		KVMMU_TRY(raw, mem.read(gpa));
		u64 e = F::load(raw);
		w.level = level;
		if (!F::valid(e)) {
			w.fault = GuestFault::not_present;
			return w;
		}
		if (F::reserved(e, level) || (level == 0 && !F::leaf(e, 0))) {
			w.fault = GuestFault::reserved;
			return w;
		}
		if (F::hierarchical() || F::leaf(e, level)) {
			prot &= F::prot(e);
			is_user &= F::user(e);
		}
		if (update_ad) {
			u64 ne = F::accessed(e, level);
			if (F::leaf(e, level) && (access & kWrite) && (prot & kWrite))
				ne = F::dirtied(ne);
			if (ne != e) {
				KVMMU_TRY(swapped, mem.cmpxchg(gpa, raw, F::store(ne)));
				if (!swapped)
					goto retry;
				e = ne;
			}
		}
		if (F::table(e, level)) {
			table = F::oa(e, level);
			continue;
		}
		// Leaf.
		w.size = F::size_of(level);
		w.oa = F::oa(e, level) + (ia & (w.size - 1));
		w.prot = prot;
		w.user = is_user;
		if (F::needs_af() && F::accessed(e, level) != e) {
			w.fault = GuestFault::access_flag;
			return w;
		}
		if ((access & ~prot) || (user && !is_user))
			w.fault = GuestFault::permission;
		return w;
	}
}

using ArmS2Guest4K = ArmS2Guest<ArmS2_4K_L4>;
using ArmS2Guest4K3 = ArmS2Guest<ArmS2_4K_L3>;

} // namespace kvmmu::pgt
