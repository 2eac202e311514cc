// SPDX-License-Identifier: GPL-2.0
// Page-table formats: each architecture's descriptor encoding as a small
// policy type for the generic walker (pgtable_impl.hpp).
//
// Levels count up from the leaf: level 0 maps one base page, level n maps
// 2^(page_shift + n * bits_per_level) bytes, and the root is level
// `levels - 1` (the root may have fewer index bits than the other levels).
//
// Every format provides, as static members:
//   levels, page_shift, bits_at(level), table_bytes(level)
//   leaf_ok(level)            may this level hold a leaf (block/huge page)
//   prot_ok(prot)             is this permission set encodable
//   valid(e), table(e, level) leaf(e, level)
//   make_table(pa, level)     entry at `level` pointing at a next-level table
//   make_leaf(pa, level, a)   leaf at `level` mapping pa with attributes a
//   oa(e, level)              output address of a leaf or next table
//   attrs(e)                  decoded attributes of a leaf
//   young(e), mkold(e), mkyoung(e), dirty(e), wrprotect(e)
//   mkdirty(e)                marks a leaf dirty (split and collapse carry
//                             the dirty state over to the new leaves)
//   locked()                  the invalid, recognisable value an entry holds
//                             between break and make
//   bbm                       replacing a valid entry needs break-before-make
//   load(raw), store(e)       memory representation (ppc radix is big-endian)
#pragma once

#include <kvmmu/util.hpp>

namespace kvmmu::pgt {

// Permission bits of Attrs::prot.
constexpr u32 kRead = 1u << 0;
constexpr u32 kWrite = 1u << 1;
constexpr u32 kExec = 1u << 2;
constexpr u32 kRWX = kRead | kWrite | kExec;

enum class MemType : u8 {
	normal_wb,	// normal memory, write-back cacheable
	normal_nc,	// normal memory, non-cacheable (write-combining)
	device,		// device memory (x86 UC, arm64 Device-nGnRE, ppc guarded+CI)
};

struct Attrs {
	u32 prot = kRead | kWrite;
	MemType mt = MemType::normal_wb;
	// Software, kept in a bit the walker ignores: the leaf maps a page its
	// owner holds through a page reference (GUP), so the page's dirty and
	// accessed state may be handed to its struct page. Pages reached any
	// other way (VM_IO/VM_PFNMAP) are never touched through a struct page.
	bool host_page = false;

	bool operator==(const Attrs &o) const
	{
		return prot == o.prot && mt == o.mt && host_page == o.host_page;
	}
	bool operator!=(const Attrs &o) const { return !(*this == o); }
};

constexpr u64 bits(unsigned hi, unsigned lo)
{
	return ((hi == 63 ? ~u64(0) : (u64(1) << (hi + 1)) - 1)) & ~((u64(1) << lo) - 1);
}

constexpr u64 bit(unsigned n) { return u64(1) << n; }

// Shared geometry for formats with equal index bits at every level except
// possibly the root.
template <unsigned Levels, unsigned PageShift, unsigned Bits, unsigned RootBits = Bits>
struct Geometry {
	static constexpr unsigned levels = Levels;
	static constexpr unsigned page_shift = PageShift;
	static constexpr unsigned bits_at(unsigned level)
	{
		return level == Levels - 1 ? RootBits : Bits;
	}
	static constexpr unsigned shift_of(unsigned level) { return PageShift + level * Bits; }
	static constexpr u64 size_of(unsigned level) { return u64(1) << shift_of(level); }
	static constexpr u64 table_bytes(unsigned level) { return u64(8) << bits_at(level); }
	// Input-address bits the whole table covers.
	static constexpr unsigned ia_bits = PageShift + (Levels - 1) * Bits + RootBits;
	// For a hardware walker (kvmmu_vm_attach_core()): the smallest input
	// size the hardware may walk from this root, the architecture's
	// number of the root level, and whether an FWB encoding exists.
	static constexpr unsigned min_walk_ia_bits = ia_bits;
	static constexpr unsigned arch_start_level = 0;
	static constexpr bool has_fwb = false;
	static u64 load(u64 raw) { return raw; }
	static u64 store(u64 e) { return e; }
};

// ---------------------------------------------------------------------------
// Intel EPT (SDM vol. 3, "EPT Translation Mechanism"), 4- or 5-level.
// ---------------------------------------------------------------------------
template <unsigned Levels>
struct Ept : Geometry<Levels, 12, 9> {
	static_assert(Levels == 4 || Levels == 5, "EPT has 4 or 5 levels");
	static constexpr const char *name = Levels == 4 ? "ept4" : "ept5";

