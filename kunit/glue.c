// SPDX-License-Identifier: GPL-2.0
/*
 * The KUnit module runs the same core code as kvmmu.ko, built from the same
 * sources with the same flags: this file brings in the platform glue,
 * core.cpp the C++ core. Plus the reporting helpers of kt.hpp.
 */
#include "../kernel/platform.c"

#include <kunit/test.h>

/*
 * Expectations may fail in atomic context (under a spinlock or rwlock), where
 * KUNIT_FAIL, which allocates, must not run. Failures are recorded in a
 * fixed buffer and reported when the case's body returns (kt.h). Cases run
 * one at a time, so one buffer serves.
 */
#define KT_MAX_FAILS 8
static char kt_msgs[KT_MAX_FAILS][256];
static unsigned int kt_nfails;
static DEFINE_SPINLOCK(kt_lock);

void kvmmu_kt_fail(void *kt, const char *file, int line, const char *expr);
void kvmmu_kt_fail_eq(void *kt, const char *file, int line, const char *a, const char *b,
		      long long va, long long vb);
void kvmmu_kt_begin(struct kunit *test);
void kvmmu_kt_end(struct kunit *test);

static __printf(1, 2) void kt_record(const char *fmt, ...)
{
	unsigned long flags;
	va_list args;

	spin_lock_irqsave(&kt_lock, flags);
	if (kt_nfails < KT_MAX_FAILS) {
		va_start(args, fmt);
		vsnprintf(kt_msgs[kt_nfails], sizeof(kt_msgs[0]), fmt, args);
		va_end(args);
	}
	kt_nfails++;
	spin_unlock_irqrestore(&kt_lock, flags);
}

void kvmmu_kt_fail(void *kt, const char *file, int line, const char *expr)
{
	kt_record("%s:%d: expected %s", file, line, expr);
}

void kvmmu_kt_fail_eq(void *kt, const char *file, int line, const char *a, const char *b,
		      long long va, long long vb)
{
	kt_record("%s:%d: expected %s == %s, got %lld != %lld", file, line, a, b, va, vb);
}

void kvmmu_kt_begin(struct kunit *test)
{
	kt_nfails = 0;
}

void kvmmu_kt_end(struct kunit *test)
{
	unsigned int i;

	for (i = 0; i < min(kt_nfails, (unsigned int)KT_MAX_FAILS); i++)
		KUNIT_FAIL(test, "%s", kt_msgs[i]);
	if (kt_nfails > KT_MAX_FAILS)
		KUNIT_FAIL(test, "... and %u more failed expectations", kt_nfails - KT_MAX_FAILS);
}
