// SPDX-License-Identifier: GPL-2.0
/*
 * Device memory through VFIO, the way a VMM assigns a device: QEMU's edu
 * (1234:11e8) is bound to vfio-pci in no-IOMMU mode (these VMs have no
 * IOMMU), its BAR 0 is mmapped through the VFIO device fd and registered as
 * an ordinary memslot. vfio-pci fills that mapping lazily, from its fault
 * handler, so kvmmu's first access finds no pte and must fault it in
 * through the kernel's user-fault path (fixup_user_fault) before it can
 * resolve the pfn. Checked: the registers through KVMMU_GPA_ACCESS (the
 * first access before any direct load), the leaf's type, refused sizes,
 * munmap and closing the device zapping the leaves, and a device reset (if
 * the device has one) zapping them too.
 *
 * Skips (KTAP plan 1..0) where the kernel has no VFIO no-IOMMU mode (the
 * stock kernels, ppc64le) or no edu device.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <inttypes.h>
#include <libgen.h>
#include <linux/vfio.h>
#include <stdint.h>
#include <sys/mman.h>

#include "../lib/ktap.h"
#include "../lib/kvmmu_util.h"

#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8
#define EDU_ID 0x00
#define EDU_LIVE 0x04
#define EDU_FACT 0x08
#define EDU_STATUS 0x20
#define EDU_DMA_SRC 0x80

#define GPA (1ull << 30)
#define SLOT 0
#define NOIOMMU_PARAM "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode"

#define NTESTS 17

static char bdf[256], sysdir[512];
static int vm, container = -1, group = -1, device = -1;
static long pg;

static int read_hex(const char *dir, const char *name, unsigned long long *v)
{
	char path[600];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	ok = fscanf(f, "%llx", v) == 1;
	fclose(f);
	return ok ? 0 : -1;
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

static int find_edu(void)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;
	int found = 0;

	if (!d)
		return 0;
	while (!found && (e = readdir(d))) {
		char dir[512];
		unsigned long long ven, dev;

		if (e->d_name[0] == '.')
			continue;
		snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s", e->d_name);
		if (read_hex(dir, "vendor", &ven) || read_hex(dir, "device", &dev))
			continue;
		if (ven == EDU_VENDOR && dev == EDU_DEVICE) {
			snprintf(sysdir, sizeof(sysdir), "%s", dir);
			snprintf(bdf, sizeof(bdf), "%s", e->d_name);
			found = 1;
		}
	}
	closedir(d);
	return found;
}

/* edu to vfio-pci; the no-IOMMU group's number, or -1. */
static int bind_vfio(void)
{
	char path[700], link[700], *name;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/driver_override", sysdir);
	if (write_str(path, "vfio-pci"))
		return -1;
	if (write_str("/sys/bus/pci/drivers_probe", bdf))
		return -1;
	snprintf(path, sizeof(path), "%s/iommu_group", sysdir);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -1;
	link[n] = 0;
	name = basename(link);
	return atoi(name);
}

static void unbind_vfio(void)
{
	char path[700];

	write_str("/sys/bus/pci/drivers/vfio-pci/unbind", bdf);
	snprintf(path, sizeof(path), "%s/driver_override", sysdir);
	write_str(path, "\n");
}

/* The VFIO device fd of edu and BAR 0's region, mmap-able. */
static int open_device(int grp, struct vfio_region_info *ri)
{
	struct vfio_group_status gs = {.argsz = sizeof(gs)};
	char path[64];

	container = open("/dev/vfio/vfio", O_RDWR);
	snprintf(path, sizeof(path), "/dev/vfio/noiommu-%d", grp);
	group = open(path, O_RDWR);
	if (container < 0 || group < 0) {
		ktap_diag("open %s: %s", container < 0 ? "/dev/vfio/vfio" : path, strerror(errno));
		return -1;
	}
	if (ioctl(container, VFIO_GET_API_VERSION) != VFIO_API_VERSION ||
	    ioctl(group, VFIO_GROUP_GET_STATUS, &gs) || !(gs.flags & VFIO_GROUP_FLAGS_VIABLE) ||
	    ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) ||
	    ioctl(container, VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU)) {
		ktap_diag("vfio container/group setup: %s", strerror(errno));
		return -1;
	}
	device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (device < 0) {
		ktap_diag("VFIO_GROUP_GET_DEVICE_FD %s: %s", bdf, strerror(errno));
		return -1;
	}
	memset(ri, 0, sizeof(*ri));
	ri->argsz = sizeof(*ri);
	ri->index = VFIO_PCI_BAR0_REGION_INDEX;
	if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, ri) || !(ri->flags & VFIO_REGION_INFO_FLAG_MMAP)) {
		ktap_diag("BAR 0 region: %s (flags %#x)", strerror(errno), ri->flags);
		return -1;
	}
	return 0;
}

