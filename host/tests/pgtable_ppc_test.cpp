// SPDX-License-Identifier: GPL-2.0
// The typed page-table cases (pgtable_cases.hpp) for ppc64 radix, 4K and 64K pages.
#include "pgtable_cases.hpp"

namespace {
using Formats = ::testing::Types<PpcRadix4K, PpcRadix64K>;
INSTANTIATE_TYPED_TEST_SUITE_P(ppc, PgtableTest, Formats, FormatName);
} // namespace
