// SPDX-License-Identifier: GPL-2.0
/*
 * What kvmmu shows of a VM's memory work: its tracepoints fire with the
 * right arguments for a fault, an invalidation pair and a dirty-log
 * harvest, and the VM's debugfs directory reports the same counts as
 * KVMMU_GET_STATS and goes away with the VM.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "../lib/ktap.h"
#include "../lib/kvmmu_util.h"

#define NTESTS 9
#define GPA 0x40000000ull

static const char *tracing;

static int write_file(const char *dir, const char *name, const char *val)
{
	char path[256];
	int fd, ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0)
		return 0;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok;
}

static char *read_file(const char *path)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0 || !buf) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += n;
		if (cap - len < 4096) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				break;
		}
	}
	close(fd);
	if (buf)
		buf[len] = 0;
	return buf;
}

/* The debugfs stats directory of this process's VM, or NULL. */
static char *vm_debugfs_dir(void)
{
	static char path[512];
	char prefix[32];
	DIR *d = opendir("/sys/kernel/debug/kvmmu");
	struct dirent *e;
	int found = 0;

	if (!d)
		return NULL;
	snprintf(prefix, sizeof(prefix), "vm-%d-", getpid());
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, prefix, strlen(prefix))) {
			snprintf(path, sizeof(path), "/sys/kernel/debug/kvmmu/%s", e->d_name);
			found++;
		}
	closedir(d);
	return found == 1 ? path : NULL;
}

static long long stat_in(const char *text, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "%s ", key);
	for (p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, pat, strlen(pat)))
			return atoll(p + strlen(pat));
	return -1;
}

int main(void)
{
	static const char *events[] = {
		"kvmmu_fault", "kvmmu_invalidate_start", "kvmmu_invalidate_end",
		"kvmmu_retry", "kvmmu_dirty_log",
	};
	long pg = kvmmu_page_size();
	char path[1024], want[128];
	int dev, vm, ok;

	ktap_start(NTESTS);
	dev = kvmmu_open();
	vm = dev >= 0 ? kvmmu_create_vm(dev) : -1;
	if (!ktap_result(vm >= 0, "create_vm"))
		return ktap_finish();
	char *mem = mmap(NULL, 16 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(mem, 0x5a, 16 * pg);
	ok = mem != MAP_FAILED && kvmmu_set_region(vm, 0, KVMMU_MEM_LOG_DIRTY_PAGES, GPA, 16 * pg, mem) == 0;
	ktap_result(ok, "slot_with_dirty_logging");

	/* Tracepoints. */
	if (!access("/sys/kernel/tracing/events", F_OK))
		tracing = "/sys/kernel/tracing";
	else if (!access("/sys/kernel/debug/tracing/events", F_OK))
		tracing = "/sys/kernel/debug/tracing";
	int have = 0;
	for (unsigned i = 0; tracing && i < sizeof(events) / sizeof(events[0]); i++) {
		snprintf(path, sizeof(path), "%s/events/kvmmu/%s", tracing, events[i]);
		have += !access(path, F_OK);
	}
	if (!tracing) {
		for (int i = 0; i < 5; i++)
			ktap_skip("tracepoints (no tracefs)");
	} else {
		ktap_result(have == 5, "all_five_events_defined (%d)", have);
		snprintf(path, sizeof(path), "%s/events/kvmmu", tracing);
		ok = write_file(tracing, "trace", "") && write_file(path, "enable", "1");
		uint64_t v = 0;
		int r1 = kvmmu_gpa_read(vm, GPA + 3 * pg + 8, &v, sizeof(v));
		int r2 = kvmmu_gpa_write(vm, GPA + 5 * pg, &v, sizeof(v));
		uint64_t bm = 0;
		int r3 = kvmmu_get_dirty_log(vm, 0, &bm);
		int r4 = munmap(mem + 8 * pg, pg);
		write_file(path, "enable", "0");
		snprintf(path, sizeof(path), "%s/trace", tracing);
		char *trace = read_file(path);
		ok = ok && !r1 && !r2 && !r3 && !r4 && trace;
		snprintf(want, sizeof(want), "kvmmu_fault: vm=");
		char *f = trace ? strstr(trace, want) : NULL;
		snprintf(want, sizeof(want), "gpa=0x%llx access=0x0 ret=0",
			 (unsigned long long)(GPA + 3 * pg + 8));
		ktap_result(ok && f && strstr(trace, want), "fault_event (%s)", want);
		snprintf(want, sizeof(want), "gpa=0x%llx access=0x1 ret=0",
			 (unsigned long long)(GPA + 5 * pg));
		ktap_result(ok && strstr(trace, want), "write_fault_event (%s)", want);
		snprintf(want, sizeof(want), "hva=[0x%llx, 0x%llx)",
			 (unsigned long long)(uintptr_t)(mem + 8 * pg),
			 (unsigned long long)(uintptr_t)(mem + 9 * pg));
		char *s = trace ? strstr(trace, "kvmmu_invalidate_start:") : NULL;
		char *e = trace ? strstr(trace, "kvmmu_invalidate_end:") : NULL;
		ktap_result(ok && s && e && strstr(s, want) && strstr(e, want),
			    "invalidate_start_end_events (%s)", want);
		ktap_result(ok && strstr(trace, "kvmmu_dirty_log:") &&
			    strstr(trace, "slot=0 dirty_pages=1") && bm == (1ull << 5),
			    "dirty_log_event");
		if (!ok || !f)
			ktap_diag("trace:\n%.2000s", trace ? trace : "(none)");
		free(trace);
	}

	/* Per-VM debugfs. */
	char *dir = vm_debugfs_dir();
	struct kvmmu_vm_stats st;
	char *text = NULL;
	if (dir) {
		snprintf(path, sizeof(path), "%s/stats", dir);
		text = read_file(path);
	}
	ok = text && kvmmu_get_stats(vm, &st) == 0 &&
	     stat_in(text, "faults") == (long long)st.faults && st.faults >= 2 &&
	     stat_in(text, "invalidate_range_start") == (long long)st.invalidate_range_start &&
	     stat_in(text, "leaves_level0") == (long long)st.leaves[0] &&
	     stat_in(text, "dirty_faults") == 1;
	ktap_result(ok, "debugfs_stats_match_get_stats");
	if (!ok && text)
		ktap_diag("%s", text);
	free(text);
	char saved[512];
	snprintf(saved, sizeof(saved), "%s", dir ? dir : "");
	close(vm);
	ktap_result(dir && access(saved, F_OK) != 0, "debugfs_dir_gone_with_the_vm");
	close(dev);
	return ktap_finish();
}
