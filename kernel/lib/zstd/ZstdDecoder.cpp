// The zstd frame, block and sequence decoder, after RFC 8878 sections 3 and 4.
#include "ZstdDecoder.h"
#include "BitReader.h"
#include "XxHash64.h"

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

constexpr const char* table_names[3] = { "literal lengths", "offsets", "match lengths" };
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

inline void copy16(u8* to, const u8* from) { __builtin_memcpy(to, from, 16); }

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

// A match whose source overlaps its destination repeats the last `offset` bytes. Copy one
// period, then double the copied run, so a long run costs O(log n) copies.
inline void copy_overlapping_match(u8* op, usize offset, usize length)
{
    const u8* match = op - offset;
    if (offset >= length) {
        __builtin_memcpy(op, match, length);
        return;
    }
    if (length <= 32) {
        for (usize i = 0; i < length; ++i)
            op[i] = match[i];
        return;
    }
    __builtin_memcpy(op, match, offset);
    usize done = offset;
    while (done < length) {
        usize chunk = length - done < done ? length - done : done;
        __builtin_memcpy(op + done, op, chunk);
        done += chunk;
    }
}

}

ZstdDecoder::ZstdDecoder()
{
    MUST(m_predefined[LiteralLengths].build(predefined_literal_lengths, 36, 6, table_names[0], m_error));
    MUST(m_predefined[Offsets].build(predefined_offsets, 29, 5, table_names[1], m_error));
    MUST(m_predefined[MatchLengths].build(predefined_match_lengths, 53, 6, table_names[2], m_error));
    m_error.clear();
}

