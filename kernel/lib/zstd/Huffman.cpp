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


// The fast path, after libzstd's HUF_decompress4X1_usingDTable_internal_fast: each stream keeps a
// 64-bit window whose top bits are the unread ones, with a sentinel 1 bit below them, so
// ctz(bits) is the number of bits used since the window was loaded. Five codes (at most 55 bits)
// are taken per stream between reloads, and the number of rounds is worked out up front from the
// bytes left before each stream's start and the symbols left to write, so the loop itself checks
// nothing. The readers then continue exactly where the windows stopped, for the tail.
// A stream that does not end exactly where its last literal does: either its last code runs
// past the start of the stream, or bits are left over.
// (The fuzzer tells these apart: libzstd's double-symbol decoder accepts the first two.)
Error stream_end_error(const BackwardBitReader& reader, u32 max_bits)
{
    if (reader.bits_remaining() < 0)
        return Error::with_message(EBADMSG, "zstd: Huffman stream ends inside its last code");
    if (reader.bits_remaining() < static_cast<i64>(max_bits))
        return Error::with_message(EBADMSG, "zstd: Huffman stream has less than a code left over after its literals");
    return Error::with_message(EBADMSG, "zstd: Huffman stream has bits left over after its literals");
}

template<int Streams>
inline usize decode_fast(BackwardBitReader* readers, const ReadonlyBytes* streams, const HuffmanEntry* table, u32 max_bits,
    u8* const* outs, usize count)
{
    const u8* ip[Streams];
    u64 bits[Streams];
    for (int s = 0; s < Streams; ++s) {
        if (streams[s].size() < 8)
            return 0;
        ip[s] = streams[s].data() + streams[s].size() - 8;
        u8 last = streams[s][streams[s].size() - 1];
        u64 word;
        __builtin_memcpy(&word, ip[s], 8);
        bits[s] = (word | 1) << (8 - highest_bit(last));
    }
    u32 shift = 64 - max_bits;
    usize done = 0;
    for (;;) {
        // Each round moves a window back at most 7 bytes and writes 5 symbols per stream.
        usize rounds = (count - done) / 5;
        for (int s = 0; s < Streams; ++s) {
            usize room = static_cast<usize>(ip[s] - streams[s].data()) / 7;
            if (room < rounds)
                rounds = room;
        }
        if (rounds == 0)
            break;
        for (usize r = 0; r < rounds; ++r) {
            for (int s = 0; s < Streams; ++s) {
                u8* o = outs[s] + done;
                u64 b = bits[s];
                for (int k = 0; k < 5; ++k) {
                    HuffmanEntry e = table[b >> shift];
                    o[k] = e.symbol;
                    b <<= e.nbits;
                }
                u32 used = static_cast<u32>(__builtin_ctzll(b));
                ip[s] -= used >> 3;
                u64 word;
                __builtin_memcpy(&word, ip[s], 8);
                bits[s] = (word | 1) << (used & 7);
            }
            done += 5;
        }
    }
    for (int s = 0; s < Streams; ++s)
        readers[s].set_bits_remaining(static_cast<i64>(ip[s] - streams[s].data()) * 8 + 64 - __builtin_ctzll(bits[s]));
    return done;
}

}

ErrorOr<usize> HuffmanTable::read(ReadonlyBytes data, FseTable& scratch)
{
    if (data.size() == 0)
        return Error::with_message(EBADMSG, "zstd: Huffman tree description is missing");
    u8 weights[256];
    u32 header = data[0];
    u32 weight_count;
    usize used;
    if (header >= 128) {
        // Weights stored directly, 4 bits each, the first in the high nibble.
        weight_count = header - 127;
        usize bytes = (weight_count + 1) / 2;
        if (!data.contains_range(1, bytes))
            return Error::with_message(EBADMSG, "zstd: Huffman tree description is truncated");
        for (u32 i = 0; i < weight_count; ++i) {
            u8 byte = data[1 + i / 2];
            weights[i] = (i & 1) ? (byte & 15) : (byte >> 4);
        }
        used = 1 + bytes;
    } else {
        if (!data.contains_range(1, header))
            return Error::with_message(EBADMSG, "zstd: Huffman tree description is truncated");
        weight_count = static_cast<u32>(TRY(read_fse_weights(data.slice(1, header), weights, scratch)));
        used = 1 + header;
    }
    TRY(build(weights, weight_count));
    return used;
}

