#pragma once
// Test helpers for PhysAddr and VirtAddr: literals that keep address-heavy tests readable
// (0x1000_pa, 0xffff800000000000_va) and a stream printer, so a failed EXPECT_EQ shows the
// address in hex instead of a byte dump.
#include <ktl/Types.h>
#include <ostream>

constexpr PhysAddr operator""_pa(unsigned long long value) { return PhysAddr(value); }
constexpr VirtAddr operator""_va(unsigned long long value) { return VirtAddr(value); }

template<AddressKind Kind>
std::ostream& operator<<(std::ostream& os, Address<Kind> address)
{
    auto flags = os.flags();
    os << (Kind == AddressKind::Physical ? "PhysAddr(0x" : "VirtAddr(0x") << std::hex << address.value() << ")";
    os.flags(flags);
    return os;
}
