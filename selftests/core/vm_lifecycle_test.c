// SPDX-License-Identifier: GPL-2.0
/*
 * VM file descriptors: creation and close in a loop leak nothing, a VM
 * outlives the /dev/kvmmu fd, and a VM fd used from another address space
 * (after fork, or passed over a socket after its creator exited) fails
 * with EIO and still closes cleanly.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include "../lib/ktap.h"
#include "../lib/kvmmu_util.h"

static int send_fd(int sock, int fd)
{
	char buf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte = 'x';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = buf, .msg_controllen = sizeof(buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char buf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = buf, .msg_controllen = sizeof(buf) };
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &msg, 0) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
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

	/* A VM whose creator exited (its mm released) reaches us over a socket. */
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	pid = fork();
	if (pid == 0) {
		int d = kvmmu_open();
		int v = kvmmu_create_vm(d);
		_exit(v >= 0 && send_fd(sv[1], v) == 0 ? 0 : 1);
	}
	int orphan = recv_fd(sv[0]);
	waitpid(pid, &status, 0);
	ktap_result(orphan >= 0 && ioctl(orphan, KVMMU_GET_STATS, &st) == -1 && errno == EIO,
		    "vm_of_exited_creator_is_EIO");
	close(orphan);
	close(sv[0]);
	close(sv[1]);
	ktap_result(kvmmu_module_stat("vms_live") == live0, "all_vms_freed");
	return ktap_finish();
}
