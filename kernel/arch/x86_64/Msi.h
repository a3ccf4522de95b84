#pragma once
// MSI message composition: the address/data pair a PCI device writes to raise an interrupt.
//
// Interface (arch-neutral; kernel/arch/Msi.h can front it for generic code):
//   auto message = TRY(arch::compose_msi_message(vector));
//   // program message.address / message.data into the device's MSI capability
//
// On x86-64 the address is the LAPIC's MSI window (0xFEE00000) with the destination APIC ID in
// bits 19:12 (physical destination mode), and the data is the vector with fixed delivery, edge
// triggered. Other architectures put their interrupt controller's doorbell here (a GIC ITS on
// ARM64), which is why drivers and generic code never compose these values themselves.
#include <ktl/ErrorOr.h>

namespace arch {

struct MsiMessage {
    u64 address;
    u32 data;
};

// The message that delivers interrupt vector `vector` (from interrupts::allocate_vector) to the
// boot CPU. EINVAL for an exception vector, ERANGE if the CPU's ID does not fit the message.
ErrorOr<MsiMessage> compose_msi_message(u8 vector);

} // namespace arch
