// SPDX-License-Identifier: GPL-2.0
// The typed page-table cases (pgtable_cases.hpp) for arm64 stage-2, 16K and 64K granules.
#include "pgtable_cases.hpp"

namespace {
using Formats = ::testing::Types<ArmS2_16K_L3, ArmS2_64K_L3>;
INSTANTIATE_TYPED_TEST_SUITE_P(arm16k64k, PgtableTest, Formats, FormatName);
} // namespace
