#include <lib/acpi/Acpi.h>
#include <lib/text/Format.h>

namespace {

Error fail(const char** why, const char* message, int code = EINVAL)
{
    if (why)
        *why = message;
    return Error(code);
}

template<typename T>
T read_le(ReadonlyBytes bytes, usize offset)
{
    VERIFY(bytes.contains_range(offset, sizeof(T)));
    T value;
    __builtin_memcpy(&value, bytes.data() + offset, sizeof(T));
    return value;
}

// A byte loop rather than memcmp: the freestanding build must not depend on the compiler inlining it.
bool bytes_equal(const void* a, const void* b, usize length)
{
    auto* x = static_cast<const u8*>(a);
    auto* y = static_cast<const u8*>(b);
    for (usize i = 0; i < length; ++i)
        if (x[i] != y[i])
            return false;
    return true;
}

bool signature_is(ReadonlyBytes bytes, const char* signature, usize length)
{
    return bytes.contains_range(0, length) && bytes_equal(bytes.data(), signature, length);
}

// Reads through AcpiMemory and refuses a span shorter than asked for, whatever the backend does.
ErrorOr<ReadonlyBytes> read_exact(AcpiMemory& memory, PhysAddr address, usize length)
{
    auto bytes = TRY(memory.read(address, length));
    if (bytes.data() == nullptr || bytes.size() < length)
        return Error(EFAULT);
    return bytes.slice(0, length);
}

// The messages one table's header checks can produce: literals, so a panic can print them as is.
struct TableMessages {
    const char* signature;
    const char* header_truncated;
    const char* length_too_small;
    const char* length_past_end;
    const char* checksum;
};

// Checks the common SDT header and returns the table cut to its declared length.
ErrorOr<ReadonlyBytes> check_table(ReadonlyBytes bytes, const char signature[4], usize minimum_length,
    const TableMessages& messages, const char** why)
{
    if (bytes.data() == nullptr || bytes.size() < AcpiSdtHeaderSize)
        return fail(why, messages.header_truncated);
    if (!signature_is(bytes, signature, 4))
        return fail(why, messages.signature);
    u32 length = read_le<u32>(bytes, 4);
    if (length < minimum_length)
        return fail(why, messages.length_too_small);
    if (length > bytes.size())
        return fail(why, messages.length_past_end);
    auto table = bytes.slice(0, length);
    if (acpi_checksum(table) != 0)
        return fail(why, messages.checksum);
    return table;
}

constexpr TableMessages madt_messages {
    "ACPI: MADT signature is not \"APIC\"",
    "ACPI: MADT is shorter than its header",
    "ACPI: MADT length is smaller than its fixed fields",
    "ACPI: MADT length runs past the end of the table data",
    "ACPI: MADT checksum mismatch",
};
constexpr TableMessages hpet_messages {
    "ACPI: HPET signature is not \"HPET\"",
    "ACPI: HPET is shorter than its header",
    "ACPI: HPET length is smaller than its fixed fields",
    "ACPI: HPET length runs past the end of the table data",
    "ACPI: HPET checksum mismatch",
};
constexpr TableMessages mcfg_messages {
    "ACPI: MCFG signature is not \"MCFG\"",
    "ACPI: MCFG is shorter than its header",
    "ACPI: MCFG length is smaller than its fixed fields",
    "ACPI: MCFG length runs past the end of the table data",
    "ACPI: MCFG checksum mismatch",
};

// Root table messages, indexed by whether the XSDT (1) or the RSDT (0) is in use.
struct RootMessages {
    const char* unreadable;
    const char* signature;
    const char* length_too_small;
    const char* length_not_whole;
    const char* too_many;
    const char* length_past_end;
    const char* checksum;
    const char* entry_unreadable;
    const char* entry_too_small;
    const char* entry_past_end;
};
constexpr RootMessages root_messages[2] = {
    {
        "ACPI: RSDT address is outside readable memory",
        "ACPI: RSDT signature is not \"RSDT\"",
        "ACPI: RSDT length is smaller than its header",
        "ACPI: RSDT length is not a whole number of 4-byte entries",
        "ACPI: RSDT lists more tables than supported (128)",
        "ACPI: RSDT length runs past readable memory",
        "ACPI: RSDT checksum mismatch",
        "ACPI: RSDT entry points outside readable memory",
        "ACPI: table listed in the RSDT is shorter than its header",
        "ACPI: table listed in the RSDT runs past readable memory",
    },
    {
        "ACPI: XSDT address is outside readable memory",
        "ACPI: XSDT signature is not \"XSDT\"",
        "ACPI: XSDT length is smaller than its header",
        "ACPI: XSDT length is not a whole number of 8-byte entries",
        "ACPI: XSDT lists more tables than supported (128)",
        "ACPI: XSDT length runs past readable memory",
        "ACPI: XSDT checksum mismatch",
        "ACPI: XSDT entry points outside readable memory",
        "ACPI: table listed in the XSDT is shorter than its header",
        "ACPI: table listed in the XSDT runs past readable memory",
    },
};

} // namespace

