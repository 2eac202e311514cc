// SPDX-License-Identifier: GPL-2.0
#include "mmio.hpp"

#include <kvmmu/platform.h>

namespace kvmmu {

namespace {
constexpr MmioAccess kMmio;
} // namespace

const MmioAccess &MmioAccess::get() { return kMmio; }

Result<void *> MmioAccess::map(u64 pa, pgt::MemType mt) const
{
	const u64 pfn = pa >> kPageShift;
	void *va;
	if (mt == pgt::MemType::normal_wb) {
		va = kvmmu_plat_memremap_wb(pa, kPageSize);
	} else {
		// RAM a host mapping maps uncached or write-combining (a DMA
		// buffer, a graphics aperture over RAM): the kernel maps RAM
		// only cacheably (ioremap and memremap refuse it, with a WARN),
		// and an access through that alias could miss what the
		// uncached mapping wrote. Not accessed from the kernel.
		if (kvmmu_plat_pfn_is_ram(pfn) || kvmmu_plat_pfn_kmappable(pfn))
			return Errno::opnotsupp;
		va = kvmmu_plat_ioremap(pa, kPageSize, mt == pgt::MemType::normal_nc);
	}
	if (!va)
		return Errno::nomem;
	return va;
}

void MmioAccess::unmap(void *va, pgt::MemType mt) const
{
	if (mt == pgt::MemType::normal_wb)
		kvmmu_plat_memunmap(va);
	else
		kvmmu_plat_iounmap(va);
}

namespace {
template <class T, T (*Read)(const void *), void (*Write)(T, void *)>
void one_access(void *va, bool write, u8 *buf)
{
	T v;
	if (write) {
		__builtin_memcpy(&v, buf, sizeof(v));
		Write(v, va);
	} else {
		v = Read(va);
		__builtin_memcpy(buf, &v, sizeof(v));
	}
}
} // namespace

// One access of exactly `size` bytes: a device register sees each guest
// access once, with its width (a 4-byte register read as two halves, or a
// read repeated, can have side effects twice).
void MmioAccess::access(void *va, unsigned size, bool write, u8 *buf) const
{
	switch (size) {
	case 1:
		return one_access<u8, kvmmu_plat_readb, kvmmu_plat_writeb>(va, write, buf);
	case 2:
		return one_access<u16, kvmmu_plat_readw, kvmmu_plat_writew>(va, write, buf);
	case 4:
		return one_access<u32, kvmmu_plat_readl, kvmmu_plat_writel>(va, write, buf);
	case 8:
		return one_access<u64, kvmmu_plat_readq, kvmmu_plat_writeq>(va, write, buf);
	default:
		kvmmu_plat_bug(__FILE__, __LINE__, "MMIO access of a size the caller refuses");
	}
}

} // namespace kvmmu