	static constexpr u64 R = bit(0), W = bit(1), X = bit(2);
	static constexpr u64 MT_SHIFT = 3, MT_MASK = bits(5, 3);
	static constexpr u64 IPAT = bit(6);
	static constexpr u64 PS = bit(7);	// leaf at level 1 (2M) or 2 (1G)
	static constexpr u64 A = bit(8), D = bit(9);
	static constexpr u64 ADDR = bits(51, 12);
	// Software: bit 11 is ignored by the processor in every EPT entry.
	static constexpr u64 SW_LOCKED = bit(11);
	// Software: Attrs::host_page (bits 52-56 are ignored in EPT leaves).
	static constexpr u64 SW_PAGE = bit(52);
	// EPT memory types.
	static constexpr u64 MT_UC = 0, MT_WC = 1, MT_WB = 6;

	static constexpr bool bbm = false;
	static constexpr bool leaf_ok(unsigned level) { return level <= 2; }
	// Write without read is an EPT misconfiguration.
	static constexpr bool prot_ok(u32 p) { return p && !(p & ~kRWX) && !((p & kWrite) && !(p & kRead)); }

	static bool valid(u64 e) { return e & (R | W | X); }
	static bool table(u64 e, unsigned level) { return valid(e) && level > 0 && !(e & PS); }
	static bool leaf(u64 e, unsigned level) { return valid(e) && (level == 0 || (e & PS)); }
	static u64 oa(u64 e, unsigned) { return e & ADDR; }
	static u64 locked() { return SW_LOCKED; }

	// Non-leaf entries grant everything; the leaf decides. A set in tables
	// is harmless (the CPU sets it on walks when A/D is enabled).
	static u64 make_table(u64 pa, unsigned) { return (pa & ADDR) | R | W | X; }
	// Leaves are installed accessed (a fault is an access); D is left to
	// the processor.
	static u64 make_leaf(u64 pa, unsigned level, Attrs a)
	{
		u64 e = (pa & ADDR) | (level ? PS : 0) | A | (a.host_page ? SW_PAGE : 0);
		e |= (a.prot & kRead ? R : 0) | (a.prot & kWrite ? W : 0) | (a.prot & kExec ? X : 0);
		switch (a.mt) {
		case MemType::normal_wb:
			e |= MT_WB << MT_SHIFT;
			break;
		case MemType::normal_nc:
			e |= (MT_WC << MT_SHIFT) | IPAT;
			break;
		case MemType::device:
			e |= (MT_UC << MT_SHIFT) | IPAT;
			break;
		}
		return e;
	}
	static Attrs attrs(u64 e)
	{
		Attrs a;
		a.prot = (e & R ? kRead : 0) | (e & W ? kWrite : 0) | (e & X ? kExec : 0);
		a.host_page = e & SW_PAGE;
		u64 mt = (e & MT_MASK) >> MT_SHIFT;
		a.mt = mt == MT_WB ? MemType::normal_wb : mt == MT_WC ? MemType::normal_nc : MemType::device;
		return a;
	}
	static bool young(u64 e) { return e & A; }
	static u64 mkold(u64 e) { return e & ~A; }
	static u64 mkyoung(u64 e) { return e | A; }
	static bool dirty(u64 e) { return e & D; }
	static u64 mkdirty(u64 e) { return e | D; }
	static u64 wrprotect(u64 e) { return e & ~W; }
};

// ---------------------------------------------------------------------------
// Arm stage-2 translation (Arm ARM D8, VMSAv8-64 stage 2).
// Granule 4K (9 bits per level), 16K (11) or 64K (13); the start level is
// given by the number of levels. MemAttr is encoded for HCR_EL2.FWB clear
// or, after set_fwb(true) (a host whose KVM sets FWB: the tables must say
// what that hardware reads), for FWB set; attrs() reads either.
// ---------------------------------------------------------------------------
template <unsigned GranuleShift, unsigned Levels, unsigned RootBits = GranuleShift - 3>
struct ArmS2 : Geometry<Levels, GranuleShift, GranuleShift - 3, RootBits> {
	static_assert(GranuleShift == 12 || GranuleShift == 14 || GranuleShift == 16, "granule");
	static constexpr const char *name = "arm64-s2";

