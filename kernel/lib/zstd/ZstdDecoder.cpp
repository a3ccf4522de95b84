// The zstd frame, block and sequence decoder, after RFC 8878 sections 3 and 4.
#include "ZstdDecoder.h"
#include "BitReader.h"
#include "XxHash64.h"
#include "ZstdBufferOutput.h"

namespace {

// Section 3.1.1.3.2.1.1: literal length, match length and offset codes.
constexpr u32 literal_length_base[36] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    16, 18, 20, 22, 24, 28, 32, 40, 48, 64, 128, 256, 512, 1024, 2048, 4096,
    8192, 16384, 32768, 65536
};
constexpr u8 literal_length_bits[36] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12,
    13, 14, 15, 16
};
constexpr u32 match_length_base[53] = {
    3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
    19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34,
    35, 37, 39, 41, 43, 47, 51, 59, 67, 83, 99, 131, 259, 515, 1027, 2051,
    4099, 8195, 16387, 32771, 65539
};
constexpr u8 match_length_bits[53] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11,
    12, 13, 14, 15, 16
};

// Section 3.1.1.3.2.2: the predefined distributions.
constexpr i16 predefined_literal_lengths[36] = {
    4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1,
    -1, -1, -1, -1
};
constexpr i16 predefined_match_lengths[53] = {
    1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1,
    -1, -1, -1, -1, -1
};
constexpr i16 predefined_offsets[29] = {
    1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1
};

constexpr u32 table_max_symbol[3] = { 35, 31, 52 };
constexpr u32 table_max_log[3] = { 9, 8, 9 };

inline u32 load_le(const u8* p, usize bytes)
{
    u32 value = 0;
    for (usize i = 0; i < bytes; ++i)
        value |= static_cast<u32>(p[i]) << (8 * i);
    return value;
}

inline u64 load_le64(const u8* p, usize bytes)
{
    u64 value = 0;
    for (usize i = 0; i < bytes; ++i)
        value |= static_cast<u64>(p[i]) << (8 * i);
    return value;
}

inline void copy8(u8* to, const u8* from) { __builtin_memcpy(to, from, 8); }
inline void copy16(u8* to, const u8* from)
{
    copy8(to, from);
    copy8(to + 8, from + 8);
}

// A copy of any length that never calls memcpy: the kernel's memcpy is `rep movsb`, which QEMU's
// TCG runs one byte per iteration, and most copies here are a few dozen bytes. Exact: writes
// nothing past to + length.
inline void copy_bytes(u8* to, const u8* from, usize length)
{
#ifdef HOMEOS_HOST
    // On the host, libc's memcpy is the faster choice for a long run (a raw block).
    if (length >= 256) {
        __builtin_memcpy(to, from, length);
        return;
    }
#endif
    while (length >= 16) {
        copy16(to, from);
        to += 16;
        from += 16;
        length -= 16;
    }
    if (length >= 8) {
        copy8(to, from);
        copy8(to + length - 8, from + length - 8);
        return;
    }
    for (usize i = 0; i < length; ++i)
        to[i] = from[i];
}

inline void fill_bytes(u8* to, u8 value, usize length)
{
    u64 pattern = 0x0101010101010101ull * value;
    while (length >= 8) {
        __builtin_memcpy(to, &pattern, 8);
        to += 8;
        length -= 8;
    }
    for (usize i = 0; i < length; ++i)
        to[i] = value;
}

// Copies in 16-byte strides and may write up to 15 bytes past to + length; the caller has
// checked that both sides have that much room. Source and destination may overlap only if the
// source is at least 16 bytes behind.
inline void wild_copy(u8* to, const u8* from, usize length)
{
    u8* end = to + length;
    do {
        copy16(to, from);
        to += 16;
        from += 16;
    } while (to < end);
}

