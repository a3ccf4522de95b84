#include <Panic.h>
#include <acpi/AcpiSupport.h>
#include <lib/boot/Multiboot2.h>
#include <log/Log.h>
#include <mm/MemoryManager.h>
#include <new>

namespace acpi_support {

namespace {
// Returns a copy of the MADT with a broken checksum, as firmware with a bad table would.
class CorruptingAcpiMemory final : public DirectMapAcpiMemory {
public:
    ErrorOr<ReadonlyBytes> read(PhysAddr address, usize length) override
    {
        auto bytes = TRY(DirectMapAcpiMemory::read(address, length));
        if (length < AcpiSdtHeaderSize || length > sizeof(m_copy) || __builtin_memcmp(bytes.data(), "APIC", 4) != 0)
            return bytes;
        __builtin_memcpy(m_copy, bytes.data(), length);
        m_copy[9] ^= 0x5A;
        return ReadonlyBytes(m_copy, length);
    }

private:
    u8 m_copy[8192];
};

DirectMapAcpiMemory g_memory;
CorruptingAcpiMemory g_corrupting_memory;
alignas(AcpiTables) u8 g_tables_storage[sizeof(AcpiTables)];
AcpiTables* g_tables = nullptr;
MadtInfo g_madt;
HpetInfo g_hpet;
McfgInfo g_mcfg;
bool g_has_hpet = false;
bool g_has_mcfg = false;
}

ErrorOr<ReadonlyBytes> DirectMapAcpiMemory::read(PhysAddr address, usize length)
{
    PhysAddr end;
    if (add_overflows(address, length, &end) || end.value() > (1ull << 46))
        return EFAULT;
    // Firmware tables may sit outside the RAM the direct map covers; map those pages on demand.
    auto translation = mm::translate(mm::direct_map(address));
    auto last = mm::translate(mm::direct_map(length ? end - 1 : address));
    if (translation.is_error() || last.is_error())
        TRY(mm::map_mmio(address, length ? length : 1));
    return ReadonlyBytes((const u8*)mm::phys_to_virt(address), length);
}

void init(const BootInfo& info, bool corrupt_madt_for_test)
{
    if (info.acpi_rsdp_version == 0)
        panic("ACPI: the bootloader passed no RSDP (multiboot2 tags 14/15 missing)");
    AcpiMemory& memory = corrupt_madt_for_test ? (AcpiMemory&)g_corrupting_memory : (AcpiMemory&)g_memory;
    const char* why = nullptr;
    auto tables = AcpiTables::create(memory, info.acpi_rsdp, &why);
    if (tables.is_error())
        panic("%s", why ? why : "ACPI: invalid RSDP or XSDT");
    g_tables = new (g_tables_storage) AcpiTables(tables.release_value());
    log_info("acpi: revision %u, %s with %zu tables", g_tables->rsdp().revision, g_tables->uses_xsdt() ? "XSDT" : "RSDT",
        g_tables->table_count());
    for (usize i = 0; i < g_tables->table_count(); ++i)
        log_info("  acpi %.4s at 0x%llx", g_tables->signature_at(i), g_tables->address_at(i).ull());

    auto madt_bytes = g_tables->find("APIC", 0, &why);
    if (madt_bytes.is_error())
        panic("%s", why ? why : "ACPI: no MADT; interrupt routing is unknown");
    auto madt = parse_madt(madt_bytes.value(), &why);
    if (madt.is_error())
        panic("%s", why ? why : "ACPI: malformed MADT");
    g_madt = madt.release_value();
    log_info("acpi: MADT: LAPIC at 0x%llx, %zu CPUs, %zu IOAPICs, %zu overrides", g_madt.lapic_address.ull(),
        g_madt.processor_count, g_madt.io_apic_count, g_madt.override_count);

    auto hpet_bytes = g_tables->find("HPET", 0, &why);
    if (!hpet_bytes.is_error()) {
        auto hpet = parse_hpet(hpet_bytes.value(), &why);
        if (hpet.is_error())
            panic("%s", why ? why : "ACPI: malformed HPET table");
        g_hpet = hpet.release_value();
        g_has_hpet = true;
    }
    auto mcfg_bytes = g_tables->find("MCFG", 0, &why);
    if (!mcfg_bytes.is_error()) {
        auto mcfg = parse_mcfg(mcfg_bytes.value(), &why);
        if (mcfg.is_error())
            panic("%s", why ? why : "ACPI: malformed MCFG table");
        g_mcfg = mcfg.release_value();
        g_has_mcfg = true;
    }
}

AcpiTables& tables() { return *g_tables; }
const MadtInfo& madt() { return g_madt; }
bool has_hpet() { return g_has_hpet; }
const HpetInfo& hpet() { return g_hpet; }
bool has_mcfg() { return g_has_mcfg; }
const McfgInfo& mcfg() { return g_mcfg; }

} // namespace acpi_support
