// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit on the "kvm" kernel (kvm/arm64/patches): KVM/arm64's registration
 * table for an external stage-2 MMU (asm/kvm_s2_ops.h), driven with a
 * fake MMU of this module's own and real VMs created through /dev/kvm:
 * the table checks what it is given, a second registration is refused,
 * unregistering is refused while a VM it serves lives (and the VM pins
 * the module), VMs created before the registration and VMs the MMU
 * declines stay on KVM's own MMU, and an MMU that fails a VM fails its
 * creation.
 *
 * kvmmu_kvm_kunit.ko is loaded before kvmmu.ko registers itself. Like the
 * kvmmu_kunit suites that need a user address space, the suite borrows
 * the mm of the process that loads it (KVM_CREATE_VM needs one).
 */
#include <kunit/test.h>
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/kthread.h>
#include <linux/kvm_host.h>
#include <linux/module.h>
#include <linux/sched/mm.h>

#include <asm/kvm_s2_ops.h>

static struct {
	int inits, releases, destroys;
	int init_ret;		/* what init() returns */
} fake;

static int fake_init(struct kvm *kvm, const struct kvm_arm_s2_core *core, unsigned int ipa_bits,
		     unsigned long flags, void **priv, struct kvm_arm_s2_geometry *geo)
{
	unsigned long root;

	fake.inits++;
	if (fake.init_ret)
		return fake.init_ret;
	/* An empty root: no vCPU of these VMs ever runs. */
	root = get_zeroed_page(GFP_KERNEL);
	if (!root)
		return -ENOMEM;
	*priv = (void *)root;
	geo->root = virt_to_phys((void *)root);
	geo->start_level = 1;
	return 0;
}

static void fake_release(void *priv)
{
	fake.releases++;
}

static void fake_destroy(void *priv)
{
	fake.destroys++;
	free_page((unsigned long)priv);
}

static int fake_abort(void *priv, phys_addr_t ipa, unsigned int access)
{
	return -EFAULT;
}

static int fake_set_memslot(void *priv, u16 id, u32 flags, phys_addr_t ipa, u64 size,
			    unsigned long hva)
{
	return 0;
}

static void fake_unmap(void *priv, phys_addr_t ipa, u64 size)
{
}

static void fake_wrprotect(void *priv, phys_addr_t ipa, u64 size, bool may_block)
{
}

static const struct kvm_arm_s2_ops fake_ops = {
	.owner = THIS_MODULE,
	.init = fake_init,
	.release = fake_release,
	.destroy = fake_destroy,
	.abort = fake_abort,
	.set_memslot = fake_set_memslot,
	.unmap = fake_unmap,
	.wrprotect = fake_wrprotect,
};

/* Another complete table: a second registrant. */
static const struct kvm_arm_s2_ops other_ops = {
	.owner = THIS_MODULE,
	.init = fake_init,
	.release = fake_release,
	.destroy = fake_destroy,
	.abort = fake_abort,
	.set_memslot = fake_set_memslot,
	.unmap = fake_unmap,
	.wrprotect = fake_wrprotect,
};

static struct mm_struct *user_mm;

static int reg_suite_init(struct kunit_suite *suite)
{
	if (current->mm) {
		mmgrab(current->mm);
		user_mm = current->mm;
	}
	return 0;
}

static void reg_suite_exit(struct kunit_suite *suite)
{
	if (user_mm)
		mmdrop(user_mm);
	user_mm = NULL;
}

static int reg_case_init(struct kunit *test)
{
	memset(&fake, 0, sizeof(fake));
	if (user_mm && mmget_not_zero(user_mm))
		kthread_use_mm(user_mm);
	return 0;
}

static void reg_case_exit(struct kunit *test)
{
	/* Whatever a failed case left registered goes. */
	kvm_arm_s2_ops_unregister(&fake_ops);
	if (user_mm && current->mm == user_mm) {
		kthread_unuse_mm(user_mm);
		mmput(user_mm);
	}
}

