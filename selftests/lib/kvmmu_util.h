/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers shared by kvmmu selftests. */
#ifndef KVMMU_SELFTEST_UTIL_H
#define KVMMU_SELFTEST_UTIL_H

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvmmu.h>

static inline int kvmmu_open(void)
{
	return open("/dev/kvmmu", O_RDWR | O_CLOEXEC);
}

static inline int kvmmu_create_vm(int devfd)
{
	struct kvmmu_create_vm args;

	memset(&args, 0, sizeof(args));
	return ioctl(devfd, KVMMU_CREATE_VM, &args);
}

/* A counter from /sys/kernel/debug/kvmmu/stats, or -1. */
static inline long long kvmmu_module_stat(const char *name)
{
	char key[64];
	long long v, found = -1;
	FILE *f = fopen("/sys/kernel/debug/kvmmu/stats", "r");

	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", key, &v) == 2)
		if (!strcmp(key, name))
			found = v;
	fclose(f);
	return found;
}

static inline int count_open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			n++;
	return n;
}

#endif
