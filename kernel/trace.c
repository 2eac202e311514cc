// SPDX-License-Identifier: GPL-2.0
/* The platform's trace functions: each fires one tracepoint of trace.h. */
#define CREATE_TRACE_POINTS
#include "kvmmu_trace.h"

#include <kvmmu/platform.h>

void kvmmu_plat_trace_fault(const void *vm, uint64_t gpa, unsigned int access, int ret,
			    unsigned int level, uint64_t pfn)
{
	trace_kvmmu_fault(vm, gpa, access, ret, level, pfn);
}

void kvmmu_plat_trace_invalidate_start(const void *vm, uint64_t start, uint64_t end,
				       unsigned int in_flight)
{
	trace_kvmmu_invalidate_start(vm, start, end, in_flight);
}

void kvmmu_plat_trace_invalidate_end(const void *vm, uint64_t start, uint64_t end, uint64_t seq)
{
	trace_kvmmu_invalidate_end(vm, start, end, seq);
}

void kvmmu_plat_trace_retry(const void *vm, uint64_t gpa, uint64_t seq)
{
	trace_kvmmu_retry(vm, gpa, seq);
}

void kvmmu_plat_trace_dirty_log(const void *vm, unsigned int slot, uint64_t dirty_pages)
{
	trace_kvmmu_dirty_log(vm, slot, dirty_pages);
}
