// libFuzzer target: the input is a small physical memory with an RSDP at address 0.
//
// Checksums would stop the fuzzer at the first table, so each input is also run with its
// checksums repaired: the RSDP's, the root table's it points to, and the table at the start of
// the input (for the MADT, HPET and MCFG parsers).
#include <lib/acpi/Acpi.h>

#include <cstdlib>
#include <cstring>

namespace {

class FuzzMemory final : public AcpiMemory {
public:
    FuzzMemory(const u8* data, usize size) : m_data(data), m_size(size) { }
    ErrorOr<ReadonlyBytes> read(PhysAddr address, usize length) override
    {
        // The input is the whole physical memory: physical address N is byte N of it.
        u64 offset = address.value();
        if (offset > m_size || length > m_size - offset)
            return Error(EFAULT);
        return ReadonlyBytes(m_data + offset, length);
    }

private:
    const u8* m_data;
    usize m_size;
};

void fix_checksum(u8* data, usize size, usize checksum_at, usize length)
{
    if (checksum_at >= size || length > size)
        return;
    data[checksum_at] = 0;
    data[checksum_at] = u8(-acpi_checksum(ReadonlyBytes(data, length)));
}

u32 read32(const u8* data, usize size, usize at)
{
    u32 v = 0;
    if (at <= size && size - at >= 4)
        memcpy(&v, data + at, 4);
    return v;
}

u64 read64(const u8* data, usize size, usize at)
{
    u64 v = 0;
    if (at <= size && size - at >= 8)
        memcpy(&v, data + at, 8);
    return v;
}

void exercise_parsers(ReadonlyBytes table)
{
    const char* why = nullptr;
    if (parse_madt(table, &why).is_error() && !why)
        abort();
    why = nullptr;
    if (parse_hpet(table, &why).is_error() && !why)
        abort();
    why = nullptr;
    if (parse_mcfg(table, &why).is_error() && !why)
        abort();
}

void exercise_tables(const u8* data, usize size)
{
    FuzzMemory memory(data, size);
    ReadonlyBytes rsdp(data, size < 36 ? size : 36);
    const char* why = nullptr;
    auto tables = AcpiTables::create(memory, rsdp, &why);
    if (tables.is_error()) {
        if (!why)
            abort();
        return;
    }
    auto& t = tables.value();
    for (usize i = 0; i < t.table_count(); ++i) {
        auto table = t.table_at(i);
        if (!table.is_error())
            exercise_parsers(table.value());
    }
    for (const char* signature : { "APIC", "HPET", "MCFG", "FACP" }) {
        auto table = t.find(signature);
        if (!table.is_error())
            exercise_parsers(table.value());
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    if (size > 1 << 20)
        return 0;
    // Exact-size copies, so ASan sees any overread.
    u8* copy = static_cast<u8*>(malloc(size ? size : 1));
    if (!copy)
        return 0;
    memcpy(copy, data, size);

    exercise_tables(copy, size);
    exercise_parsers(ReadonlyBytes(copy, size));

    // Repaired variant: RSDP checksums, the root table's checksum, and a table at offset 0.
    fix_checksum(copy, size, 8, 20);
    u32 rsdp_length = read32(copy, size, 20);
    if (rsdp_length >= 36 && rsdp_length <= 64)
        fix_checksum(copy, size, 32, rsdp_length);
    u64 root = copy[15 % (size ? size : 1)] >= 2 ? read64(copy, size, 24) : read32(copy, size, 16);
    if (root < size) {
        u32 length = read32(copy, size, root + 4);
        if (length <= size - root)
            fix_checksum(copy + root, size - root, 9, length);
    }
    exercise_tables(copy, size);

    memcpy(copy, data, size);
    u32 table_length = read32(copy, size, 4);
    if (table_length <= size)
        fix_checksum(copy, size, 9, table_length);
    exercise_parsers(ReadonlyBytes(copy, size));

    free(copy);
    return 0;
}