// A match whose source overlaps its destination (offset < 16) repeats the last `offset` bytes.
// For a period under 8, the first 8 bytes are built so that the source then runs a multiple of
// the period and at least 8 bytes behind; the rest goes in 8-byte steps. May write up to 15
// bytes past op + length (the caller has checked the room). After libzstd's ZSTD_overlapCopy8.
inline void wild_copy_short_offset(u8* op, usize offset, usize length)
{
    const u8* match = op - offset;
    u8* const end = op + length;
    if (offset < 8) {
        static constexpr u8 added[8] = { 0, 1, 2, 1, 4, 4, 4, 4 };
        static constexpr u8 subtracted[8] = { 8, 8, 8, 7, 8, 9, 10, 11 };
        op[0] = match[0];
        op[1] = match[1];
        op[2] = match[2];
        op[3] = match[3];
        match += added[offset];
        __builtin_memcpy(op + 4, match, 4);
        match -= subtracted[offset];
    } else {
        copy8(op, match);
    }
    match += 8;
    op += 8;
    while (op < end) {
        copy8(op, match);
        op += 8;
        match += 8;
    }
}

// The exact, slow path for overlapping matches near the end of the output: repeats the last
// `offset` bytes, writing exactly `length` bytes.
inline void copy_overlapping_match(u8* op, usize offset, usize length)
{
    const u8* match = op - offset;
    if (offset >= length) {
        copy_bytes(op, match, length);
        return;
    }
    if (offset >= 8) {
        // Non-overlapping 8-byte steps: each reads bytes already written.
        usize i = 0;
        for (; i + 8 <= length; i += 8)
            copy8(op + i, match + i);
        for (; i < length; ++i)
            op[i] = match[i];
        return;
    }
    for (usize i = 0; i < length; ++i)
        op[i] = match[i];
}

}

ZstdDecoder::ZstdDecoder()
{
    MUST(m_predefined[LiteralLengths].build(predefined_literal_lengths, 36, 6));
    MUST(m_predefined[Offsets].build(predefined_offsets, 29, 5));
    MUST(m_predefined[MatchLengths].build(predefined_match_lengths, 53, 6));
    for (int kind = 0; kind < 3; ++kind)
        build_sequence_table(static_cast<TableKind>(kind), m_predefined[kind], m_predefined_sequences[kind]);
}

void ZstdDecoder::build_sequence_table(TableKind kind, const FseTable& table, SequenceEntry* out)
{
    u32 size = 1u << table.accuracy_log();
    for (u32 state = 0; state < size; ++state) {
        const FseEntry& e = table.entry(state);
        u32 code = e.symbol;
        u64 base, extra;
        if (kind == LiteralLengths) {
            base = literal_length_base[code];
            extra = literal_length_bits[code];
        } else if (kind == MatchLengths) {
            base = match_length_base[code];
            extra = match_length_bits[code];
        } else {
            base = u64(1) << code;
            extra = code;
        }
        out[state] = base | (u64(e.base) << 32) | (u64(e.nbits) << 48) | (extra << 56);
    }
}

ErrorOr<ZstdDecoder::FrameHeader> ZstdDecoder::parse_frame_header(ReadonlyBytes frame)
{
    if (frame.size() < 5)
        return Error::with_message(EBADMSG, "zstd: frame header is truncated");
    u8 descriptor = frame[4];
    u32 content_size_flag = descriptor >> 6;
    bool single_segment = (descriptor >> 5) & 1;
    bool reserved = (descriptor >> 3) & 1;
    u32 dictionary_flag = descriptor & 3;
    if (reserved)
        return Error::with_message(EBADMSG, "zstd: reserved bit set in the frame header descriptor");

    static constexpr usize dictionary_id_sizes[4] = { 0, 1, 2, 4 };
    usize content_size_bytes = content_size_flag == 0 ? (single_segment ? 1 : 0) : (usize(1) << content_size_flag);
    usize dictionary_bytes = dictionary_id_sizes[dictionary_flag];
    FrameHeader header;
    header.header_size = 5 + (single_segment ? 0 : 1) + dictionary_bytes + content_size_bytes;
    if (frame.size() < header.header_size)
        return Error::with_message(EBADMSG, "zstd: frame header is truncated");
    header.has_checksum = (descriptor >> 2) & 1;

    usize position = 5;
    if (!single_segment) {
        u8 window = frame[position++];
        u32 window_log = 10 + (window >> 3);
        if (window_log > max_window_log)
            return Error::with_message(EOVERFLOW, "zstd: the frame's window log exceeds the maximum of 31");
        u64 base = u64(1) << window_log;
        // NOTE: a log of 31 with a mantissa means up to 3.75 GiB. The size itself costs nothing
        // here (the window is the flat output), so only the log is limited, as libzstd does.
        header.window_size = base + (base >> 3) * (window & 7);
    }
    if (dictionary_bytes) {
        u32 dictionary_id = load_le(frame.data() + position, dictionary_bytes);
        position += dictionary_bytes;
        // An ID of zero names no dictionary.
        if (dictionary_id != 0)
            return Error::with_message(ENOTSUP, "zstd: the frame needs a dictionary; dictionaries are not supported");
    }
    if (content_size_bytes) {
        header.content_size = load_le64(frame.data() + position, content_size_bytes);
        if (content_size_bytes == 2)
            header.content_size += 256;
        header.has_content_size = true;
    }
    if (single_segment)
        header.window_size = header.content_size;
    return header;
}

