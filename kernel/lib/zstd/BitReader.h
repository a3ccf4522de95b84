#pragma once
// Bit readers for the two bitstream directions of the zstd format (RFC 8878 sections 4.1, 4.2).
//
// Interface:
//   ForwardBitReader forward(bytes);      - little-endian, first bit is bit 0 of byte 0. Used for
//   u32 v = forward.read(n);                FSE table descriptions, which are read front to back.
//
//   BackwardBitReader backward;           - Huffman and FSE payloads are written forwards and
//   TRY(backward.init(bytes));              read from the end: the last byte holds a 1-bit marker
//   u64 v = backward.read(n);               above the final bits, and each read takes the n
//   backward.is_exhausted();                highest unread bits.
//
// Neither reader ever touches memory outside its span. Reads past the end of the data return
// zero bits and are remembered (ForwardBitReader::bits_read() > size, or
// BackwardBitReader::overflowed()), so a decoder can check once at the end of a loop instead of
// on every read. The zero fill is also what Huffman decoding needs when it peeks a full code
// width at the very end of a stream.
#include <ktl/ErrorOr.h>
#include <ktl/Span.h>
#include <ktl/Types.h>

class ForwardBitReader {
public:
    explicit ForwardBitReader(ReadonlyBytes data) : m_data(data.data()), m_size(data.size()) { }

    // n <= 24.
    u32 peek(u32 n) const
    {
        usize byte = static_cast<usize>(m_position >> 3);
        u32 word = 0;
        for (usize i = 0; i < 4; ++i) {
            if (byte + i < m_size)
                word |= static_cast<u32>(m_data[byte + i]) << (8 * i);
        }
        return (word >> (m_position & 7)) & ((1u << n) - 1);
    }
    void skip(u32 n) { m_position += n; }
    u32 read(u32 n)
    {
        u32 value = peek(n);
        skip(n);
        return value;
    }

    u64 bits_read() const { return m_position; }
    u64 bytes_consumed() const { return (m_position + 7) >> 3; }
    bool overran() const { return bytes_consumed() > m_size; }

private:
    const u8* m_data;
    usize m_size;
    u64 m_position { 0 };
};

// The hot-loop variant of BackwardBitReader for sequences: a 64-bit container refilled by
// reload(), so a read is two shifts. Between reloads at most 57 bits may be read. Reads past the
// start of the stream yield unspecified (but harmless) bits; overflowed() then says so, and the
// caller must check it before using what it read.
class FastBackwardBitReader {
public:
    ErrorOr<void> init(ReadonlyBytes data)
    {
        m_start = data.data();
        usize size = data.size();
        if (size == 0 || data[size - 1] == 0)
            return EBADMSG;
        u32 marker_gap = 8 - (31 - __builtin_clz(data[size - 1])); // the marker and the zeros above it
        if (size >= 8) {
            m_ptr = m_start + size - 8;
            __builtin_memcpy(&m_container, m_ptr, 8);
            m_consumed = marker_gap;
        } else {
            m_ptr = m_start;
            m_container = 0;
            for (usize i = 0; i < size; ++i)
                m_container |= static_cast<u64>(m_start[i]) << (8 * i);
            // The data sits in the low bytes; the empty high bytes count as consumed.
            m_consumed = marker_gap + static_cast<u32>(8 - size) * 8;
        }
        return {};
    }

    // n <= 56. A 0-bit read is 0.
    u64 read(u32 n)
    {
        u64 value = ((m_container << (m_consumed & 63)) >> 1) >> (63 - n);
        m_consumed += n;
        return value;
    }

    // Moves the container back over whole consumed bytes, as far as the stream allows.
    void reload()
    {
        if (m_consumed > 64) [[unlikely]]
            return;
        usize bytes = m_consumed >> 3;
        usize room = static_cast<usize>(m_ptr - m_start);
        if (bytes > room) [[unlikely]] {
            // Near the start: the container already holds the first byte (or the stream is
            // shorter than 8 bytes and there is nothing to load).
            bytes = room;
            if (bytes == 0)
                return;
        }
        m_ptr -= bytes;
        m_consumed -= static_cast<u32>(bytes * 8);
        __builtin_memcpy(&m_container, m_ptr, 8);
    }

    bool overflowed() const { return m_consumed > 64; }
    bool is_exhausted() const { return m_ptr == m_start && m_consumed == 64; }
    i64 bits_remaining() const { return static_cast<i64>(m_ptr - m_start) * 8 + 64 - static_cast<i64>(m_consumed); }

private:
    const u8* m_start { nullptr };
    const u8* m_ptr { nullptr };
    u64 m_container { 0 };
    u32 m_consumed { 0 };
};

class BackwardBitReader {
public:
    // Fails if the stream is empty or its last byte lacks the end marker.
    ErrorOr<void> init(ReadonlyBytes data)
    {
        m_data = data.data();
        m_size = data.size();
        if (m_size == 0)
            return EBADMSG;
        u8 last = m_data[m_size - 1];
        if (last == 0)
            return EBADMSG;
        // The highest set bit of the last byte is the marker; the bits below it are data.
        m_position = static_cast<i64>((m_size - 1) * 8) + (31 - __builtin_clz(last));
        return {};
    }

    // The next n bits (n <= 56), most significant first, without consuming them.
    u64 peek(u32 n) const
    {
        i64 start = m_position - static_cast<i64>(n);
        if (start >= 0) [[likely]] {
            usize byte = static_cast<usize>(start) >> 3;
            u64 word;
            if (byte + 8 <= m_size) [[likely]]
                __builtin_memcpy(&word, m_data + byte, 8);
            else
                word = load_tail(byte);
            return (word >> (start & 7)) & ((u64(1) << n) - 1);
        }
        // Fewer than n bits remain: the missing low bits read as zero.
        if (m_position <= 0)
            return 0;
        u64 word = load_tail(0);
        u64 available = word & ((u64(1) << m_position) - 1);
        return available << (-start);
    }
    void consume(u32 n) { m_position -= n; }
    // For a faster reader that took over part of the stream: continue where it stopped.
    void set_bits_remaining(i64 bits) { m_position = bits; }
    u64 read(u32 n)
    {
        u64 value = peek(n);
        consume(n);
        return value;
    }

    i64 bits_remaining() const { return m_position; }
    bool overflowed() const { return m_position < 0; }
    // Every bit was read, and no more: what a well-formed stream ends with.
    bool is_exhausted() const { return m_position == 0; }

private:
    // Up to 8 bytes from `byte`, zero beyond the end. Only used near the start of the data
    // (position < 64 bits) or at its very end, never in the steady state.
    u64 load_tail(usize byte) const
    {
        u64 word = 0;
        for (usize i = 0; i < 8 && byte + i < m_size; ++i)
            word |= static_cast<u64>(m_data[byte + i]) << (8 * i);
        return word;
    }

    const u8* m_data { nullptr };
    usize m_size { 0 };
    i64 m_position { 0 };
};
