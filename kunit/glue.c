// SPDX-License-Identifier: GPL-2.0
/*
 * The KUnit module runs the same core code as kvmmu.ko, built from the same
 * sources with the same flags: this file brings in the platform glue,
 * core.cpp the C++ core. Plus the reporting helpers of kt.hpp.
 */
#include "../kernel/platform.c"

#include <kunit/test.h>

void kvmmu_kt_fail(void *kt, const char *file, int line, const char *expr);
void kvmmu_kt_fail_eq(void *kt, const char *file, int line, const char *a, const char *b,
		      long long va, long long vb);

void kvmmu_kt_fail(void *kt, const char *file, int line, const char *expr)
{
	KUNIT_FAIL((struct kunit *)kt, "%s:%d: expected %s", file, line, expr);
}

void kvmmu_kt_fail_eq(void *kt, const char *file, int line, const char *a, const char *b,
		      long long va, long long vb)
{
	KUNIT_FAIL((struct kunit *)kt, "%s:%d: expected %s == %s, got %lld != %lld",
		   file, line, a, b, va, vb);
}
