// SPDX-License-Identifier: GPL-2.0
// The typed page-table cases (pgtable_cases.hpp) for arm64 stage-2, 4K granule, 3 and 4 levels.
#include "pgtable_cases.hpp"

namespace {
using Formats = ::testing::Types<ArmS2_4K_L3, ArmS2_4K_L4>;
INSTANTIATE_TYPED_TEST_SUITE_P(arm4k, PgtableTest, Formats, FormatName);
} // namespace