ErrorOr<usize> HuffmanTable::read_fse_weights(ReadonlyBytes data, u8* weights, FseTable& scratch)
{
    if (data.size() == 0)
        return Error::with_message(EBADMSG, "zstd: Huffman weights are empty");
    usize header = TRY(scratch.read(data, 255, 6));
    BackwardBitReader reader;
    if (reader.init(data.slice(header)).is_error())
        return Error::with_message(EBADMSG, "zstd: Huffman weight stream lacks its end marker");
    u32 log = scratch.accuracy_log();
    const FseEntry* table = scratch.entries();
    // Two states take turns on one stream. When a state update runs past the start of the
    // stream, the other state gives the final symbol (section 4.2.1.2).
    u32 state[2];
    state[0] = static_cast<u32>(reader.read(log));
    state[1] = static_cast<u32>(reader.read(log));
    if (reader.overflowed())
        return Error::with_message(EBADMSG, "zstd: Huffman weight stream is too short");
    u32 count = 0;
    for (u32 turn = 0;; turn ^= 1) {
        if (count > 253)
            return Error::with_message(EBADMSG, "zstd: too many Huffman weights");
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

ErrorOr<void> HuffmanTable::build(const u8* weights, u32 weight_count)
{
    if (weight_count == 0 || weight_count > 255)
        return Error::with_message(EBADMSG, "zstd: bad Huffman weight count");
    u32 rank_count[max_code_bits + 2] {};
    u32 total = 0;
    for (u32 i = 0; i < weight_count; ++i) {
        if (weights[i] > max_code_bits)
            return Error::with_message(EBADMSG, "zstd: Huffman weight exceeds the maximum");
        rank_count[weights[i]]++;
        total += (1u << weights[i]) >> 1;
    }
    if (total == 0)
        return Error::with_message(EBADMSG, "zstd: Huffman weights are all zero");
    u32 max_bits = highest_bit(total) + 1;
    if (max_bits > max_code_bits)
        return Error::with_message(EBADMSG, "zstd: Huffman code length exceeds the maximum");
    // The last symbol's weight is implied: it tops the sum up to the next power of two.
    u32 rest = (1u << max_bits) - total;
    if (rest & (rest - 1))
        return Error::with_message(EBADMSG, "zstd: Huffman weights do not form a complete code");
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

ErrorOr<void> HuffmanTable::decode_one_stream(ReadonlyBytes stream, u8* out, usize count) const
{
    BackwardBitReader reader;
    if (reader.init(stream).is_error())
        return Error::with_message(EBADMSG, "zstd: Huffman stream lacks its end marker");
    u8* outs[1] = { out };
    usize done = decode_fast<1>(&reader, &stream, m_entries, m_max_bits, outs, count);
    decode_symbols(reader, m_entries, m_max_bits, out + done, count - done);
    if (!reader.is_exhausted())
        return stream_end_error(reader, m_max_bits);
    return {};
}

ErrorOr<void> HuffmanTable::decode_four_streams(ReadonlyBytes data, u8* out, usize count) const
{
    if (data.size() < 6)
        return Error::with_message(EBADMSG, "zstd: Huffman jump table is truncated");
    usize sizes[4];
    usize total = 6;
    for (int i = 0; i < 3; ++i) {
        sizes[i] = data[2 * i] | (static_cast<usize>(data[2 * i + 1]) << 8);
        total += sizes[i];
    }
    if (total > data.size())
        return Error::with_message(EBADMSG, "zstd: Huffman jump table points past the literals");
    sizes[3] = data.size() - total;
    usize segment = (count + 3) / 4;
    if (3 * segment > count)
        return Error::with_message(EBADMSG, "zstd: too few literals for four Huffman streams");
    usize counts[4] = { segment, segment, segment, count - 3 * segment };

    BackwardBitReader readers[4];
    ReadonlyBytes slices[4];
    usize offset = 6;
    for (int i = 0; i < 4; ++i) {
        slices[i] = data.slice(offset, sizes[i]);
        if (readers[i].init(slices[i]).is_error())
            return Error::with_message(EBADMSG, "zstd: Huffman stream lacks its end marker");
        offset += sizes[i];
    }

    // Interleave the four streams while all have room; then each stream's tail on its own.
    const HuffmanEntry* table = m_entries;
    u32 max_bits = m_max_bits;
    u8* outs[4] = { out, out + segment, out + 2 * segment, out + 3 * segment };
    usize done = decode_fast<4>(readers, slices, table, max_bits, outs, counts[3]);
    for (int s = 0; s < 4; ++s) {
        decode_symbols(readers[s], table, max_bits, outs[s] + done, counts[s] - done);
        if (!readers[s].is_exhausted())
            return stream_end_error(readers[s], max_bits);
    }
    return {};
}
