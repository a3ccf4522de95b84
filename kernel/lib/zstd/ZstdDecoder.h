#pragma once
// ZstdDecoder: a freestanding zstd decoder (RFC 8878), shared by the kernel and the host tests.
//
// Interface:
//   auto* decoder = new (nothrow) ZstdDecoder;           - ~150 KiB; allocate it, never on a stack
//   u64 size = TRY(ZstdDecoder::content_size(input));    - ENODATA if a frame does not declare it
//   usize written = TRY(decoder->decompress(input, output));
//   if (result.is_error()) log(decoder->error());        - "zstd: FSE table log 10 exceeds ..."
//
// decompress() decodes every frame of `input` (zstd frames and skippable frames, concatenated)
// into the one flat `output` buffer. Because the output is flat, the window is simply the output
// of the current frame so far, so any window size up to 2^max_window_log is supported without
// extra memory; a match may reach back to the start of its own frame and never before it.
//
// Nothing in the input is trusted. Every read is bounds-checked, and every failure is an error:
//   EBADMSG   corrupt or truncated data, bad magic, checksum or content size mismatch
//   ENOSPC    `output` is too small
//   EOVERFLOW the frame's window is larger than 2^max_window_log
//   ENOTSUP   the frame needs a dictionary
// error() then says why in words. Not supported by design: dictionaries, and legacy (pre-v0.8)
// frames. Content checksums are verified when a frame carries one.
#include "Fse.h"
#include "Huffman.h"
#include "ZstdError.h"
#include <ktl/ErrorOr.h>
#include <ktl/Span.h>
#include <ktl/Types.h>

class ZstdDecoder {
public:
    static constexpr u32 frame_magic = 0xFD2FB528;
    static constexpr u32 skippable_magic = 0x184D2A50; // ..0x184D2A5F
    static constexpr u32 max_window_log = 31;
    static constexpr usize max_block_size = 128 * KiB;

    ZstdDecoder();
    ZstdDecoder(const ZstdDecoder&) = delete;
    ZstdDecoder& operator=(const ZstdDecoder&) = delete;

    // Decodes every frame in `input` into `output`; returns the number of bytes written.
    ErrorOr<usize> decompress(ReadonlyBytes input, Bytes output);
    // Sum of the frames' declared content sizes; ENODATA if any frame does not declare one.
    static ErrorOr<u64> content_size(ReadonlyBytes input);
    // Why the last decompress() failed.
    const char* error() const { return m_error.message(); }

private:
    struct FrameHeader {
        usize header_size { 0 };
        u64 window_size { 0 };
        u64 content_size { 0 };
        bool has_content_size { false };
        bool has_checksum { false };
    };
    enum TableKind { LiteralLengths = 0, Offsets = 1, MatchLengths = 2 };

    static ErrorOr<FrameHeader> parse_frame_header(ReadonlyBytes frame, ZstdError& error);
    // Walks a frame's blocks without decoding them; returns the frame's total size.
    static ErrorOr<usize> measure_frame(ReadonlyBytes frame, const FrameHeader&, ZstdError& error);

    ErrorOr<usize> decode_frame(ReadonlyBytes frame, Bytes output, usize& out_position);
    ErrorOr<void> decode_compressed_block(ReadonlyBytes block, Bytes output, usize frame_start, usize& out_position, usize block_limit);
    ErrorOr<usize> decode_literals(ReadonlyBytes block);
    ErrorOr<usize> read_table(TableKind, u32 mode, ReadonlyBytes data);
    ErrorOr<void> execute_sequences(ReadonlyBytes stream, u32 sequence_count, Bytes output, usize frame_start, usize& out_position);

    ZstdError m_error;

    // Per-frame state: repeat offsets, and the tables that Repeat_Mode and treeless literals reuse.
    u64 m_repeat_offsets[3] { 1, 4, 8 };
    FseTable m_tables[3];
    FseTable m_predefined[3];
    const FseTable* m_active[3] { nullptr, nullptr, nullptr };
    FseTable m_weights_table;
    HuffmanTable m_huffman;
    bool m_huffman_valid { false };

    // The current block's literals: in m_literal_buffer, or straight from the input if raw.
    const u8* m_literals { nullptr };
    usize m_literal_count { 0 };
    // Reading up to here is safe, which lets literal copies run in 16-byte strides.
    const u8* m_literals_readable_end { nullptr };
    static constexpr usize literal_slack = 32;
    alignas(16) u8 m_literal_buffer[max_block_size + literal_slack];
};