ErrorOr<usize> ZstdDecoder::measure_frame(ReadonlyBytes frame, const FrameHeader& header)
{
    usize position = header.header_size;
    for (;;) {
        if (frame.size() - position < 3)
            return Error::with_message(EBADMSG, "zstd: block header is truncated");
        u32 block_header = load_le(frame.data() + position, 3);
        position += 3;
        u32 type = (block_header >> 1) & 3;
        usize size = block_header >> 3;
        if (type == 3)
            return Error::with_message(EBADMSG, "zstd: reserved block type");
        usize stored = type == 1 ? 1 : size;
        if (frame.size() - position < stored)
            return Error::with_message(EBADMSG, "zstd: block is truncated");
        position += stored;
        if (block_header & 1)
            break;
    }
    if (header.has_checksum) {
        if (frame.size() - position < 4)
            return Error::with_message(EBADMSG, "zstd: content checksum is truncated");
        position += 4;
    }
    return position;
}

ErrorOr<usize> ZstdDecoder::skippable_frame_size(ReadonlyBytes input)
{
    if (input.size() < 8)
        return Error::with_message(EBADMSG, "zstd: skippable frame header is truncated");
    u32 size = load_le(input.data() + 4, 4);
    if (input.size() - 8 < size)
        return Error::with_message(EBADMSG, "zstd: skippable frame is truncated");
    return 8 + static_cast<usize>(size);
}

bool ZstdDecoder::starts_with_frame(ReadonlyBytes input)
{
    usize position = 0;
    while (input.size() - position >= 4) {
        u32 magic = load_le(input.data() + position, 4);
        if (magic == frame_magic)
            return true;
        if ((magic & 0xFFFFFFF0u) != skippable_magic)
            return false;
        auto size = skippable_frame_size(input.slice(position));
        if (size.is_error())
            return false;
        position += size.value();
    }
    return false;
}

ErrorOr<u64> ZstdDecoder::content_size(ReadonlyBytes input)
{
    u64 total = 0;
    usize position = 0;
    while (position < input.size()) {
        ReadonlyBytes rest = input.slice(position);
        if (rest.size() < 4)
            return Error::with_message(EBADMSG, "zstd: trailing bytes are not a frame");
        u32 magic = load_le(rest.data(), 4);
        if ((magic & 0xFFFFFFF0u) == skippable_magic) {
            position += TRY(skippable_frame_size(rest));
            continue;
        }
        if (magic != frame_magic)
            return Error::with_message(EBADMSG, "zstd: bad frame magic");
        FrameHeader header = TRY(parse_frame_header(rest));
        if (!header.has_content_size)
            return Error::with_message(ENODATA, "zstd: a frame does not declare its content size");
        if (add_overflows(total, header.content_size, &total))
            return Error::with_message(EOVERFLOW, "zstd: the frames' content sizes overflow 64 bits");
        position += TRY(measure_frame(rest, header));
    }
    return total;
}

ErrorOr<usize> ZstdDecoder::decompress(ReadonlyBytes input, Bytes output)
{
    ZstdBufferOutput fixed(output);
    return decompress(input, fixed);
}

