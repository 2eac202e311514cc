// SPDX-License-Identifier: GPL-2.0
// Freestanding replacements for the few standard-library pieces kvmmu uses.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace kvmmu {

using u8 = uint8_t;
using u16 = uint16_t;
using u32 = uint32_t;
using u64 = uint64_t;
using s32 = int32_t;
using s64 = int64_t;

template <class T> struct remove_reference { using type = T; };
template <class T> struct remove_reference<T &> { using type = T; };
template <class T> struct remove_reference<T &&> { using type = T; };

template <class T>
constexpr typename remove_reference<T>::type &&move(T &&t) noexcept
{
	return static_cast<typename remove_reference<T>::type &&>(t);
}

template <class T>
constexpr T &&forward(typename remove_reference<T>::type &t) noexcept
{
	return static_cast<T &&>(t);
}

template <class T> constexpr const T &min(const T &a, const T &b) { return b < a ? b : a; }
template <class T> constexpr const T &max(const T &a, const T &b) { return a < b ? b : a; }

constexpr bool is_pow2(u64 v) { return v && !(v & (v - 1)); }

// Smallest power of two >= v, for 1 <= v <= 2^63.
constexpr u64 roundup_pow2(u64 v)
{
	return v <= 1 ? 1 : u64(1) << (64 - __builtin_clzll(v - 1));
}

// Non-copyable, non-movable base for objects with identity (locks, VMs).
class Pinned {
public:
	Pinned() = default;
	Pinned(const Pinned &) = delete;
	Pinned &operator=(const Pinned &) = delete;
};

} // namespace kvmmu

#define KVMMU_LIKELY(x) __builtin_expect(!!(x), 1)
#define KVMMU_UNLIKELY(x) __builtin_expect(!!(x), 0)