/*
 * KVM_CREATE_VM through /dev/kvm, as a VMM does; the VM's file is kept and
 * its descriptor closed (this thread's file table is the kernel's own).
 * Returns the file, or an ERR_PTR.
 */
static struct file *create_vm(struct kunit *test, unsigned long type)
{
	struct file *dev, *vm;
	long fd;

	dev = filp_open("/dev/kvm", O_RDWR, 0);
	if (IS_ERR(dev))
		return dev;
	fd = dev->f_op->unlocked_ioctl(dev, KVM_CREATE_VM, type);
	filp_close(dev, NULL);
	if (fd < 0)
		return ERR_PTR(fd);
	vm = fget(fd);
	close_fd(fd);
	return vm ? vm : ERR_PTR(-EBADF);
}

/* Drops the VM now (its last reference: kvm_destroy_vm() runs here). */
static void destroy_vm(struct file *vm)
{
	__fput_sync(vm);
}

static bool have_kvm(struct kunit *test)
{
	struct file *dev;

	if (!current->mm) {
		kunit_skip(test, "no user address space (module not loaded by a process)");
		return false;
	}
	dev = filp_open("/dev/kvm", O_RDWR, 0);
	if (IS_ERR(dev)) {
		kunit_skip(test, "no /dev/kvm (%ld)", PTR_ERR(dev));
		return false;
	}
	filp_close(dev, NULL);
	return true;
}

static void table_is_checked(struct kunit *test)
{
	struct kvm_arm_s2_ops partial = fake_ops;

	KUNIT_EXPECT_EQ(test, kvm_arm_s2_ops_register(NULL), -EINVAL);
	partial.abort = NULL;
	KUNIT_EXPECT_EQ(test, kvm_arm_s2_ops_register(&partial), -EINVAL);
	partial = fake_ops;
	partial.owner = NULL;
	KUNIT_EXPECT_EQ(test, kvm_arm_s2_ops_register(&partial), -EINVAL);
	KUNIT_EXPECT_EQ(test, kvm_arm_s2_ops_unregister(&fake_ops), -EINVAL);
	KUNIT_EXPECT_EQ(test, kvm_arm_s2_ops_unregister(NULL), -EINVAL);
}

static void register_twice(struct kunit *test)
{
	KUNIT_ASSERT_EQ(test, kvm_arm_s2_ops_register(&fake_ops), 0);
	KUNIT_EXPECT_EQ(test, kvm_arm_s2_ops_register(&fake_ops), -EBUSY);
	KUNIT_EXPECT_EQ(test, kvm_arm_s2_ops_register(&other_ops), -EBUSY);
	KUNIT_EXPECT_EQ(test, kvm_arm_s2_ops_unregister(&other_ops), -EINVAL);
	KUNIT_EXPECT_EQ(test, kvm_arm_s2_ops_unregister(&fake_ops), 0);
	KUNIT_EXPECT_EQ(test, kvm_arm_s2_ops_unregister(&fake_ops), -EINVAL);
	/* Free again: another may register now. */
	KUNIT_EXPECT_EQ(test, kvm_arm_s2_ops_register(&other_ops), 0);
	KUNIT_EXPECT_EQ(test, kvm_arm_s2_ops_unregister(&other_ops), 0);
}

static void unregister_with_a_vm_alive(struct kunit *test)
{
	int refs = module_refcount(THIS_MODULE);
	struct file *vm;

	if (!have_kvm(test))
		return;
	KUNIT_ASSERT_EQ(test, kvm_arm_s2_ops_register(&fake_ops), 0);
	vm = create_vm(test, 0);
	KUNIT_ASSERT_FALSE_MSG(test, IS_ERR(vm), "KVM_CREATE_VM: %ld", PTR_ERR(vm));
	KUNIT_EXPECT_EQ(test, fake.inits, 1);
	KUNIT_EXPECT_EQ(test, module_refcount(THIS_MODULE), refs + 1);
	KUNIT_EXPECT_EQ(test, kvm_arm_s2_ops_unregister(&fake_ops), -EBUSY);
	destroy_vm(vm);
	KUNIT_EXPECT_EQ(test, fake.releases, 1);
	KUNIT_EXPECT_EQ(test, fake.destroys, 1);
	KUNIT_EXPECT_EQ(test, module_refcount(THIS_MODULE), refs);
	KUNIT_EXPECT_EQ(test, kvm_arm_s2_ops_unregister(&fake_ops), 0);
}

