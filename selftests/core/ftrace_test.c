// SPDX-License-Identifier: GPL-2.0
/*
 * kvmmu's C++ functions are traceable like its C ones: the kernel lists
 * both in available_filter_functions. On architectures that record mcount
 * call sites with a post-compile step (ppc64le), a C++ rule that skipped
 * that step would leave the C++ functions out of this list.
 */
#include <stdio.h>
#include <string.h>

#include "../lib/ktap.h"

static const char *paths[] = {
	"/sys/kernel/tracing/available_filter_functions",
	"/sys/kernel/debug/tracing/available_filter_functions",
};

int main(void)
{
	int c_found = 0, cxx_found = 0, cxx_vm_create = 0;
	char line[512];
	FILE *f = NULL;

	ktap_start(3);
	for (unsigned i = 0; i < sizeof(paths) / sizeof(paths[0]) && !f; i++)
		f = fopen(paths[i], "r");
	if (!f) {
		ktap_skip("c_glue_traceable (no function tracer)");
		ktap_skip("cxx_core_traceable (no function tracer)");
		ktap_skip("cxx_vm_create_traceable (no function tracer)");
		return ktap_finish();
	}
	while (fgets(line, sizeof(line), f)) {
		if (!strstr(line, "[kvmmu]"))
			continue;
		if (!strncmp(line, "kvmmu_vmfd_create ", 18))
			c_found = 1;
		if (!strncmp(line, "_ZN5kvmmu", 9))
			cxx_found++;
		if (!strncmp(line, "_ZN5kvmmu2Vm6createEj ", 22))
			cxx_vm_create = 1;
	}
	fclose(f);
	ktap_result(c_found, "c_glue_traceable");
	ktap_result(cxx_found > 0, "cxx_core_traceable (%d C++ functions)", cxx_found);
	ktap_result(cxx_vm_create, "cxx_vm_create_traceable");
	return ktap_finish();
}
