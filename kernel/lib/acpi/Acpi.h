#pragma once
// ACPI table discovery and parsing (RSDP, XSDT/RSDT, MADT, HPET, MCFG).
//
// Interface:
//   auto rsdp = TRY(parse_rsdp(boot_info.acpi_rsdp));           // or let AcpiTables do it
//   const char* why = nullptr;
//   auto tables = AcpiTables::create(memory, boot_info.acpi_rsdp, &why);   // panic(why) on error
//   auto madt_bytes = TRY(tables.value().find("APIC", 0, &why));
//   auto madt = TRY(parse_madt(madt_bytes, &why));
//
// Firmware tables are input like any other: every length is checked against what was actually
// read, every checksum is verified, and a failure comes with a static message that names the
// table and the problem ("ACPI: MADT checksum mismatch"). Nothing here touches global state;
// physical memory is reached only through AcpiMemory.
#include <ktl/ErrorOr.h>
#include <ktl/Span.h>
#include <ktl/Types.h>

// How the parsers reach physical memory: the kernel maps it through the direct map, host tests
// and fuzzers back it with a buffer. read() must fail (for example EFAULT) rather than return a
// span shorter than `length`.
class AcpiMemory {
public:
    virtual ~AcpiMemory() = default;
    virtual ErrorOr<ReadonlyBytes> read(PhysAddr address, usize length) = 0;
};

// Sum of all bytes modulo 256; a valid ACPI table sums to 0.
u8 acpi_checksum(ReadonlyBytes bytes);

constexpr usize AcpiSdtHeaderSize = 36;

// The common header at the start of every system description table except the RSDP and FACS.
struct AcpiSdtHeader {
    char signature[4];
    u32 length;
    u8 revision;
    u8 checksum;
    char oem_id[6];
    char oem_table_id[8];
    u32 oem_revision;
    u32 creator_id;
    u32 creator_revision;
};
static_assert(sizeof(AcpiSdtHeader) == AcpiSdtHeaderSize);

struct Rsdp {
    u8 revision { 0 };    // 0 for ACPI 1.0 (RSDT only), 2 and up for XSDT
    char oem_id[6] {};
    // NOTE: the two roots stay the raw fields (the RSDT's is 32 bits wide by the spec);
    // AcpiTables::create() turns the one it uses into a PhysAddr.
    u32 rsdt_address { 0 };
    u64 xsdt_address { 0 }; // 0 when revision < 2
    u32 length { 20 };      // bytes covered by the checksums
};

// Checks the "RSD PTR " signature, the checksum of the first 20 bytes and, for revision >= 2, the
// length field and the extended checksum over `length` bytes.
ErrorOr<Rsdp> parse_rsdp(ReadonlyBytes bytes, const char** why = nullptr);

class AcpiTables {
public:
    static constexpr usize MaxTables = 128;

    // Reads the XSDT (or the RSDT for an ACPI 1.0 RSDP), checks its signature, length and
    // checksum, and records every table it lists after checking that the table's header is
    // readable and its length is sane. Table checksums are verified when a table is looked up,
    // so one broken table the kernel never uses does not stop the boot. Null entries are skipped.
    static ErrorOr<AcpiTables> create(AcpiMemory& memory, ReadonlyBytes rsdp, const char** why);

    // The index-th table with this signature (e.g. "APIC", "HPET", "MCFG", "FACP"), after checking
    // its checksum. ENOENT if there is none; EINVAL with *why set if it is corrupt.
    ErrorOr<ReadonlyBytes> find(const char signature[4], usize index = 0, const char** why = nullptr);

    usize table_count() const { return m_count; }
    // Signature of the i-th listed table, as 4 characters (not NUL-terminated).
    const char* signature_at(usize i) const { VERIFY(i < m_count); return m_tables[i].signature; }
    PhysAddr address_at(usize i) const { VERIFY(i < m_count); return m_tables[i].address; }
    // The i-th listed table, checksum verified.
    ErrorOr<ReadonlyBytes> table_at(usize i, const char** why = nullptr);

