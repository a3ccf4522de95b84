#pragma once
// Arch interface: interrupt lines of platform devices (not on a bus that describes itself), found
// by firmware hardware ID and routed to an interrupt vector. On x86-64 PCs these are the legacy
// ISA lines, routed through the IOAPIC with the MADT's source overrides.
#include <arch/Arch.h>
#include <ktl/ErrorOr.h>
#include <ktl/StringView.h>

namespace arch {

struct PlatformIrq {
    u32 line;  // the architecture's own number for the line
    u32 flags; // PLATFORM_IRQ_LEVEL, PLATFORM_IRQ_ACTIVE_LOW
};
constexpr u32 PLATFORM_IRQ_LEVEL = 1;
constexpr u32 PLATFORM_IRQ_ACTIVE_LOW = 2;

// The line of instance `instance` of the device with ACPI hardware ID `hardware_id`; ENODEV if
// the platform has none.
ErrorOr<PlatformIrq> find_platform_irq(StringView hardware_id, unsigned instance);
// Whether `line` is a line find_platform_irq hands out.
bool is_platform_irq_line(u32 line);
// Delivers `line` to `vector` on the boot CPU, unmasked; ENODEV without an interrupt controller.
ErrorOr<void> route_platform_irq(u32 line, u8 vector);
void mask_platform_irq(u32 line);

} // namespace arch
