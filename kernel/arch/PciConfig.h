#pragma once
// Arch interface: PCI configuration access through the architecture's legacy mechanism, used
// when ACPI gives no ECAM window (ports 0xCF8/0xCFC on x86-64). Platforms without one return
// false from has_legacy_pci_config().
#include <arch/Arch.h>
#include <ktl/Types.h>

namespace arch {
bool has_legacy_pci_config();
// Aligned 1-, 2- or 4-byte accesses at `offset` (< 256) of bus:slot.function.
u32 legacy_pci_config_read(u8 bus, u8 slot, u8 function, u16 offset, u8 size);
void legacy_pci_config_write(u8 bus, u8 slot, u8 function, u16 offset, u8 size, u32 value);
} // namespace arch
