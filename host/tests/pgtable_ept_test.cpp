// SPDX-License-Identifier: GPL-2.0
// The typed page-table cases (pgtable_cases.hpp) for x86-64 EPT, 4 and 5 levels.
#include "pgtable_cases.hpp"

namespace {
using Formats = ::testing::Types<Ept4, Ept5>;
INSTANTIATE_TYPED_TEST_SUITE_P(ept, PgtableTest, Formats, FormatName);
} // namespace