u8 acpi_checksum(ReadonlyBytes bytes)
{
    u8 sum = 0;
    for (u8 byte : bytes)
        sum = u8(sum + byte);
    return sum;
}

ErrorOr<Rsdp> parse_rsdp(ReadonlyBytes bytes, const char** why)
{
    constexpr usize v1_size = 20;
    constexpr usize v2_size = 36;
    if (bytes.data() == nullptr || bytes.size() < v1_size)
        return fail(why, "ACPI: RSDP is shorter than 20 bytes");
    if (!signature_is(bytes, "RSD PTR ", 8))
        return fail(why, "ACPI: RSDP signature is not \"RSD PTR \"");
    if (acpi_checksum(bytes.slice(0, v1_size)) != 0)
        return fail(why, "ACPI: RSDP checksum mismatch");

    Rsdp rsdp;
    __builtin_memcpy(rsdp.oem_id, bytes.data() + 9, 6);
    rsdp.revision = bytes[15];
    rsdp.rsdt_address = read_le<u32>(bytes, 16);
    if (rsdp.revision < 2)
        return rsdp;

    if (bytes.size() < v2_size)
        return fail(why, "ACPI: RSDP revision 2 is shorter than 36 bytes");
    u32 length = read_le<u32>(bytes, 20);
    if (length < v2_size)
        return fail(why, "ACPI: RSDP length is smaller than 36");
    if (length > bytes.size())
        return fail(why, "ACPI: RSDP length runs past the end of its data");
    if (acpi_checksum(bytes.slice(0, length)) != 0)
        return fail(why, "ACPI: RSDP extended checksum mismatch");
    rsdp.length = length;
    rsdp.xsdt_address = read_le<u64>(bytes, 24);
    return rsdp;
}

ErrorOr<AcpiTables> AcpiTables::create(AcpiMemory& memory, ReadonlyBytes rsdp_bytes, const char** why)
{
    AcpiTables tables(memory);
    tables.m_rsdp = TRY(parse_rsdp(rsdp_bytes, why));
    // ACPI 2.0+ firmware may still leave the XSDT address zero; the RSDT is then the only root.
    tables.m_uses_xsdt = tables.m_rsdp.revision >= 2 && tables.m_rsdp.xsdt_address != 0;
    auto& messages = root_messages[tables.m_uses_xsdt ? 1 : 0];
    PhysAddr root(tables.m_uses_xsdt ? tables.m_rsdp.xsdt_address : tables.m_rsdp.rsdt_address);
    usize entry_size = tables.m_uses_xsdt ? 8 : 4;
    if (root.is_null())
        return fail(why, tables.m_uses_xsdt ? "ACPI: RSDP has a null XSDT address" : "ACPI: RSDP has a null RSDT address");

    auto header = read_exact(memory, root, AcpiSdtHeaderSize);
    if (header.is_error())
        return fail(why, messages.unreadable, header.error().code());
    if (!signature_is(header.value(), tables.m_uses_xsdt ? "XSDT" : "RSDT", 4))
        return fail(why, messages.signature);
    u32 length = read_le<u32>(header.value(), 4);
    if (length < AcpiSdtHeaderSize)
        return fail(why, messages.length_too_small);
    usize entries_bytes = length - AcpiSdtHeaderSize;
    if (entries_bytes % entry_size != 0)
        return fail(why, messages.length_not_whole);
    if (entries_bytes / entry_size > MaxTables)
        return fail(why, messages.too_many, E2BIG);
    auto root_table = read_exact(memory, root, length);
    if (root_table.is_error())
        return fail(why, messages.length_past_end, root_table.error().code());
    // NOTE: copy the entries out before reading anything else: a direct-map backend would not
    // care, but a host backend may reuse its buffer between reads.
    PhysAddr addresses[MaxTables];
    usize address_count = entries_bytes / entry_size;
    {
        auto table = root_table.value();
        if (acpi_checksum(table) != 0)
            return fail(why, messages.checksum);
        for (usize i = 0; i < address_count; ++i) {
            usize at = AcpiSdtHeaderSize + i * entry_size;
            addresses[i] = PhysAddr(entry_size == 8 ? read_le<u64>(table, at) : read_le<u32>(table, at));
        }
    }

    for (usize i = 0; i < address_count; ++i) {
        if (addresses[i].is_null())
            continue;
        auto entry_header = read_exact(memory, addresses[i], AcpiSdtHeaderSize);
        if (entry_header.is_error())
            return fail(why, messages.entry_unreadable, entry_header.error().code());
        Entry entry;
        entry.address = addresses[i];
        __builtin_memcpy(entry.signature, entry_header.value().data(), 4);
        entry.length = read_le<u32>(entry_header.value(), 4);
        if (entry.length < AcpiSdtHeaderSize)
            return fail(why, messages.entry_too_small);
        auto whole = read_exact(memory, entry.address, entry.length);
        if (whole.is_error())
            return fail(why, messages.entry_past_end, whole.error().code());
        tables.m_tables[tables.m_count++] = entry;
    }
    return tables;
}

