#pragma once
// HuffmanTable: the literals' Huffman decoding table and stream decoders (RFC 8878 section 4.2).
//
// Interface:
//   HuffmanTable table;
//   usize used = TRY(table.read(bytes, scratch_fse));   - a Huffman tree description
//   TRY(table.decode_one_stream(stream, out, count));
//   TRY(table.decode_four_streams(streams_with_jump_table, out, count));
//
// The table is a direct lookup: the next max_bits() bits of a stream index it and give the
// symbol and how many of those bits its code really uses. Decoding writes exactly `count` bytes
// and requires each stream to be consumed exactly, as the format demands.
#include "Fse.h"
#include <ktl/ErrorOr.h>
#include <ktl/Span.h>
#include <ktl/Types.h>

struct HuffmanEntry {
    u8 symbol;
    u8 nbits;
};

class HuffmanTable {
public:
    static constexpr u32 max_code_bits = 11;

    ErrorOr<usize> read(ReadonlyBytes data, FseTable& scratch);
    ErrorOr<void> decode_one_stream(ReadonlyBytes stream, u8* out, usize count) const;
    // `data` starts with the 6-byte jump table giving the sizes of the first three streams.
    ErrorOr<void> decode_four_streams(ReadonlyBytes data, u8* out, usize count) const;

    u32 max_bits() const { return m_max_bits; }

private:
    ErrorOr<usize> read_fse_weights(ReadonlyBytes data, u8* weights, FseTable& scratch);
    ErrorOr<void> build(const u8* weights, u32 weight_count);

    HuffmanEntry m_entries[1u << max_code_bits] {};
    u32 m_max_bits { 0 };
};
