#include <arch/x86_64/Interrupts.h>
#include <arch/x86_64/Lapic.h>
#include <arch/x86_64/Msi.h>

namespace arch {

namespace {
// Intel SDM vol. 3, 11.11.1: the MSI address window and the destination ID field.
constexpr u64 MSI_ADDRESS_BASE = 0xFEE00000ull;
constexpr u32 MSI_DESTINATION_SHIFT = 12;
constexpr u32 MAX_XAPIC_DESTINATION = 0xFF;
}

ErrorOr<MsiMessage> compose_msi_message(u8 vector)
{
    if (vector < interrupts::FIRST_EXTERNAL_VECTOR)
        return Error::with_message(EINVAL, "MSI to an exception vector");
    u32 destination = lapic::id();
    // xAPIC messages carry an 8-bit destination; wider IDs need x2APIC or interrupt remapping.
    if (destination > MAX_XAPIC_DESTINATION)
        return Error::with_message(ERANGE, "APIC ID does not fit an xAPIC MSI address");
    // Data: vector in bits 7:0, delivery mode fixed (0), edge triggered (bit 15 clear).
    return MsiMessage { MSI_ADDRESS_BASE | ((u64)destination << MSI_DESTINATION_SHIFT), vector };
}

} // namespace arch
