/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Minimal KTAP output for kvmmu's userspace selftests.
 *   ktap_start(n); ... ktap_check(cond, "name"); ... return ktap_finish();
 */
#ifndef KVMMU_SELFTEST_KTAP_H
#define KVMMU_SELFTEST_KTAP_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ktap_n, ktap_planned, ktap_failed;

static inline void ktap_start(int planned)
{
	ktap_planned = planned;
	printf("KTAP version 1\n1..%d\n", planned);
	fflush(stdout);
}

static inline void ktap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* Reports one test; returns cond so callers can stop early. */
static inline int ktap_result(int cond, const char *fmt, ...)
{
	char name[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	ktap_n++;
	if (!cond)
		ktap_failed++;
	printf("%sok %d %s\n", cond ? "" : "not ", ktap_n, name);
	fflush(stdout);
	return cond;
}

static inline void ktap_skip(const char *fmt, ...)
{
	char name[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	ktap_n++;
	printf("ok %d %s # SKIP\n", ktap_n, name);
	fflush(stdout);
}

/* Expect a syscall-style result: -1 with errno == err (err 0: success). */
#define KTAP_EXPECT_ERRNO(ret, err, ...)					\
	({									\
		long r__ = (long)(ret);						\
		int e__ = errno;						\
		int ok__ = (err) ? (r__ == -1 && e__ == (err)) : (r__ >= 0);	\
		if (!ok__)							\
			ktap_diag("got %ld (errno %d %s), expected %s", r__,	\
				  r__ == -1 ? e__ : 0,				\
				  r__ == -1 ? strerror(e__) : "",		\
				  (err) ? strerror(err) : "success");		\
		ktap_result(ok__, __VA_ARGS__);					\
	})

static inline int ktap_finish(void)
{
	if (ktap_n != ktap_planned) {
		printf("# planned %d tests, ran %d\n", ktap_planned, ktap_n);
		ktap_failed++;
	}
	printf("# totals: pass:%d fail:%d\n", ktap_n - ktap_failed, ktap_failed);
	return ktap_failed ? 1 : 0;
}

#endif
