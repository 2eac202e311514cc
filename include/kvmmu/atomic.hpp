// SPDX-License-Identifier: GPL-2.0
// Minimal atomics on the compiler's builtins (no libatomic: sizes are
// limited to what every supported architecture does natively).
#pragma once

#include <kvmmu/util.hpp>

namespace kvmmu {

enum class Order : int {
	relaxed = __ATOMIC_RELAXED,
	acquire = __ATOMIC_ACQUIRE,
	release = __ATOMIC_RELEASE,
	acq_rel = __ATOMIC_ACQ_REL,
	seq_cst = __ATOMIC_SEQ_CST,
};

template <class T>
class Atomic {
	static_assert(sizeof(T) <= 8 && __atomic_always_lock_free(sizeof(T), 0),
		      "only natively lock-free sizes");

public:
	constexpr Atomic() : v_() {}
	constexpr explicit Atomic(T v) : v_(v) {}
	Atomic(const Atomic &) = delete;
	Atomic &operator=(const Atomic &) = delete;

	T load(Order o = Order::seq_cst) const { return __atomic_load_n(&v_, int(o)); }
	void store(T v, Order o = Order::seq_cst) { __atomic_store_n(&v_, v, int(o)); }
	T exchange(T v, Order o = Order::seq_cst) { return __atomic_exchange_n(&v_, v, int(o)); }
	T fetch_add(T v, Order o = Order::seq_cst) { return __atomic_fetch_add(&v_, v, int(o)); }
	T fetch_sub(T v, Order o = Order::seq_cst) { return __atomic_fetch_sub(&v_, v, int(o)); }
	T fetch_or(T v, Order o = Order::seq_cst) { return __atomic_fetch_or(&v_, v, int(o)); }
	T fetch_and(T v, Order o = Order::seq_cst) { return __atomic_fetch_and(&v_, v, int(o)); }
	// On failure, `expected` receives the current value.
	bool compare_exchange(T &expected, T desired, Order o = Order::seq_cst)
	{
		int fail = (o == Order::acq_rel || o == Order::seq_cst) ? int(Order::acquire)
			   : o == Order::release ? int(Order::relaxed) : int(o);
		if (o == Order::seq_cst)
			fail = int(Order::seq_cst);
		return __atomic_compare_exchange_n(&v_, &expected, desired, false, int(o), fail);
	}

private:
	T v_;
};

} // namespace kvmmu
