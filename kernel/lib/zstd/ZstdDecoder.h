#pragma once
// ZstdDecoder: a freestanding zstd decoder (RFC 8878), shared by the kernel and the host tests.
//
// Interface:
//   auto* decoder = new (nothrow) ZstdDecoder;            - ~150 KiB; allocate it, never on a stack
//   usize written = TRY(decoder->decompress(input, output));          - output: a ZstdOutput
//   usize written = TRY(decoder->decompress(input, Bytes(buf, n)));   - or a fixed buffer
//   u64 size = TRY(ZstdDecoder::content_size(input));     - ENODATA if a frame does not declare it
//   ZstdDecoder::starts_with_frame(image);                 - zstd, after any skippable frames
//
// decompress() decodes every frame of `input` (zstd frames and skippable frames, concatenated)
// into one flat output, which a ZstdOutput may grow block by block, so frames need not declare
// their content size. Because the output is flat, the window is simply the output of the current
// frame so far, and any window size up to 2^max_window_log works without extra memory. A match
// may reach back to the start of its own frame and never before it: frames are independent.
//
// Nothing in the input is trusted. Every read is bounds-checked, and every failure is an Error
// whose static message says why ("zstd: FSE table log exceeds the maximum"):
//   EBADMSG   corrupt or truncated data, bad magic, checksum or content size mismatch
//   ENOSPC    a fixed output is too small (a growing ZstdOutput chooses its own, e.g. EFBIG)
//   EOVERFLOW the frame's window log is above max_window_log
//   ENOTSUP   the frame needs a dictionary
// Not supported by design: dictionaries, and legacy (pre-v0.8) frames. Content checksums are
// verified when a frame carries one.
#include "Fse.h"
#include "Huffman.h"
#include "ZstdOutput.h"
#include <ktl/ErrorOr.h>
#include <ktl/Span.h>
#include <ktl/Types.h>

class ZstdDecoder {
public:
    static constexpr u32 frame_magic = 0xFD2FB528;
    static constexpr u32 skippable_magic = 0x184D2A50; // ..0x184D2A5F
    static constexpr u32 max_window_log = 31;
    static constexpr usize max_block_size = 128 * KiB;
    // Bytes past the logical end of the output that the decoder may scribble on when the
    // ZstdOutput has them: copies then run in 16-byte strides up to the very end.
    static constexpr usize output_slack = 32;

    ZstdDecoder();
    ZstdDecoder(const ZstdDecoder&) = delete;
    ZstdDecoder& operator=(const ZstdDecoder&) = delete;

    // Decodes every frame in `input` into `output`; returns the number of bytes written.
    ErrorOr<usize> decompress(ReadonlyBytes input, ZstdOutput& output);
    ErrorOr<usize> decompress(ReadonlyBytes input, Bytes output);
    // Sum of the frames' declared content sizes; ENODATA if any frame does not declare one.
    static ErrorOr<u64> content_size(ReadonlyBytes input);
    // Whether `input` holds a zstd frame after any leading skippable frames (a .ko.zst may start
    // with one). A truncated skippable frame is not zstd.
    static bool starts_with_frame(ReadonlyBytes input);

private:
    struct FrameHeader {
        usize header_size { 0 };
        u64 window_size { 0 };
        u64 content_size { 0 };
        bool has_content_size { false };
        bool has_checksum { false };
    };
    enum TableKind { LiteralLengths = 0, Offsets = 1, MatchLengths = 2 };
    // An FSE cell with its code already turned into a base value and extra-bit count, packed
    // into 8 bytes so the sequence loop takes each with a single load (after libzstd's
    // ZSTD_seqSymbol): bits 0-31 base value, 32-47 next-state base, 48-55 state bits, 56-63
    // extra bits.
    using SequenceEntry = u64;
    static constexpr usize sequence_table_size = usize(1) << FseTable::max_accuracy_log;

    static ErrorOr<FrameHeader> parse_frame_header(ReadonlyBytes frame);
    // Walks a frame's blocks without decoding them; returns the frame's total size.
    static ErrorOr<usize> measure_frame(ReadonlyBytes frame, const FrameHeader&);
    // The size of the skippable frame at the front of `input`, or an error.
    static ErrorOr<usize> skippable_frame_size(ReadonlyBytes input);

    ErrorOr<usize> decode_frame(ReadonlyBytes frame, ZstdOutput& output, usize& out_position);
    ErrorOr<void> decode_compressed_block(ReadonlyBytes block, Bytes output, usize frame_start, usize& out_position, usize block_limit);
    ErrorOr<usize> decode_literals(ReadonlyBytes block);
    ErrorOr<usize> read_table(TableKind, u32 mode, ReadonlyBytes data);
    static void build_sequence_table(TableKind, const FseTable&, SequenceEntry* out);
    ErrorOr<void> execute_sequences(ReadonlyBytes stream, u32 sequence_count, Bytes output, usize frame_start, usize& out_position);

    // Set for the duration of decompress(): the error for a full output.
    ZstdOutput* m_output { nullptr };

    // Per-frame state: repeat offsets, and the tables that Repeat_Mode and treeless literals reuse.
    u64 m_repeat_offsets[3] { 1, 4, 8 };
    FseTable m_tables[3];
    FseTable m_predefined[3];
    const FseTable* m_active[3] { nullptr, nullptr, nullptr };
    SequenceEntry m_sequence_tables[3][sequence_table_size];
    SequenceEntry m_predefined_sequences[3][sequence_table_size];
    const SequenceEntry* m_active_sequences[3] { nullptr, nullptr, nullptr };
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
