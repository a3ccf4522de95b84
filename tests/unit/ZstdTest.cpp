// Host tests for the kernel's zstd decoder: differential against libzstd over levels, window
// sizes, frame options and input kinds, then corrupt and hostile inputs, which must each be an
// error and never a crash (the file runs under ASan and UBSan).
#define ZSTD_STATIC_LINKING_ONLY
#include <lib/zstd/ZstdDecoder.h>
#include <lib/zstd/XxHash64.h>
#include <lib/zstd/ZstdGrowingOutput.h>
#include <support/HostAllocator.h>

#include <gtest/gtest.h>
#include <zstd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

using Buffer = std::vector<u8>;

struct Params {
    int level { 3 };
    bool checksum { true };
    bool content_size { true };
    int window_log { 0 };
    bool long_distance { false };
    int target_block { 0 };
    int max_block { 0 };
    int literal_mode { 0 };
};

Buffer compress(const Buffer& input, const Params& params = {})
{
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, params.level);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, params.checksum);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, params.content_size);
    if (params.window_log)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, params.window_log);
    if (params.long_distance)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_enableLongDistanceMatching, 1);
    if (params.target_block)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_targetCBlockSize, params.target_block);
    if (params.max_block)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_maxBlockSize, params.max_block);
    if (params.literal_mode)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_literalCompressionMode, params.literal_mode);
    Buffer out(ZSTD_compressBound(input.size()));
    size_t n = ZSTD_compress2(cctx, out.data(), out.size(), input.data(), input.size());
    ZSTD_freeCCtx(cctx);
    EXPECT_FALSE(ZSTD_isError(n)) << ZSTD_getErrorName(n);
    out.resize(ZSTD_isError(n) ? 0 : n);
    return out;
}

// Streams the input through ZSTD_compressStream2, flushing every `flush_every` bytes, so the
// frame has no content size (no pledged size) and block boundaries fall where flushes do.
Buffer compress_streaming(const Buffer& input, int level, size_t flush_every)
{
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    Buffer out(ZSTD_compressBound(input.size()) + 4096 + input.size() / flush_every * 16);
    ZSTD_outBuffer output { out.data(), out.size(), 0 };
    size_t position = 0;
    do {
        size_t chunk = std::min(flush_every, input.size() - position);
        ZSTD_inBuffer in { input.data() + position, chunk, 0 };
        bool last = position + chunk == input.size();
        size_t remaining;
        do {
            remaining = ZSTD_compressStream2(cctx, &output, &in, last ? ZSTD_e_end : ZSTD_e_flush);
            EXPECT_FALSE(ZSTD_isError(remaining));
        } while (remaining != 0 && !ZSTD_isError(remaining));
        position += chunk;
    } while (position < input.size());
    ZSTD_freeCCtx(cctx);
    out.resize(output.pos);
    return out;
}

struct Decoded {
    int error { 0 };
    Buffer data;
    std::string message;
};

Decoded decode(const Buffer& compressed, size_t capacity)
{
    static auto decoder = std::make_unique<ZstdDecoder>();
    Decoded result;
    result.data.resize(capacity);
    auto r = decoder->decompress(ReadonlyBytes(compressed.data(), compressed.size()), Bytes(result.data.data(), capacity));
    if (r.is_error()) {
        result.error = r.error().code();
        result.message = r.error().message();
        result.data.clear();
    } else {
        result.data.resize(r.value());
    }
    return result;
}

void expect_round_trip(const Buffer& input, const Buffer& compressed, size_t slack = 0)
{
    ASSERT_FALSE(compressed.empty());
    Decoded d = decode(compressed, input.size() + slack);
    ASSERT_EQ(d.error, 0) << d.message;
    ASSERT_EQ(d.data.size(), input.size());
    ASSERT_TRUE(d.data == input) << "output differs from the original";
    // libzstd agrees on what the frame holds.
    Buffer reference(input.size() + 1);
    size_t n = ZSTD_decompress(reference.data(), reference.size(), compressed.data(), compressed.size());
    ASSERT_FALSE(ZSTD_isError(n));
    ASSERT_EQ(n, input.size());
}

Buffer random_bytes(size_t size, u32 seed)
{
    std::mt19937_64 rng(seed);
    Buffer b(size);
    for (size_t i = 0; i < size; i += 8) {
        u64 v = rng();
        memcpy(b.data() + i, &v, std::min<size_t>(8, size - i));
    }
    return b;
}