	static constexpr u64 VALID = bit(0);
	static constexpr u64 TYPE_TABLE = bit(1);	// table (level > 0) or page (level 0)
	static constexpr u64 MEMATTR_SHIFT = 2, MEMATTR = bits(5, 2);
	static constexpr u64 S2AP_R = bit(6), S2AP_W = bit(7);
	static constexpr u64 SH_SHIFT = 8, SH_INNER = u64(3) << 8;
	static constexpr u64 AF = bit(10);
	static constexpr u64 DBM = bit(51);
	static constexpr u64 XN = bit(54);
	static constexpr u64 ADDR = bits(47, GranuleShift);
	// Software bits 58:55 are ignored by hardware; bit 55 marks "locked".
	static constexpr u64 SW_LOCKED = bit(55);
	static constexpr u64 SW_PAGE = bit(56);	// Attrs::host_page
	// Stage-2 MemAttr[3:0]: [3:2] outer, [1:0] inner (or device type).
	static constexpr u64 MEMATTR_NORMAL_WB = 0xf, MEMATTR_NORMAL_NC = 0x5,
			     MEMATTR_DEVICE_nGnRE = 0x1;
	// With FWB: MemAttr[2] set is normal memory, [1:0] 0b10 forces
	// write-back, 0b01 non-cacheable; MemAttr[2] clear is device memory.
	static constexpr u64 MEMATTR_FWB_NORMAL_WB = 0x6, MEMATTR_FWB_NORMAL_NC = 0x5;

	// One setting for the whole host (FWB is a CPU feature KVM uses
	// whenever every CPU has it); set before any leaf is made.
	static void set_fwb(bool on) { __atomic_store_n(&fwb_, on, __ATOMIC_RELAXED); }
	static bool fwb() { return __atomic_load_n(&fwb_, __ATOMIC_RELAXED); }

	static constexpr bool bbm = true;
	// VTCR_EL2.SL0 names the root level (0-3, counted from the root of a
	// full 4-level 4K walk); a walk from there must resolve more than
	// the levels below the root do (Arm ARM, S2InconsistentSL): 40 bits
	// from a 4K level-0 root.
	static constexpr unsigned arch_start_level = 4 - Levels;
	static constexpr unsigned min_walk_ia_bits =
		Geometry<Levels, GranuleShift, GranuleShift - 3, RootBits>::shift_of(Levels - 1) + 1;
	static constexpr bool has_fwb = true;
	// Blocks: 4K granule at levels 1 (1G) and 2 (2M) of the walk (level 1
	// and 2 counted from the leaf: 2M and 1G); 16K and 64K at level 1 from
	// the leaf only (32M, 512M) without 52-bit addressing.
	static constexpr bool leaf_ok(unsigned level)
	{
		return level == 0 || level == 1 || (GranuleShift == 12 && level == 2);
	}

	static constexpr bool prot_ok(u32 p) { return p && !(p & ~kRWX); }

	static bool valid(u64 e) { return e & VALID; }
	static bool table(u64 e, unsigned level) { return level > 0 && (e & (VALID | TYPE_TABLE)) == (VALID | TYPE_TABLE); }
	static bool leaf(u64 e, unsigned level)
	{
		return level == 0 ? (e & (VALID | TYPE_TABLE)) == (VALID | TYPE_TABLE)
				  : (e & (VALID | TYPE_TABLE)) == VALID;
	}
	static u64 oa(u64 e, unsigned) { return e & ADDR; }
	static u64 locked() { return SW_LOCKED; }

