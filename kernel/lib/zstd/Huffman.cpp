// Huffman tree descriptions and literal streams, after RFC 8878 sections 4.2.1 and 4.2.2.
#include "Huffman.h"
#include "BitReader.h"

namespace {

u32 highest_bit(u32 value) { return 31 - __builtin_clz(value); }

// Decodes up to `count` symbols from one stream. The fast loop takes four symbols per 44-bit
// peek (4 codes of at most 11 bits); the tail goes one symbol at a time.
inline void decode_symbols(BackwardBitReader& reader, const HuffmanEntry* table, u32 max_bits, u8* out, usize count)
{
    u32 mask = (1u << max_bits) - 1;
    usize i = 0;
    while (count - i >= 4 && reader.bits_remaining() >= 44) {
        u64 bits = reader.peek(44);
        u32 used = 0;
        for (int k = 0; k < 4; ++k) {
            const HuffmanEntry& e = table[(bits >> (44 - used - max_bits)) & mask];
            out[i++] = e.symbol;
            used += e.nbits;
        }
        reader.consume(used);
    }
    for (; i < count; ++i) {
        const HuffmanEntry& e = table[reader.peek(max_bits)];
        out[i] = e.symbol;
        reader.consume(e.nbits);
    }
}

}

ErrorOr<usize> HuffmanTable::read(ReadonlyBytes data, FseTable& scratch, ZstdError& error)
{
    if (data.size() == 0)
        return error.fail(EBADMSG, "zstd: Huffman tree description is missing");
    u8 weights[256];
    u32 header = data[0];
    u32 weight_count;
    usize used;
    if (header >= 128) {
        // Weights stored directly, 4 bits each, the first in the high nibble.
        weight_count = header - 127;
        usize bytes = (weight_count + 1) / 2;
        if (!data.contains_range(1, bytes))
            return error.fail(EBADMSG, "zstd: Huffman tree description is truncated");
        for (u32 i = 0; i < weight_count; ++i) {
            u8 byte = data[1 + i / 2];
            weights[i] = (i & 1) ? (byte & 15) : (byte >> 4);
        }
        used = 1 + bytes;
    } else {
        if (!data.contains_range(1, header))
            return error.fail(EBADMSG, "zstd: Huffman tree description is truncated");
        weight_count = static_cast<u32>(TRY(read_fse_weights(data.slice(1, header), weights, scratch, error)));
        used = 1 + header;
    }
    TRY(build(weights, weight_count, error));
    return used;
}

ErrorOr<usize> HuffmanTable::read_fse_weights(ReadonlyBytes data, u8* weights, FseTable& scratch, ZstdError& error)
{
    if (data.size() == 0)
        return error.fail(EBADMSG, "zstd: Huffman weights are empty");
    usize header = TRY(scratch.read(data, 255, 6, "Huffman weights", error));
    BackwardBitReader reader;
    if (reader.init(data.slice(header)).is_error())
        return error.fail(EBADMSG, "zstd: Huffman weight stream lacks its end marker");
    u32 log = scratch.accuracy_log();
    const FseEntry* table = scratch.entries();
    // Two states take turns on one stream. When a state update runs past the start of the
    // stream, the other state gives the final symbol (section 4.2.1.2).
    u32 state[2];
    state[0] = static_cast<u32>(reader.read(log));
    state[1] = static_cast<u32>(reader.read(log));
    if (reader.overflowed())
        return error.fail(EBADMSG, "zstd: Huffman weight stream is too short");
    u32 count = 0;
    for (u32 turn = 0;; turn ^= 1) {
        if (count > 253)
            return error.fail(EBADMSG, "zstd: too many Huffman weights");
        const FseEntry& e = table[state[turn]];
        weights[count++] = e.symbol;
        state[turn] = e.base + static_cast<u32>(reader.read(e.nbits));
        if (reader.overflowed()) {
            weights[count++] = table[state[turn ^ 1]].symbol;
            break;
        }
    }
    return count;
}