Buffer repetitive_data(size_t size, u32 seed)
{
    std::mt19937 rng(seed);
    Buffer b(size);
    size_t i = 0;
    while (i < size) {
        // Runs of one byte, short periods, and copies of earlier data.
        u32 kind = rng() % 3;
        size_t length = std::min<size_t>(size - i, 1 + rng() % 300);
        if (kind == 0 || i < 64) {
            memset(b.data() + i, int(rng() & 0xFF), length);
        } else if (kind == 1) {
            u32 period = 1 + rng() % 7;
            for (size_t k = 0; k < length; ++k)
                b[i + k] = u8('a' + (k % period));
        } else {
            size_t from = rng() % i;
            for (size_t k = 0; k < length; ++k)
                b[i + k] = b[from + k];
        }
        i += length;
    }
    return b;
}

Buffer text_data(size_t size, u32 seed)
{
    static const char* words[] = { "the", "kernel", "zstd", "frame", "block", "of", "and", "a", "sequence",
        "literal", "Huffman", "table", "state", "offset", "window", "memory", "page", "to", "in", "is",
        "scheduler", "interrupt", "module", "initramfs", "\n", ",", ".", "decoder", "buffer", "bits" };
    std::mt19937 rng(seed);
    std::string s;
    s.reserve(size + 32);
    while (s.size() < size) {
        s += words[rng() % (sizeof words / sizeof *words)];
        s += rng() % 9 ? " " : "\n";
        if (rng() % 50 == 0)
            s += std::to_string(rng());
    }
    return Buffer(s.begin(), s.begin() + size);
}

Buffer binary_file()
{
    FILE* f = fopen("build/homeos.elf", "rb");
    if (!f)
        return {};
    Buffer b;
    u8 chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        b.insert(b.end(), chunk, chunk + n);
    fclose(f);
    return b;
}

Buffer concat(std::initializer_list<Buffer> parts)
{
    Buffer out;
    for (auto& p : parts)
        out.insert(out.end(), p.begin(), p.end());
    return out;
}

Buffer skippable(const Buffer& payload, unsigned variant)
{
    Buffer out(payload.size() + 8);
    size_t n = ZSTD_writeSkippableFrame(out.data(), out.size(), payload.data(), payload.size(), variant);
    EXPECT_FALSE(ZSTD_isError(n));
    out.resize(n);
    return out;
}

// A tiny hand-made frame: a 1 KiB window, no content size, one compressed block. (A single-
// segment frame would cap the block's compressed size at the content size.)
Buffer handmade_frame(std::initializer_list<u8> block)
{
    Buffer f = { 0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x00 };
    u32 header = (u32(block.size()) << 3) | (2 << 1) | 1;
    f.push_back(u8(header));
    f.push_back(u8(header >> 8));
    f.push_back(u8(header >> 16));
    f.insert(f.end(), block.begin(), block.end());
    return f;
}

}

// ---- Differential: every level, several input kinds ----

class ZstdLevelTest : public testing::TestWithParam<int> { };

TEST_P(ZstdLevelTest, TextLike)
{
    Buffer input = text_data(300 * KiB, 1);
    expect_round_trip(input, compress(input, { .level = GetParam() }));
}

TEST_P(ZstdLevelTest, Repetitive)
{
    Buffer input = repetitive_data(200 * KiB, 2);
    expect_round_trip(input, compress(input, { .level = GetParam() }));
}

TEST_P(ZstdLevelTest, MixedRandomAndText)
{
    Buffer input = concat({ random_bytes(40 * KiB, 3), text_data(100 * KiB, 4), random_bytes(10 * KiB, 5), text_data(50 * KiB, 4) });
    expect_round_trip(input, compress(input, { .level = GetParam(), .checksum = GetParam() % 2 == 0 }));
}

INSTANTIATE_TEST_SUITE_P(Levels, ZstdLevelTest, testing::Values(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 22, -1, -5));

TEST(ZstdTest, RandomIsStoredRaw)
{
    for (int level : { 1, 19 }) {
        Buffer input = random_bytes(300 * KiB + 333, 7);
        expect_round_trip(input, compress(input, { .level = level }));
    }
}

TEST(ZstdTest, BinaryKernelImage)
{
    Buffer input = binary_file();
    if (input.empty())
        GTEST_SKIP() << "build/homeos.elf not built";
    for (int level : { 1, 12 })
        expect_round_trip(input, compress(input, { .level = level }));
}

TEST(ZstdTest, Sizes)
{
    for (size_t size : { size_t(0), size_t(1), size_t(2), size_t(3), size_t(7), size_t(100), size_t(1000), size_t(4095),
             size_t(128 * KiB - 1), size_t(128 * KiB), size_t(128 * KiB + 1), size_t(256 * KiB + 1) }) {
        for (int kind = 0; kind < 3; ++kind) {
            Buffer input = kind == 0 ? random_bytes(size, u32(size)) : kind == 1 ? text_data(size, u32(size)) : repetitive_data(size, u32(size));
            for (int level : { 1, 3, 19 }) {
                SCOPED_TRACE(testing::Message() << "size " << size << " kind " << kind << " level " << level);
                expect_round_trip(input, compress(input, { .level = level }));
                expect_round_trip(input, compress(input, { .level = level, .checksum = false, .content_size = false }), 100);
            }
        }
    }
}

