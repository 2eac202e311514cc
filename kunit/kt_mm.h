/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KUnit cases on a real user address space (kunit/glue.c): the loading
 * process's mm, adopted by each case's kernel thread.
 */
#ifndef KVMMU_KUNIT_KT_MM_H
#define KVMMU_KUNIT_KT_MM_H

#ifdef __cplusplus
#include <stddef.h>
#include <stdint.h>
extern "C" {
#else
#include <linux/types.h>
#endif

struct kunit;
struct kunit_suite;
struct kvmmu_vm;

int kvmmu_kt_mm_suite_init(struct kunit_suite *suite);
void kvmmu_kt_mm_suite_exit(struct kunit_suite *suite);
int kvmmu_kt_mm_case_init(struct kunit *test);
void kvmmu_kt_mm_case_exit(struct kunit *test);

/* True if the case runs in a user address space; else marks it skipped. */
bool kvmmu_kt_have_user_mm(void *test);
/* Anonymous private read-write memory (vm_mmap); 0 on failure. */
uint64_t kvmmu_kt_user_map(uint64_t len);
int kvmmu_kt_user_unmap(uint64_t addr, uint64_t len);
int kvmmu_kt_user_write(uint64_t addr, const void *src, size_t n);
int kvmmu_kt_user_read(void *dst, uint64_t addr, size_t n);
/* A real mmu_notifier on current->mm feeding @vm's hooks. */
void *kvmmu_kt_notifier_attach(struct kvmmu_vm *vm);
void kvmmu_kt_notifier_detach(void *n);

#ifdef __cplusplus
}
#endif

#endif
