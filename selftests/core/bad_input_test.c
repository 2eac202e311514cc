// SPDX-License-Identifier: GPL-2.0
/*
 * Every bad input to the /dev/kvmmu and VM ioctls gets its documented error
 * and changes nothing (no VM is created by a failing KVMMU_CREATE_VM).
 */
#include <stddef.h>
#include <sys/mman.h>

#include "../lib/ktap.h"
#include "../lib/kvmmu_util.h"

int main(void)
{
	struct kvmmu_create_vm args;
	struct kvmmu_vm_stats st;
	long pg = sysconf(_SC_PAGESIZE);
	long long created0;
	int dev, vm, i;

	ktap_start(21);
	dev = kvmmu_open();
	if (dev < 0) {
		ktap_diag("open /dev/kvmmu: %s", strerror(errno));
		return 1;
	}
	created0 = kvmmu_module_stat("vms_created");

	/* /dev/kvmmu */
	KTAP_EXPECT_ERRNO(ioctl(dev, _IO(KVMMU_IO, 0x7f), 0), ENOTTY, "dev_unknown_nr_ENOTTY");
	KTAP_EXPECT_ERRNO(ioctl(dev, _IO('x', 1), 0), ENOTTY, "dev_foreign_type_ENOTTY");
	KTAP_EXPECT_ERRNO(ioctl(dev, KVMMU_GET_STATS, &st), ENOTTY, "dev_vm_ioctl_ENOTTY");
	/* Same number, wrong size/direction encoding: a different command. */
	KTAP_EXPECT_ERRNO(ioctl(dev, _IOR(KVMMU_IO, 0x01, struct kvmmu_create_vm), &args), ENOTTY,
			  "dev_create_vm_wrong_direction_ENOTTY");
	KTAP_EXPECT_ERRNO(ioctl(dev, KVMMU_GET_API_VERSION, 1), EINVAL, "api_version_nonzero_arg_EINVAL");
	KTAP_EXPECT_ERRNO(ioctl(dev, KVMMU_CREATE_VM, NULL), EFAULT, "create_vm_null_EFAULT");
	KTAP_EXPECT_ERRNO(ioctl(dev, KVMMU_CREATE_VM, (void *)1), EFAULT, "create_vm_bad_ptr_EFAULT");

	/* A struct that straddles into an unmapped page. */
	char *two = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(two + pg, pg);
	memset(two, 0, pg);
	KTAP_EXPECT_ERRNO(ioctl(dev, KVMMU_CREATE_VM, two + pg - 8), EFAULT,
			  "create_vm_straddling_unmapped_EFAULT");

	memset(&args, 0, sizeof(args));
	args.flags = 1;
	KTAP_EXPECT_ERRNO(ioctl(dev, KVMMU_CREATE_VM, &args), EINVAL, "create_vm_flag_bit0_EINVAL");
	args.flags = 0x80000000u;
	KTAP_EXPECT_ERRNO(ioctl(dev, KVMMU_CREATE_VM, &args), EINVAL, "create_vm_flag_bit31_EINVAL");
	memset(&args, 0, sizeof(args));
	args.pad = 1;
	KTAP_EXPECT_ERRNO(ioctl(dev, KVMMU_CREATE_VM, &args), EINVAL, "create_vm_pad_EINVAL");
	for (i = 0; i < 3; i++) {
		memset(&args, 0, sizeof(args));
		args.reserved[i] = 1ull << (20 * i);
		KTAP_EXPECT_ERRNO(ioctl(dev, KVMMU_CREATE_VM, &args), EINVAL,
				  "create_vm_reserved%d_EINVAL", i);
	}
	ktap_result(kvmmu_module_stat("vms_created") == created0, "failed_creates_created_nothing");

	/* VM fd */
	vm = kvmmu_create_vm(dev);
	ktap_result(vm >= 0, "create_vm_valid");
	KTAP_EXPECT_ERRNO(ioctl(vm, _IO(KVMMU_IO, 0x7f), 0), ENOTTY, "vm_unknown_nr_ENOTTY");
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_CREATE_VM, &args), ENOTTY, "vm_dev_ioctl_ENOTTY");
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_GET_STATS, NULL), EFAULT, "get_stats_null_EFAULT");
	char *ro = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_GET_STATS, ro), EFAULT, "get_stats_readonly_buf_EFAULT");
	/* Every field is written: a fresh VM has faulted nothing, maps nothing. */
	memset(&st, 0xff, sizeof(st));
	int r = ioctl(vm, KVMMU_GET_STATS, &st);
	int zero = st.faults == 0 && st.fault_retries == 0 && st.dirty_faults == 0 &&
		   st.pages_unmapped == 0 && st.table_pages == 1;
	for (i = 0; i < (int)(sizeof(st.leaves) / sizeof(st.leaves[0])); i++)
		zero &= st.leaves[i] == 0;
	ktap_result(r == 0 && zero, "get_stats_fresh_vm_fields_written");
	close(vm);
	close(dev);
	return ktap_finish();
}