ErrorOr<usize> ZstdDecoder::decompress(ReadonlyBytes input, ZstdOutput& output)
{
    m_output = &output;
    usize out_position = 0;
    usize position = 0;
    while (position < input.size()) {
        ReadonlyBytes rest = input.slice(position);
        if (rest.size() < 4)
            return Error::with_message(EBADMSG, "zstd: trailing bytes are not a frame");
        u32 magic = load_le(rest.data(), 4);
        if ((magic & 0xFFFFFFF0u) == skippable_magic) {
            position += TRY(skippable_frame_size(rest));
            continue;
        }
        if (magic != frame_magic)
            return Error::with_message(EBADMSG, "zstd: bad frame magic");
        position += TRY(decode_frame(rest, output, out_position));
    }
    return out_position;
}

ErrorOr<usize> ZstdDecoder::decode_frame(ReadonlyBytes frame, ZstdOutput& sink, usize& out_position)
{
    FrameHeader header = TRY(parse_frame_header(frame));
    usize frame_start = out_position;
    usize block_limit = header.window_size < max_block_size ? static_cast<usize>(header.window_size) : max_block_size;
    // Refuse up front what can never fit, so a huge declared size is one clear error.
    if (header.has_content_size && (out_position > sink.limit() || header.content_size > sink.limit() - out_position))
        return sink.full_error();

    m_repeat_offsets[0] = 1;
    m_repeat_offsets[1] = 4;
    m_repeat_offsets[2] = 8;
    m_active[0] = m_active[1] = m_active[2] = nullptr;
    m_huffman_valid = false;

    usize position = header.header_size;
    for (;;) {
        if (frame.size() - position < 3)
            return Error::with_message(EBADMSG, "zstd: block header is truncated");
        u32 block_header = load_le(frame.data() + position, 3);
        position += 3;
        bool last = block_header & 1;
        u32 type = (block_header >> 1) & 3;
        usize size = block_header >> 3;
        if (type == 3)
            return Error::with_message(EBADMSG, "zstd: reserved block type");
        if (size > block_limit)
            return Error::with_message(EBADMSG, "zstd: block size exceeds the frame's block maximum");
        usize stored = type == 1 ? 1 : size;
        if (frame.size() - position < stored)
            return Error::with_message(EBADMSG, "zstd: block is truncated");
        ReadonlyBytes block = frame.slice(position, stored);
        position += stored;

        // A block adds at most block_limit bytes, and never more than the frame declares.
        usize wanted = type == 2 ? block_limit : size;
        if (header.has_content_size) {
            u64 left = header.content_size - (out_position - frame_start);
            if (header.content_size < out_position - frame_start)
                left = 0;
            if (left < wanted)
                wanted = static_cast<usize>(left);
        }
        Bytes output = TRY(sink.reserve(out_position, wanted + output_slack));
        if (type == 2) {
            TRY(decode_compressed_block(block, output, frame_start, out_position, block_limit));
        } else {
            if (output.size() - out_position < size)
                return sink.full_error();
            if (type == 0)
                copy_bytes(output.data() + out_position, block.data(), size);
            else
                fill_bytes(output.data() + out_position, block[0], size);
            out_position += size;
        }
        if (last)
            break;
    }

    usize produced = out_position - frame_start;
    if (header.has_content_size && produced != header.content_size)
        return Error::with_message(EBADMSG, "zstd: the frame decodes to a size other than it declares");
    if (header.has_checksum) {
        if (frame.size() - position < 4)
            return Error::with_message(EBADMSG, "zstd: content checksum is truncated");
        u32 stored = load_le(frame.data() + position, 4);
        Bytes output = TRY(sink.reserve(out_position, 0));
        u32 computed = static_cast<u32>(XxHash64::digest(ReadonlyBytes(output.data() + frame_start, produced)));
        if (stored != computed)
            return Error::with_message(EBADMSG, "zstd: content checksum mismatch");
        position += 4;
    }
    return position;
}

