// SPDX-License-Identifier: GPL-2.0
// The module's one C++ translation unit.
//
// Each module links exactly one C++ object: GCC's -mrecord-mcount (used
// for ftrace on x86) writes __mcount_loc outside COMDAT groups, so when two
// objects carry the same inline or template function, `ld -r` discards one
// copy that __mcount_loc still references and the link fails. One
// translation unit has no duplicate COMDATs. The host build compiles the
// same sources separately (host/CMakeLists.txt).
#include "runtime.cpp"
#include "../mmu/invalidation.cpp"
#include "../mmu/gfn_to_pfn.cpp"
#include "../mmu/vm.cpp"
#include "../mmu/hooks.cpp"
#include "../mmu/memslot.cpp"
#include "../mmu/pgtable/mm_ops.cpp"
#include "../mmu/pgtable/pgtable.cpp"
#include "../pfncache/pfncache.cpp"
#include "../pfncache/hooks.cpp"
#include "../passthrough/mmio.cpp"
#include "../passthrough/hooks.cpp"
