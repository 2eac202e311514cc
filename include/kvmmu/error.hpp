// SPDX-License-Identifier: GPL-2.0
// kvmmu's one error type: a negative errno, carried in Result<T>.
#pragma once

#include <kvmmu/alloc.hpp>
#include <kvmmu_layout.h>

namespace kvmmu {

// errno values come from the kernel's own headers (kernel/layout.c), so
// they are right on every architecture.
enum class Errno : int {
	perm = KVMMU_EPERM,
	noent = KVMMU_ENOENT,
	intr = KVMMU_EINTR,
	io = KVMMU_EIO,
	again = KVMMU_EAGAIN,
	nomem = KVMMU_ENOMEM,
	fault = KVMMU_EFAULT,
	busy = KVMMU_EBUSY,
	exist = KVMMU_EEXIST,
	nodev = KVMMU_ENODEV,
	inval = KVMMU_EINVAL,
	nospc = KVMMU_ENOSPC,
	range = KVMMU_ERANGE,
	notty = KVMMU_ENOTTY,
	e2big = KVMMU_E2BIG,
	opnotsupp = KVMMU_EOPNOTSUPP,
	hwpoison = KVMMU_EHWPOISON,
};

class Error {
public:
	constexpr Error(Errno e) : e_(static_cast<int>(e)) {}
	// From a kernel return value, which must be a negative errno; anything
	// else is a caller bug and becomes EINVAL rather than a "successful"
	// error whose errno is 0 or positive.
	static constexpr Error from_kernel(int neg)
	{
		return Error(neg < 0 ? -neg : static_cast<int>(Errno::inval));
	}
	constexpr int to_errno() const { return -e_; } // negative
	constexpr Errno code() const { return static_cast<Errno>(e_); }
	constexpr bool operator==(Error o) const { return e_ == o.e_; }
	constexpr bool operator!=(Error o) const { return e_ != o.e_; }
	constexpr bool operator==(Errno o) const { return e_ == static_cast<int>(o); }
	constexpr bool operator!=(Errno o) const { return e_ != static_cast<int>(o); }

private:
	constexpr explicit Error(int positive) : e_(positive) {}
	int e_; // positive errno
};

// Result<T>: a T or an Error. [[nodiscard]]: an ignored error is a bug.
template <class T>
class [[nodiscard]] Result {
public:
	Result(const T &v) : ok_(true) { new (&storage_) T(v); }
	Result(T &&v) : ok_(true) { new (&storage_) T(move(v)); }
	Result(Error e) : ok_(false), err_(e) {}
	Result(Errno e) : ok_(false), err_(e) {}
	Result(Result &&o) : ok_(o.ok_), err_(o.err_)
	{
		if (ok_)
			new (&storage_) T(move(o.value()));
	}
	Result(const Result &) = delete;
	Result &operator=(const Result &) = delete;
	~Result()
	{
		if (ok_)
			value().~T();
	}

	bool ok() const { return ok_; }
	explicit operator bool() const { return ok_; }
	Error error() const { return err_; }
	// Negative errno, or 0 on success: the extern-C boundary's form.
	int to_errno() const { return ok_ ? 0 : err_.to_errno(); }

	// Reading the value of an error is a bug, not undefined behaviour.
	T &value()
	{
		check();
		return *reinterpret_cast<T *>(&storage_);
	}
	const T &value() const
	{
		check();
		return *reinterpret_cast<const T *>(&storage_);
	}
	T take() { return move(value()); }
	T *operator->() { return &value(); }
	T &operator*() { return value(); }

private:
	void check() const
	{
		if (KVMMU_UNLIKELY(!ok_)) {
			kvmmu_plat_bug(__FILE__, __LINE__, "Result::value() of an error");
			__builtin_trap();
		}
	}

	bool ok_;
	Error err_ = Errno::inval;
	alignas(T) unsigned char storage_[sizeof(T)];
};

template <>
class [[nodiscard]] Result<void> {
public:
	Result() : ok_(true) {}
	Result(Error e) : ok_(false), err_(e) {}
	Result(Errno e) : ok_(false), err_(e) {}

	bool ok() const { return ok_; }
	explicit operator bool() const { return ok_; }
	Error error() const { return err_; }
	int to_errno() const { return ok_ ? 0 : err_.to_errno(); }

private:
	bool ok_;
	Error err_ = Errno::inval;
};

// Turn a negative-errno-or-zero kernel return into a Result<void>.
inline Result<void> from_kernel_ret(int ret)
{
	if (ret < 0)
		return Error::from_kernel(ret);
	return {};
}

} // namespace kvmmu

// Propagate an error: `KVMMU_TRY(r, f());` leaves on error, else binds r.
#define KVMMU_TRY(var, expr)                                  \
	auto var##_result__ = (expr);                         \
	if (!var##_result__.ok())                             \
		return var##_result__.error();                \
	auto var = var##_result__.take()

#define KVMMU_TRY_VOID(expr)                                  \
	do {                                                  \
		auto r__ = (expr);                            \
		if (!r__.ok())                                \
			return r__.error();                   \
	} while (0)