TEST(ZstdTest, FewMiB)
{
    Buffer text = text_data(3 * MiB, 30);
    expect_round_trip(text, compress(text, { .level = 3 }));
    Buffer repetitive = repetitive_data(3 * MiB + 5, 31);
    expect_round_trip(repetitive, compress(repetitive, { .level = 1, .content_size = false }), 1);
    Buffer random = random_bytes(2 * MiB, 32);
    expect_round_trip(random, compress(random, { .level = 3 }));
}

TEST(ZstdTest, AllZeroesMakeRleBlocks)
{
    Buffer input(1 * MiB + 17, 0);
    expect_round_trip(input, compress(input, { .level = 1 }));
    expect_round_trip(input, compress(input, { .level = 19, .content_size = false }), 1);
}

TEST(ZstdTest, ChecksumAndContentSizeFlags)
{
    Buffer input = text_data(500 * KiB, 9);
    for (bool checksum : { false, true })
        for (bool content_size : { false, true })
            expect_round_trip(input, compress(input, { .level = 5, .checksum = checksum, .content_size = content_size }), content_size ? 0 : 1000);
}

TEST(ZstdTest, SmallWindowsAndBlocks)
{
    Buffer input = text_data(300 * KiB, 10);
    for (int window_log : { 10, 11, 17 })
        expect_round_trip(input, compress(input, { .level = 7, .content_size = false, .window_log = window_log }), 1);
    for (int max_block : { 1024, 4096, 100000 })
        expect_round_trip(input, compress(input, { .level = 3, .max_block = max_block }));
    expect_round_trip(input, compress(input, { .level = 3, .target_block = 1340 }));
}

TEST(ZstdTest, RawAndHuffmanLiteralModes)
{
    Buffer input = text_data(200 * KiB, 11);
    expect_round_trip(input, compress(input, { .level = 3, .literal_mode = ZSTD_ps_disable }));
    expect_round_trip(input, compress(input, { .level = 3, .literal_mode = ZSTD_ps_enable }));
}

TEST(ZstdTest, StreamingFlushesWithoutContentSize)
{
    Buffer input = text_data(700 * KiB, 12);
    for (size_t flush : { size_t(100), size_t(5000), size_t(200 * KiB) }) {
        Buffer compressed = compress_streaming(input, 6, flush);
        EXPECT_EQ(ZstdDecoder::content_size(ReadonlyBytes(compressed.data(), compressed.size())).error().code(), ENODATA);
        expect_round_trip(input, compressed, 7);
    }
}

TEST(ZstdTest, LongDistanceMatchingWith128MiBWindow)
{
    // Three copies of 4 MiB of random data: only matches 4 MiB back compress it.
    Buffer chunk = random_bytes(4 * MiB, 13);
    Buffer input = concat({ chunk, text_data(100 * KiB, 14), chunk, chunk });
    Buffer compressed = compress(input, { .level = 3, .window_log = 27, .long_distance = true });
    EXPECT_LT(compressed.size(), 5 * MiB);
    expect_round_trip(input, compressed);
}

TEST(ZstdTest, SixtyFourMiBInput)
{
    Buffer input(64 * MiB);
    Buffer pattern = text_data(64 * KiB, 15);
    for (size_t i = 0; i < input.size(); i += pattern.size())
        memcpy(input.data() + i, pattern.data(), pattern.size());
    for (size_t i = 0; i < input.size(); i += 1 * MiB)
        input[i] ^= 0x5A; // so blocks are not all identical
    Buffer compressed = compress(input, { .level = 1, .window_log = 27 });
    expect_round_trip(input, compressed);
}

TEST(ZstdTest, ConcatenatedAndSkippableFrames)
{
    Buffer a = text_data(150 * KiB, 16);
    Buffer b = random_bytes(1000, 17);
    Buffer c = repetitive_data(70 * KiB, 18);
    Buffer compressed = concat({ skippable({ 1, 2, 3 }, 0), compress(a, { .level = 19 }), skippable({}, 15),
        compress(b, { .level = 1, .checksum = false }), compress(Buffer {}, {}), compress(c, { .level = 5, .content_size = false }),
        skippable(Buffer(5000, 0xEE), 7) });
    Buffer expected = concat({ a, b, c });
    expect_round_trip(expected, compressed);
    EXPECT_EQ(ZstdDecoder::content_size(ReadonlyBytes(compressed.data(), compressed.size())).error().code(), ENODATA);

    Buffer sized = concat({ compress(a, {}), skippable({ 9 }, 3), compress(b, {}) });
    auto size = ZstdDecoder::content_size(ReadonlyBytes(sized.data(), sized.size()));
    ASSERT_FALSE(size.is_error());
    EXPECT_EQ(size.value(), a.size() + b.size());
}

