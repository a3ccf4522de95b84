#pragma once
// PCI I/O space for I/O BARs: the port instructions on x86-64. Other architectures map I/O space
// into memory, so generic code (the module ABI's homeos_pci_io_read/write) goes through these
// and never issues port instructions itself.
#include <arch/x86_64/Cpu.h>

namespace arch {

// Whether I/O BARs are reached with these calls (true) or mapped like memory BARs (false).
constexpr bool HAS_PORT_IO = true;
// The largest I/O space address.
constexpr u64 IO_SPACE_LIMIT = 0xFFFF;

// `width` is 1, 2 or 4 and `address` <= IO_SPACE_LIMIT; the caller checks both.
inline u32 io_space_read(u64 address, unsigned width)
{
    u16 port = (u16)address;
    if (width == 1)
        return x86::inb(port);
    if (width == 2) {
        u16 value;
        asm volatile("inw %1, %0" : "=a"(value) : "Nd"(port));
        return value;
    }
    return x86::inl(port);
}

inline void io_space_write(u64 address, unsigned width, u32 value)
{
    u16 port = (u16)address;
    if (width == 1)
        x86::outb(port, (u8)value);
    else if (width == 2)
        x86::outw(port, (u16)value);
    else
        x86::outl(port, value);
}

} // namespace arch
