/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmmu hooks: the extern-C entry points a KVM core calls.
 *
 * kvmmu's own /dev/kvmmu front end (kernel/) is built on these same hooks.
 * They are exported from kvmmu.ko in the KVMMU symbol namespace.
 *
 * Conventions, for every hook:
 *  - Return 0 (or a documented non-negative value) on success and a negative
 *    errno on failure. A failing hook changes no state.
 *  - Bad arguments (NULL objects, empty or inverted ranges, unknown flags)
 *    fail with -EINVAL; they never WARN or crash.
 *  - Addresses are byte addresses; ranges are half-open [start, end).
 */
#ifndef KVMMU_HOOKS_H
#define KVMMU_HOOKS_H

#if defined(__KERNEL__) && !defined(__cplusplus)
#include <linux/types.h>
#else
#include <stdbool.h>
#include <stdint.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque VM handle. */
struct kvmmu_vm;

/* Counts of mmu-notifier events a VM has been told about. */
struct kvmmu_vm_counters {
	uint64_t invalidate_range_start;
	uint64_t invalidate_range_end;
	uint64_t clear_flush_young;
	uint64_t clear_young;
	uint64_t test_young;
	uint64_t change_pte;
	uint64_t release;
};

/* Module-wide counts, for leak checks. */
struct kvmmu_module_stats {
	uint64_t vms_created;
	uint64_t vms_live;
};

/* Valid bits of kvmmu_vm_create()'s @flags (none yet). */
#define KVMMU_VM_CREATE_FLAGS_VALID 0u

/**
 * kvmmu_vm_create() - create a VM
 * @flags: creation flags; bits outside KVMMU_VM_CREATE_FLAGS_VALID: -EINVAL
 * @vmp: receives the new VM on success; untouched on failure
 *
 * Context: process context, may sleep.
 * Return: 0, -EINVAL, or -ENOMEM.
 */
int kvmmu_vm_create(uint32_t flags, struct kvmmu_vm **vmp);

/**
 * kvmmu_vm_destroy() - free a VM and everything it owns
 * @vm: the VM (NULL is ignored)
 *
 * The caller guarantees no other hook runs on @vm concurrently or later;
 * for a VM fed by an mmu_notifier this means after mmu_notifier_unregister().
 * Context: process context, may sleep.
 */
void kvmmu_vm_destroy(struct kvmmu_vm *vm);

/**
 * kvmmu_vm_invalidate_range_start() - host mappings of [@start, @end) go away
 * @vm: the VM
 * @start: first host virtual address of the range
 * @end: end of the range (exclusive), > @start
 * @blockable: false when the caller cannot sleep (mmu_notifier_range_blockable)
 *
 * Every call must be paired with kvmmu_vm_invalidate_range_end() for the
 * same range; calls may nest and overlap.
 * Context: any the mmu_notifier callback allows; sleeps only if @blockable.
 * Return: 0, -EINVAL for a bad range, -EAGAIN if !@blockable and the work
 * would have to sleep.
 */
int kvmmu_vm_invalidate_range_start(struct kvmmu_vm *vm, uint64_t start, uint64_t end,
				    bool blockable);

/**
 * kvmmu_vm_invalidate_range_end() - end of an invalidation begun with _start
 * Return: 0, or -EINVAL for a bad range or when no invalidation is in flight.
 */
int kvmmu_vm_invalidate_range_end(struct kvmmu_vm *vm, uint64_t start, uint64_t end);

/**
 * kvmmu_vm_clear_flush_young() - age [@start, @end) and flush
 * Return: 1 if any guest mapping of the range was young, 0 if none, -EINVAL.
 */
int kvmmu_vm_clear_flush_young(struct kvmmu_vm *vm, uint64_t start, uint64_t end);

/**
 * kvmmu_vm_clear_young() - age [@start, @end) without flushing
 * Return: 1 if any guest mapping of the range was young, 0 if none, -EINVAL.
 */
int kvmmu_vm_clear_young(struct kvmmu_vm *vm, uint64_t start, uint64_t end);

/**
 * kvmmu_vm_test_young() - is the guest mapping of @hva young?
 * Return: 1 if young, 0 if not, -EINVAL.
 */
int kvmmu_vm_test_young(struct kvmmu_vm *vm, uint64_t hva);

/**
 * kvmmu_vm_change_pte() - the host pte for @hva changed (KSM, COW)
 * Return: 0 or -EINVAL.
 */
int kvmmu_vm_change_pte(struct kvmmu_vm *vm, uint64_t hva);

/**
 * kvmmu_vm_release() - the address space backing the VM is going away
 *
 * After this the VM maps nothing and installs nothing; later invalidations
 * are still accepted.
 * Return: 0 or -EINVAL.
 */
int kvmmu_vm_release(struct kvmmu_vm *vm);

/**
 * kvmmu_vm_get_counters() - read the VM's notifier event counts
 * Return: 0 or -EINVAL.
 */
int kvmmu_vm_get_counters(struct kvmmu_vm *vm, struct kvmmu_vm_counters *out);

/**
 * kvmmu_get_module_stats() - module-wide object counts
 * Return: 0 or -EINVAL.
 */
int kvmmu_get_module_stats(struct kvmmu_module_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* KVMMU_HOOKS_H */
