// SPDX-License-Identifier: GPL-2.0
/*
 * kvmmu serving KVM (docs/kvm.md), seen from userspace: a VM created
 * through /dev/kvm while kvmmu.ko is loaded is kvmmu's (its debugfs
 * counters say so), kvmmu.ko cannot be unloaded while such a VM lives, a
 * VM whose IPA space kvmmu's tables cannot start a walk for stays on
 * KVM's own MMU, and so does a VM created before kvmmu.ko was loaded.
 *
 * usage: registration_test [path of kvmmu.ko, default /kvmmu/kvmmu.ko]
 * Skips where there is no KVM, or a KVM kvmmu does not serve (every layer
 * but "kvm"). Unloads and reloads kvmmu.ko; leaves it loaded.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../lib/ktap.h"

#define STATS "/sys/kernel/debug/kvmmu/stats"
#define PLANNED 8

static long stat_of(const char *key)
{
	char line[128];
	size_t n = strlen(key);
	long v = -1;
	FILE *f = fopen(STATS, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ' ')
			v = strtol(line + n + 1, NULL, 10);
	fclose(f);
	return v;
}

static int create_vm(int kvm, unsigned long type)
{
	return ioctl(kvm, KVM_CREATE_VM, type);
}

static void skip_rest(const char *why)
{
	while (ktap_n < PLANNED)
		ktap_skip("%s", why);
}

int main(int argc, char **argv)
{
	const char *ko = argc > 1 ? argv[1] : "/kvmmu/kvmmu.ko";
	long created, live;
	int kvm, vm, vm_a, vm_b, r;

	ktap_start(PLANNED);
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		skip_rest("no /dev/kvm");
		return ktap_finish();
	}
	created = stat_of("core_vms_created");
	live = stat_of("core_vms_live");
	vm = create_vm(kvm, 0);
	if (vm < 0 || created < 0 || stat_of("core_vms_created") != created + 1) {
		if (vm >= 0)
			close(vm);
		skip_rest("this KVM is not served by kvmmu");
		return ktap_finish();
	}
	ktap_result(stat_of("core_vms_live") == live + 1, "vm_served_by_kvmmu");

	/* The VM holds a reference on kvmmu.ko. */
	r = syscall(SYS_delete_module, "kvmmu", O_NONBLOCK);
	ktap_result(r == -1 && (errno == EWOULDBLOCK || errno == EBUSY),
		    "unload_refused_while_a_vm_lives");

	/* Guest memory reaches kvmmu through KVM's memslot updates. */
	{
		void *mem = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				 -1, 0);
		struct kvm_userspace_memory_region m = {
			.slot = 3, .guest_phys_addr = 1ull << 39, .memory_size = 1 << 20,
			.userspace_addr = (unsigned long)mem,
		};
		int ok = mem != MAP_FAILED && !ioctl(vm, KVM_SET_USER_MEMORY_REGION, &m);

		m.memory_size = 0;
		ok = ok && !ioctl(vm, KVM_SET_USER_MEMORY_REGION, &m);
		ktap_result(ok, "memslot_create_and_delete");
		if (mem != MAP_FAILED)
			munmap(mem, 1 << 20);
	}

	/* 36 bits: too small a walk for kvmmu's level-0 root; KVM's own MMU. */
	created = stat_of("core_vms_created");
	vm_a = create_vm(kvm, KVM_VM_TYPE_ARM_IPA_SIZE(36));
	ktap_result(vm_a >= 0 && stat_of("core_vms_created") == created,
		    "ipa36_vm_stays_on_kvm_mmu");
	if (vm_a >= 0)
		close(vm_a);

	close(vm);
	ktap_result(stat_of("core_vms_live") == live, "vm_gone_releases_kvmmu");

	/* A VM created before kvmmu.ko is loaded stays on KVM's own MMU. */
	r = syscall(SYS_delete_module, "kvmmu", O_NONBLOCK);
	ktap_result(r == 0, "unload_once_no_vm_lives");
	vm_a = create_vm(kvm, 0);
	{
		int fd = open(ko, O_RDONLY | O_CLOEXEC);

		r = fd >= 0 ? syscall(SYS_finit_module, fd, "", 0) : -1;
		if (fd >= 0)
			close(fd);
	}
	vm_b = create_vm(kvm, 0);
	ktap_result(r == 0 && vm_a >= 0 && vm_b >= 0 && stat_of("core_vms_created") == 1 &&
		    stat_of("core_vms_live") == 1,
		    "vm_created_before_load_stays_on_kvm_mmu");
	if (vm_a >= 0)
		close(vm_a);
	if (vm_b >= 0)
		close(vm_b);
	ktap_result(stat_of("core_vms_live") == 0, "no_vm_left");
	close(kvm);
	return ktap_finish();
}
