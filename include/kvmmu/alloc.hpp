// SPDX-License-Identifier: GPL-2.0
// Allocation with an explicit context.
//
// Core code allocates objects with kvmmu::make<T>(gfp, ...) (or Box) and
// frees them with kvmmu::destroy() (pass the most-derived pointer or a
// primary base), raw memory with kvmmu::kmalloc()/kfree().
// There is deliberately no plain `operator new(size_t)` in the module: a
// new-expression without a context fails to link (undefined _Znwm), so an
// allocation under a spinlock cannot silently use GFP_KERNEL. The
// context-taking `new (gfp) T` forms and every delete form exist so the
// language works as expected in the module (virtual destructors need
// operator delete), but core code pairs allocations with destroy(): in the
// host build a delete-expression would reach libstdc++'s allocator.
#pragma once

#include <kvmmu/platform.h>
#include <kvmmu/util.hpp>

#ifdef KVMMU_HOST
#include <new>
#else
namespace std {
enum class align_val_t : size_t {};
}
inline void *operator new(size_t, void *p) noexcept { return p; }
inline void *operator new[](size_t, void *p) noexcept { return p; }
#endif

namespace kvmmu {

class Gfp {
public:
	constexpr explicit Gfp(unsigned f) : f_(f) {}
	constexpr unsigned raw() const { return f_; }
	constexpr Gfp operator|(Gfp o) const { return Gfp(f_ | o.f_); }
	constexpr bool may_sleep() const { return (f_ & KVMMU_GFP_KIND_MASK) == KVMMU_GFP_KERNEL; }

private:
	unsigned f_;
};

namespace gfp {
constexpr Gfp kernel{KVMMU_GFP_KERNEL};
constexpr Gfp nowait{KVMMU_GFP_NOWAIT};
constexpr Gfp atomic{KVMMU_GFP_ATOMIC};
// Modifiers, combined with a kind: gfp::kernel | gfp::zero.
constexpr Gfp zero{KVMMU_GFP_ZERO};
constexpr Gfp account{KVMMU_GFP_ACCOUNT};
constexpr Gfp nowarn{KVMMU_GFP_NOWARN};
} // namespace gfp

// Raw allocation; honours alignments above the kmalloc minimum by rounding
// the size up to a power of two (kmalloc aligns those naturally).
void *kmalloc(size_t size, size_t align, Gfp gfp);
inline void kfree(const void *p) { kvmmu_plat_kfree(p); }

// Construct a T; nullptr when the allocation fails.
template <class T, class... Args>
T *make(Gfp gfp, Args &&...args)
{
	void *p = kmalloc(sizeof(T), alignof(T), gfp);
	if (!p)
		return nullptr;
	return new (p) T(forward<Args>(args)...);
}

template <class T>
void destroy(T *p)
{
	if (!p)
		return;
	p->~T();
	kfree(p);
}

// Owning pointer, released with destroy().
template <class T>
class Box {
public:
	Box() = default;
	explicit Box(T *p) : p_(p) {}
	Box(Box &&o) : p_(o.release()) {}
	Box &operator=(Box &&o)
	{
		reset(o.release());
		return *this;
	}
	Box(const Box &) = delete;
	Box &operator=(const Box &) = delete;
	~Box() { reset(); }

	T *get() const { return p_; }
	T *operator->() const { return p_; }
	T &operator*() const { return *p_; }
	explicit operator bool() const { return p_ != nullptr; }
	T *release()
	{
		T *p = p_;
		p_ = nullptr;
		return p;
	}
	void reset(T *p = nullptr)
	{
		T *old = p_;
		p_ = p;
		destroy(old);
	}

private:
	T *p_ = nullptr;
};

} // namespace kvmmu

// Context-taking allocation functions (defined in runtime/runtime.cpp).
void *operator new(size_t size, kvmmu::Gfp gfp) noexcept;
void *operator new[](size_t size, kvmmu::Gfp gfp) noexcept;
void *operator new(size_t size, std::align_val_t align, kvmmu::Gfp gfp) noexcept;
void *operator new[](size_t size, std::align_val_t align, kvmmu::Gfp gfp) noexcept;
// Matching placement deletes (only reached if a constructor could throw).
void operator delete(void *p, kvmmu::Gfp) noexcept;
void operator delete[](void *p, kvmmu::Gfp) noexcept;
void operator delete(void *p, std::align_val_t, kvmmu::Gfp) noexcept;
void operator delete[](void *p, std::align_val_t, kvmmu::Gfp) noexcept;
