/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C side of kvmmu's KUnit suites: a suite lists its cases once, in a macro
 * CASES(CXX, C): CXX(suite, name) entries have a C++ body
 * (kvmmu_kt_<suite>__<name>, see kt.hpp) and get a C case that calls it;
 * C(suite, name) entries are C cases kt_<suite>__<name> written by hand.
 */
#ifndef KVMMU_KUNIT_KT_H
#define KVMMU_KUNIT_KT_H

#include <kunit/test.h>

void kvmmu_kt_begin(struct kunit *test);
void kvmmu_kt_end(struct kunit *test);

#define KT_DEFINE(suite, name)						\
	void kvmmu_kt_##suite##__##name(void *kt);			\
	static void kt_##suite##__##name(struct kunit *test)		\
	{								\
		kvmmu_kt_begin(test);					\
		kvmmu_kt_##suite##__##name(test);			\
		kvmmu_kt_end(test);					\
	}

#define KT_KUNIT_CASE(s, n) { .run_case = kt_##s##__##n, .name = #n },

#define KT_NONE(suite, name)

#define KT_SUITE_WITH(suite, CASES, ...)				\
	CASES(KT_DEFINE, KT_NONE)					\
	static struct kunit_case kt_cases_##suite[] = {			\
		CASES(KT_KUNIT_CASE, KT_KUNIT_CASE)			\
		{}							\
	};								\
	static struct kunit_suite kt_suite_##suite = {			\
		.name = "kvmmu_" #suite,				\
		.test_cases = kt_cases_##suite,				\
		__VA_ARGS__						\
	}

#define KT_SUITE(suite, CASES) KT_SUITE_WITH(suite, CASES)

/* A suite whose cases run in the loading process's address space. */
#define KT_SUITE_MM(suite, CASES)					\
	KT_SUITE_WITH(suite, CASES,					\
		      .suite_init = kvmmu_kt_mm_suite_init,		\
		      .suite_exit = kvmmu_kt_mm_suite_exit,		\
		      .init = kvmmu_kt_mm_case_init,			\
		      .exit = kvmmu_kt_mm_case_exit,)

#endif
