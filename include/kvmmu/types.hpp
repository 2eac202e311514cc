// SPDX-License-Identifier: GPL-2.0
// Distinct address types. A guest physical address, a guest frame number,
// a host virtual address and a host page frame number are different things;
// mixing them is a compile error, converting between them is explicit.
#pragma once

#include <kvmmu/util.hpp>
#include <kvmmu_layout.h>

namespace kvmmu {

// Host page size of the kernel kvmmu was built for (64K on Debian ppc64el).
constexpr unsigned kPageShift = KVMMU_PAGE_SHIFT;
constexpr u64 kPageSize = u64(1) << kPageShift;

template <class Tag>
class Addr {
public:
	constexpr Addr() = default;
	constexpr explicit Addr(u64 v) : v_(v) {}
	constexpr u64 raw() const { return v_; }

	constexpr bool operator==(Addr o) const { return v_ == o.v_; }
	constexpr bool operator!=(Addr o) const { return v_ != o.v_; }
	constexpr bool operator<(Addr o) const { return v_ < o.v_; }
	constexpr bool operator<=(Addr o) const { return v_ <= o.v_; }
	constexpr bool operator>(Addr o) const { return v_ > o.v_; }
	constexpr bool operator>=(Addr o) const { return v_ >= o.v_; }

	// Offsets are plain counts in the type's own unit (bytes or frames).
	constexpr Addr operator+(u64 n) const { return Addr(v_ + n); }
	constexpr Addr operator-(u64 n) const { return Addr(v_ - n); }
	constexpr u64 operator-(Addr o) const { return v_ - o.v_; }

private:
	u64 v_ = 0;
};

struct GpaTag;
struct GfnTag;
struct HvaTag;
struct PfnTag;

using Gpa = Addr<GpaTag>; // guest physical address (bytes)
using Gfn = Addr<GfnTag>; // guest frame number (host-page units, like KVM)
using Hva = Addr<HvaTag>; // host (VMM) virtual address (bytes)
using Pfn = Addr<PfnTag>; // host page frame number

constexpr Gfn to_gfn(Gpa a) { return Gfn(a.raw() >> kPageShift); }
constexpr Gpa to_gpa(Gfn f) { return Gpa(f.raw() << kPageShift); }
constexpr u64 page_offset(Gpa a) { return a.raw() & (kPageSize - 1); }
constexpr u64 page_offset(Hva a) { return a.raw() & (kPageSize - 1); }
constexpr bool page_aligned(u64 v) { return !(v & (kPageSize - 1)); }

} // namespace kvmmu