// A raw block frame holding "abcd" (1 KiB window, no content size).
Buffer handmade_raw_frame(const char* text)
{
    size_t length = strlen(text);
    Buffer f = { 0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x00, u8((length << 3) | 1), u8(length >> 5), 0x00 };
    f.insert(f.end(), text, text + length);
    return f;
}

TEST(ZstdTest, FramesMayNotReachIntoThePreviousFrame)
{
    // Frame 2 holds no literals and one sequence, all tables in RLE mode: literal length code 0,
    // offset code 2 with extra bits 11 (offset value 7: a new offset 4), match length code 1 (4).
    // Its bitstream is those two bits under the end marker: 0b111. The match reaches 4 bytes
    // back, which is only inside frame 1: frames are independent, so it is corrupt.
    Buffer first = handmade_raw_frame("abcd");
    Buffer second = handmade_frame({ 0x00, 0x01, 0x54, 0x00, 0x02, 0x01, 0x07 });
    Buffer stream = concat({ first, second });
    Decoded d = decode(stream, 64);
    EXPECT_EQ(d.error, EBADMSG);
    EXPECT_NE(d.message.find("before the start of the frame"), std::string::npos) << d.message;
    Buffer reference(64);
    EXPECT_TRUE(ZSTD_isError(ZSTD_decompress(reference.data(), reference.size(), stream.data(), stream.size())))
        << "libzstd must reject it too";

    // Control: the same sequence after four literals of its own frame is valid ("abcdabcd"), so
    // the rejection above is about the frame boundary and nothing else. Literal length code 4.
    Buffer alone = handmade_frame({ 0x20, 'a', 'b', 'c', 'd', 0x01, 0x54, 0x04, 0x02, 0x01, 0x07 });
    Decoded ok = decode(alone, 64);
    ASSERT_EQ(ok.error, 0) << ok.message;
    EXPECT_EQ(std::string(ok.data.begin(), ok.data.end()), "abcdabcd");
    size_t n = ZSTD_decompress(reference.data(), reference.size(), alone.data(), alone.size());
    ASSERT_FALSE(ZSTD_isError(n)) << ZSTD_getErrorName(n);
    EXPECT_EQ(std::string(reference.begin(), reference.begin() + n), "abcdabcd");
    // And after a first frame, it still decodes within its own frame.
    Decoded both = decode(concat({ first, alone }), 64);
    ASSERT_EQ(both.error, 0) << both.message;
    EXPECT_EQ(std::string(both.data.begin(), both.data.end()), "abcdabcdabcd");

    // Real frames of the same data: each frame stands alone.
    Buffer data = text_data(10 * KiB, 19);
    Buffer two = concat({ compress(data, { .level = 3 }), compress(data, { .level = 3 }) });
    expect_round_trip(concat({ data, data }), two);
}

TEST(ZstdTest, OutputTooSmallIsEnospc)
{
    Buffer input = text_data(100 * KiB, 20);
    for (bool content_size : { true, false }) {
        Buffer compressed = compress(input, { .level = 3, .content_size = content_size });
        for (size_t capacity : { size_t(0), size_t(1), input.size() / 2, input.size() - 1 }) {
            Decoded d = decode(compressed, capacity);
            EXPECT_EQ(d.error, ENOSPC) << d.message;
        }
    }
}

TEST(ZstdTest, XxHash64KnownValues)
{
    // Reference values from libxxhash (XXH64 with seed 0).
    EXPECT_EQ(XxHash64::digest(ReadonlyBytes(nullptr, 0)), 0xEF46DB3751D8E999ull);
    const u8 abc[] = { 'a', 'b', 'c' };
    EXPECT_EQ(XxHash64::digest(ReadonlyBytes(abc, 3)), 0x44BC2CF5AD770999ull);
}

TEST(ZstdTest, SmallAlphabetsAndManyShortSequences)
{
    // Few distinct literals make libzstd store Huffman weights directly; a random two-letter
    // string makes tens of thousands of 3-5 byte matches per block (the 3-byte sequence count).
    std::mt19937 rng(33);
    for (u32 letters : { 2u, 3u, 5u, 12u }) {
        Buffer input(600 * KiB);
        for (auto& b : input)
            b = u8('a' + rng() % letters);
        for (int level : { 1, 9, 19 })
            expect_round_trip(input, compress(input, { .level = level }));
    }
}

