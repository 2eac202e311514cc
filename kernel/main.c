// SPDX-License-Identifier: GPL-2.0
/* kvmmu module entry points and the /dev/kvmmu character device. */
#include <linux/cdev.h>
#include <linux/compat.h>
#include <linux/cred.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uidgid.h>

#include <uapi/linux/kvmmu.h>

#include "glue.h"

static int group = -1;
module_param(group, int, 0444);
MODULE_PARM_DESC(group,
		 "group id owning /dev/kvmmu, which is then mode 0660 (default -1: root only, mode 0600)");

static dev_t kvmmu_devt;
static struct cdev kvmmu_cdev;
static struct class *kvmmu_class;
static struct device *kvmmu_device;
static kgid_t kvmmu_gid;

static long kvmmu_create_vm(void __user *argp)
{
	struct kvmmu_create_vm args;
	int i;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.pad)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(args.reserved); i++)
		if (args.reserved[i])
			return -EINVAL;
	return kvmmu_vmfd_create(args.flags);
}

static long kvmmu_dev_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	switch (cmd) {
	case KVMMU_GET_API_VERSION:
		return arg ? -EINVAL : KVMMU_API_VERSION;
	case KVMMU_CREATE_VM:
		return kvmmu_create_vm((void __user *)arg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations kvmmu_dev_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = kvmmu_dev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

/* Called with NULL mode/uid/gid when devtmpfs only wants the name. */
static char *kvmmu_devnode(struct device *dev, umode_t *mode, kuid_t *uid, kgid_t *gid)
{
	bool grp = gid_valid(kvmmu_gid);

	if (mode)
		*mode = grp ? 0660 : 0600;
	if (gid && grp)
		*gid = kvmmu_gid;
	return NULL;
}

static const struct device_type kvmmu_dev_type = {
	.name = "kvmmu",
	.devnode = kvmmu_devnode,
};

static void kvmmu_dev_release(struct device *dev)
{
	kfree(dev);
}

int kvmmu_chardev_init(int gid)
{
	struct device *dev;
	int r;

	kvmmu_gid = INVALID_GID;
	if (gid != -1) {
		kvmmu_gid = make_kgid(&init_user_ns, gid);
		if (gid < 0 || !gid_valid(kvmmu_gid))
			return -EINVAL;
	}

	r = alloc_chrdev_region(&kvmmu_devt, 0, 1, "kvmmu");
	if (r)
		return r;
	cdev_init(&kvmmu_cdev, &kvmmu_dev_fops);
	kvmmu_cdev.owner = THIS_MODULE;
	r = cdev_add(&kvmmu_cdev, kvmmu_devt, 1);
	if (r)
		goto err_region;
	kvmmu_class = class_create(THIS_MODULE, "kvmmu");
	if (IS_ERR(kvmmu_class)) {
		r = PTR_ERR(kvmmu_class);
		goto err_cdev;
	}
	/* Set up by hand so the devnode type (mode, group) applies at add. */
	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev) {
		r = -ENOMEM;
		goto err_class;
	}
	device_initialize(dev);
	dev->devt = kvmmu_devt;
	dev->class = kvmmu_class;
	dev->type = &kvmmu_dev_type;
	dev->release = kvmmu_dev_release;
	r = dev_set_name(dev, "kvmmu");
	if (!r)
		r = device_add(dev);
	if (r) {
		put_device(dev);
		goto err_class;
	}
	kvmmu_device = dev;
	return 0;

err_class:
	class_destroy(kvmmu_class);
err_cdev:
	cdev_del(&kvmmu_cdev);
err_region:
	unregister_chrdev_region(kvmmu_devt, 1);
	return r;
}

void kvmmu_chardev_exit(void)
{
	device_unregister(kvmmu_device);
	class_destroy(kvmmu_class);
	cdev_del(&kvmmu_cdev);
	unregister_chrdev_region(kvmmu_devt, 1);
}

static int __init kvmmu_init(void)
{
	int r;

	kvmmu_debugfs_init();
	r = kvmmu_chardev_init(group);
	if (r)
		goto err_debugfs;
	r = kvmmu_kvm_register();
	if (r)
		goto err_chardev;
	return 0;

err_chardev:
	kvmmu_chardev_exit();
err_debugfs:
	kvmmu_debugfs_exit();
	return r;
}

static void __exit kvmmu_exit(void)
{
	kvmmu_kvm_unregister();
	kvmmu_chardev_exit();
	kvmmu_debugfs_exit();
}

module_init(kvmmu_init);
module_exit(kvmmu_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kvmmu: memory-management core for KVM-style hypervisors");
