// PhysAddr and VirtAddr (include/ktl/Types.h): what must not compile is checked with static_assert,
// what must work is checked at compile time where it can be and at run time otherwise.
#include <ktl/Types.h>

#include <gtest/gtest.h>
#include <support/Addresses.h>
#include <sstream>
#include <type_traits>

namespace {

// The two kinds never convert into each other, implicitly or explicitly.
static_assert(!std::is_convertible_v<PhysAddr, VirtAddr>);
static_assert(!std::is_convertible_v<VirtAddr, PhysAddr>);
static_assert(!std::is_constructible_v<PhysAddr, VirtAddr>);
static_assert(!std::is_constructible_v<VirtAddr, PhysAddr>);
static_assert(!std::is_assignable_v<PhysAddr&, VirtAddr>);
static_assert(!std::is_assignable_v<VirtAddr&, PhysAddr>);

// Integers become addresses only explicitly, and addresses never become integers by themselves.
static_assert(!std::is_convertible_v<u64, PhysAddr> && !std::is_convertible_v<u64, VirtAddr>);
static_assert(!std::is_convertible_v<int, PhysAddr> && !std::is_convertible_v<int, VirtAddr>);
static_assert(!std::is_convertible_v<PhysAddr, u64> && !std::is_convertible_v<VirtAddr, u64>);
static_assert(!std::is_convertible_v<PhysAddr, bool> && !std::is_convertible_v<VirtAddr, bool>);
static_assert(!std::is_constructible_v<u64, PhysAddr> && !std::is_constructible_v<u64, VirtAddr>);
static_assert(!std::is_assignable_v<PhysAddr&, u64> && !std::is_assignable_v<u64&, PhysAddr>);
static_assert(std::is_constructible_v<PhysAddr, u64> && std::is_constructible_v<VirtAddr, u64>);

// Pointers: only a virtual address, and only through from_ptr()/as_ptr().
static_assert(!std::is_constructible_v<VirtAddr, void*> && !std::is_constructible_v<PhysAddr, void*>);
static_assert(!std::is_convertible_v<VirtAddr, void*>);
template<typename A>
concept HasFromPtr = requires(const void* p) { A::from_ptr(p); };
template<typename A>
concept HasAsPtr = requires(A a) { a.as_ptr(); };
static_assert(HasFromPtr<VirtAddr> && HasAsPtr<VirtAddr>);
static_assert(!HasFromPtr<PhysAddr> && !HasAsPtr<PhysAddr>);

// Arithmetic: address + offset is an address, address - address is an offset, and nothing mixes.
template<typename A, typename B>
concept Addable = requires(A a, B b) { a + b; };
template<typename A, typename B>
concept Subtractable = requires(A a, B b) { a - b; };
template<typename A, typename B>
concept Comparable = requires(A a, B b) { a == b; a < b; };
static_assert(std::is_same_v<decltype(PhysAddr() + u64()), PhysAddr>);
static_assert(std::is_same_v<decltype(VirtAddr() - u64()), VirtAddr>);
static_assert(std::is_same_v<decltype(PhysAddr() - PhysAddr()), u64>);
static_assert(!Addable<PhysAddr, PhysAddr> && !Addable<VirtAddr, PhysAddr> && !Addable<u64, PhysAddr>);
static_assert(!Subtractable<PhysAddr, VirtAddr> && !Subtractable<VirtAddr, PhysAddr> && !Subtractable<u64, VirtAddr>);
static_assert(!Comparable<PhysAddr, VirtAddr> && !Comparable<PhysAddr, u64> && !Comparable<VirtAddr, int>);
static_assert(Comparable<PhysAddr, PhysAddr> && Comparable<VirtAddr, VirtAddr>);

// Free of cost: a u64 in size and layout, trivially copyable, usable in constant expressions.
static_assert(sizeof(PhysAddr) == 8 && sizeof(VirtAddr) == 8);
static_assert(std::is_trivially_copyable_v<PhysAddr> && std::is_trivially_copyable_v<VirtAddr>);
static_assert(std::is_standard_layout_v<PhysAddr>);

constexpr PhysAddr kPage(0x1000);
static_assert(kPage.value() == 0x1000);
static_assert(PhysAddr().is_null() && !kPage.is_null());
static_assert((kPage + 0x234).value() == 0x1234);
static_assert((kPage - 0x1000).is_null());
static_assert(PhysAddr(0x5000) - kPage == 0x4000);
static_assert(kPage < PhysAddr(0x1001) && kPage <= kPage && kPage >= kPage && PhysAddr(0x2000) > kPage);
static_assert(kPage == PhysAddr(0x1000) && kPage != PhysAddr(0x2000));
static_assert(align_down(PhysAddr(0x1fff), PAGE_SIZE) == kPage);
static_assert(align_up(PhysAddr(0x1001), PAGE_SIZE) == PhysAddr(0x2000));
static_assert(align_up(kPage, PAGE_SIZE) == kPage);
static_assert(is_aligned(kPage, PAGE_SIZE) && !is_aligned(kPage + 8, PAGE_SIZE));
static_assert(std::is_same_v<decltype(align_down(VirtAddr(), PAGE_SIZE)), VirtAddr>);
static_assert(0x1000_pa == kPage && (0x2000_va).value() == 0x2000);
constexpr PhysAddr advanced()
{
    PhysAddr p(0x1000);
    p += 0x3000;
    p -= 0x1000;
    return p;
}
static_assert(advanced() == PhysAddr(0x3000));

} // namespace

TEST(AddressTypes, CompoundArithmeticAndValue)
{
    VirtAddr v(0xffff800000000000);
    v += 0x10;
    EXPECT_EQ(v.value(), 0xffff800000000010ull);
    v -= 0x10;
    EXPECT_EQ(v, 0xffff800000000000_va);
    EXPECT_EQ(v.ull(), 0xffff800000000000ull);
    EXPECT_TRUE((std::is_same_v<decltype(v.ull()), unsigned long long>));
}

TEST(AddressTypes, PointerRoundTrip)
{
    int x = 42;
    VirtAddr v = VirtAddr::from_ptr(&x);
    EXPECT_EQ(v.value(), reinterpret_cast<uptr>(&x));
    EXPECT_EQ(v.as_ptr<int>(), &x);
    EXPECT_EQ(*v.as_ptr<int>(), 42);
    EXPECT_EQ(v.as_ptr(), static_cast<void*>(&x));
}

TEST(AddressTypes, OverflowCheckedAddKeepsTheKind)
{
    PhysAddr out;
    EXPECT_FALSE(add_overflows(0x1000_pa, 0xfff, &out));
    EXPECT_EQ(out, 0x1fff_pa);
    VirtAddr top;
    EXPECT_TRUE(add_overflows(VirtAddr(~0ull), 1, &top));
}

TEST(AddressTypes, PrintsInHex)
{
    std::ostringstream os;
    os << 0x1000_pa << " " << 0xffff800000000000_va << " " << 10;
    EXPECT_EQ(os.str(), "PhysAddr(0x1000) VirtAddr(0xffff800000000000) 10");
}