TEST(ZstdTest, HandmadeRleLiteralsWithoutSequences)
{
    // RLE literals "qqqqq" and a sequences section with no sequences.
    Buffer frame = handmade_frame({ 0x29, 'q', 0x00 });
    Decoded d = decode(frame, 5);
    ASSERT_EQ(d.error, 0) << d.message;
    EXPECT_EQ(std::string(d.data.begin(), d.data.end()), "qqqqq");
}

TEST(ZstdTest, HandmadeRleSequenceTables)
{
    // Raw literals "ab", then one sequence with all three tables in RLE mode: literal length code
    // 2, offset code 2 with extra bits 01 (offset value 5, offset 2), match length code 1 (4).
    Buffer frame = handmade_frame({ 0x10, 'a', 'b', 0x01, 0x54, 0x02, 0x02, 0x01, 0x05 });
    Decoded d = decode(frame, 6);
    ASSERT_EQ(d.error, 0) << d.message;
    EXPECT_EQ(std::string(d.data.begin(), d.data.end()), "ababab");
    Buffer reference(6);
    EXPECT_EQ(ZSTD_decompress(reference.data(), reference.size(), frame.data(), frame.size()), 6u);
    EXPECT_TRUE(reference == d.data);
    // The same frame with an RLE offset symbol above 31 is corrupt.
    frame[12] = 32;
    EXPECT_EQ(decode(frame, 6).error, EBADMSG);
}

TEST(ZstdTest, HandmadeDirectHuffmanWeights)
{
    // Compressed literals, one stream, with weights stored directly (header 127 + 3): symbols
    // 0..2 have weight 1 and symbol 3's weight is implied, so all four codes are 2 bits, code k
    // for symbol k. The stream holds 3, 2, 1, 0 under its end marker. No sequences follow.
    Buffer frame = handmade_frame({ 0x42, 0x40, 0x01, 0x82, 0x11, 0x10, 0xE4, 0x01, 0x00 });
    Decoded d = decode(frame, 4);
    ASSERT_EQ(d.error, 0) << d.message;
    EXPECT_TRUE(d.data == (Buffer { 3, 2, 1, 0 }));
    Buffer reference(4);
    EXPECT_EQ(ZSTD_decompress(reference.data(), reference.size(), frame.data(), frame.size()), 4u);
    EXPECT_TRUE(reference == d.data);
}

// ---- Streaming into a growing output: frames without a content size ----

struct Grown {
    int error { 0 };
    std::string message;
    Buffer data;
    size_t grows { 0 };
};

Grown decode_growing(const Buffer& compressed, size_t cap, size_t initial, HostAllocator& allocator)
{
    static auto decoder = std::make_unique<ZstdDecoder>();
    Grown result;
    {
        ZstdGrowingOutput output(allocator, cap, initial);
        auto r = decoder->decompress(ReadonlyBytes(compressed.data(), compressed.size()), output);
        result.grows = output.grow_count();
        if (r.is_error()) {
            result.error = r.error().code();
            result.message = r.error().message();
            return result;
        }
        Bytes buffer = output.release();
        EXPECT_LE(r.value(), buffer.size());
        EXPECT_LE(buffer.size(), cap);
        result.data.assign(buffer.data(), buffer.data() + r.value());
        allocator.deallocate(buffer.data(), buffer.size());
    }
    return result;
}

TEST(ZstdStreamTest, FramesWithoutContentSizeGrowTheOutput)
{
    // What `find . | cpio -o -H newc | zstd -19` makes: one frame, no content size.
    Buffer input = concat({ text_data(2 * MiB, 40), random_bytes(300 * KiB, 41), repetitive_data(700 * KiB, 42) });
    for (int level : { 1, 19 }) {
        Buffer compressed = compress(input, { .level = level, .content_size = false });
        ASSERT_EQ(ZstdDecoder::content_size(ReadonlyBytes(compressed.data(), compressed.size())).error().code(), ENODATA);
        HostAllocator allocator;
        Grown g = decode_growing(compressed, 64 * MiB, 4096, allocator);
        ASSERT_EQ(g.error, 0) << g.message;
        EXPECT_TRUE(g.data == input);
        EXPECT_GT(g.grows, 5u) << "started at 4 KiB, so it must have grown";
        EXPECT_EQ(allocator.live_allocations(), 0u);
    }
    // Streamed with flushes (no pledged size) and several frames, some sized, some not, with
    // skippable frames between: the concatenation.
    Buffer a = text_data(300 * KiB, 43), b = repetitive_data(500 * KiB, 44);
    Buffer stream = concat({ compress_streaming(a, 5, 7000), skippable({ 1, 2 }, 3), compress(b, { .level = 9 }),
        compress(a, { .level = 3, .content_size = false }) });
    HostAllocator allocator;
    Grown g = decode_growing(stream, 64 * MiB, 1000, allocator);
    ASSERT_EQ(g.error, 0) << g.message;
    EXPECT_TRUE(g.data == concat({ a, b, a }));
}

