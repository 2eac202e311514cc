// SPDX-License-Identifier: GPL-2.0
// The C++ core, compiled into the KUnit module (see glue.c).
#include "../runtime/runtime.cpp"
#include "../mmu/vm.cpp"
#include "../mmu/hooks.cpp"
