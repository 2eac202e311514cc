// SPDX-License-Identifier: GPL-2.0
/* /dev/kvmmu exists with the right mode and reports the API version. */
#include <grp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "../lib/ktap.h"
#include "../lib/kvmmu_util.h"

int main(void)
{
	const char *want_gid = getenv("KVMMU_EXPECT_GID");
	struct stat st;
	int fd;

	ktap_start(6);
	ktap_result(stat("/dev/kvmmu", &st) == 0 && S_ISCHR(st.st_mode), "dev_node_is_chardev");
	if (want_gid)
		ktap_result((st.st_mode & 0777) == 0660 && st.st_gid == (gid_t)atoi(want_gid) &&
			    st.st_uid == 0, "dev_node_mode_0660_group_%s", want_gid);
	else
		ktap_result((st.st_mode & 0777) == 0600 && st.st_uid == 0 && st.st_gid == 0,
			    "dev_node_mode_0600_root");

	fd = kvmmu_open();
	if (!ktap_result(fd >= 0, "open_dev_kvmmu"))
		ktap_diag("open: %s", strerror(errno));
	ktap_result(ioctl(fd, KVMMU_GET_API_VERSION, 0) == KVMMU_API_VERSION, "api_version_is_%d",
		    KVMMU_API_VERSION);

	/* An unprivileged user without the group cannot open it. */
	pid_t pid = fork();
	if (pid == 0) {
		gid_t none[1] = { 4321 };
		if (setgroups(1, none) || setgid(4321) || setuid(4321))
			_exit(2);
		/* The node itself must be reachable: the denial is its mode. */
		if (stat("/dev/kvmmu", &st))
			_exit(3);
		_exit(open("/dev/kvmmu", O_RDWR) < 0 && errno == EACCES ? 0 : 1);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	ktap_result(WIFEXITED(status) && WEXITSTATUS(status) == 0, "unprivileged_open_is_EACCES");

	/* With group=N, a member of group N can open it. */
	if (want_gid) {
		pid = fork();
		if (pid == 0) {
			gid_t g[1] = { (gid_t)atoi(want_gid) };
			if (setgroups(1, g) || setgid(g[0]) || setuid(4321))
				_exit(2);
			if (open("/dev/kvmmu", O_RDWR) >= 0)
				_exit(0);
			printf("# group member open: %s\n", strerror(errno));
			_exit(1);
		}
		waitpid(pid, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			ktap_diag("child status 0x%x", status);
		ktap_result(WIFEXITED(status) && WEXITSTATUS(status) == 0, "group_member_can_open");
	} else {
		ktap_skip("group_member_can_open (no group= parameter)");
	}
	close(fd);
	return ktap_finish();
}