TEST(ZstdStreamTest, CapIsEfbigAndExactCapFits)
{
    Buffer input = text_data(777 * KiB + 3, 45);
    Buffer compressed = compress(input, { .level = 3, .content_size = false });
    HostAllocator allocator;
    Grown over = decode_growing(compressed, input.size() - 1, 4096, allocator);
    EXPECT_EQ(over.error, EFBIG);
    EXPECT_NE(over.message.find("cap"), std::string::npos) << over.message;
    EXPECT_EQ(allocator.live_allocations(), 0u);
    Grown exact = decode_growing(compressed, input.size(), 4096, allocator);
    ASSERT_EQ(exact.error, 0) << exact.message;
    EXPECT_TRUE(exact.data == input);
}

TEST(ZstdStreamTest, DeclaredSizeOverTheCapFailsBeforeAllocating)
{
    // Frame headers declaring 2^40 and 2^63 - 1 bytes (8-byte content size field), one empty
    // raw block: refused at once, and nothing near that size is ever requested.
    for (u64 declared : { u64(1) << 40, u64(1) << 63 }) {
        Buffer frame = { 0x28, 0xB5, 0x2F, 0xFD, 0xC0, 0x50 };
        for (int i = 0; i < 8; ++i)
            frame.push_back(u8(declared >> (8 * i)));
        frame.insert(frame.end(), { 0x01, 0x00, 0x00 });
        HostAllocator allocator;
        Grown g = decode_growing(frame, 1 * GiB, 4096, allocator);
        EXPECT_EQ(g.error, EFBIG) << g.message;
        EXPECT_EQ(allocator.allocation_count(), 0u);
        // A fixed buffer says ENOSPC, also before decoding anything.
        EXPECT_EQ(decode(frame, 100).error, ENOSPC);
    }
}

TEST(ZstdStreamTest, OutOfMemoryWhileGrowingIsEnomem)
{
    Buffer input = text_data(1 * MiB, 46);
    Buffer compressed = compress(input, { .level = 3, .content_size = false });
    for (size_t nth : { 1, 2, 4 }) {
        HostAllocator allocator;
        allocator.fail_nth_allocation(nth);
        Grown g = decode_growing(compressed, 64 * MiB, 64 * KiB, allocator);
        EXPECT_EQ(g.error, ENOMEM) << "allocation " << nth;
        EXPECT_EQ(allocator.live_allocations(), 0u);
    }
}

TEST(ZstdStreamTest, StartsWithFrameSkipsSkippableFrames)
{
    Buffer frame = compress(text_data(1000, 47), {});
    auto starts = [](const Buffer& b) { return ZstdDecoder::starts_with_frame(ReadonlyBytes(b.data(), b.size())); };
    EXPECT_TRUE(starts(frame));
    EXPECT_TRUE(starts(concat({ skippable({ 1, 2, 3 }, 0), skippable({}, 15), frame })));
    Buffer elf = { 0x7F, 'E', 'L', 'F', 2, 1, 1, 0 };
    EXPECT_FALSE(starts(elf));
    EXPECT_FALSE(starts(concat({ skippable({ 9 }, 1), elf })));
    Buffer truncated = skippable(Buffer(100, 0), 2);
    truncated.resize(50);
    EXPECT_FALSE(starts(truncated));
    EXPECT_FALSE(starts(skippable({ 4 }, 4)));
    EXPECT_FALSE(starts({}));
    // And a stream that starts with a skippable frame decodes.
    Buffer input = text_data(1000, 47);
    expect_round_trip(input, concat({ skippable(Buffer(64, 0x55), 5), frame }));
}

// ---- Corrupt and hostile input ----

TEST(ZstdCorruptTest, EmptyInputDecodesToNothing)
{
    Decoded d = decode({}, 10);
    EXPECT_EQ(d.error, 0);
    EXPECT_EQ(d.data.size(), 0u);
}

