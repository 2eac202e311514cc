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

// One access of exactly `size` bytes: a device register sees each guest
// access once, with its width (a 4-byte register read as two halves, or a
// read repeated, can have side effects twice).
void MmioAccess::access(void *va, unsigned size, bool write, u8 *buf) const
{
	switch (size) {
	case 1: {
		u8 v;
		if (write) {
			__builtin_memcpy(&v, buf, 1);
			kvmmu_plat_writeb(v, va);
		} else {
			v = kvmmu_plat_readb(va);
			__builtin_memcpy(buf, &v, 1);
		}
		break;
	}
	case 2: {
		u16 v;
		if (write) {
			__builtin_memcpy(&v, buf, 2);
			kvmmu_plat_writew(v, va);
		} else {
			v = kvmmu_plat_readw(va);
			__builtin_memcpy(buf, &v, 2);
		}
		break;
	}
	case 4: {
		u32 v;
		if (write) {
			__builtin_memcpy(&v, buf, 4);
			kvmmu_plat_writel(v, va);
		} else {
			v = kvmmu_plat_readl(va);
			__builtin_memcpy(buf, &v, 4);
		}
		break;
	}
	case 8: {
		u64 v;
		if (write) {
			__builtin_memcpy(&v, buf, 8);
			kvmmu_plat_writeq(v, va);
		} else {
			v = kvmmu_plat_readq(va);
			__builtin_memcpy(buf, &v, 8);
		}
		break;
	}
	default:
		kvmmu_plat_bug(__FILE__, __LINE__, "MMIO access of a size the caller refuses");
	}
}

} // namespace kvmmu