    const Rsdp& rsdp() const { return m_rsdp; }
    bool uses_xsdt() const { return m_uses_xsdt; }

private:
    struct Entry {
        PhysAddr address;
        u32 length;
        char signature[4];
    };
    explicit AcpiTables(AcpiMemory& memory) : m_memory(&memory) { }

    AcpiMemory* m_memory;
    Rsdp m_rsdp;
    bool m_uses_xsdt { false };
    usize m_count { 0 };
    Entry m_tables[MaxTables];
    // Messages that name a table and its address are formatted here.
    char m_error[128] {};
};

// MADT ("APIC"): the interrupt controller topology.
struct MadtProcessor {
    u32 acpi_id { 0 };
    u32 apic_id { 0 };
    bool enabled { false };        // flags bit 0
    bool online_capable { false }; // flags bit 1: may be enabled later
    bool x2apic { false };         // came from a type 9 entry
};

struct MadtIoApic {
    u8 id { 0 };
    PhysAddr address; // a 32-bit field in the table
    u32 gsi_base { 0 };
};

// MPS INTI flags for interrupt source overrides and NMIs.
enum MadtIntiFlags : u16 {
    MadtPolarityMask = 0x3,
    MadtPolarityConforms = 0x0,
    MadtPolarityActiveHigh = 0x1,
    MadtPolarityActiveLow = 0x3,
    MadtTriggerMask = 0xc,
    MadtTriggerConforms = 0x0,
    MadtTriggerEdge = 0x4,
    MadtTriggerLevel = 0xc,
};

struct MadtInterruptOverride {
    u8 bus { 0 };
    u8 source_irq { 0 };
    u32 gsi { 0 };
    u16 flags { 0 }; // MadtIntiFlags
};

struct MadtLapicNmi {
    u32 acpi_processor_id { 0 }; // 0xff (or 0xffffffff for x2APIC) means all processors
    u16 flags { 0 };
    u8 lint { 0 };
};

struct MadtInfo {
    static constexpr usize MaxProcessors = 64;
    static constexpr usize MaxIoApics = 8;
    static constexpr usize MaxOverrides = 24;
    static constexpr usize MaxLapicNmis = 16;

    PhysAddr lapic_address; // from the header, or the type 5 override when present
    bool pc_at_compatible { false }; // flags bit 0: legacy 8259 PICs are present and must be masked

    MadtProcessor processors[MaxProcessors];
    usize processor_count { 0 };
    // Processors past MaxProcessors are counted here and otherwise ignored: the kernel cannot
    // run them anyway, and refusing to boot on a big machine would be worse.
    usize processors_ignored { 0 };

    MadtIoApic io_apics[MaxIoApics];
    usize io_apic_count { 0 };

    MadtInterruptOverride overrides[MaxOverrides];
    usize override_count { 0 };

    MadtLapicNmi lapic_nmis[MaxLapicNmis];
    usize lapic_nmi_count { 0 };
};

// Validates signature, length and checksum, then every entry's type/length. An entry whose length
// is below 2 or past the table end is an error (a zero length would otherwise loop forever).
// Too many I/O APICs, overrides or NMI entries is E2BIG: dropping them would misroute interrupts.
ErrorOr<MadtInfo> parse_madt(ReadonlyBytes table, const char** why = nullptr);

// HPET: the event timer block.
struct HpetInfo {
    PhysAddr base_address; // meaningful as memory only when address_space_id is 0
    u8 address_space_id { 0 }; // 0 = system memory, the only kind the kernel can use
    u8 register_bit_width { 0 };
    u8 register_bit_offset { 0 };
    u8 hpet_number { 0 };
    u16 min_tick { 0 };
    u32 event_timer_block_id { 0 };
    u8 page_protection { 0 };
};
ErrorOr<HpetInfo> parse_hpet(ReadonlyBytes table, const char** why = nullptr);

// MCFG: PCI Express enhanced configuration space windows.
struct McfgEntry {
    PhysAddr base_address;
    u16 segment { 0 };
    u8 bus_start { 0 };
    u8 bus_end { 0 };
};
struct McfgInfo {
    static constexpr usize MaxEntries = 16;
    McfgEntry entries[MaxEntries];
    usize entry_count { 0 };
};
ErrorOr<McfgInfo> parse_mcfg(ReadonlyBytes table, const char** why = nullptr);