TEST(ZstdCorruptTest, TruncatedAtEveryLength)
{
    for (int level : { 1, 19 }) {
        Buffer input = text_data(3000, 21);
        for (bool checksum : { true, false }) {
            Buffer compressed = compress(input, { .level = level, .checksum = checksum });
            for (size_t length = 1; length < compressed.size(); ++length) {
                Buffer truncated(compressed.begin(), compressed.begin() + length);
                Decoded d = decode(truncated, input.size() + 100);
                EXPECT_NE(d.error, 0) << "truncated to " << length << " of " << compressed.size();
                EXPECT_EQ(strncmp(d.message.c_str(), "zstd: ", 6), 0) << d.message;
            }
        }
    }
}

TEST(ZstdCorruptTest, BitFlipsNeverCrash)
{
    Buffer input = text_data(5000, 22);
    Buffer compressed = compress(input, { .level = 19 });
    size_t errors = 0, total = 0;
    for (size_t i = 0; i < compressed.size(); ++i) {
        for (int bit = 0; bit < 8; ++bit) {
            Buffer flipped = compressed;
            flipped[i] ^= u8(1 << bit);
            Decoded d = decode(flipped, input.size() * 2);
            ++total;
            if (d.error) {
                ++errors;
                continue;
            }
            // A flip in padding or in bits the format ignores can decode to the same data; then
            // libzstd must agree byte for byte.
            Buffer reference(input.size() * 2);
            size_t n = ZSTD_decompress(reference.data(), reference.size(), flipped.data(), flipped.size());
            ASSERT_FALSE(ZSTD_isError(n)) << "flip at byte " << i << " bit " << bit << ": we accept, libzstd says " << ZSTD_getErrorName(n);
            reference.resize(n);
            EXPECT_TRUE(reference == d.data) << "flip at byte " << i << " bit " << bit;
        }
    }
    // With a checksum, nearly every flip is caught (flips in unused bits of the header can't be).
    EXPECT_GT(errors, total * 9 / 10);
}

TEST(ZstdCorruptTest, RandomGarbageAfterValidHeader)
{
    std::mt19937 rng(23);
    for (int i = 0; i < 3000; ++i) {
        Buffer b = random_bytes(5 + rng() % 600, rng());
        b[0] = 0x28, b[1] = 0xB5, b[2] = 0x2F, b[3] = 0xFD;
        b[4] &= ~0x0B; // no dictionary, reserved bit clear
        Decoded d = decode(b, 64 * KiB);
        (void)d;
    }
}

TEST(ZstdCorruptTest, BadMagic)
{
    Buffer compressed = compress(text_data(1000, 24), {});
    compressed[0] ^= 1;
    Decoded d = decode(compressed, 2000);
    EXPECT_EQ(d.error, EBADMSG);
    EXPECT_NE(d.message.find("magic"), std::string::npos) << d.message;
    EXPECT_EQ(decode({ 0x28, 0xB5, 0x2F }, 100).error, EBADMSG);
}

TEST(ZstdCorruptTest, BadChecksum)
{
    Buffer input = text_data(1000, 25);
    Buffer compressed = compress(input, { .checksum = true });
    compressed.back() ^= 0x80;
    Decoded d = decode(compressed, 2000);
    EXPECT_EQ(d.error, EBADMSG);
    EXPECT_NE(d.message.find("checksum"), std::string::npos) << d.message;
}

TEST(ZstdCorruptTest, ReservedBits)
{
    Buffer compressed = compress(text_data(1000, 26), {});
    Buffer reserved = compressed;
    reserved[4] |= 0x08;
    EXPECT_EQ(decode(reserved, 2000).error, EBADMSG);
    // Reserved block type 3.
    Buffer block = { 0x28, 0xB5, 0x2F, 0xFD, 0x20, 0x01, 0x0F, 0x00, 0x00 };
    EXPECT_EQ(decode(block, 10).error, EBADMSG);
    // Reserved bits of the sequences' compression modes.
    Decoded d = decode(handmade_frame({ 0x00, 0x01, 0x01 }), 10);
    EXPECT_EQ(d.error, EBADMSG);
    EXPECT_NE(d.message.find("reserved"), std::string::npos) << d.message;
}

TEST(ZstdCorruptTest, WindowTooLarge)
{
    // Window descriptor exponent 31: a 2^41-byte window.
    Buffer frame = { 0x28, 0xB5, 0x2F, 0xFD, 0x00, 0xF8, 0x01, 0x00, 0x00 };
    Decoded d = decode(frame, 100);
    EXPECT_EQ(d.error, EOVERFLOW);
    EXPECT_NE(d.message.find("window"), std::string::npos) << d.message;
    // Window log 31 is the limit, whatever its mantissa (libzstd agrees): 2^31 and
    // 2^31 + 7 * 2^28 decode; log 32 does not.
    Buffer max = { 0x28, 0xB5, 0x2F, 0xFD, 0x00, 0xA8, 0x01, 0x00, 0x00 };
    Buffer reference(100);
    for (u8 window : { 0xA8, 0xA9, 0xAF }) {
        max[5] = window;
        EXPECT_EQ(decode(max, 100).error, 0);
        EXPECT_FALSE(ZSTD_isError(ZSTD_decompress(reference.data(), reference.size(), max.data(), max.size())));
    }
    max[5] = 0xB0;
    EXPECT_EQ(decode(max, 100).error, EOVERFLOW);
    EXPECT_TRUE(ZSTD_isError(ZSTD_decompress(reference.data(), reference.size(), max.data(), max.size())));
}