	static u64 make_table(u64 pa, unsigned) { return (pa & ADDR) | VALID | TYPE_TABLE; }
	static u64 make_leaf(u64 pa, unsigned level, Attrs a)
	{
		u64 e = (pa & ADDR) | VALID | (level == 0 ? TYPE_TABLE : 0) | AF | SH_INNER |
			(a.host_page ? SW_PAGE : 0);
		e |= (a.prot & kRead ? S2AP_R : 0) | (a.prot & kWrite ? S2AP_W : 0);
		e |= a.prot & kExec ? 0 : XN;
		u64 ma = a.mt == MemType::normal_wb ? (fwb() ? MEMATTR_FWB_NORMAL_WB : MEMATTR_NORMAL_WB)
			 : a.mt == MemType::normal_nc ? MEMATTR_NORMAL_NC : MEMATTR_DEVICE_nGnRE;
		return e | (ma << MEMATTR_SHIFT);
	}
	static Attrs attrs(u64 e)
	{
		Attrs a;
		a.prot = (e & S2AP_R ? kRead : 0) | (e & S2AP_W ? kWrite : 0) | (e & XN ? 0 : kExec);
		a.host_page = e & SW_PAGE;
		u64 ma = (e & MEMATTR) >> MEMATTR_SHIFT;
		a.mt = ma == MEMATTR_NORMAL_WB || ma == MEMATTR_FWB_NORMAL_WB ? MemType::normal_wb
		       : ma == MEMATTR_NORMAL_NC ? MemType::normal_nc : MemType::device;
		return a;
	}
	static bool young(u64 e) { return e & AF; }
	static u64 mkold(u64 e) { return e & ~AF; }
	static u64 mkyoung(u64 e) { return e | AF; }
	// Without hardware dirty-bit management a writable leaf counts as dirty.
	static bool dirty(u64 e) { return e & S2AP_W; }
	// Dirty is writable, which the leaf's attributes already carry.
	static u64 mkdirty(u64 e) { return e; }
	static u64 wrprotect(u64 e) { return e & ~(S2AP_W | DBM); }

private:
	static inline bool fwb_ = false;
};

// ---------------------------------------------------------------------------
// Power ISA v3 radix tree (partition-scoped). Entries are big-endian in
// memory; bit numbers below are for the value in register order (bit 63 is
// the ISA's bit 0). Base page 4K (root 13, then 9, 9, 9 bits) or 64K (root
// 13, then 9, 9, 5 bits); leaves at 2M and 1G in both.
// ---------------------------------------------------------------------------
template <unsigned PageShift>
struct PpcRadix {
	static_assert(PageShift == 12 || PageShift == 16, "radix base page 4K or 64K");
	static constexpr const char *name = PageShift == 12 ? "ppc-radix-4k" : "ppc-radix-64k";
	static constexpr unsigned levels = 4;
	static constexpr unsigned page_shift = PageShift;
	static constexpr unsigned bits_at(unsigned level)
	{
		return level == 3 ? 13 : (level == 0 ? (PageShift == 12 ? 9 : 5) : 9);
	}
	static constexpr unsigned shift_of(unsigned level)
	{
		unsigned s = PageShift;
		for (unsigned l = 0; l < level; l++)
			s += bits_at(l);
		return s;
	}
	static constexpr u64 size_of(unsigned level) { return u64(1) << shift_of(level); }
	static constexpr u64 table_bytes(unsigned level) { return u64(8) << bits_at(level); }
	static constexpr unsigned ia_bits = shift_of(3) + 13;
	static constexpr unsigned min_walk_ia_bits = ia_bits;
	static constexpr unsigned arch_start_level = 0;
	static constexpr bool has_fwb = false;

