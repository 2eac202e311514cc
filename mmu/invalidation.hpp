// SPDX-License-Identifier: GPL-2.0
// Invalidation tracking: which host-virtual ranges are being invalidated
// now, and which were since a caller took its sequence snapshot.
//
// A fault snapshots seq(), looks its pfn up without the MMU lock (that may
// sleep), then under the MMU lock asks retry(range, snapshot): the pfn may
// be stale, and must not be mapped, exactly when an invalidation
// overlapping the range is in flight, or ended after the snapshot. Ranges
// that do not overlap never cause a retry, so a VM whose host is busy
// invalidating one region faults freely everywhere else.
//
// Locking: start() and end() run under the MMU lock held for write,
// retry() under it held in either mode; seq() is lock-free.
#pragma once

#include <kvmmu/atomic.hpp>
#include <kvmmu/error.hpp>

namespace kvmmu {

class InvalidationTracker : Pinned {
public:
	// In-flight ranges remembered one by one; beyond this many at once,
	// every range counts as in flight until they drain.
	static constexpr unsigned kActive = 8;
	// Completed invalidations remembered for retry(); a snapshot older
	// than this history retries whatever its range.
	static constexpr unsigned kHistory = 16;

	u64 seq() const { return seq_.load(Order::acquire); }
	unsigned in_flight() const { return nactive_ + unsigned(overflow_); }

	void start(u64 start, u64 end);
	// -EINVAL, and nothing changes, for an end without its start: no
	// in-flight range equals [start, end) (or, for ranges beyond the
	// tracked ones, lies within their span).
	Result<void> end(u64 start, u64 end);
	bool retry(u64 start, u64 end, u64 snapshot) const;

private:
	struct Range {
		u64 start, end;
	};
	struct Done {
		u64 seq, start, end;
	};

	Range active_[kActive] = {};
	unsigned nactive_ = 0;
	u64 overflow_ = 0;		// in flight, not in active_
	Range overflow_span_ = {};	// covers every range counted in overflow_
	Done history_[kHistory] = {};	// history_[s % kHistory] ended at seq s
	Atomic<u64> seq_;		// completed invalidations
};

} // namespace kvmmu
