// SPDX-License-Identifier: GPL-2.0
// How an access through the stage-2 table (Vm::access) reaches memory the
// kernel does not map as cacheable RAM: device memory (MMIO), or memory a
// VMM mapped write-combining or outside the kernel's linear map. mmu/ finds
// the leaf and keeps it valid across the access; the component that
// implements this interface (passthrough/: an I/O mapping and single
// readX/writeX accesses) touches the memory.
#pragma once

#include <kvmmu/error.hpp>
#include <kvmmu/types.hpp>

#include "pgtable/pgtable.hpp"

namespace kvmmu {

class DeviceAccess {
public:
	// A kernel mapping of the page at physical address `pa` with memory
	// type `mt` (the leaf's): -EOPNOTSUPP for memory that cannot be
	// mapped so, -ENOMEM. Process context; may sleep.
	virtual Result<void *> map(u64 pa, pgt::MemType mt) const = 0;
	virtual void unmap(void *va, pgt::MemType mt) const = 0;
	// Exactly one access of `size` bytes (1, 2, 4 or 8; `va` aligned to
	// it) between `va` and `buf`, in the CPU's byte order. Called with
	// the MMU lock held for read: must not sleep.
	virtual void access(void *va, unsigned size, bool write, u8 *buf) const = 0;

protected:
	~DeviceAccess() = default;
};

} // namespace kvmmu
