// SPDX-License-Identifier: GPL-2.0
// Invalidation tracking: which host-virtual ranges are being invalidated
// now, and which ended since a caller took its sequence snapshot.
//
// A fault snapshots seq(), looks its pfn up without the MMU lock (that may
// sleep), then under the MMU lock asks retry(range, snapshot): the pfn may
// be stale, and must not be mapped, exactly when an invalidation
// overlapping the range is in flight, or ended after the snapshot.
//
// The rule is range-exact, whatever the number of other invalidations:
//  - every range in flight is remembered by itself (up to kActive at once;
//    beyond that the extra ones are folded into one span, until they
//    drain);
//  - a range that ends is remembered only if its owner says it mattered
//    (the VM: it overlapped a memslot's host range when it ended), so
//    churn elsewhere in the process (malloc/free, thread stacks) never
//    makes a fault retry and never pushes a relevant range out;
//  - the last kHistory relevant ranges are kept exactly; older ones are
//    folded into a summary of at most kSummary disjoint intervals, each
//    with the newest sequence number folded into it. Folding can only
//    widen (two intervals join across the smallest gap), so the summary
//    over-approximates the union of what it absorbed: a stale pfn is never
//    mapped, and a fault whose range lies outside every interval newer
//    than its snapshot does not retry. Memory is fixed.
//
// The sequence count moves only when a relevant range ends, so a snapshot
// stays "current" (no history to scan) across any number of irrelevant
// invalidations.
//
// Locking: start() and end() run under the MMU lock held for write,
// retry() under it held in either mode; seq() is lock-free.
#pragma once

#include <kvmmu/atomic.hpp>
#include <kvmmu/error.hpp>

namespace kvmmu {

class InvalidationTracker : Pinned {
public:
	// In-flight ranges remembered one by one (the number of threads of a
	// process invalidating at the same time); beyond this many at once, the
	// extra ones count as one span covering them all until they drain.
	static constexpr unsigned kActive = 32;
	// Relevant ranges that ended, remembered exactly.
	static constexpr unsigned kHistory = 64;
	// Older relevant ranges: at most this many disjoint intervals.
	static constexpr unsigned kSummary = 16;

	// How retry() decides. `exact` is the rule above; `legacy` is the rule
	// the tracker had before (and upstream KVM's spirit): every ended range
	// counts, only 16 are remembered, and more than that since a snapshot,
	// or more than 8 in flight, retries whatever the range. Kept only as
	// the baseline of benchmarks (Vm::set_legacy_retry); never the default.
	enum class Rule : u8 { exact, legacy };

	u64 seq() const { return seq_.load(Order::acquire); }
	unsigned in_flight() const { return nactive_ + unsigned(overflow_); }
	void set_rule(Rule r) { rule_ = r; }

	void start(u64 start, u64 end);
	// -EINVAL, and nothing changes, for an end without its start: no
	// in-flight range equals [start, end) (or, for ranges beyond the
	// tracked ones, lies within their span). `relevant`: a fault could
	// have looked up a pfn in the range (the VM: it overlaps a memslot);
	// only then does it count for faults that took their snapshot earlier.
	Result<void> end(u64 start, u64 end, bool relevant = true);
	// Counts [start, end) as a relevant invalidation that ended now,
	// without a start (a memslot that stopped mapping it).
	void ended(u64 start, u64 end);
	// Is an invalidation overlapping [start, end) in flight now?
	bool in_flight_overlaps(u64 start, u64 end) const;
	bool retry(u64 start, u64 end, u64 snapshot) const;

	// For tests: the summary's intervals now.
	unsigned summary_size() const { return nsummary_; }

private:
	struct Range {
		u64 start, end;
	};
	struct Done {
		u64 seq, start, end;
	};

	void fold(const Done &d);
	bool legacy_retry(u64 start, u64 end, u64 snapshot) const;

	Range active_[kActive] = {};
	unsigned nactive_ = 0;
	u64 overflow_ = 0;		// in flight, not in active_
	Range overflow_span_ = {};	// covers every range counted in overflow_
	Done history_[kHistory] = {};	// history_[s % kHistory] ended at seq s
	Done summary_[kSummary] = {};	// sorted, disjoint; seq: newest folded in
	unsigned nsummary_ = 0;
	Atomic<u64> seq_;		// relevant invalidations that ended
	Rule rule_ = Rule::exact;
};

} // namespace kvmmu