ErrorOr<usize> ZstdDecoder::decode_literals(ReadonlyBytes block)
{
    if (block.size() == 0)
        return Error::with_message(EBADMSG, "zstd: literals section is missing");
    const u8* p = block.data();
    u32 type = p[0] & 3;
    u32 size_format = (p[0] >> 2) & 3;

    if (type <= 1) {
        // Raw or RLE literals: 1, 2 or 3 header bytes.
        // Size_Format 00 and 10 use one byte (5-bit size), 01 two and 11 three.
        usize header_size = size_format == 1 ? 2 : size_format == 3 ? 3 : 1;
        if (block.size() < header_size)
            return Error::with_message(EBADMSG, "zstd: literals header is truncated");
        usize count;
        if (header_size == 1)
            count = p[0] >> 3;
        else
            count = load_le(p, header_size) >> 4;
        if (count > max_block_size)
            return Error::with_message(EBADMSG, "zstd: literals exceed the block maximum");
        if (type == 0) {
            if (block.size() - header_size < count)
                return Error::with_message(EBADMSG, "zstd: raw literals are truncated");
            m_literals = p + header_size;
            m_literal_count = count;
            m_literals_readable_end = block.data() + block.size();
            return header_size + count;
        }
        if (block.size() - header_size < 1)
            return Error::with_message(EBADMSG, "zstd: RLE literals are truncated");
        fill_bytes(m_literal_buffer, p[header_size], count);
        m_literals = m_literal_buffer;
        m_literal_count = count;
        m_literals_readable_end = m_literal_buffer + sizeof m_literal_buffer;
        return header_size + 1;
    }

    // Compressed (with a tree) or treeless literals: 3, 3, 4 or 5 header bytes.
    static constexpr usize header_sizes[4] = { 3, 3, 4, 5 };
    static constexpr u32 size_bits[4] = { 10, 10, 14, 18 };
    usize header_size = header_sizes[size_format];
    if (block.size() < header_size)
        return Error::with_message(EBADMSG, "zstd: literals header is truncated");
    u64 value = load_le64(p, header_size);
    u32 bits = size_bits[size_format];
    usize count = static_cast<usize>((value >> 4) & ((u64(1) << bits) - 1));
    usize compressed = static_cast<usize>((value >> (4 + bits)) & ((u64(1) << bits) - 1));
    if (count > max_block_size)
        return Error::with_message(EBADMSG, "zstd: literals exceed the block maximum");
    if (block.size() - header_size < compressed)
        return Error::with_message(EBADMSG, "zstd: compressed literals are truncated");
    ReadonlyBytes data = block.slice(header_size, compressed);
    if (type == 2) {
        m_huffman_valid = false;
        usize used = TRY(m_huffman.read(data, m_weights_table));
        m_huffman_valid = true;
        data = data.slice(used);
    } else if (!m_huffman_valid) {
        return Error::with_message(EBADMSG, "zstd: treeless literals without a previous Huffman table");
    }
    if (size_format == 0)
        TRY(m_huffman.decode_one_stream(data, m_literal_buffer, count));
    else
        TRY(m_huffman.decode_four_streams(data, m_literal_buffer, count));
    m_literals = m_literal_buffer;
    m_literal_count = count;
    m_literals_readable_end = m_literal_buffer + sizeof m_literal_buffer;
    return header_size + compressed;
}

ErrorOr<usize> ZstdDecoder::read_table(TableKind kind, u32 mode, ReadonlyBytes data)
{
    switch (mode) {
    case 0: // Predefined_Mode
        m_active[kind] = &m_predefined[kind];
        m_active_sequences[kind] = m_predefined_sequences[kind];
        return static_cast<usize>(0);
    case 1: // RLE_Mode
        if (data.size() < 1)
            return Error::with_message(EBADMSG, "zstd: RLE sequence table is truncated");
        if (data[0] > table_max_symbol[kind])
            return Error::with_message(EBADMSG, "zstd: RLE sequence table symbol exceeds the maximum");
        m_tables[kind].build_rle(data[0]);
        m_active[kind] = &m_tables[kind];
        build_sequence_table(kind, m_tables[kind], m_sequence_tables[kind]);
        m_active_sequences[kind] = m_sequence_tables[kind];
        return static_cast<usize>(1);
    case 2: { // FSE_Compressed_Mode
        m_active[kind] = nullptr;
        usize used = TRY(m_tables[kind].read(data, table_max_symbol[kind], table_max_log[kind]));
        m_active[kind] = &m_tables[kind];
        build_sequence_table(kind, m_tables[kind], m_sequence_tables[kind]);
        m_active_sequences[kind] = m_sequence_tables[kind];
        return used;
    }
    default: // Repeat_Mode
        if (!m_active[kind])
            return Error::with_message(EBADMSG, "zstd: repeat mode for a sequence table without a previous table");
        return static_cast<usize>(0);
    }
}

