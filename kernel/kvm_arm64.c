// SPDX-License-Identifier: GPL-2.0
/*
 * kvmmu as KVM/arm64's stage-2 MMU (docs/kvm.md): the operations table
 * registered with a KVM patched by kvm/arm64/patches. Each operation goes
 * straight to a hook of include/kvmmu/hooks.h; each core operation kvmmu
 * calls goes straight to what KVM lent for the VM.
 *
 * Built only against a kernel that carries the patches (Kbuild looks for
 * asm/kvm_s2_ops.h) and has KVM.
 */
#include <linux/kvm_host.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include <asm/kvm_s2_ops.h>

#include <kvmmu/hooks.h>

#include "glue.h"
#include "notifier.h"

/* One KVM VM on kvmmu's tables. */
struct kvmmu_kvm {
	struct kvm *kvm;
	const struct kvm_arm_s2_core *core;
	struct kvmmu_vm *vm;
	struct kvmmu_notifier kn;	/* on the VM's mm, for kvmmu's tracking */
	bool notifier;
};

static void kvmmu_kvm_tlb_flush_range(void *ctx, uint64_t gpa, uint64_t size, int level)
{
	struct kvmmu_kvm *k = ctx;

	k->core->tlb_flush_range(k->kvm, gpa, size, level);
}

static void kvmmu_kvm_tlb_flush_all(void *ctx)
{
	struct kvmmu_kvm *k = ctx;

	k->core->tlb_flush_vmid(k->kvm);
}

static void kvmmu_kvm_dcache_clean_poc(void *ctx, void *va, uint64_t size)
{
	struct kvmmu_kvm *k = ctx;

	k->core->dcache_clean_inval_poc(va, size);
}

static void kvmmu_kvm_icache_inval_pou(void *ctx, void *va, uint64_t size)
{
	struct kvmmu_kvm *k = ctx;

	k->core->icache_inval_pou(va, size);
}

static const struct kvmmu_core_ops kvmmu_kvm_core_ops = {
	.tlb_flush_range = kvmmu_kvm_tlb_flush_range,
	.tlb_flush_all = kvmmu_kvm_tlb_flush_all,
	.dcache_clean_poc = kvmmu_kvm_dcache_clean_poc,
	.icache_inval_pou = kvmmu_kvm_icache_inval_pou,
};

static void kvmmu_kvm_free(struct kvmmu_kvm *k)
{
	if (k->notifier)
		kvmmu_notifier_unregister(&k->kn);
	kvmmu_vm_destroy(k->vm);
	kfree(k);
}

static int kvmmu_kvm_init(struct kvm *kvm, const struct kvm_arm_s2_core *core,
			  unsigned int ipa_bits, unsigned long flags, void **priv,
			  struct kvm_arm_s2_geometry *geo)
{
	struct kvmmu_core_config cfg = {
		.flags = ((flags & KVM_ARM_S2_FWB) ? KVMMU_CORE_FWB : 0) |
			 ((flags & KVM_ARM_S2_DIC) ? KVMMU_CORE_DIC : 0),
		.ipa_bits = ipa_bits,
		.ops = &kvmmu_kvm_core_ops,
	};
	struct kvmmu_stage2_geometry g;
	struct kvmmu_kvm *k;
	int r;

	k = kzalloc(sizeof(*k), GFP_KERNEL_ACCOUNT);
	if (!k)
		return -ENOMEM;
	k->kvm = kvm;
	k->core = core;
	cfg.ctx = k;
	/* The VM's address space is current's (KVM_CREATE_VM). */
	r = kvmmu_vm_create(0, &k->vm);
	if (r) {
		kfree(k);
		return r;
	}
	r = kvmmu_vm_attach_core(k->vm, &cfg);
	if (!r)
		r = kvmmu_vm_stage2_geometry(k->vm, &g);
	if (!r)
		r = kvmmu_notifier_register(&k->kn, k->vm, current->mm);
	if (r) {
		kvmmu_kvm_free(k);
		return r;
	}
	k->notifier = true;
	geo->root = g.root_pa;
	geo->start_level = g.start_level;
	*priv = k;
	return 0;
}

static void kvmmu_kvm_release(void *priv)
{
	struct kvmmu_kvm *k = priv;

	kvmmu_vm_release(k->vm);
}

static void kvmmu_kvm_destroy(void *priv)
{
	kvmmu_kvm_free(priv);
}

static int kvmmu_kvm_abort(void *priv, phys_addr_t ipa, unsigned int access)
{
	struct kvmmu_kvm *k = priv;
	struct kvmmu_fault_info info;
	int r;

	r = kvmmu_vm_fault(k->vm, ipa,
			   ((access & KVM_ARM_S2_ACCESS_WRITE) ? KVMMU_FAULT_WRITE : 0) |
			   ((access & KVM_ARM_S2_ACCESS_EXEC) ? KVMMU_FAULT_EXEC : 0) |
			   ((access & KVM_ARM_S2_ACCESS_LOG) ? KVMMU_FAULT_LOG : 0),
			   &info);
	/*
	 * KVM's codes: -EPERM on a fetch is memory that is never executable
	 * (device memory); otherwise the memory cannot be accessed as asked.
	 */
	if (r == -EPERM)
		return (access & KVM_ARM_S2_ACCESS_EXEC) ? -ENOEXEC : -EFAULT;
	return r == -ENOENT ? -EFAULT : r;
}

static int kvmmu_kvm_set_memslot(void *priv, u16 id, u32 flags, phys_addr_t ipa, u64 size,
				 unsigned long hva)
{
	struct kvmmu_kvm *k = priv;
	struct kvmmu_memory_region r = {
		.slot = id,
		.flags = (flags & KVM_MEM_READONLY) ? KVMMU_MEMSLOT_READONLY : 0,
		.guest_phys_addr = ipa,
		.memory_size = size,
		.userspace_addr = hva,
	};

	return kvmmu_vm_set_memory_region(k->vm, &r);
}

static void kvmmu_kvm_unmap(void *priv, phys_addr_t ipa, u64 size)
{
	struct kvmmu_kvm *k = priv;

	kvmmu_vm_unmap(k->vm, ipa, size);
}

static void kvmmu_kvm_wrprotect(void *priv, phys_addr_t ipa, u64 size, bool may_block)
{
	struct kvmmu_kvm *k = priv;

	kvmmu_vm_write_protect(k->vm, ipa, size, may_block);
}

static const struct kvm_arm_s2_ops kvmmu_kvm_ops = {
	.owner = THIS_MODULE,
	.init = kvmmu_kvm_init,
	.release = kvmmu_kvm_release,
	.destroy = kvmmu_kvm_destroy,
	.abort = kvmmu_kvm_abort,
	.set_memslot = kvmmu_kvm_set_memslot,
	.unmap = kvmmu_kvm_unmap,
	.wrprotect = kvmmu_kvm_wrprotect,
};

int kvmmu_kvm_register(void)
{
	int r = kvm_arm_s2_ops_register(&kvmmu_kvm_ops);

	/* pKVM owns stage 2 itself: kvmmu then serves /dev/kvmmu only. */
	if (r == -EOPNOTSUPP) {
		pr_info("kvmmu: KVM in protected mode, not serving its VMs\n");
		return 0;
	}
	if (!r)
		pr_info("kvmmu: serving the stage 2 of new KVM VMs\n");
	return r;
}

void kvmmu_kvm_unregister(void)
{
	/* Every VM holds a module reference: none is alive at module exit. */
	kvm_arm_s2_ops_unregister(&kvmmu_kvm_ops);
}