	static constexpr u64 V = bit(63);		// valid
	static constexpr u64 L = bit(62);		// leaf
	static constexpr u64 SW_LOCKED = bit(61);	// software (ISA bit 2)
	static constexpr u64 SW_PAGE = bit(11);		// software (ISA bit 52): Attrs::host_page
	static constexpr u64 RPN = bits(56, PageShift);	// leaf real page number (ISA 7:51)
	static constexpr u64 NLB = bits(59, 8);		// next-level base (ISA 4:55)
	static constexpr u64 NLS = bits(4, 0);		// next-level size, log2 entries
	static constexpr u64 R = bit(8), C = bit(7);	// reference, change
	static constexpr u64 ATT = bits(5, 4);		// 0 normal, 2 non-idempotent I/O, 3 tolerant I/O
	static constexpr u64 ATT_NORMAL = 0, ATT_NONIDEM = u64(2) << 4, ATT_TOLERANT = u64(3) << 4;
	static constexpr u64 EAA_PRIV = bit(3), EAA_R = bit(2), EAA_W = bit(1), EAA_X = bit(0);

	static constexpr bool bbm = false;
	static constexpr bool leaf_ok(unsigned level) { return level <= 2; }

	static u64 load(u64 raw)
	{
		if constexpr (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
			return __builtin_bswap64(raw);
		else
			return raw;
	}
	static u64 store(u64 e) { return load(e); }

	static constexpr bool prot_ok(u32 p) { return p && !(p & ~kRWX); }

	static bool valid(u64 e) { return e & V; }
	static bool table(u64 e, unsigned level) { return level > 0 && (e & (V | L)) == V; }
	static bool leaf(u64 e, unsigned) { return (e & (V | L)) == (V | L); }
	static u64 oa(u64 e, unsigned) { return e & (e & L ? RPN : NLB); }
	static u64 locked() { return SW_LOCKED; }

	static u64 make_table(u64 pa, unsigned level)
	{
		return V | (pa & NLB) | bits_at(level - 1);
	}
	static u64 make_leaf(u64 pa, unsigned, Attrs a)
	{
		// Referenced; changed only if writable, so that a write to a
		// clean page is what sets C.
		u64 e = V | L | (pa & RPN) | R | (a.prot & kWrite ? C : 0) | (a.host_page ? SW_PAGE : 0);
		e |= (a.prot & kRead ? EAA_R : 0) | (a.prot & kWrite ? EAA_W : 0) |
		     (a.prot & kExec ? EAA_X : 0);
		e |= a.mt == MemType::normal_wb ? ATT_NORMAL
		     : a.mt == MemType::normal_nc ? ATT_TOLERANT : ATT_NONIDEM;
		return e;
	}
	static Attrs attrs(u64 e)
	{
		Attrs a;
		a.prot = (e & EAA_R ? kRead : 0) | (e & EAA_W ? kWrite : 0) | (e & EAA_X ? kExec : 0);
		a.host_page = e & SW_PAGE;
		u64 att = e & ATT;
		a.mt = att == ATT_NORMAL ? MemType::normal_wb
		       : att == ATT_TOLERANT ? MemType::normal_nc : MemType::device;
		return a;
	}
	static bool young(u64 e) { return e & R; }
	static u64 mkold(u64 e) { return e & ~R; }
	static u64 mkyoung(u64 e) { return e | R; }
	static bool dirty(u64 e) { return e & C; }
	static u64 mkdirty(u64 e) { return e | C; }
	static u64 wrprotect(u64 e) { return e & ~(EAA_W | C); }
};

using Ept4 = Ept<4>;
using Ept5 = Ept<5>;
using ArmS2_4K_L3 = ArmS2<12, 3>;	// 39-bit IPA
using ArmS2_4K_L4 = ArmS2<12, 4>;	// 48-bit IPA
using ArmS2_16K_L3 = ArmS2<14, 3>;	// 47-bit IPA
using ArmS2_64K_L3 = ArmS2<16, 3, 6>;	// 48-bit IPA, 64-entry root
using PpcRadix4K = PpcRadix<12>;
using PpcRadix64K = PpcRadix<16>;

} // namespace kvmmu::pgt
