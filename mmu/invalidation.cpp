// SPDX-License-Identifier: GPL-2.0
#include "invalidation.hpp"

namespace kvmmu {

namespace {
bool overlaps(u64 s1, u64 e1, u64 s2, u64 e2) { return s1 < e2 && s2 < e1; }

// The legacy rule's limits (see Rule::legacy).
constexpr unsigned kLegacyActive = 8;
constexpr unsigned kLegacyHistory = 16;
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

Result<void> InvalidationTracker::end(u64 start, u64 end, bool relevant)
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
	if (!relevant && rule_ == Rule::exact)
		return {};
	ended(start, end);
	return {};
}

void InvalidationTracker::ended(u64 start, u64 end)
{
	u64 s = seq_.load(Order::relaxed) + 1;
	Done &slot = history_[s % kHistory];
	if (slot.seq)
		fold(slot); // pushed out of the exact history
	slot = {s, start, end};
	// Release: a fault that reads the new count also sees the history.
	seq_.store(s, Order::release);
}

// Adds a range that left the exact history to the summary: it joins every
// interval it overlaps or touches; if that makes one interval too many, the
// two neighbours with the smallest gap between them become one. Either way
// the summary still covers everything it covered before.
void InvalidationTracker::fold(const Done &d)
{
	Done n = d;
	unsigned lo = 0;
	while (lo < nsummary_ && summary_[lo].end < n.start)
		lo++;
	unsigned hi = lo; // [lo, hi): intervals that overlap or touch n
	while (hi < nsummary_ && summary_[hi].start <= n.end) {
		n.start = min(n.start, summary_[hi].start);
		n.end = max(n.end, summary_[hi].end);
		n.seq = max(n.seq, summary_[hi].seq);
		hi++;
	}
	// Replace [lo, hi) by n.
	const unsigned removed = hi - lo;
	if (removed == 0) {
		if (nsummary_ == kSummary) {
			// Full: line the intervals up with n in its place, then
			// join the two neighbours with the smallest gap.
			Done tmp[kSummary + 1];
			for (unsigned k = 0; k < lo; k++)
				tmp[k] = summary_[k];
			tmp[lo] = n;
			for (unsigned k = lo; k < nsummary_; k++)
				tmp[k + 1] = summary_[k];
			unsigned best = 0;
			u64 gap = ~u64(0);
			for (unsigned k = 0; k + 1 < kSummary + 1; k++) {
				u64 g = tmp[k + 1].start - tmp[k].end;
				if (g < gap) {
					gap = g;
					best = k;
				}
			}
			tmp[best].end = tmp[best + 1].end;
			tmp[best].seq = max(tmp[best].seq, tmp[best + 1].seq);
			for (unsigned k = 0, o = 0; k < kSummary + 1; k++)
				if (k != best + 1)
					summary_[o++] = tmp[k];
			return;
		}
		for (unsigned k = nsummary_; k > lo; k--)
			summary_[k] = summary_[k - 1];
		summary_[lo] = n;
		nsummary_++;
		return;
	}
	summary_[lo] = n;
	for (unsigned k = hi; k < nsummary_; k++)
		summary_[k - removed + 1] = summary_[k];
	nsummary_ -= removed - 1;
}

bool InvalidationTracker::in_flight_overlaps(u64 start, u64 end) const
{
	if (overflow_ && overlaps(start, end, overflow_span_.start, overflow_span_.end))
		return true;
	for (unsigned i = 0; i < nactive_; i++)
		if (overlaps(start, end, active_[i].start, active_[i].end))
			return true;
	return false;
}

bool InvalidationTracker::legacy_retry(u64 start, u64 end, u64 snapshot) const
{
	if (in_flight() > kLegacyActive)
		return true;
	if (in_flight_overlaps(start, end))
		return true;
	u64 now = seq_.load(Order::acquire);
	if (now == snapshot)
		return false;
	if (now - snapshot > kLegacyHistory)
		return true; // history lost: stay safe
	for (u64 s = snapshot + 1; s <= now; s++) {
		const Done &d = history_[s % kHistory];
		if (overlaps(start, end, d.start, d.end))
			return true;
	}
	return false;
}

bool InvalidationTracker::retry(u64 start, u64 end, u64 snapshot) const
{
	if (rule_ == Rule::legacy)
		return legacy_retry(start, end, snapshot);
	if (in_flight_overlaps(start, end))
		return true;
	u64 now = seq_.load(Order::acquire);
	if (now == snapshot)
		return false;
	// Exact history: the entries that ended after the snapshot.
	u64 first = now - snapshot > kHistory ? now - kHistory + 1 : snapshot + 1;
	for (u64 s = first; s <= now; s++) {
		const Done &d = history_[s % kHistory];
		if (overlaps(start, end, d.start, d.end))
			return true;
	}
	if (now - snapshot <= kHistory)
		return false;
	// Older ones than the history holds: the summary's intervals that
	// took in something newer than the snapshot.
	for (unsigned i = 0; i < nsummary_; i++)
		if (summary_[i].seq > snapshot && overlaps(start, end, summary_[i].start, summary_[i].end))
			return true;
	return false;
}

} // namespace kvmmu