ErrorOr<void> HuffmanTable::build(const u8* weights, u32 weight_count, ZstdError& error)
{
    if (weight_count == 0 || weight_count > 255)
        return error.fail(EBADMSG, "zstd: bad Huffman weight count ", weight_count);
    u32 rank_count[max_code_bits + 2] {};
    u32 total = 0;
    for (u32 i = 0; i < weight_count; ++i) {
        if (weights[i] > max_code_bits)
            return error.fail(EBADMSG, "zstd: Huffman weight ", weights[i], " exceeds the maximum ", max_code_bits);
        rank_count[weights[i]]++;
        total += (1u << weights[i]) >> 1;
    }
    if (total == 0)
        return error.fail(EBADMSG, "zstd: Huffman weights are all zero");
    u32 max_bits = highest_bit(total) + 1;
    if (max_bits > max_code_bits)
        return error.fail(EBADMSG, "zstd: Huffman code length ", max_bits, " exceeds the maximum ", max_code_bits);
    // The last symbol's weight is implied: it tops the sum up to the next power of two.
    u32 rest = (1u << max_bits) - total;
    if (rest & (rest - 1))
        return error.fail(EBADMSG, "zstd: Huffman weights do not form a complete code");
    u32 last_weight = highest_bit(rest) + 1;
    rank_count[last_weight]++;

    // Codes are assigned by weight, lightest first, and by symbol within a weight; a weight-w
    // symbol fills 2^(w-1) consecutive cells.
    u32 rank_start[max_code_bits + 2];
    u32 next = 0;
    for (u32 w = 1; w <= max_code_bits; ++w) {
        rank_start[w] = next;
        next += (rank_count[w] << w) >> 1;
    }
    u32 symbol_count = weight_count + 1;
    for (u32 s = 0; s < symbol_count; ++s) {
        u32 w = s < weight_count ? weights[s] : last_weight;
        if (w == 0)
            continue;
        u32 length = (1u << w) >> 1;
        HuffmanEntry entry { static_cast<u8>(s), static_cast<u8>(max_bits + 1 - w) };
        for (u32 i = 0; i < length; ++i)
            m_entries[rank_start[w] + i] = entry;
        rank_start[w] += length;
    }
    m_max_bits = max_bits;
    return {};
}

ErrorOr<void> HuffmanTable::decode_one_stream(ReadonlyBytes stream, u8* out, usize count, ZstdError& error) const
{
    BackwardBitReader reader;
    if (reader.init(stream).is_error())
        return error.fail(EBADMSG, "zstd: Huffman stream lacks its end marker");
    decode_symbols(reader, m_entries, m_max_bits, out, count);
    if (!reader.is_exhausted())
        return error.fail(EBADMSG, "zstd: Huffman stream size does not match its literals");
    return {};
}

ErrorOr<void> HuffmanTable::decode_four_streams(ReadonlyBytes data, u8* out, usize count, ZstdError& error) const
{
    if (data.size() < 6)
        return error.fail(EBADMSG, "zstd: Huffman jump table is truncated");
    usize sizes[4];
    usize total = 6;
    for (int i = 0; i < 3; ++i) {
        sizes[i] = data[2 * i] | (static_cast<usize>(data[2 * i + 1]) << 8);
        total += sizes[i];
    }
    if (total > data.size())
        return error.fail(EBADMSG, "zstd: Huffman jump table points past the literals");
    sizes[3] = data.size() - total;
    usize segment = (count + 3) / 4;
    if (3 * segment > count)
        return error.fail(EBADMSG, "zstd: too few literals (", count, ") for four Huffman streams");
    usize counts[4] = { segment, segment, segment, count - 3 * segment };

    BackwardBitReader readers[4];
    usize offset = 6;
    for (int i = 0; i < 4; ++i) {
        if (readers[i].init(data.slice(offset, sizes[i])).is_error())
            return error.fail(EBADMSG, "zstd: Huffman stream ", i + 1, " lacks its end marker");
        offset += sizes[i];
    }

    // Interleave the four streams while all have room for four symbols per 44-bit peek.
    const HuffmanEntry* table = m_entries;
    u32 max_bits = m_max_bits;
    u32 mask = (1u << max_bits) - 1;
    u8* outs[4] = { out, out + segment, out + 2 * segment, out + 3 * segment };
    usize done = 0;
    usize shortest = counts[3];
    while (shortest - done >= 4 && readers[0].bits_remaining() >= 44 && readers[1].bits_remaining() >= 44
        && readers[2].bits_remaining() >= 44 && readers[3].bits_remaining() >= 44) {
        for (int s = 0; s < 4; ++s) {
            u64 bits = readers[s].peek(44);
            u32 used = 0;
            u8* o = outs[s] + done;
            for (int k = 0; k < 4; ++k) {
                const HuffmanEntry& e = table[(bits >> (44 - used - max_bits)) & mask];
                o[k] = e.symbol;
                used += e.nbits;
            }
            readers[s].consume(used);
        }
        done += 4;
    }
    for (int s = 0; s < 4; ++s) {
        decode_symbols(readers[s], table, max_bits, outs[s] + done, counts[s] - done);
        if (!readers[s].is_exhausted())
            return error.fail(EBADMSG, "zstd: Huffman stream ", s + 1, " size does not match its literals");
    }
    return {};
}
