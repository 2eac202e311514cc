// SPDX-License-Identifier: GPL-2.0
// The KUnit module's one C++ translation unit (see runtime/kvmmu.cpp for
// why there is one): the C++ core, compiled as in kvmmu.ko, and the test
// bodies. The platform glue comes in through glue.c.
#include "../runtime/kvmmu.cpp"

#include "runtime_test.cpp"
#include "vm_test.cpp"
#include "pgtable_test.cpp"
#include "guest_walk_test.cpp"
#include "memslot_test.cpp"
#include "fault_test.cpp"
#include "pfncache_test.cpp"
#include "passthrough_test.cpp"
