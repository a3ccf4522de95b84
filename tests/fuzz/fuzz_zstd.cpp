// libFuzzer target for the kernel's zstd decoder, differential against libzstd both ways: on
// every input, both decoders run into a 1 MiB buffer and must agree on whether it is valid, and
// when both accept, on every output byte. ASan and UBSan watch for crashes and stray accesses.
//
// Justified differences, each checked as narrowly as possible (anything else aborts):
//   - Empty input: libzstd's ZSTD_decompress() calls zero bytes "src size is incorrect"; ours
//     decodes it to nothing (a concatenation of zero frames). Callers refuse an empty result.
//   - Output room: both fail when the output does not fit in 1 MiB, but libzstd checks a
//     declared content size against the room first, so it may refuse a frame that is corrupt
//     further on with dstSize_tooSmall while we report the corruption: both are errors, so the
//     verdicts agree anyway.
//   - The end of the sequence bitstream. RFC 8878 says the last sequence updates no FSE state
//     and the stream must be consumed exactly; we check both. libzstd 1.5.4 (Debian 12) reads
//     state bits after the last sequence too, and its final check (BIT_reloadDStream() >=
//     BIT_DStream_completed) accepts a stream that ran past its start. So it accepts streams
//     with a few unread bits left ("bits left over" here) or with bits missing ("truncated").
//     Later libzstd versions skip the last state update and require BIT_endOfDStream(), as we
//     do. Only those two reasons are excused, and only when libzstd accepts.
//   - Block sizes. RFC 8878 limits a block (stored and decoded) to Block_Maximum_Size, the
//     smaller of the window size and 128 KiB; we enforce it. libzstd 1.5.4 enforces only the
//     128 KiB part, so it accepts a block larger than a small window ("block size exceeds the
//     frame's block maximum", "block decodes to more than the block maximum").
//   - The reserved low bits of Symbol_Compression_Modes: RFC 8878 says they must be zero and we
//     refuse a set bit ("reserved bits set in the sequences compression modes"); libzstd 1.5.4
//     ignores them.
//   - The end of a Huffman stream. We require each stream to end exactly with its last literal's
//     code. libzstd 1.5.4 does not always check: its fast four-stream path
//     (HUF_decompress4X1_usingDTable_internal_fast) only checks that each stream produced its
//     literals, so bits may be left over; and its double-symbol decoder skips all of a two-symbol
//     cell's bits for the last literal and clamps the count (HUF_decodeLastSymbolX2, "ugly hack;
//     works only because it's the last symbol"), so a last code may run past the stream's start.
//     Hence "ends inside its last code", "less than a code left over" and "bits left over".
//     The same fast path reads a stream whose last byte is 0 as if it had used no bits
//     (HUF_initFastDStream: `lastByte ? 8 - highbit(lastByte) : 0`) instead of refusing the
//     missing end marker ("Huffman stream lacks its end marker").
// Every error of ours must carry a message that starts with "zstd: ".
#include <lib/zstd/ZstdDecoder.h>

#include <zstd.h>
#include <zstd_errors.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace {

constexpr size_t output_capacity = 1 << 20;

[[noreturn]] void differ(const char* what, const char* ours, const char* theirs)
{
    fprintf(stderr, "zstd differential: %s (ours: %s; libzstd: %s)\n", what, ours, theirs);
    abort();
}

}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    static auto decoder = std::make_unique<ZstdDecoder>();
    static std::vector<u8> ours(output_capacity);
    static std::vector<u8> theirs(output_capacity);

    ReadonlyBytes input(data, size);
    (void)ZstdDecoder::content_size(input);
    (void)ZstdDecoder::starts_with_frame(input);
    auto result = decoder->decompress(input, Bytes(ours.data(), ours.size()));
    if (result.is_error() && strncmp(result.error().message(), "zstd: ", 6) != 0)
        differ("an error without a message", result.error().name(), "-");

    if (size == 0) {
        if (result.is_error() || result.value() != 0)
            differ("empty input", result.error().message(), "-");
        return 0;
    }
    size_t n = ZSTD_decompress(theirs.data(), theirs.size(), data, size);
    bool they_accept = !ZSTD_isError(n);
    const char* their_reason = they_accept ? "accepted" : ZSTD_getErrorName(n);
    if (result.is_error()) {
        const char* why = result.error().message();
        bool lenient_libzstd = strcmp(why, "zstd: sequence bitstream has bits left over") == 0
            || strcmp(why, "zstd: sequence bitstream is truncated") == 0
            || strcmp(why, "zstd: block size exceeds the frame's block maximum") == 0
            || strcmp(why, "zstd: block decodes to more than the block maximum") == 0
            || strcmp(why, "zstd: reserved bits set in the sequences compression modes") == 0
            || strcmp(why, "zstd: Huffman stream ends inside its last code") == 0
            || strcmp(why, "zstd: Huffman stream has less than a code left over after its literals") == 0
            || strcmp(why, "zstd: Huffman stream has bits left over after its literals") == 0
            || strcmp(why, "zstd: Huffman stream lacks its end marker") == 0;
        if (they_accept && !lenient_libzstd)
            differ("we reject what libzstd accepts", why, their_reason);
        return 0;
    }
    if (!they_accept)
        differ("we accept what libzstd rejects", "accepted", their_reason);
    if (n != result.value() || memcmp(ours.data(), theirs.data(), n) != 0)
        differ("outputs differ", "accepted", "accepted");
    return 0;
}
