#pragma once
// Finds and validates the ACPI tables the kernel needs at boot (MADT, HPET, MCFG). A corrupt
// table is a panic naming the table and the problem: booting on bad firmware data is worse.
#include <lib/acpi/Acpi.h>

struct BootInfo;

namespace acpi_support {

// corrupt_madt_for_test: the bad-input test flips the MADT checksum as it is read.
void init(const BootInfo&, bool corrupt_madt_for_test = false);
AcpiTables& tables();
const MadtInfo& madt();
bool has_hpet();
const HpetInfo& hpet();
bool has_mcfg();
const McfgInfo& mcfg();

// Physical memory reads through the direct map, bounded to mapped RAM and ACPI regions.
class DirectMapAcpiMemory : public AcpiMemory {
public:
    ErrorOr<ReadonlyBytes> read(PhysAddr address, usize length) override;
};

} // namespace acpi_support