ErrorOr<ReadonlyBytes> AcpiTables::table_at(usize i, const char** why)
{
    VERIFY(i < m_count);
    auto& entry = m_tables[i];
    auto bytes = read_exact(*m_memory, entry.address, entry.length);
    if (bytes.is_error())
        return fail(why, "ACPI: listed table is no longer readable", bytes.error().code());
    auto table = bytes.value();
    // The header may not change between create() and now, but a lookup re-validates anyway.
    if (!signature_is(table, entry.signature, 4) || read_le<u32>(table, 4) != entry.length)
        return fail(why, "ACPI: listed table header changed after discovery");
    if (u8 sum = acpi_checksum(table); sum != 0) {
        format(m_error, sizeof(m_error), "ACPI: %.4s table at 0x%llx: checksum mismatch (bytes sum to 0x%02x, not 0)",
            entry.signature, entry.address.ull(), sum);
        return fail(why, m_error);
    }
    return table;
}

ErrorOr<ReadonlyBytes> AcpiTables::find(const char signature[4], usize index, const char** why)
{
    for (usize i = 0; i < m_count; ++i) {
        if (!bytes_equal(m_tables[i].signature, signature, 4))
            continue;
        if (index-- == 0)
            return table_at(i, why);
    }
    return fail(why, "ACPI: table not found", ENOENT);
}