TEST(ZstdCorruptTest, DictionaryIsNotSupported)
{
    Buffer frame = { 0x28, 0xB5, 0x2F, 0xFD, 0x21, 0x05, 0x00, 0x01, 0x00, 0x00 };
    Decoded d = decode(frame, 100);
    EXPECT_EQ(d.error, ENOTSUP);
    EXPECT_NE(d.message.find("dictionar"), std::string::npos) << d.message;
    // A dictionary ID of zero names no dictionary.
    frame[5] = 0;
    EXPECT_EQ(decode(frame, 100).error, 0);
}

TEST(ZstdCorruptTest, DeclaredContentSizeMismatch)
{
    Buffer input = text_data(1000, 27);
    Buffer compressed = compress(input, { .checksum = false });
    // Level 3, 1000 bytes: single segment with a 2-byte content size (value - 256) at offset 5.
    ASSERT_EQ(compressed[4] & 0xE0, 0x60);
    compressed[5] += 1;
    Decoded d = decode(compressed, 5000);
    EXPECT_EQ(d.error, EBADMSG);
    EXPECT_NE(d.message.find("declares"), std::string::npos) << d.message;
}

TEST(ZstdCorruptTest, FseTableLogTooLarge)
{
    // Raw literals (none), one sequence, literal lengths in FSE mode with accuracy log 10.
    Decoded d = decode(handmade_frame({ 0x00, 0x01, 0x80, 0x05 }), 10);
    EXPECT_EQ(d.error, EBADMSG);
    EXPECT_EQ(d.message, "zstd: FSE table log exceeds the maximum");
}

TEST(ZstdCorruptTest, RepeatModeWithoutTable)
{
    Decoded d = decode(handmade_frame({ 0x00, 0x01, 0xFC, 0x80 }), 10);
    EXPECT_EQ(d.error, EBADMSG);
    EXPECT_NE(d.message.find("repeat mode"), std::string::npos) << d.message;
}

TEST(ZstdCorruptTest, TreelessLiteralsWithoutTable)
{
    Decoded d = decode(handmade_frame({ 0x03, 0x00, 0x00, 0x00 }), 10);
    EXPECT_EQ(d.error, EBADMSG);
    EXPECT_NE(d.message.find("treeless"), std::string::npos) << d.message;
}

TEST(ZstdCorruptTest, OffsetBeforeFrameStart)
{
    // Two raw literals "ab", then one predefined-table sequence. All states start at 0: literal
    // length code 0, offset code 0 (offset value 1 -> repeat offset 1, but literal length 0 shifts
    // it to repeat offset 2 = 4), match length 3. Only 0 bytes precede the match: error.
    // Stream: 6 + 5 + 6 = 17 state bits, all zero, then the end marker.
    Decoded d = decode(handmade_frame({ 0x00, 0x01, 0x00, 0x00, 0x00, 0x02 }), 10);
    EXPECT_EQ(d.error, EBADMSG);
    EXPECT_NE(d.message.find("before the start"), std::string::npos) << d.message;
}

TEST(ZstdCorruptTest, TrailingGarbageAfterFrame)
{
    Buffer input = text_data(1000, 28);
    Buffer compressed = concat({ compress(input, {}), Buffer { 1, 2 } });
    EXPECT_EQ(decode(compressed, 2000).error, EBADMSG);
    Buffer skip = { 0x50, 0x2A, 0x4D, 0x18, 0x10, 0x00, 0x00, 0x00, 1, 2 };
    EXPECT_EQ(decode(skip, 10).error, EBADMSG);
}

TEST(ZstdCorruptTest, ContentSizeOfHostileInput)
{
    Buffer compressed = compress(text_data(1000, 29), {});
    for (size_t length = 0; length < compressed.size(); ++length) {
        auto r = ZstdDecoder::content_size(ReadonlyBytes(compressed.data(), length));
        if (length == 0) {
            ASSERT_FALSE(r.is_error());
            EXPECT_EQ(r.value(), 0u);
        } else {
            EXPECT_TRUE(r.is_error()) << length;
        }
    }
}
