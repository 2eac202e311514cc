// SPDX-License-Identifier: GPL-2.0
#include "invalidation.hpp"

namespace kvmmu {

namespace {
bool overlaps(u64 s1, u64 e1, u64 s2, u64 e2) { return s1 < e2 && s2 < e1; }
} // namespace

void InvalidationTracker::start(u64 start, u64 end)
{
	if (nactive_ < kActive) {
		active_[nactive_++] = {start, end};
		return;
	}
	overflow_span_ = overflow_++ ? Range{min(overflow_span_.start, start), max(overflow_span_.end, end)}
				     : Range{start, end};
}

Result<void> InvalidationTracker::end(u64 start, u64 end)
{
	unsigned i;
	for (i = 0; i < nactive_; i++)
		if (active_[i].start == start && active_[i].end == end)
			break;
	if (i < nactive_)
		active_[i] = active_[--nactive_];
	else if (overflow_ && overflow_span_.start <= start && end <= overflow_span_.end)
		overflow_--;
	else
		return Errno::inval;
	u64 s = seq_.load(Order::relaxed) + 1;
	history_[s % kHistory] = {s, start, end};
	// Release: a fault that reads the new count also sees the history.
	seq_.store(s, Order::release);
	return {};
}

bool InvalidationTracker::retry(u64 start, u64 end, u64 snapshot) const
{
	if (overflow_)
		return true;
	for (unsigned i = 0; i < nactive_; i++)
		if (overlaps(start, end, active_[i].start, active_[i].end))
			return true;
	u64 now = seq_.load(Order::acquire);
	if (now == snapshot)
		return false;
	if (now - snapshot > kHistory)
		return true; // history lost: stay safe
	for (u64 s = snapshot + 1; s <= now; s++) {
		const Done &d = history_[s % kHistory];
		if (overlaps(start, end, d.start, d.end))
			return true;
	}
	return false;
}

} // namespace kvmmu