ErrorOr<void> ZstdDecoder::decode_compressed_block(ReadonlyBytes block, Bytes output, usize frame_start, usize& out_position, usize block_limit)
{
    usize used = TRY(decode_literals(block));
    ReadonlyBytes rest = block.slice(used);
    if (rest.size() == 0)
        return Error::with_message(EBADMSG, "zstd: sequences section is missing");
    const u8* p = rest.data();
    u32 sequence_count;
    usize position;
    if (p[0] < 128) {
        sequence_count = p[0];
        position = 1;
    } else if (p[0] < 255) {
        if (rest.size() < 2)
            return Error::with_message(EBADMSG, "zstd: sequences header is truncated");
        sequence_count = ((p[0] - 128u) << 8) + p[1];
        position = 2;
    } else {
        if (rest.size() < 3)
            return Error::with_message(EBADMSG, "zstd: sequences header is truncated");
        sequence_count = p[1] + (static_cast<u32>(p[2]) << 8) + 0x7F00;
        position = 3;
    }

    usize block_start = out_position;
    if (sequence_count == 0) {
        if (position != rest.size())
            return Error::with_message(EBADMSG, "zstd: stray bytes after an empty sequences section");
        if (output.size() - out_position < m_literal_count)
            return m_output->full_error();
        copy_bytes(output.data() + out_position, m_literals, m_literal_count);
        out_position += m_literal_count;
    } else {
        if (rest.size() - position < 1)
            return Error::with_message(EBADMSG, "zstd: sequences header is truncated");
        u8 modes = p[position++];
        if (modes & 3)
            return Error::with_message(EBADMSG, "zstd: reserved bits set in the sequences compression modes");
        position += TRY(read_table(LiteralLengths, modes >> 6, rest.slice(position)));
        position += TRY(read_table(Offsets, (modes >> 4) & 3, rest.slice(position)));
        position += TRY(read_table(MatchLengths, (modes >> 2) & 3, rest.slice(position)));
        TRY(execute_sequences(rest.slice(position), sequence_count, output, frame_start, out_position));
    }
    if (out_position - block_start > block_limit)
        return Error::with_message(EBADMSG, "zstd: block decodes to more than the block maximum");
    return {};
}