ErrorOr<ZstdDecoder::FrameHeader> ZstdDecoder::parse_frame_header(ReadonlyBytes frame, ZstdError& error)
{
    if (frame.size() < 5)
        return error.fail(EBADMSG, "zstd: frame header is truncated");
    u8 descriptor = frame[4];
    u32 content_size_flag = descriptor >> 6;
    bool single_segment = (descriptor >> 5) & 1;
    bool reserved = (descriptor >> 3) & 1;
    u32 dictionary_flag = descriptor & 3;
    if (reserved)
        return error.fail(EBADMSG, "zstd: reserved bit set in the frame header descriptor");

    static constexpr usize dictionary_id_sizes[4] = { 0, 1, 2, 4 };
    usize content_size_bytes = content_size_flag == 0 ? (single_segment ? 1 : 0) : (usize(1) << content_size_flag);
    usize dictionary_bytes = dictionary_id_sizes[dictionary_flag];
    FrameHeader header;
    header.header_size = 5 + (single_segment ? 0 : 1) + dictionary_bytes + content_size_bytes;
    if (frame.size() < header.header_size)
        return error.fail(EBADMSG, "zstd: frame header is truncated");
    header.has_checksum = (descriptor >> 2) & 1;

    usize position = 5;
    if (!single_segment) {
        u8 window = frame[position++];
        u32 window_log = 10 + (window >> 3);
        if (window_log > max_window_log)
            return error.fail(EOVERFLOW, "zstd: window log ", window_log, " exceeds the maximum ", max_window_log);
        u64 base = u64(1) << window_log;
        header.window_size = base + (base >> 3) * (window & 7);
        if (header.window_size > (u64(1) << max_window_log))
            return error.fail(EOVERFLOW, "zstd: window size ", header.window_size, " exceeds the maximum ", u64(1) << max_window_log);
    }
    if (dictionary_bytes) {
        u32 dictionary_id = load_le(frame.data() + position, dictionary_bytes);
        position += dictionary_bytes;
        // An ID of zero names no dictionary.
        if (dictionary_id != 0)
            return error.fail(ENOTSUP, "zstd: frame needs dictionary ", dictionary_id, "; dictionaries are not supported");
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

ErrorOr<usize> ZstdDecoder::measure_frame(ReadonlyBytes frame, const FrameHeader& header, ZstdError& error)
{
    usize position = header.header_size;
    for (;;) {
        if (frame.size() - position < 3)
            return error.fail(EBADMSG, "zstd: block header is truncated");
        u32 block_header = load_le(frame.data() + position, 3);
        position += 3;
        u32 type = (block_header >> 1) & 3;
        usize size = block_header >> 3;
        if (type == 3)
            return error.fail(EBADMSG, "zstd: reserved block type");
        usize stored = type == 1 ? 1 : size;
        if (frame.size() - position < stored)
            return error.fail(EBADMSG, "zstd: block is truncated");
        position += stored;
        if (block_header & 1)
            break;
    }
    if (header.has_checksum) {
        if (frame.size() - position < 4)
            return error.fail(EBADMSG, "zstd: content checksum is truncated");
        position += 4;
    }
    return position;
}

ErrorOr<u64> ZstdDecoder::content_size(ReadonlyBytes input)
{
    ZstdError error;
    u64 total = 0;
    usize position = 0;
    while (position < input.size()) {
        ReadonlyBytes rest = input.slice(position);
        if (rest.size() < 4)
            return EBADMSG;
        u32 magic = load_le(rest.data(), 4);
        if ((magic & 0xFFFFFFF0u) == skippable_magic) {
            if (rest.size() < 8)
                return EBADMSG;
            u32 size = load_le(rest.data() + 4, 4);
            if (rest.size() - 8 < size)
                return EBADMSG;
            position += 8 + static_cast<usize>(size);
            continue;
        }
        if (magic != frame_magic)
            return EBADMSG;
        FrameHeader header = TRY(parse_frame_header(rest, error));
        if (!header.has_content_size)
            return ENODATA;
        if (add_overflows(total, header.content_size, &total))
            return EOVERFLOW;
        position += TRY(measure_frame(rest, header, error));
    }
    return total;
}

ErrorOr<usize> ZstdDecoder::decompress(ReadonlyBytes input, Bytes output)
{
    m_error.clear();
    usize out_position = 0;
    usize position = 0;
    while (position < input.size()) {
        ReadonlyBytes rest = input.slice(position);
        if (rest.size() < 4)
            return m_error.fail(EBADMSG, "zstd: ", rest.size(), " trailing bytes are not a frame");
        u32 magic = load_le(rest.data(), 4);
        if ((magic & 0xFFFFFFF0u) == skippable_magic) {
            if (rest.size() < 8)
                return m_error.fail(EBADMSG, "zstd: skippable frame header is truncated");
            u32 size = load_le(rest.data() + 4, 4);
            if (rest.size() - 8 < size)
                return m_error.fail(EBADMSG, "zstd: skippable frame of ", size, " bytes is truncated");
            position += 8 + static_cast<usize>(size);
            continue;
        }
        if (magic != frame_magic)
            return m_error.fail(EBADMSG, "zstd: bad frame magic ", magic, " at input offset ", position);
        position += TRY(decode_frame(rest, output, out_position));
    }
    return out_position;
}

ErrorOr<usize> ZstdDecoder::decode_frame(ReadonlyBytes frame, Bytes output, usize& out_position)
{
    FrameHeader header = TRY(parse_frame_header(frame, m_error));
    usize frame_start = out_position;
    usize space = output.size() - out_position;
    if (header.has_content_size && header.content_size > space)
        return m_error.fail(ENOSPC, "zstd: frame declares ", header.content_size, " bytes but the output has room for ", space);
    usize block_limit = header.window_size < max_block_size ? static_cast<usize>(header.window_size) : max_block_size;

    m_repeat_offsets[0] = 1;
    m_repeat_offsets[1] = 4;
    m_repeat_offsets[2] = 8;
    m_active[0] = m_active[1] = m_active[2] = nullptr;
    m_huffman_valid = false;

    usize position = header.header_size;
    for (;;) {
        if (frame.size() - position < 3)
            return m_error.fail(EBADMSG, "zstd: block header is truncated");
        u32 block_header = load_le(frame.data() + position, 3);
        position += 3;
        bool last = block_header & 1;
        u32 type = (block_header >> 1) & 3;
        usize size = block_header >> 3;
        if (type == 3)
            return m_error.fail(EBADMSG, "zstd: reserved block type");
        if (size > block_limit)
            return m_error.fail(EBADMSG, "zstd: block size ", size, " exceeds the maximum ", block_limit);
        usize stored = type == 1 ? 1 : size;
        if (frame.size() - position < stored)
            return m_error.fail(EBADMSG, "zstd: block of ", stored, " bytes is truncated");
        ReadonlyBytes block = frame.slice(position, stored);
        position += stored;
        if (type == 2) {
            TRY(decode_compressed_block(block, output, frame_start, out_position, block_limit));
        } else {
            if (output.size() - out_position < size)
                return m_error.fail(ENOSPC, "zstd: output buffer of ", output.size(), " bytes is too small");
            if (type == 0)
                __builtin_memcpy(output.data() + out_position, block.data(), size);
            else
                __builtin_memset(output.data() + out_position, block[0], size);
            out_position += size;
        }
        if (last)
            break;
    }

    usize produced = out_position - frame_start;
    if (header.has_content_size && produced != header.content_size)
        return m_error.fail(EBADMSG, "zstd: frame declares ", header.content_size, " bytes but decodes to ", produced);
    if (header.has_checksum) {
        if (frame.size() - position < 4)
            return m_error.fail(EBADMSG, "zstd: content checksum is truncated");
        u32 stored = load_le(frame.data() + position, 4);
        u32 computed = static_cast<u32>(XxHash64::digest(ReadonlyBytes(output.data() + frame_start, produced)));
        if (stored != computed)
            return m_error.fail(EBADMSG, "zstd: content checksum mismatch: frame says ", stored, ", data hashes to ", computed);
        position += 4;
    }
    return position;
}

ErrorOr<usize> ZstdDecoder::decode_literals(ReadonlyBytes block)
{
    if (block.size() == 0)
        return m_error.fail(EBADMSG, "zstd: literals section is missing");
    const u8* p = block.data();
    u32 type = p[0] & 3;
    u32 size_format = (p[0] >> 2) & 3;

    if (type <= 1) {
        // Raw or RLE literals: 1, 2 or 3 header bytes.
        // Size_Format 00 and 10 use one byte (5-bit size), 01 two and 11 three.
        usize header_size = size_format == 1 ? 2 : size_format == 3 ? 3 : 1;
        if (block.size() < header_size)
            return m_error.fail(EBADMSG, "zstd: literals header is truncated");
        usize count;
        if (header_size == 1)
            count = p[0] >> 3;
        else
            count = load_le(p, header_size) >> 4;
        if (count > max_block_size)
            return m_error.fail(EBADMSG, "zstd: ", count, " literals exceed the block maximum");
        if (type == 0) {
            if (block.size() - header_size < count)
                return m_error.fail(EBADMSG, "zstd: raw literals are truncated");
            m_literals = p + header_size;
            m_literal_count = count;
            m_literals_readable_end = block.data() + block.size();
            return header_size + count;
        }
        if (block.size() - header_size < 1)
            return m_error.fail(EBADMSG, "zstd: RLE literals are truncated");
        __builtin_memset(m_literal_buffer, p[header_size], count);
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
        return m_error.fail(EBADMSG, "zstd: literals header is truncated");
    u64 value = load_le64(p, header_size);
    u32 bits = size_bits[size_format];
    usize count = static_cast<usize>((value >> 4) & ((u64(1) << bits) - 1));
    usize compressed = static_cast<usize>((value >> (4 + bits)) & ((u64(1) << bits) - 1));
    if (count > max_block_size)
        return m_error.fail(EBADMSG, "zstd: ", count, " literals exceed the block maximum");
    if (block.size() - header_size < compressed)
        return m_error.fail(EBADMSG, "zstd: compressed literals are truncated");
    ReadonlyBytes data = block.slice(header_size, compressed);
    if (type == 2) {
        m_huffman_valid = false;
        usize used = TRY(m_huffman.read(data, m_weights_table, m_error));
        m_huffman_valid = true;
        data = data.slice(used);
    } else if (!m_huffman_valid) {
        return m_error.fail(EBADMSG, "zstd: treeless literals without a previous Huffman table");
    }
    if (size_format == 0)
        TRY(m_huffman.decode_one_stream(data, m_literal_buffer, count, m_error));
    else
        TRY(m_huffman.decode_four_streams(data, m_literal_buffer, count, m_error));
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
        return static_cast<usize>(0);
    case 1: // RLE_Mode
        if (data.size() < 1)
            return m_error.fail(EBADMSG, "zstd: RLE table for ", table_names[kind], " is truncated");
        if (data[0] > table_max_symbol[kind])
            return m_error.fail(EBADMSG, "zstd: RLE symbol ", data[0], " exceeds the maximum ", table_max_symbol[kind], " for ", table_names[kind]);
        m_tables[kind].build_rle(data[0]);
        m_active[kind] = &m_tables[kind];
        return static_cast<usize>(1);
    case 2: { // FSE_Compressed_Mode
        m_active[kind] = nullptr;
        usize used = TRY(m_tables[kind].read(data, table_max_symbol[kind], table_max_log[kind], table_names[kind], m_error));
        m_active[kind] = &m_tables[kind];
        return used;
    }
    default: // Repeat_Mode
        if (!m_active[kind])
            return m_error.fail(EBADMSG, "zstd: repeat mode for ", table_names[kind], " without a previous table");
        return static_cast<usize>(0);
    }
}

ErrorOr<void> ZstdDecoder::decode_compressed_block(ReadonlyBytes block, Bytes output, usize frame_start, usize& out_position, usize block_limit)
{
    usize used = TRY(decode_literals(block));
    ReadonlyBytes rest = block.slice(used);
    if (rest.size() == 0)
        return m_error.fail(EBADMSG, "zstd: sequences section is missing");
    const u8* p = rest.data();
    u32 sequence_count;
    usize position;
    if (p[0] < 128) {
        sequence_count = p[0];
        position = 1;
    } else if (p[0] < 255) {
        if (rest.size() < 2)
            return m_error.fail(EBADMSG, "zstd: sequences header is truncated");
        sequence_count = ((p[0] - 128u) << 8) + p[1];
        position = 2;
    } else {
        if (rest.size() < 3)
            return m_error.fail(EBADMSG, "zstd: sequences header is truncated");
        sequence_count = p[1] + (static_cast<u32>(p[2]) << 8) + 0x7F00;
        position = 3;
    }

    usize block_start = out_position;
    if (sequence_count == 0) {
        if (position != rest.size())
            return m_error.fail(EBADMSG, "zstd: ", rest.size() - position, " stray bytes after an empty sequences section");
        if (output.size() - out_position < m_literal_count)
            return m_error.fail(ENOSPC, "zstd: output buffer of ", output.size(), " bytes is too small");
        __builtin_memcpy(output.data() + out_position, m_literals, m_literal_count);
        out_position += m_literal_count;
    } else {
        if (rest.size() - position < 1)
            return m_error.fail(EBADMSG, "zstd: sequences header is truncated");
        u8 modes = p[position++];
        if (modes & 3)
            return m_error.fail(EBADMSG, "zstd: reserved bits set in the sequences compression modes");
        position += TRY(read_table(LiteralLengths, modes >> 6, rest.slice(position)));
        position += TRY(read_table(Offsets, (modes >> 4) & 3, rest.slice(position)));
        position += TRY(read_table(MatchLengths, (modes >> 2) & 3, rest.slice(position)));
        TRY(execute_sequences(rest.slice(position), sequence_count, output, frame_start, out_position));
    }
    if (out_position - block_start > block_limit)
        return m_error.fail(EBADMSG, "zstd: block decodes to ", out_position - block_start, " bytes, over the maximum ", block_limit);
    return {};
}

ErrorOr<void> ZstdDecoder::execute_sequences(ReadonlyBytes stream, u32 sequence_count, Bytes output, usize frame_start, usize& out_position)
{
    BackwardBitReader reader;
    if (reader.init(stream).is_error())
        return m_error.fail(EBADMSG, "zstd: sequence bitstream lacks its end marker");

    const FseEntry* ll_table = m_active[LiteralLengths]->entries();
    const FseEntry* of_table = m_active[Offsets]->entries();
    const FseEntry* ml_table = m_active[MatchLengths]->entries();
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
        const FseEntry& ll_entry = ll_table[ll_state];
        const FseEntry& of_entry = of_table[of_state];
        const FseEntry& ml_entry = ml_table[ml_state];
        // The tables hold no symbol above 35, 31 and 52, so these index and shift safely.
        u32 of_code = of_entry.symbol;
        u32 ml_code = ml_entry.symbol;
        u32 ll_code = ll_entry.symbol;
        u64 offset_value = (u64(1) << of_code) + reader.read(of_code);
        usize match_length = match_length_base[ml_code] + static_cast<usize>(reader.read(match_length_bits[ml_code]));
        usize literal_length = literal_length_base[ll_code] + static_cast<usize>(reader.read(literal_length_bits[ll_code]));
        if (i + 1 < sequence_count) {
            ll_state = ll_entry.base + static_cast<u32>(reader.read(ll_entry.nbits));
            ml_state = ml_entry.base + static_cast<u32>(reader.read(ml_entry.nbits));
            of_state = of_entry.base + static_cast<u32>(reader.read(of_entry.nbits));
        }
        if (reader.overflowed()) [[unlikely]]
            return m_error.fail(EBADMSG, "zstd: sequence bitstream is truncated at sequence ", i);

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
        if (literal_length > static_cast<usize>(literal_end - literal)) [[unlikely]]
            return m_error.fail(EBADMSG, "zstd: sequence ", i, " takes ", literal_length, " literals but only ", static_cast<usize>(literal_end - literal), " remain");
        if (literal_length + match_length > space) [[unlikely]]
            return m_error.fail(ENOSPC, "zstd: output buffer of ", output.size(), " bytes is too small");
        usize history = static_cast<usize>(op - frame_begin) + literal_length;
        if (offset == 0 || offset > history) [[unlikely]]
            return m_error.fail(EBADMSG, "zstd: match offset ", offset, " reaches before the start of the frame (", history, " bytes decoded)");

        // Literals first, in 16-byte strides when both sides have slack.
        if (static_cast<usize>(literal_safe_end - literal) >= literal_length + 16 && space >= literal_length + 16) [[likely]]
            wild_copy(op, literal, literal_length);
        else
            __builtin_memcpy(op, literal, literal_length);
        op += literal_length;
        literal += literal_length;

        // Then the match, which may overlap what it copies.
        if (offset >= 16 && space - literal_length >= match_length + 16) [[likely]]
            wild_copy(op, op - offset, match_length);
        else
            copy_overlapping_match(op, static_cast<usize>(offset), match_length);
        op += match_length;
    }
    if (!reader.is_exhausted())
        return m_error.fail(EBADMSG, "zstd: sequence bitstream has ", reader.bits_remaining(), " bits left over");

    usize trailing = static_cast<usize>(literal_end - literal);
    if (trailing > static_cast<usize>(out_end - op))
        return m_error.fail(ENOSPC, "zstd: output buffer of ", output.size(), " bytes is too small");
    __builtin_memcpy(op, literal, trailing);
    op += trailing;

    out_position = static_cast<usize>(op - out_begin);
    m_repeat_offsets[0] = rep0;
    m_repeat_offsets[1] = rep1;
    m_repeat_offsets[2] = rep2;
    return {};
}
