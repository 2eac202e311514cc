// SPDX-License-Identifier: GPL-2.0
// The stage-2 format a VM's tables use on the architecture kvmmu is built
// for, with the host's page size as the base page (a gfn is a host page,
// as in KVM).
#pragma once

#include <kvmmu/types.hpp>

#include "pgtable/format.hpp"

namespace kvmmu {

namespace detail {
template <bool C, class A, class B> struct pick { using type = A; };
template <class A, class B> struct pick<false, A, B> { using type = B; };
} // namespace detail

#if defined(__x86_64__)
using S2Format = pgt::Ept4;
#elif defined(__aarch64__)
using S2Format = typename detail::pick<kPageShift == 12, pgt::ArmS2_4K_L4,
	typename detail::pick<kPageShift == 14, pgt::ArmS2_16K_L3, pgt::ArmS2_64K_L3>::type>::type;
#elif defined(__powerpc64__)
using S2Format = typename detail::pick<kPageShift == 16, pgt::PpcRadix64K, pgt::PpcRadix4K>::type;
#else
#error "kvmmu: no stage-2 format for this architecture"
#endif

static_assert(S2Format::page_shift == kPageShift, "stage-2 base page must be the host page");

} // namespace kvmmu
