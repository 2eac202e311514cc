// SPDX-License-Identifier: GPL-2.0
// Host tests of the C++ runtime: Result and Error, allocation, the address
// types and atomics.
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <kvmmu/alloc.hpp>
#include <kvmmu/atomic.hpp>
#include <kvmmu/error.hpp>
#include <kvmmu/types.hpp>

#include "host_test.hpp"

namespace {

using kvmmu::Errno;
using kvmmu::Error;
using kvmmu::Result;
namespace gfp = kvmmu::gfp;

bool aligned_to(const void *p, size_t align) { return reinterpret_cast<uintptr_t>(p) % align == 0; }

// Counts constructions and destructions; move-only.
struct Tracked {
	static inline int live;

	explicit Tracked(int v) : v(v) { live++; }
	Tracked(Tracked &&o) : v(o.v) { live++; }
	Tracked(const Tracked &) = delete;
	Tracked &operator=(const Tracked &) = delete;
	~Tracked() { live--; }

	int v;
};

// --- Result and Error ---------------------------------------------------------

using ResultTest = HostTest;

TEST_F(ResultTest, ValueAndError)
{
	Result<int> ok(42);
	ASSERT_TRUE(ok.ok());
	EXPECT_TRUE(static_cast<bool>(ok));
	EXPECT_EQ(ok.value(), 42);
	EXPECT_EQ(*ok, 42);
	EXPECT_EQ(ok.to_errno(), 0);

	Result<int> bad(Errno::nomem);
	EXPECT_FALSE(bad.ok());
	EXPECT_FALSE(static_cast<bool>(bad));
	EXPECT_EQ(bad.error(), Errno::nomem);
	EXPECT_NE(bad.error(), Errno::inval);
	EXPECT_EQ(bad.to_errno(), -ENOMEM);

	Result<void> vok;
	EXPECT_TRUE(vok.ok());
	EXPECT_EQ(vok.to_errno(), 0);
	Result<void> vbad(Error(Errno::busy));
	EXPECT_FALSE(vbad.ok());
	EXPECT_EQ(vbad.to_errno(), -EBUSY);
}

TEST_F(ResultTest, ErrnoValuesAreTheCLibrarys)
{
	const std::pair<Errno, int> table[] = {
		{Errno::perm, EPERM}, {Errno::noent, ENOENT}, {Errno::intr, EINTR},
		{Errno::io, EIO}, {Errno::again, EAGAIN}, {Errno::nomem, ENOMEM},
		{Errno::fault, EFAULT}, {Errno::busy, EBUSY}, {Errno::exist, EEXIST},
		{Errno::nodev, ENODEV}, {Errno::inval, EINVAL}, {Errno::nospc, ENOSPC},
		{Errno::range, ERANGE}, {Errno::notty, ENOTTY}, {Errno::e2big, E2BIG},
		{Errno::opnotsupp, EOPNOTSUPP}, {Errno::hwpoison, EHWPOISON},
	};

	for (const auto &[code, e] : table) {
		Error err(code);
		EXPECT_EQ(err.to_errno(), -e);
		EXPECT_EQ(err.code(), code);
		EXPECT_EQ(Error::from_kernel(-e), code);
		EXPECT_EQ(Result<int>(code).to_errno(), -e);
	}
	EXPECT_EQ(Error(Errno::inval), Error(Errno::inval));
	EXPECT_NE(Error(Errno::inval), Error(Errno::io));
}

TEST_F(ResultTest, FromKernelRet)
{
	EXPECT_TRUE(kvmmu::from_kernel_ret(0).ok());
	EXPECT_TRUE(kvmmu::from_kernel_ret(3).ok());
	Result<void> r = kvmmu::from_kernel_ret(-EIO);
	ASSERT_FALSE(r.ok());
	EXPECT_EQ(r.error(), Errno::io);
	EXPECT_EQ(r.to_errno(), -EIO);
	// A non-negative "error" from a caller is a bug; it must not turn into
	// a failed Result whose errno reads as success.
	EXPECT_EQ(Error::from_kernel(0).to_errno(), -EINVAL);
	EXPECT_EQ(Error::from_kernel(5).to_errno(), -EINVAL);
}

TEST(ResultDeathTest, ValueOfAnErrorIsABug)
{
	Result<int> r = Errno::nomem;
	EXPECT_DEATH((void)r.value(), "Result::value\\(\\) of an error");
}

TEST_F(ResultTest, MoveOnlyValue)
{
	Tracked::live = 0;
	{
		Result<Tracked> r(Tracked(7));
		ASSERT_TRUE(r.ok());
		EXPECT_EQ(r->v, 7);
		EXPECT_EQ(Tracked::live, 1);

		Result<Tracked> moved(std::move(r));
		ASSERT_TRUE(moved.ok());
		EXPECT_EQ(moved->v, 7);

		Tracked t = moved.take();
		EXPECT_EQ(t.v, 7);
		EXPECT_EQ(Tracked::live, 3); // r's and moved's moved-from values, and t
	}
	EXPECT_EQ(Tracked::live, 0);

	Result<Tracked> err(Errno::again);
	EXPECT_FALSE(err.ok());
	EXPECT_EQ(Tracked::live, 0); // an error holds no T
}

Result<int> parse(int v)
{
	if (v < 0)
		return Errno::range;
	return v;
}

int steps_after_try;

Result<int> doubled(int v)
{
	KVMMU_TRY(x, parse(v));
	steps_after_try++;
	return 2 * x;
}

Result<void> checked(int v)
{
	KVMMU_TRY_VOID(parse(v));
	steps_after_try++;
	return {};
}

Result<Tracked> tracked(int v)
{
	if (v < 0)
		return Errno::inval;
	return Tracked(v);
}

Result<Tracked> tracked_plus_one(int v)
{
	KVMMU_TRY(t, tracked(v));
	return Tracked(t.v + 1);
}

Result<int> void_into_value(int v)
{
	KVMMU_TRY_VOID(checked(v));
	return v;
}

TEST_F(ResultTest, TryPropagates)
{
	steps_after_try = 0;

	Result<int> ok = doubled(21);
	ASSERT_TRUE(ok.ok());
	EXPECT_EQ(ok.value(), 42);
	EXPECT_EQ(steps_after_try, 1);

	Result<int> bad = doubled(-1);
	EXPECT_EQ(bad.error(), Errno::range);
	EXPECT_EQ(bad.to_errno(), -ERANGE);
	EXPECT_EQ(steps_after_try, 1); // left at the KVMMU_TRY

	EXPECT_TRUE(checked(1).ok());
	EXPECT_EQ(steps_after_try, 2);
	EXPECT_EQ(checked(-1).to_errno(), -ERANGE);
	EXPECT_EQ(steps_after_try, 2);

	EXPECT_EQ(void_into_value(5).value(), 5);
	EXPECT_EQ(void_into_value(-5).error(), Errno::range);
}

TEST_F(ResultTest, TryMovesMoveOnlyValues)
{
	Tracked::live = 0;
	{
		Result<Tracked> r = tracked_plus_one(1);
		ASSERT_TRUE(r.ok());
		EXPECT_EQ(r->v, 2);
		EXPECT_EQ(tracked_plus_one(-1).error(), Errno::inval);
	}
	EXPECT_EQ(Tracked::live, 0);
}

// --- allocation -----------------------------------------------------------------

using AllocTest = HostTest;

TEST_F(AllocTest, GfpComposes)
{
	EXPECT_EQ(gfp::kernel.raw(), unsigned(KVMMU_GFP_KERNEL));
	EXPECT_EQ((gfp::atomic | gfp::zero | gfp::nowarn).raw(),
		  unsigned(KVMMU_GFP_ATOMIC | KVMMU_GFP_ZERO | KVMMU_GFP_NOWARN));
	EXPECT_TRUE(gfp::kernel.may_sleep());
	EXPECT_TRUE((gfp::kernel | gfp::account).may_sleep());
	EXPECT_FALSE(gfp::nowait.may_sleep());
	EXPECT_FALSE((gfp::atomic | gfp::zero).may_sleep());
}

TEST_F(AllocTest, KmallocHonoursAlignment)
{
	for (size_t align = 1; align <= 4096; align <<= 1) {
		for (size_t size : {size_t(1), size_t(24), size_t(100), align, 3 * align}) {
			void *p = kvmmu::kmalloc(size, align, gfp::kernel);
			ASSERT_NE(p, nullptr) << "size " << size << " align " << align;
			EXPECT_TRUE(aligned_to(p, align)) << "size " << size << " align " << align;
			memset(p, 0xa5, size);
			kvmmu::kfree(p);
		}
	}
}

TEST_F(AllocTest, KmallocGivesTheMinimumAlignment)
{
	for (size_t size : {1, 7, 24, 100, 1000}) {
		void *p = kvmmu::kmalloc(size, 1, gfp::kernel);
		ASSERT_NE(p, nullptr);
		EXPECT_TRUE(aligned_to(p, KVMMU_KMALLOC_MINALIGN)) << "size " << size;
		kvmmu::kfree(p);
	}
}

TEST_F(AllocTest, KmallocRejectsInvalidRequests)
{
	long live = kvmmu_host_live_allocs();

	EXPECT_EQ(kvmmu::kmalloc(64, 8, kvmmu::Gfp(KVMMU_GFP_KIND_MASK)), nullptr);
	EXPECT_EQ(kvmmu::kmalloc(64, 8, kvmmu::Gfp(KVMMU_GFP_VALID_MASK + 1)), nullptr);
	EXPECT_EQ(kvmmu::kmalloc(64, 8, kvmmu::Gfp(1u << 31)), nullptr);
	for (size_t align : {24, 48, 96, 4095, 4097})
		EXPECT_EQ(kvmmu::kmalloc(64, align, gfp::kernel), nullptr) << "align " << align;
	// Alignments at or below the kmalloc minimum must be powers of two too.
	for (size_t align : {0, 3, 5, 6, 7, 12})
		EXPECT_EQ(kvmmu::kmalloc(10, align, gfp::kernel), nullptr) << "align " << align;
	// Sizes whose power-of-two round-up would overflow fail instead of hanging.
	EXPECT_EQ(kvmmu::kmalloc((uint64_t(1) << 63) + 2, 32, gfp::kernel), nullptr);
	EXPECT_EQ(kvmmu::kmalloc(~size_t(0), 1, gfp::kernel), nullptr);
	EXPECT_EQ(kvmmu_host_live_allocs(), live);
}

TEST(UtilTest, RoundupPow2)
{
	EXPECT_EQ(kvmmu::roundup_pow2(1), 1u);
	EXPECT_EQ(kvmmu::roundup_pow2(2), 2u);
	EXPECT_EQ(kvmmu::roundup_pow2(3), 4u);
	EXPECT_EQ(kvmmu::roundup_pow2(4097), 8192u);
	EXPECT_EQ(kvmmu::roundup_pow2(uint64_t(1) << 63), uint64_t(1) << 63);
}

TEST_F(AllocTest, KmallocOfZeroBytesIsAnObject)
{
	void *a = kvmmu::kmalloc(0, 1, gfp::kernel);
	void *b = kvmmu::kmalloc(0, 1, gfp::kernel);
	ASSERT_NE(a, nullptr);
	ASSERT_NE(b, nullptr);
	EXPECT_NE(a, b);
	kvmmu::kfree(a);
	kvmmu::kfree(b);
}

TEST_F(AllocTest, KmallocZeroes)
{
	// Dirty memory first, so that a reused block would show a missing memset
	// (and ASan fills fresh blocks with a non-zero pattern anyway).
	for (size_t size : {40, 64, 4096}) {
		void *dirty = kvmmu::kmalloc(size, 1, gfp::kernel);
		ASSERT_NE(dirty, nullptr);
		memset(dirty, 0xff, size);
		kvmmu::kfree(dirty);

		auto *p = static_cast<unsigned char *>(kvmmu::kmalloc(size, 1, gfp::kernel | gfp::zero));
		ASSERT_NE(p, nullptr);
		for (size_t i = 0; i < size; i++)
			ASSERT_EQ(p[i], 0) << "byte " << i << " of " << size;
		kvmmu::kfree(p);
	}
}

TEST_F(AllocTest, KmallocAllKinds)
{
	for (kvmmu::Gfp g : {gfp::kernel, gfp::nowait, gfp::atomic, gfp::kernel | gfp::account,
			     gfp::atomic | gfp::nowarn}) {
		void *p = kvmmu::kmalloc(32, 8, g);
		EXPECT_NE(p, nullptr) << "gfp " << g.raw();
		kvmmu::kfree(p);
	}
	kvmmu::kfree(nullptr);
}

TEST_F(AllocTest, FaultInjection)
{
	long live = kvmmu_host_live_allocs();

	kvmmu_host_fail_alloc_after(2);
	void *a = kvmmu::kmalloc(16, 1, gfp::kernel);
	void *b = kvmmu::kmalloc(16, 1, gfp::atomic);
	EXPECT_NE(a, nullptr);
	EXPECT_NE(b, nullptr);
	EXPECT_EQ(kvmmu::kmalloc(16, 1, gfp::kernel), nullptr);
	EXPECT_EQ(kvmmu::kmalloc(16, 1, gfp::atomic), nullptr);
	EXPECT_EQ(kvmmu_host_live_allocs(), live + 2);
	kvmmu_host_fail_alloc_reset();

	void *c = kvmmu::kmalloc(16, 1, gfp::kernel);
	EXPECT_NE(c, nullptr);
	kvmmu::kfree(a);
	kvmmu::kfree(b);
	kvmmu::kfree(c);
}

TEST_F(AllocTest, MakeAndDestroy)
{
	long live = kvmmu_host_live_allocs();

	Tracked::live = 0;
	Tracked *t = kvmmu::make<Tracked>(gfp::kernel, 5);
	ASSERT_NE(t, nullptr);
	EXPECT_EQ(t->v, 5);
	EXPECT_EQ(Tracked::live, 1);
	EXPECT_EQ(kvmmu_host_live_allocs(), live + 1);

	kvmmu::destroy(t);
	EXPECT_EQ(Tracked::live, 0);
	EXPECT_EQ(kvmmu_host_live_allocs(), live);
	kvmmu::destroy(static_cast<Tracked *>(nullptr));
}

TEST_F(AllocTest, MakeFailsWithoutConstructing)
{
	Tracked::live = 0;
	kvmmu_host_fail_alloc_after(0);
	EXPECT_EQ(kvmmu::make<Tracked>(gfp::kernel, 5), nullptr);
	EXPECT_EQ(Tracked::live, 0);
}

struct alignas(128) OverAligned {
	unsigned char bytes[200];
};

TEST_F(AllocTest, MakeOverAligned)
{
	for (int i = 0; i < 8; i++) {
		OverAligned *o = kvmmu::make<OverAligned>(gfp::kernel);
		ASSERT_NE(o, nullptr);
		EXPECT_TRUE(aligned_to(o, alignof(OverAligned)));
		kvmmu::destroy(o);
	}
}

TEST_F(AllocTest, Box)
{
	Tracked::live = 0;
	{
		kvmmu::Box<Tracked> a(kvmmu::make<Tracked>(gfp::kernel, 1));
		ASSERT_TRUE(a);
		EXPECT_EQ(a->v, 1);
		EXPECT_EQ((*a).v, 1);

		kvmmu::Box<Tracked> b(std::move(a));
		EXPECT_FALSE(a);
		EXPECT_EQ(a.get(), nullptr);
		ASSERT_TRUE(b);
		EXPECT_EQ(Tracked::live, 1);

		b = kvmmu::Box<Tracked>(kvmmu::make<Tracked>(gfp::kernel, 2));
		EXPECT_EQ(b->v, 2);
		EXPECT_EQ(Tracked::live, 1); // the first one was destroyed

		Tracked *raw = b.release();
		EXPECT_FALSE(b);
		EXPECT_EQ(Tracked::live, 1);
		b.reset(raw);
		EXPECT_EQ(Tracked::live, 1);

		kvmmu::Box<Tracked> empty;
		EXPECT_FALSE(empty);
	}
	EXPECT_EQ(Tracked::live, 0);
}

// Objects from new-expressions go back with kvmmu::destroy()/kfree() here:
// on the host a delete-expression reaches libstdc++'s operator delete,
// which bypasses the platform's kfree accounting.
TEST_F(AllocTest, NewWithGfp)
{
	long live = kvmmu_host_live_allocs();

	Tracked::live = 0;
	Tracked *t = new (gfp::kernel) Tracked(3);
	ASSERT_NE(t, nullptr);
	EXPECT_EQ(t->v, 3);
	EXPECT_EQ(kvmmu_host_live_allocs(), live + 1);
	kvmmu::destroy(t);
	EXPECT_EQ(Tracked::live, 0);

	int *a = new (gfp::atomic | gfp::zero) int[16];
	ASSERT_NE(a, nullptr);
	for (int i = 0; i < 16; i++)
		EXPECT_EQ(a[i], 0);
	kvmmu::kfree(a);
	EXPECT_EQ(kvmmu_host_live_allocs(), live);
}

TEST_F(AllocTest, NewWithGfpFailsWithoutConstructing)
{
	Tracked::live = 0;
	kvmmu_host_fail_alloc_after(0);
	EXPECT_EQ(new (gfp::kernel) Tracked(3), nullptr);
	EXPECT_EQ(new (std::align_val_t(64), gfp::kernel) Tracked(3), nullptr);
	EXPECT_EQ(new (gfp::kernel) int[4], nullptr);
	EXPECT_EQ(Tracked::live, 0);
}

TEST_F(AllocTest, AlignedNew)
{
	for (int i = 0; i < 8; i++) {
		Tracked *t = new (std::align_val_t(64), gfp::kernel) Tracked(i);
		ASSERT_NE(t, nullptr);
		EXPECT_TRUE(aligned_to(t, 64));
		EXPECT_EQ(t->v, i);
		kvmmu::destroy(t);

		// An over-aligned type picks the aligned form by itself.
		OverAligned *o = new (gfp::kernel) OverAligned;
		ASSERT_NE(o, nullptr);
		EXPECT_TRUE(aligned_to(o, alignof(OverAligned)));
		kvmmu::destroy(o);
	}
	EXPECT_EQ(Tracked::live, 0);
}

// --- address types ----------------------------------------------------------------

using kvmmu::Gfn;
using kvmmu::Gpa;
using kvmmu::Hva;
using kvmmu::Pfn;
using kvmmu::u32;
using kvmmu::u64;

// Different kinds of address never convert into each other, nor from or to
// plain integers.
static_assert(!std::is_convertible_v<Gpa, Gfn>);
static_assert(!std::is_convertible_v<Gpa, Hva>);
static_assert(!std::is_convertible_v<Gfn, Gpa>);
static_assert(!std::is_convertible_v<Hva, Gpa>);
static_assert(!std::is_convertible_v<Pfn, Gfn>);
static_assert(!std::is_constructible_v<Gfn, Gpa>);
static_assert(!std::is_constructible_v<Hva, Gpa>);
static_assert(!std::is_convertible_v<u64, Gpa>);
static_assert(!std::is_convertible_v<Gpa, u64>);

// SFINAE probes: which expressions compile.
template <class T, class = void>
struct has_to_gfn : std::false_type {};
template <class T>
struct has_to_gfn<T, std::void_t<decltype(kvmmu::to_gfn(std::declval<T>()))>> : std::true_type {};

template <class A, class B, class = void>
struct comparable : std::false_type {};
template <class A, class B>
struct comparable<A, B, std::void_t<decltype(std::declval<A>() == std::declval<B>())>>
	: std::true_type {};

template <class A, class B, class = void>
struct subtractable : std::false_type {};
template <class A, class B>
struct subtractable<A, B, std::void_t<decltype(std::declval<A>() - std::declval<B>())>>
	: std::true_type {};

static_assert(has_to_gfn<Gpa>::value);
static_assert(!has_to_gfn<Hva>::value);
static_assert(!has_to_gfn<Gfn>::value);
static_assert(!has_to_gfn<u64>::value);
static_assert(comparable<Gpa, Gpa>::value);
static_assert(!comparable<Gpa, Hva>::value);
static_assert(!comparable<Gpa, u64>::value);
static_assert(subtractable<Gpa, Gpa>::value);
static_assert(!subtractable<Gpa, Hva>::value);

static_assert(kvmmu::kPageSize == 4096);
static_assert(kvmmu::to_gfn(Gpa(0x12345)) == Gfn(0x12));
static_assert(kvmmu::to_gpa(Gfn(0x12)) == Gpa(0x12000));

TEST(TypesTest, Conversions)
{
	const Gpa gpa(0x123456789);

	EXPECT_EQ(kvmmu::to_gfn(gpa), Gfn(0x123456));
	EXPECT_EQ(kvmmu::to_gpa(kvmmu::to_gfn(gpa)), Gpa(0x123456000));
	EXPECT_EQ(kvmmu::page_offset(gpa), 0x789u);
	EXPECT_EQ(kvmmu::page_offset(Hva(0x7fff12345fff)), 0xfffu);
	EXPECT_EQ(kvmmu::page_offset(Hva(0x7fff12345000)), 0u);
	EXPECT_EQ(kvmmu::to_gpa(kvmmu::to_gfn(gpa)) + kvmmu::page_offset(gpa), gpa);
	EXPECT_TRUE(kvmmu::page_aligned(0));
	EXPECT_TRUE(kvmmu::page_aligned(0x3000));
	EXPECT_FALSE(kvmmu::page_aligned(0x3001));
	EXPECT_FALSE(kvmmu::page_aligned(0x800));
	EXPECT_EQ(Gfn().raw(), 0u);
	EXPECT_EQ(Pfn(7).raw(), 7u);
}

TEST(TypesTest, Arithmetic)
{
	const Gfn f(100);

	EXPECT_EQ(f + 5, Gfn(105));
	EXPECT_EQ(f - 5, Gfn(95));
	EXPECT_EQ(Gfn(105) - f, 5u);
	EXPECT_LT(f, Gfn(101));
	EXPECT_LE(f, Gfn(100));
	EXPECT_GT(Gfn(101), f);
	EXPECT_GE(f, Gfn(100));
	EXPECT_NE(f, Gfn(101));
}

// --- atomics ------------------------------------------------------------------------

TEST(AtomicTest, FetchAddFromThreads)
{
	constexpr int kThreads = 4, kIters = 100000;
	kvmmu::Atomic<u64> counter;
	kvmmu::Atomic<u64> relaxed;
	std::vector<std::thread> threads;

	for (int i = 0; i < kThreads; i++) {
		threads.emplace_back([&] {
			for (int j = 0; j < kIters; j++) {
				counter.fetch_add(1);
				relaxed.fetch_add(2, kvmmu::Order::relaxed);
			}
		});
	}
	for (auto &t : threads)
		t.join();
	EXPECT_EQ(counter.load(), u64(kThreads) * kIters);
	EXPECT_EQ(relaxed.load(), 2 * u64(kThreads) * kIters);
}

TEST(AtomicTest, CompareExchange)
{
	for (kvmmu::Order o : {kvmmu::Order::relaxed, kvmmu::Order::acquire, kvmmu::Order::release,
			       kvmmu::Order::acq_rel, kvmmu::Order::seq_cst}) {
		kvmmu::Atomic<int> a(5);
		int expected = 4;

		EXPECT_FALSE(a.compare_exchange(expected, 9, o));
		EXPECT_EQ(expected, 5); // got the current value
		EXPECT_EQ(a.load(), 5);
		EXPECT_TRUE(a.compare_exchange(expected, 9, o));
		EXPECT_EQ(a.load(), 9);
	}
}

TEST(AtomicTest, CompareExchangeLoopFromThreads)
{
	constexpr int kThreads = 4, kIters = 20000;
	kvmmu::Atomic<u64> counter;
	std::vector<std::thread> threads;

	for (int i = 0; i < kThreads; i++) {
		threads.emplace_back([&] {
			for (int j = 0; j < kIters; j++) {
				u64 v = counter.load(kvmmu::Order::relaxed);
				while (!counter.compare_exchange(v, v + 1, kvmmu::Order::acq_rel))
					;
			}
		});
	}
	for (auto &t : threads)
		t.join();
	EXPECT_EQ(counter.load(), u64(kThreads) * kIters);
}

TEST(AtomicTest, OtherOperations)
{
	kvmmu::Atomic<u32> a(0xf0);

	EXPECT_EQ(a.exchange(0x0f), 0xf0u);
	EXPECT_EQ(a.fetch_or(0xf0), 0x0fu);
	EXPECT_EQ(a.fetch_and(0x3c), 0xffu);
	EXPECT_EQ(a.fetch_sub(0x0c), 0x3cu);
	EXPECT_EQ(a.load(kvmmu::Order::acquire), 0x30u);
	a.store(1, kvmmu::Order::release);
	EXPECT_EQ(a.load(), 1u);

	kvmmu::Atomic<bool> flag;
	EXPECT_FALSE(flag.load());
	flag.store(true);
	EXPECT_TRUE(flag.exchange(false));
}

} // namespace
