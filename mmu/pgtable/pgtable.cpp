// SPDX-License-Identifier: GPL-2.0
// The page-table engine, instantiated once for every supported format.
#include "pgtable_impl.hpp"

namespace kvmmu::pgt {

template class PageTable<Ept4>;
template class PageTable<Ept5>;
template class PageTable<ArmS2_4K_L3>;
template class PageTable<ArmS2_4K_L4>;
template class PageTable<ArmS2_16K_L3>;
template class PageTable<ArmS2_64K_L3>;
template class PageTable<PpcRadix4K>;
template class PageTable<PpcRadix64K>;

} // namespace kvmmu::pgt
