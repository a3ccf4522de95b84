#include <lib/debug/SymbolTable.h>

namespace {
u64 read_u64(ReadonlyBytes b, u64 offset)
{
    u64 v;
    __builtin_memcpy(&v, b.data() + offset, 8);
    return v;
}
constexpr u64 HEADER_SIZE = 32;
constexpr u64 ENTRY_SIZE = 16;
constexpr u64 MAX_UNSIZED_DISTANCE = 64 * 1024;
}

SymbolTable::SymbolTable(ReadonlyBytes blob)
    : m_blob(blob)
{
    if (!blob.contains_range(0, HEADER_SIZE) || read_u64(blob, 0) != MAGIC)
        return;
    u64 count = read_u64(blob, 8);
    u64 strings_offset = read_u64(blob, 16);
    u64 strings_size = read_u64(blob, 24);
    u64 entries_bytes;
    if (mul_overflows(count, ENTRY_SIZE, &entries_bytes) || !blob.contains_range(HEADER_SIZE, entries_bytes))
        return;
    if (!blob.contains_range(strings_offset, strings_size) || strings_size == 0 || blob[strings_offset + strings_size - 1] != 0)
        return;
    m_count = count;
    m_strings_offset = strings_offset;
    m_strings_size = strings_size;
}

SymbolTable::Entry SymbolTable::entry_at(u64 index) const
{
    Entry e;
    __builtin_memcpy(&e, m_blob.data() + HEADER_SIZE + index * ENTRY_SIZE, sizeof(e));
    return e;
}

StringView SymbolTable::name_at(u32 offset) const
{
    if (offset >= m_strings_size)
        return "?";
    auto* start = (const char*)m_blob.data() + m_strings_offset + offset;
    return StringView(start, __builtin_strlen(start)); // NUL inside strings checked at creation
}

bool SymbolTable::lookup(u64 address, Match& out) const
{
    if (!m_count)
        return false;
    // Last entry with entry.address <= address.
    u64 lo = 0, hi = m_count;
    while (lo < hi) {
        u64 mid = lo + (hi - lo) / 2;
        if (entry_at(mid).address <= address)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return false;
    Entry e = entry_at(lo - 1);
    u64 offset = address - e.address;
    if (e.size ? offset >= e.size : offset > MAX_UNSIZED_DISTANCE)
        return false;
    out = { name_at(e.name_offset), e.address, offset };
    return true;
}

bool SymbolTable::find(StringView name, u64& address) const
{
    for (u64 i = 0; i < m_count; ++i) {
        Entry e = entry_at(i);
        if (name_at(e.name_offset) == name) {
            address = e.address;
            return true;
        }
    }
    return false;
}