ErrorOr<MadtInfo> parse_madt(ReadonlyBytes bytes, const char** why)
{
    constexpr usize entries_offset = 44; // header, u32 local APIC address, u32 flags
    auto table = TRY(check_table(bytes, "APIC", entries_offset, madt_messages, why));

    MadtInfo info;
    info.lapic_address = PhysAddr(read_le<u32>(table, 36));
    info.pc_at_compatible = read_le<u32>(table, 40) & 1;

    usize offset = entries_offset;
    while (offset < table.size()) {
        if (table.size() - offset < 2)
            return fail(why, "ACPI: MADT entry header runs past the end of the table");
        u8 type = table[offset];
        u8 length = table[offset + 1];
        // A zero length would never advance; refuse anything smaller than the type/length pair.
        if (length < 2)
            return fail(why, "ACPI: MADT entry has a length smaller than 2");
        if (length > table.size() - offset)
            return fail(why, "ACPI: MADT entry runs past the end of the table");
        auto entry = table.slice(offset, length);
        offset += length;

        switch (type) {
        case 0: { // Processor local APIC
            if (length < 8)
                return fail(why, "ACPI: MADT local APIC entry is shorter than 8 bytes");
            u32 flags = read_le<u32>(entry, 4);
            // Neither enabled nor online-capable: firmware says this processor is unusable.
            if (!(flags & 3))
                break;
            if (info.processor_count == MadtInfo::MaxProcessors) {
                ++info.processors_ignored;
                break;
            }
            auto& cpu = info.processors[info.processor_count++];
            cpu.acpi_id = entry[2];
            cpu.apic_id = entry[3];
            cpu.enabled = flags & 1;
            cpu.online_capable = flags & 2;
            break;
        }
        case 1: { // I/O APIC
            if (length < 12)
                return fail(why, "ACPI: MADT I/O APIC entry is shorter than 12 bytes");
            if (info.io_apic_count == MadtInfo::MaxIoApics)
                return fail(why, "ACPI: MADT lists more I/O APICs than supported (8)", E2BIG);
            auto& io_apic = info.io_apics[info.io_apic_count++];
            io_apic.id = entry[2];
            io_apic.address = PhysAddr(read_le<u32>(entry, 4));
            io_apic.gsi_base = read_le<u32>(entry, 8);
            break;
        }
        case 2: { // Interrupt source override
            if (length < 10)
                return fail(why, "ACPI: MADT interrupt source override entry is shorter than 10 bytes");
            if (info.override_count == MadtInfo::MaxOverrides)
                return fail(why, "ACPI: MADT lists more interrupt source overrides than supported (24)", E2BIG);
            auto& iso = info.overrides[info.override_count++];
            iso.bus = entry[2];
            iso.source_irq = entry[3];
            iso.gsi = read_le<u32>(entry, 4);
            iso.flags = read_le<u16>(entry, 8);
            break;
        }
        case 4: { // Local APIC NMI
            if (length < 6)
                return fail(why, "ACPI: MADT local APIC NMI entry is shorter than 6 bytes");
            if (info.lapic_nmi_count == MadtInfo::MaxLapicNmis)
                return fail(why, "ACPI: MADT lists more local APIC NMIs than supported (16)", E2BIG);
            auto& nmi = info.lapic_nmis[info.lapic_nmi_count++];
            nmi.acpi_processor_id = entry[2];
            nmi.flags = read_le<u16>(entry, 3);
            nmi.lint = entry[5];
            break;
        }
        case 5: // Local APIC address override: the 64-bit address replaces the header's.
            if (length < 12)
                return fail(why, "ACPI: MADT local APIC address override entry is shorter than 12 bytes");
            info.lapic_address = PhysAddr(read_le<u64>(entry, 4));
            break;
        case 9: { // Processor local x2APIC
            if (length < 16)
                return fail(why, "ACPI: MADT local x2APIC entry is shorter than 16 bytes");
            u32 flags = read_le<u32>(entry, 8);
            if (!(flags & 3))
                break;
            if (info.processor_count == MadtInfo::MaxProcessors) {
                ++info.processors_ignored;
                break;
            }
            auto& cpu = info.processors[info.processor_count++];
            cpu.apic_id = read_le<u32>(entry, 4);
            cpu.acpi_id = read_le<u32>(entry, 12);
            cpu.enabled = flags & 1;
            cpu.online_capable = flags & 2;
            cpu.x2apic = true;
            break;
        }
        case 0xa: { // Local x2APIC NMI
            if (length < 12)
                return fail(why, "ACPI: MADT local x2APIC NMI entry is shorter than 12 bytes");
            if (info.lapic_nmi_count == MadtInfo::MaxLapicNmis)
                return fail(why, "ACPI: MADT lists more local APIC NMIs than supported (16)", E2BIG);
            auto& nmi = info.lapic_nmis[info.lapic_nmi_count++];
            nmi.flags = read_le<u16>(entry, 2);
            nmi.acpi_processor_id = read_le<u32>(entry, 4);
            nmi.lint = entry[8];
            break;
        }
        default:
            // NMI sources (3), SAPIC and GIC entries, and types from newer specs: not used here.
            break;
        }
    }
    return info;
}

ErrorOr<HpetInfo> parse_hpet(ReadonlyBytes bytes, const char** why)
{
    constexpr usize hpet_length = 56;
    auto table = TRY(check_table(bytes, "HPET", hpet_length, hpet_messages, why));
    HpetInfo info;
    info.event_timer_block_id = read_le<u32>(table, 36);
    // Generic Address Structure at 40: space id, bit width, bit offset, access size, u64 address.
    info.address_space_id = table[40];
    info.register_bit_width = table[41];
    info.register_bit_offset = table[42];
    info.base_address = PhysAddr(read_le<u64>(table, 44));
    info.hpet_number = table[52];
    info.min_tick = read_le<u16>(table, 53);
    info.page_protection = table[55];
    if (info.base_address.is_null())
        return fail(why, "ACPI: HPET has a null base address");
    return info;
}

ErrorOr<McfgInfo> parse_mcfg(ReadonlyBytes bytes, const char** why)
{
    constexpr usize entries_offset = 44; // header and 8 reserved bytes
    constexpr usize entry_size = 16;
    auto table = TRY(check_table(bytes, "MCFG", entries_offset, mcfg_messages, why));
    usize entries_bytes = table.size() - entries_offset;
    if (entries_bytes % entry_size != 0)
        return fail(why, "ACPI: MCFG length is not a whole number of 16-byte entries");
    if (entries_bytes / entry_size > McfgInfo::MaxEntries)
        return fail(why, "ACPI: MCFG lists more entries than supported (16)", E2BIG);

    McfgInfo info;
    for (usize at = entries_offset; at < table.size(); at += entry_size) {
        auto& entry = info.entries[info.entry_count++];
        entry.base_address = PhysAddr(read_le<u64>(table, at));
        entry.segment = read_le<u16>(table, at + 8);
        entry.bus_start = table[at + 10];
        entry.bus_end = table[at + 11];
        if (entry.bus_start > entry.bus_end)
            return fail(why, "ACPI: MCFG entry has bus_start after bus_end");
    }
    return info;
}