static void close_vfio(void)
{
	if (device >= 0)
		close(device);
	if (group >= 0)
		close(group);
	if (container >= 0)
		close(container);
	device = group = container = -1;
}

static int g_rd32(uint64_t gpa, uint32_t *v) { return kvmmu_gpa_read(vm, gpa, v, 4); }
static int g_wr32(uint64_t gpa, uint32_t v) { return kvmmu_gpa_write(vm, gpa, &v, 4); }

static int leaf(uint64_t gpa, struct kvmmu_translation *t)
{
	return kvmmu_translate(vm, gpa, t) == 0;
}

static int all_unmapped(uint64_t size)
{
	struct kvmmu_translation t;

	for (uint64_t off = 0; off < size; off += pg)
		if (!leaf(GPA + off, &t) || t.mapped)
			return 0;
	return 1;
}

int main(void)
{
	struct vfio_region_info ri;
	struct kvmmu_translation t;
	volatile char *bar;
	uint32_t v = 0, id;
	int dev, grp = -1, ok;

	pg = kvmmu_page_size();
	if (access(NOIOMMU_PARAM, W_OK) || !find_edu()) {
		printf("KTAP version 1\n1..0 # SKIP no VFIO no-IOMMU mode or no edu device\n");
		return 0;
	}
	ktap_start(NTESTS);
	ok = write_str(NOIOMMU_PARAM, "Y") == 0 && (grp = bind_vfio()) >= 0;
	if (!ktap_result(ok, "edu_bound_to_vfio_pci_noiommu (%s)", bdf)) {
		ktap_diag("%s", strerror(errno));
		unbind_vfio();
		return ktap_finish();
	}
	if (!ktap_result(open_device(grp, &ri) == 0, "vfio_device_fd_and_bar0_region")) {
		close_vfio();
		unbind_vfio();
		return ktap_finish();
	}
	ktap_diag("BAR 0 region: %llu bytes at offset %#llx", (unsigned long long)ri.size,
		  (unsigned long long)ri.offset);
	bar = mmap(NULL, ri.size, PROT_READ | PROT_WRITE, MAP_SHARED, device, ri.offset);
	dev = kvmmu_open();
	vm = dev >= 0 ? kvmmu_create_vm(dev) : -1;
	ok = bar != MAP_FAILED && vm >= 0 && kvmmu_set_region(vm, SLOT, 0, GPA, ri.size, (void *)bar) == 0;
	if (!ktap_result(ok, "bar0_mmap_through_the_device_fd_as_a_memslot")) {
		ktap_diag("%s", strerror(errno));
		close_vfio();
		unbind_vfio();
		return ktap_finish();
	}

	/* Nothing touched the mapping yet: vfio-pci has not filled it. */
	ktap_result(all_unmapped(ri.size), "no_leaf_before_the_first_access");
	/* kvmmu's access is the first: it faults the BAR in through vfio-pci. */
	ok = g_rd32(GPA + EDU_ID, &id) == 0;
	ktap_result(ok && id == *(volatile uint32_t *)(bar + EDU_ID),
		    "first_access_faults_the_lazy_bar_in (id %#x)", id);
	ok = leaf(GPA, &t) && t.mapped && t.memtype == KVMMU_MEMTYPE_DEVICE && !(t.prot & KVMMU_PROT_EXEC) &&
	     (t.prot & KVMMU_PROT_WRITE);
	ktap_result(ok, "leaf_is_device_rw_noexec (memtype %u prot %#x)", t.memtype, t.prot);

	ok = 1;
	for (uint32_t x = 1; ok && x < 0x10000000u; x = x * 7 + 3)
		ok = g_wr32(GPA + EDU_LIVE, x) == 0 && g_rd32(GPA + EDU_LIVE, &v) == 0 && v == ~x;
	ktap_result(ok, "liveness_through_gpa_access");
	{
		/* 5! = 120, written and polled through kvmmu; edu answers in its
		 * own byte order (swapped where the id reads swapped). */
		const int sw = id != 0x010000edu;
		uint32_t st = 1, res = 0;
		uint64_t deadline = kvmmu_now_ns() + 10000000000ull;

		ok = g_wr32(GPA + EDU_FACT, sw ? __builtin_bswap32(5) : 5) == 0;
		while (ok && kvmmu_now_ns() < deadline) {
			ok = g_rd32(GPA + EDU_STATUS, &st) == 0;
			if (!((sw ? __builtin_bswap32(st) : st) & 1))
				break;
		}
		ok = ok && g_rd32(GPA + EDU_FACT, &res) == 0 && (sw ? __builtin_bswap32(res) : res) == 120;
		ktap_result(ok, "factorial_through_gpa_access (%u)", sw ? __builtin_bswap32(res) : res);
	}
	{
		uint64_t d = 0x1122334455667788ull, back = 0;

		ok = kvmmu_gpa_write(vm, GPA + EDU_DMA_SRC, &d, 8) == 0 &&
		     kvmmu_gpa_read(vm, GPA + EDU_DMA_SRC, &back, 8) == 0 && back == d &&
		     *(volatile uint64_t *)(bar + EDU_DMA_SRC) == d;
		ktap_result(ok, "eight_byte_register_through_gpa_access");
	}
	{
		char b[16];

		ok = kvmmu_gpa_read(vm, GPA + 1, b, 4) == -1 && errno == EINVAL &&
		     kvmmu_gpa_read(vm, GPA, b, 3) == -1 && errno == EINVAL &&
		     kvmmu_gpa_read(vm, GPA, b, 16) == -1 && errno == EINVAL;
		ktap_result(ok, "odd_or_unaligned_accesses_EINVAL");
	}

	/* A device reset zaps vfio-pci's mappings, and so kvmmu's leaves. */
	{
		struct vfio_device_info di = {.argsz = sizeof(di)};

		if (ioctl(device, VFIO_DEVICE_GET_INFO, &di) == 0 && (di.flags & VFIO_DEVICE_FLAGS_RESET)) {
			ok = ioctl(device, VFIO_DEVICE_RESET) == 0 && all_unmapped(ri.size) &&
			     g_rd32(GPA + EDU_ID, &v) == 0 && v == id;
			ktap_result(ok, "reset_zaps_the_leaves_then_access_faults_in_again");
		} else {
			ktap_skip("reset_zaps_the_leaves (edu has no reset method)");
		}
	}

	/* munmap: leaves gone, accesses fail, nothing reaches the device. */
	g_wr32(GPA + EDU_LIVE, 0x1234);
	ok = munmap((void *)bar, ri.size) == 0 && all_unmapped(ri.size);
	ktap_result(ok, "munmap_zaps_every_page");
	ok = g_rd32(GPA + EDU_ID, &v) == -1 && errno == EFAULT && g_wr32(GPA + EDU_LIVE, 0x5678) == -1 &&
	     errno == EFAULT;
	ktap_result(ok, "accesses_after_munmap_EFAULT");
	bar = mmap(NULL, ri.size, PROT_READ | PROT_WRITE, MAP_SHARED, device, ri.offset);
	ok = bar != MAP_FAILED && kvmmu_delete_region(vm, SLOT) == 0 &&
	     kvmmu_set_region(vm, SLOT, 0, GPA, ri.size, (void *)bar) == 0 && all_unmapped(ri.size) &&
	     g_rd32(GPA + EDU_LIVE, &v) == 0 && v == ~0x1234u;
	ktap_result(ok, "remap_and_new_slot_work_and_refused_write_never_landed");

	/* Closing the device (the VMM releasing it) zaps the BAR mappings. */
	ok = g_rd32(GPA + EDU_ID, &v) == 0 && leaf(GPA, &t) && t.mapped;
	close_vfio();
	ok = ok && munmap((void *)bar, ri.size) == 0 && all_unmapped(ri.size);
	ktap_result(ok, "release_of_the_device_mapping_zaps_the_leaves");
	ktap_result(g_rd32(GPA + EDU_ID, &v) == -1 && errno == EFAULT, "access_after_release_EFAULT");

	ok = kvmmu_delete_region(vm, SLOT) == 0;
	close(vm);
	close(dev);
	unbind_vfio();
	ktap_result(ok, "cleanup");
	return ktap_finish();
}
