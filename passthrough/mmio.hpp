// SPDX-License-Identifier: GPL-2.0
// Device memory reached from the kernel (seed 004's passthrough): guest
// accesses that land on a BAR a VMM mapped through an ordinary memslot.
// Each access is one readX/writeX of its size through an I/O mapping of
// that page with the host mapping's memory type: uncached (ioremap) for
// device memory, write-combining (ioremap_wc) for a WC mapping, and a
// cacheable memremap for cacheable memory outside the kernel's map.
#pragma once

#include "../mmu/device_access.hpp"

namespace kvmmu {

class MmioAccess final : public DeviceAccess {
public:
	constexpr MmioAccess() = default;
	Result<void *> map(u64 pa, pgt::MemType mt) const override;
	void unmap(void *va, pgt::MemType mt) const override;
	void access(void *va, unsigned size, bool write, u8 *buf) const override;

	// The one instance (constant-initialised: no global constructor).
	static const MmioAccess &get();
};

} // namespace kvmmu