ErrorOr<void> ZstdDecoder::execute_sequences(ReadonlyBytes stream, u32 sequence_count, Bytes output, usize frame_start, usize& out_position)
{
    FastBackwardBitReader reader;
    if (reader.init(stream).is_error())
        return Error::with_message(EBADMSG, "zstd: sequence bitstream lacks its end marker");

    const SequenceEntry* ll_table = m_active_sequences[LiteralLengths];
    const SequenceEntry* of_table = m_active_sequences[Offsets];
    const SequenceEntry* ml_table = m_active_sequences[MatchLengths];
    // At most 9 + 8 + 9 bits, well inside one reload.
    u32 ll_state = static_cast<u32>(reader.read(m_active[LiteralLengths]->accuracy_log()));
    u32 of_state = static_cast<u32>(reader.read(m_active[Offsets]->accuracy_log()));
    u32 ml_state = static_cast<u32>(reader.read(m_active[MatchLengths]->accuracy_log()));

    u8* const out_begin = output.data();
    u8* const out_end = out_begin + output.size();
    u8* const frame_begin = out_begin + frame_start;
    u8* op = out_begin + out_position;
    const u8* literal = m_literals;
    const u8* const literal_end = m_literals + m_literal_count;
    const u8* const literal_safe_end = m_literals_readable_end;
    u64 rep0 = m_repeat_offsets[0];
    u64 rep1 = m_repeat_offsets[1];
    u64 rep2 = m_repeat_offsets[2];

    for (u32 i = 0; i < sequence_count; ++i) {
        // The tables were built from codes no larger than 35, 31 and 52, so the extra-bit counts
        // are at most 16, 31 and 16, and every next state stays inside its table.
        SequenceEntry ll = ll_table[ll_state];
        SequenceEntry of = of_table[of_state];
        SequenceEntry ml = ml_table[ml_state];
        u32 of_extra = static_cast<u32>(of >> 56);
        u32 ml_extra = static_cast<u32>(ml >> 56);
        u32 ll_extra = static_cast<u32>(ll >> 56);
        // Offset, match and literal length bits, then three states of at most 26 bits: after a
        // reload (at most 7 bits used) that fits in 64 unless the extra bits exceed 31.
        reader.reload();
        u64 offset_value = static_cast<u32>(of) + reader.read(of_extra);
        usize match_length = static_cast<u32>(ml) + static_cast<usize>(reader.read(ml_extra));
        if (of_extra + ml_extra + ll_extra > 31) [[unlikely]]
            reader.reload();
        usize literal_length = static_cast<u32>(ll) + static_cast<usize>(reader.read(ll_extra));
        if (i + 1 < sequence_count) [[likely]] {
            ll_state = static_cast<u32>(ll >> 32 & 0xFFFF) + static_cast<u32>(reader.read(static_cast<u32>(ll >> 48 & 0xFF)));
            ml_state = static_cast<u32>(ml >> 32 & 0xFFFF) + static_cast<u32>(reader.read(static_cast<u32>(ml >> 48 & 0xFF)));
            of_state = static_cast<u32>(of >> 32 & 0xFFFF) + static_cast<u32>(reader.read(static_cast<u32>(of >> 48 & 0xFF)));
        }
        if (reader.overflowed()) [[unlikely]]
            return Error::with_message(EBADMSG, "zstd: sequence bitstream is truncated");

        // Section 3.1.1.5: offset values 1-3 name the repeat offsets, shifted by one when the
        // sequence has no literals; larger values are a new offset plus 3.
        u64 offset;
        if (offset_value > 3) {
            offset = offset_value - 3;
            rep2 = rep1;
            rep1 = rep0;
            rep0 = offset;
        } else {
            u32 index = static_cast<u32>(offset_value) - 1 + (literal_length == 0 ? 1 : 0);
            if (index == 0) {
                offset = rep0;
            } else if (index == 1) {
                offset = rep1;
                rep1 = rep0;
                rep0 = offset;
            } else {
                offset = index == 2 ? rep2 : rep0 - 1;
                rep2 = rep1;
                rep1 = rep0;
                rep0 = offset;
            }
        }

        usize space = static_cast<usize>(out_end - op);
        usize total = literal_length + match_length;
        if (literal_length > static_cast<usize>(literal_end - literal)) [[unlikely]]
            return Error::with_message(EBADMSG, "zstd: a sequence takes more literals than remain");
        if (total > space) [[unlikely]]
            return m_output->full_error();
        // Offsets count back from the current position and may not leave the current frame.
        usize history = static_cast<usize>(op - frame_begin) + literal_length;
        if (offset == 0 || offset > history) [[unlikely]]
            return Error::with_message(EBADMSG, "zstd: match offset reaches before the start of the frame");

        if (space - total >= 16 && static_cast<usize>(literal_safe_end - literal) >= literal_length + 16) [[likely]] {
            // Room on every side: copy in 16-byte strides, the first 16 bytes unconditionally
            // (most literal runs and matches are shorter than that).
            copy16(op, literal);
            if (literal_length > 16) [[unlikely]]
                wild_copy(op + 16, literal + 16, literal_length - 16);
            op += literal_length;
            literal += literal_length;
            if (offset >= 16) [[likely]] {
                copy16(op, op - offset);
                if (match_length > 16)
                    wild_copy(op + 16, op + 16 - offset, match_length - 16);
            } else {
                wild_copy_short_offset(op, static_cast<usize>(offset), match_length);
            }
            op += match_length;
        } else {
            // Near the end of the output or of the literals: exact copies.
            copy_bytes(op, literal, literal_length);
            op += literal_length;
            literal += literal_length;
            copy_overlapping_match(op, static_cast<usize>(offset), match_length);
            op += match_length;
        }
    }
    if (!reader.is_exhausted())
        return Error::with_message(EBADMSG, "zstd: sequence bitstream has bits left over");

    usize trailing = static_cast<usize>(literal_end - literal);
    if (trailing > static_cast<usize>(out_end - op))
        return m_output->full_error();
    copy_bytes(op, literal, trailing);
    op += trailing;

    out_position = static_cast<usize>(op - out_begin);
    m_repeat_offsets[0] = rep0;
    m_repeat_offsets[1] = rep1;
    m_repeat_offsets[2] = rep2;
    return {};
}
