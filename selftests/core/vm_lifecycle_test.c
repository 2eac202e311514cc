// SPDX-License-Identifier: GPL-2.0
/*
 * VM file descriptors: creation and close in a loop leak nothing, a VM
 * outlives the /dev/kvmmu fd, and a VM fd used from another address space
 * (after fork, or taken over with pidfd_getfd before its creator exited) fails
 * with EIO and still closes cleanly.
 */
#include <sys/syscall.h>
#include <sys/wait.h>

#include "../lib/ktap.h"
#include "../lib/kvmmu_util.h"

/* Takes fd @fd of process @pid (needs ptrace rights: we are root). */
static int steal_fd(pid_t pid, int fd)
{
	int pidfd = syscall(SYS_pidfd_open, pid, 0);
	int r;

	if (pidfd < 0)
		return -1;
	r = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	close(pidfd);
	return r;
}

int main(void)
{
	struct kvmmu_vm_stats st;
	int dev, vm, i, ok, fds_before;
	long long live0, created0;
	int vms[64];

	ktap_start(9);
	dev = kvmmu_open();
	if (dev < 0) {
		ktap_diag("open /dev/kvmmu: %s", strerror(errno));
		return 1;
	}
	live0 = kvmmu_module_stat("vms_live");
	created0 = kvmmu_module_stat("vms_created");
	ktap_result(live0 >= 0 && created0 >= 0, "debugfs_stats_readable");

	fds_before = count_open_fds();
	ok = 1;
	for (i = 0; i < 1000 && ok; i++) {
		vm = kvmmu_create_vm(dev);
		ok = vm >= 0 && ioctl(vm, KVMMU_GET_STATS, &st) == 0;
		if (vm >= 0)
			close(vm);
	}
	ktap_result(ok, "create_close_1000_vms");
	ktap_result(kvmmu_module_stat("vms_live") == live0 &&
		    kvmmu_module_stat("vms_created") == created0 + 1000 &&
		    count_open_fds() == fds_before, "no_vm_or_fd_leaked_after_loop");

	ok = 1;
	for (i = 0; i < 64; i++) {
		vms[i] = kvmmu_create_vm(dev);
		ok &= vms[i] >= 0;
	}
	ok &= kvmmu_module_stat("vms_live") == live0 + 64;
	for (i = 0; i < 64; i++)
		close(vms[i]);
	ktap_result(ok && kvmmu_module_stat("vms_live") == live0, "64_vms_at_once");

	vm = kvmmu_create_vm(dev);
	ktap_result((fcntl(vm, F_GETFD) & FD_CLOEXEC) != 0, "vm_fd_is_cloexec");
	close(dev);
	ktap_result(ioctl(vm, KVMMU_GET_STATS, &st) == 0, "vm_outlives_dev_fd");

	/* After fork the child has another mm: EIO. */
	pid_t pid = fork();
	if (pid == 0)
		_exit(ioctl(vm, KVMMU_GET_STATS, &st) == -1 && errno == EIO ? 0 : 1);
	int status = 0;
	waitpid(pid, &status, 0);
	ktap_result(WIFEXITED(status) && WEXITSTATUS(status) == 0, "ioctl_from_child_mm_is_EIO");
	close(vm);

	/*
	 * A VM whose creator exited (so its mm was released) is still held
	 * by us: its ioctls fail with EIO and closing it frees it.
	 */
	int to_child[2], from_child[2];
	char c = 0;
	int child_vm = -1;
	if (pipe(to_child) || pipe(from_child))
		return 1;
	pid = fork();
	if (pid == 0) {
		int d = kvmmu_open();
		int v = kvmmu_create_vm(d);
		if (write(from_child[1], &v, sizeof(v)) != sizeof(v))
			_exit(1);
		_exit(read(to_child[0], &c, 1) == 1 ? 0 : 1); /* wait to be told */
	}
	if (read(from_child[0], &child_vm, sizeof(child_vm)) != sizeof(child_vm))
		child_vm = -1;
	int orphan = child_vm >= 0 ? steal_fd(pid, child_vm) : -1;
	if (write(to_child[1], &c, 1) != 1)
		ktap_diag("cannot release the child");
	waitpid(pid, &status, 0);
	int r = orphan >= 0 ? ioctl(orphan, KVMMU_GET_STATS, &st) : -2;
	if (!ktap_result(r == -1 && errno == EIO, "vm_of_exited_creator_is_EIO"))
		ktap_diag("fd %d ioctl %d errno %s child status 0x%x", orphan, r, strerror(errno),
			  status);
	close(orphan);
	ktap_result(kvmmu_module_stat("vms_live") == live0, "all_vms_freed");
	return ktap_finish();
}
