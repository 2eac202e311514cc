// SPDX-License-Identifier: GPL-2.0
// kvmmu's C++ runtime: allocation functions and the ABI hooks the compiler
// expects. Everything allocates through the platform interface with an
// explicit context.
#include <kvmmu/alloc.hpp>
#include <kvmmu/platform.h>
#include <kvmmu_layout.h>

namespace kvmmu {

void *kmalloc(size_t size, size_t align, Gfp gfp)
{
	if (gfp.raw() & ~unsigned(KVMMU_GFP_VALID_MASK) ||
	    (gfp.raw() & KVMMU_GFP_KIND_MASK) == KVMMU_GFP_KIND_MASK)
		return nullptr;
	if (!is_pow2(align) || size > (u64(1) << 62))
		return nullptr;
	if (size == 0)
		size = 1; // kmalloc(0) returns ZERO_SIZE_PTR; new must not
	if (align > KVMMU_KMALLOC_MINALIGN)
		size = roundup_pow2(max<u64>(size, align));
	return kvmmu_plat_kmalloc(size, gfp.raw());
}

} // namespace kvmmu

using kvmmu::Gfp;

void *operator new(size_t size, Gfp gfp) noexcept
{
	return kvmmu::kmalloc(size, 1, gfp);
}

void *operator new[](size_t size, Gfp gfp) noexcept
{
	return kvmmu::kmalloc(size, 1, gfp);
}

void *operator new(size_t size, std::align_val_t align, Gfp gfp) noexcept
{
	return kvmmu::kmalloc(size, size_t(align), gfp);
}

void *operator new[](size_t size, std::align_val_t align, Gfp gfp) noexcept
{
	return kvmmu::kmalloc(size, size_t(align), gfp);
}

void operator delete(void *p, Gfp) noexcept { kvmmu_plat_kfree(p); }
void operator delete[](void *p, Gfp) noexcept { kvmmu_plat_kfree(p); }
void operator delete(void *p, std::align_val_t, Gfp) noexcept { kvmmu_plat_kfree(p); }
void operator delete[](void *p, std::align_val_t, Gfp) noexcept { kvmmu_plat_kfree(p); }

#ifndef KVMMU_HOST
// The replaceable global deletes; in the host build libstdc++ provides them
// (host kmalloc is malloc, so its free() matches).
void operator delete(void *p) noexcept { kvmmu_plat_kfree(p); }
void operator delete[](void *p) noexcept { kvmmu_plat_kfree(p); }
void operator delete(void *p, size_t) noexcept { kvmmu_plat_kfree(p); }
void operator delete[](void *p, size_t) noexcept { kvmmu_plat_kfree(p); }
void operator delete(void *p, std::align_val_t) noexcept { kvmmu_plat_kfree(p); }
void operator delete[](void *p, std::align_val_t) noexcept { kvmmu_plat_kfree(p); }
void operator delete(void *p, size_t, std::align_val_t) noexcept { kvmmu_plat_kfree(p); }
void operator delete[](void *p, size_t, std::align_val_t) noexcept { kvmmu_plat_kfree(p); }

extern "C" void __cxa_pure_virtual(void);
extern "C" void __cxa_deleted_virtual(void);

extern "C" void __cxa_pure_virtual(void)
{
	kvmmu_plat_bug(__FILE__, __LINE__, "pure virtual function called");
	__builtin_trap();
}

extern "C" void __cxa_deleted_virtual(void)
{
	kvmmu_plat_bug(__FILE__, __LINE__, "deleted virtual function called");
	__builtin_trap();
}
#endif
