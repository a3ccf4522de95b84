// FSE table descriptions and decoding tables, after RFC 8878 sections 4.1.1 and 4.1.1.1.
#include "Fse.h"
#include "BitReader.h"

namespace {

u32 highest_bit(u32 value) { return 31 - __builtin_clz(value); }

}

ErrorOr<usize> FseTable::read(ReadonlyBytes data, u32 max_symbol, u32 max_log)
{
    if (data.size() == 0)
        return Error::with_message(EBADMSG, "zstd: FSE table description is empty");
    ForwardBitReader reader(data);
    u32 accuracy_log = reader.read(4) + 5;
    if (accuracy_log > max_log)
        return Error::with_message(EBADMSG, "zstd: FSE table log exceeds the maximum");

    i16 counts[max_symbols];
    i32 remaining = (1 << accuracy_log) + 1;
    i32 threshold = 1 << accuracy_log;
    u32 nbits = accuracy_log + 1;
    u32 symbol = 0;
    while (remaining > 1 && symbol <= max_symbol) {
        // Small values take nbits - 1 bits; the top of the range takes nbits (section 4.1.1).
        i32 max = 2 * threshold - 1 - remaining;
        i32 count;
        u32 low = reader.peek(nbits - 1) & static_cast<u32>(threshold - 1);
        if (static_cast<i32>(low) < max) {
            count = static_cast<i32>(low);
            reader.skip(nbits - 1);
        } else {
            count = static_cast<i32>(reader.read(nbits));
            if (count >= threshold)
                count -= max;
        }
        count -= 1;
        remaining -= count < 0 ? -count : count;
        if (remaining < 1)
            return Error::with_message(EBADMSG, "zstd: FSE probabilities add up to more than the table size");
        counts[symbol++] = static_cast<i16>(count);
        if (count == 0) {
            // A zero is followed by 2-bit repeat flags: each gives that many more zeros, and 3 means
            // another flag follows.
            for (;;) {
                u32 repeat = reader.read(2);
                if (symbol + repeat > max_symbol + 1)
                    return Error::with_message(EBADMSG, "zstd: FSE zero-probability run passes the last symbol");
                for (u32 i = 0; i < repeat; ++i)
                    counts[symbol++] = 0;
                if (repeat != 3)
                    break;
                if (reader.overran())
                    return Error::with_message(EBADMSG, "zstd: FSE table description is truncated");
            }
        }
        while (remaining < threshold) {
            --nbits;
            threshold >>= 1;
        }
        if (reader.overran())
            return Error::with_message(EBADMSG, "zstd: FSE table description is truncated");
    }
    if (remaining != 1)
        return Error::with_message(EBADMSG, "zstd: FSE probabilities do not add up to the table size");
    if (reader.overran())
        return Error::with_message(EBADMSG, "zstd: FSE table description is truncated");
    TRY(build(counts, symbol, accuracy_log));
    return static_cast<usize>(reader.bytes_consumed());
}

ErrorOr<void> FseTable::build(const i16* counts, u32 symbol_count, u32 accuracy_log)
{
    if (accuracy_log > max_accuracy_log || symbol_count > max_symbols || symbol_count == 0)
        return Error::with_message(EBADMSG, "zstd: bad FSE table shape");
    u32 size = 1u << accuracy_log;
    u32 total = 0;
    for (u32 s = 0; s < symbol_count; ++s)
        total += counts[s] < 0 ? 1u : static_cast<u32>(counts[s]);
    if (total != size)
        return Error::with_message(EBADMSG, "zstd: FSE probabilities do not add up to the table size");

    // Section 4.1.1: "less than 1" symbols take the last cells, one each, then the others are
    // spread with a fixed step that skips those cells.
    u16 next[max_symbols];
    u32 high = size - 1;
    for (u32 s = 0; s < symbol_count; ++s) {
        if (counts[s] == -1) {
            m_entries[high--].symbol = static_cast<u8>(s);
            next[s] = 1;
        } else {
            next[s] = static_cast<u16>(counts[s] < 0 ? 0 : counts[s]);
        }
    }
    u32 step = (size >> 1) + (size >> 3) + 3;
    u32 mask = size - 1;
    u32 position = 0;
    for (u32 s = 0; s < symbol_count; ++s) {
        for (i32 i = 0; i < counts[s]; ++i) {
            m_entries[position].symbol = static_cast<u8>(s);
            do
                position = (position + step) & mask;
            while (position > high);
        }
    }
    if (position != 0)
        return Error::with_message(EBADMSG, "zstd: FSE table does not fill evenly");

    // Each cell's state count decides how many bits the next state needs and where it starts.
    for (u32 u = 0; u < size; ++u) {
        u8 s = m_entries[u].symbol;
        u32 state = next[s]++;
        u32 bits = accuracy_log - highest_bit(state);
        m_entries[u].nbits = static_cast<u8>(bits);
        m_entries[u].base = static_cast<u16>((state << bits) - size);
    }
    m_accuracy_log = accuracy_log;
    return {};
}

void FseTable::build_rle(u8 symbol)
{
    m_entries[0] = FseEntry { 0, symbol, 0 };
    m_accuracy_log = 0;
}
