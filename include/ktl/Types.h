#pragma once
// Fixed-width integer names used across the kernel and the host-testable libraries.
#include <stddef.h>
#include <stdint.h>

using u8 = uint8_t;
using u16 = uint16_t;
using u32 = uint32_t;
using u64 = uint64_t;
using i8 = int8_t;
using i16 = int16_t;
using i32 = int32_t;
using i64 = int64_t;
using usize = size_t;
using isize = ptrdiff_t;
using uptr = uintptr_t;

constexpr u64 KiB = 1024;
constexpr u64 MiB = 1024 * KiB;
constexpr u64 GiB = 1024 * MiB;
constexpr u64 PAGE_SIZE = 4096;
constexpr u64 PAGE_SHIFT = 12;

constexpr u64 align_down(u64 value, u64 align) { return value & ~(align - 1); }
constexpr u64 align_up(u64 value, u64 align) { return (value + align - 1) & ~(align - 1); }
constexpr bool is_aligned(u64 value, u64 align) { return (value & (align - 1)) == 0; }
constexpr bool is_power_of_two(u64 value) { return value && !(value & (value - 1)); }

// Overflow-checked helpers for parsers that must never trust their input.
inline bool add_overflows(u64 a, u64 b, u64* out) { return __builtin_add_overflow(a, b, out); }
inline bool mul_overflows(u64 a, u64 b, u64* out) { return __builtin_mul_overflow(a, b, out); }

// PhysAddr and VirtAddr: addresses in the physical and the virtual address space. They are two
// distinct types over one u64 so that handing a virtual address to something that wants a
// physical one (or an integer where an address belongs) does not compile.
//
//   PhysAddr p(0x1000);                // explicit from an integer; there is no implicit way in
//   p + PAGE_SIZE, p - 8, p += n       // an address moved by a byte offset (u64) is an address
//   end - start                        // the distance between two addresses of one kind is a u64
//   p < q, p == q                      // only against the same kind
//   align_down(p, PAGE_SIZE)           // the alignment helpers keep the kind
//   p.value()                          // the integer, for arithmetic the type does not offer
//   printk("%#llx", p.ull())           // for printf-style %llx (u64 is unsigned long)
//   VirtAddr::from_ptr(ptr), v.as_ptr<T>()   // only a virtual address converts to a pointer
//
// There is no conversion between the kinds, nor to or from integers, bool or pointers. Crossing
// from one space to the other is the job of the code that knows the mapping (mm::phys_to_virt,
// the page tables). Both are trivially copyable, the size of a u64 and constexpr throughout.
// NOTE: the value is private, so the types are not structural and cannot be template arguments;
// nothing needs that, and a public member would invite `p.raw = v.raw`.
enum class AddressKind : u8 { Physical, Virtual };

template<AddressKind Kind>
class Address {
public:
    constexpr Address() = default;
    constexpr explicit Address(u64 value) : m_value(value) { }
    // Spelled out so that PhysAddr(virt) says "deleted" rather than listing candidates.
    template<AddressKind Other>
        requires(Other != Kind)
    Address(Address<Other>) = delete;

    constexpr u64 value() const { return m_value; }
    constexpr unsigned long long ull() const { return m_value; }
    constexpr bool is_null() const { return m_value == 0; }

    static Address from_ptr(const volatile void* pointer)
        requires(Kind == AddressKind::Virtual)
    {
        return Address(reinterpret_cast<uptr>(pointer));
    }
    template<typename T = void>
    T* as_ptr() const
        requires(Kind == AddressKind::Virtual)
    {
        return reinterpret_cast<T*>(static_cast<uptr>(m_value));
    }

    constexpr Address& operator+=(u64 offset)
    {
        m_value += offset;
        return *this;
    }
    constexpr Address& operator-=(u64 offset)
    {
        m_value -= offset;
        return *this;
    }
    friend constexpr Address operator+(Address address, u64 offset) { return Address(address.m_value + offset); }
    friend constexpr Address operator-(Address address, u64 offset) { return Address(address.m_value - offset); }
    friend constexpr u64 operator-(Address end, Address start) { return end.m_value - start.m_value; }

    friend constexpr bool operator==(Address a, Address b) { return a.m_value == b.m_value; }
    friend constexpr bool operator!=(Address a, Address b) { return a.m_value != b.m_value; }
    friend constexpr bool operator<(Address a, Address b) { return a.m_value < b.m_value; }
    friend constexpr bool operator<=(Address a, Address b) { return a.m_value <= b.m_value; }
    friend constexpr bool operator>(Address a, Address b) { return a.m_value > b.m_value; }
    friend constexpr bool operator>=(Address a, Address b) { return a.m_value >= b.m_value; }

private:
    u64 m_value { 0 };
};

using PhysAddr = Address<AddressKind::Physical>;
using VirtAddr = Address<AddressKind::Virtual>;

static_assert(sizeof(PhysAddr) == sizeof(u64) && alignof(PhysAddr) == alignof(u64));
static_assert(__is_trivially_copyable(PhysAddr) && __is_trivially_copyable(VirtAddr));

template<AddressKind Kind>
constexpr Address<Kind> align_down(Address<Kind> address, u64 align) { return Address<Kind>(align_down(address.value(), align)); }
template<AddressKind Kind>
constexpr Address<Kind> align_up(Address<Kind> address, u64 align) { return Address<Kind>(align_up(address.value(), align)); }
template<AddressKind Kind>
constexpr bool is_aligned(Address<Kind> address, u64 align) { return is_aligned(address.value(), align); }
template<AddressKind Kind>
inline bool add_overflows(Address<Kind> address, u64 offset, Address<Kind>* out)
{
    u64 sum;
    bool overflows = add_overflows(address.value(), offset, &sum);
    *out = Address<Kind>(sum);
    return overflows;
}
