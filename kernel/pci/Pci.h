#pragma once
// PCI: enumeration (ECAM through ACPI MCFG when present, legacy port I/O otherwise), BARs,
// capabilities, MSI, modaliases, and the driver registry that binds drivers to devices.
//
// Devices are homeos_pci_device records (abi/homeos/pci.h), so drivers in modules see them as is.
#include <homeos/pci.h>
#include <ktl/ErrorOr.h>
#include <ktl/Span.h>
#include <ktl/StringView.h>

namespace pci {

constexpr usize MAX_DEVICES = 64;

void init();
bool uses_ecam();
Span<homeos_pci_device> devices();

u32 read_config(const homeos_pci_device&, u16 offset, unsigned width);
void write_config(const homeos_pci_device&, u16 offset, unsigned width, u32 value);

// Whether the id table entry matches the device (HOMEOS_PCI_ANY_ID wildcards, class mask).
bool id_matches(const homeos_pci_device_id&, const homeos_pci_device&);
// Formats Linux's PCI modalias: pci:vVVVVVVVVdDDDDDDDDsvSSSSSSSSsdSSSSSSSSbcCCscSSiII.
void format_modalias(const homeos_pci_device&, char* buffer, usize capacity);

ErrorOr<void> register_driver(homeos_pci_driver&);
void unregister_driver(homeos_pci_driver&);
// Drivers whose code lies in [start, end) are unregistered (a module is going away).
void unregister_drivers_in(u64 start, u64 end);
usize driver_count();

} // namespace pci