static void vm_created_before_register_stays_on_kvm(struct kunit *test)
{
	struct file *before, *after;

	if (!have_kvm(test))
		return;
	before = create_vm(test, 0);
	KUNIT_ASSERT_FALSE(test, IS_ERR(before));
	KUNIT_ASSERT_EQ(test, kvm_arm_s2_ops_register(&fake_ops), 0);
	after = create_vm(test, 0);
	KUNIT_ASSERT_FALSE(test, IS_ERR(after));
	KUNIT_EXPECT_EQ(test, fake.inits, 1);
	destroy_vm(before);
	KUNIT_EXPECT_EQ(test, fake.destroys, 0);
	KUNIT_EXPECT_EQ(test, fake.releases, 0);
	destroy_vm(after);
	KUNIT_EXPECT_EQ(test, fake.destroys, 1);
	KUNIT_EXPECT_EQ(test, kvm_arm_s2_ops_unregister(&fake_ops), 0);
}

static void declined_vm_stays_on_kvm(struct kunit *test)
{
	int refs = module_refcount(THIS_MODULE);
	struct file *vm;

	if (!have_kvm(test))
		return;
	KUNIT_ASSERT_EQ(test, kvm_arm_s2_ops_register(&fake_ops), 0);
	fake.init_ret = -EOPNOTSUPP;
	vm = create_vm(test, 0);
	KUNIT_ASSERT_FALSE(test, IS_ERR(vm));
	KUNIT_EXPECT_EQ(test, fake.inits, 1);
	KUNIT_EXPECT_EQ(test, module_refcount(THIS_MODULE), refs);
	/* Not ours: unregistering is fine with it alive. */
	KUNIT_EXPECT_EQ(test, kvm_arm_s2_ops_unregister(&fake_ops), 0);
	destroy_vm(vm);
	KUNIT_EXPECT_EQ(test, fake.destroys, 0);
}

static void failed_init_fails_creation(struct kunit *test)
{
	int refs = module_refcount(THIS_MODULE);
	struct file *vm;

	if (!have_kvm(test))
		return;
	KUNIT_ASSERT_EQ(test, kvm_arm_s2_ops_register(&fake_ops), 0);
	fake.init_ret = -ENOMEM;
	vm = create_vm(test, 0);
	KUNIT_EXPECT_TRUE(test, IS_ERR(vm));
	if (!IS_ERR(vm))
		destroy_vm(vm);
	else
		KUNIT_EXPECT_EQ(test, PTR_ERR(vm), -ENOMEM);
	KUNIT_EXPECT_EQ(test, module_refcount(THIS_MODULE), refs);
	KUNIT_EXPECT_EQ(test, fake.destroys, 0);
	KUNIT_EXPECT_EQ(test, kvm_arm_s2_ops_unregister(&fake_ops), 0);
}

static struct kunit_case kvm_registration_cases[] = {
	KUNIT_CASE(table_is_checked),
	KUNIT_CASE(register_twice),
	KUNIT_CASE(unregister_with_a_vm_alive),
	KUNIT_CASE(vm_created_before_register_stays_on_kvm),
	KUNIT_CASE(declined_vm_stays_on_kvm),
	KUNIT_CASE(failed_init_fails_creation),
	{}
};

static struct kunit_suite kvm_registration_suite = {
	.name = "kvmmu_kvm_registration",
	.suite_init = reg_suite_init,
	.suite_exit = reg_suite_exit,
	.init = reg_case_init,
	.exit = reg_case_exit,
	.test_cases = kvm_registration_cases,
};
kunit_test_suite(kvm_registration_suite);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("KUnit: KVM/arm64's registration table for an external stage-2 MMU");
