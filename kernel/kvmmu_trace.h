/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmmu tracepoints: fault, invalidate start/end, retry, dirty log.
 * kvmmu.ko defines them in the "kvmmu" system; the KUnit module, which
 * carries its own copy of the core, in "kvmmu_kunit".
 */
#undef TRACE_SYSTEM
#ifdef KVMMU_TRACE_KUNIT
#define TRACE_SYSTEM kvmmu_kunit
#else
#define TRACE_SYSTEM kvmmu
#endif

#if !defined(KVMMU_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define KVMMU_TRACE_H

#include <linux/tracepoint.h>

TRACE_EVENT(kvmmu_fault,
	TP_PROTO(const void *vm, u64 gpa, unsigned int access, int ret, unsigned int level,
		 u64 pfn),
	TP_ARGS(vm, gpa, access, ret, level, pfn),
	TP_STRUCT__entry(
		__field(const void *, vm)
		__field(u64, gpa)
		__field(unsigned int, access)
		__field(int, ret)
		__field(unsigned int, level)
		__field(u64, pfn)
	),
	TP_fast_assign(
		__entry->vm = vm;
		__entry->gpa = gpa;
		__entry->access = access;
		__entry->ret = ret;
		__entry->level = level;
		__entry->pfn = pfn;
	),
	TP_printk("vm=%p gpa=0x%llx access=0x%x ret=%d level=%u pfn=0x%llx",
		  __entry->vm, __entry->gpa, __entry->access, __entry->ret, __entry->level,
		  __entry->pfn)
);

TRACE_EVENT(kvmmu_invalidate_start,
	TP_PROTO(const void *vm, u64 start, u64 end, unsigned int in_flight),
	TP_ARGS(vm, start, end, in_flight),
	TP_STRUCT__entry(
		__field(const void *, vm)
		__field(u64, start)
		__field(u64, end)
		__field(unsigned int, in_flight)
	),
	TP_fast_assign(
		__entry->vm = vm;
		__entry->start = start;
		__entry->end = end;
		__entry->in_flight = in_flight;
	),
	TP_printk("vm=%p hva=[0x%llx, 0x%llx) in_flight=%u", __entry->vm, __entry->start,
		  __entry->end, __entry->in_flight)
);

TRACE_EVENT(kvmmu_invalidate_end,
	TP_PROTO(const void *vm, u64 start, u64 end, u64 seq),
	TP_ARGS(vm, start, end, seq),
	TP_STRUCT__entry(
		__field(const void *, vm)
		__field(u64, start)
		__field(u64, end)
		__field(u64, seq)
	),
	TP_fast_assign(
		__entry->vm = vm;
		__entry->start = start;
		__entry->end = end;
		__entry->seq = seq;
	),
	TP_printk("vm=%p hva=[0x%llx, 0x%llx) seq=%llu", __entry->vm, __entry->start,
		  __entry->end, __entry->seq)
);

TRACE_EVENT(kvmmu_retry,
	TP_PROTO(const void *vm, u64 gpa, u64 seq),
	TP_ARGS(vm, gpa, seq),
	TP_STRUCT__entry(
		__field(const void *, vm)
		__field(u64, gpa)
		__field(u64, seq)
	),
	TP_fast_assign(
		__entry->vm = vm;
		__entry->gpa = gpa;
		__entry->seq = seq;
	),
	TP_printk("vm=%p gpa=0x%llx seq=%llu", __entry->vm, __entry->gpa, __entry->seq)
);

TRACE_EVENT(kvmmu_dirty_log,
	TP_PROTO(const void *vm, unsigned int slot, u64 dirty_pages),
	TP_ARGS(vm, slot, dirty_pages),
	TP_STRUCT__entry(
		__field(const void *, vm)
		__field(unsigned int, slot)
		__field(u64, dirty_pages)
	),
	TP_fast_assign(
		__entry->vm = vm;
		__entry->slot = slot;
		__entry->dirty_pages = dirty_pages;
	),
	TP_printk("vm=%p slot=%u dirty_pages=%llu", __entry->vm, __entry->slot,
		  __entry->dirty_pages)
);

#endif /* KVMMU_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE kvmmu_trace
#include <trace/define_trace.h>
