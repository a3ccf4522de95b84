// zstd decoding throughput: the kernel's decoder beside libzstd's ZSTD_decompress on the same
// frames. Names pair up (BM_ZstdDecode/ours/text-3 beside BM_ZstdDecode/libzstd/text-3) and
// report bytes/s of decompressed output, so the MB/s columns compare directly.
#include <lib/zstd/ZstdDecoder.h>

#include <benchmark/benchmark.h>
#include <zstd.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

using Buffer = std::vector<u8>;
constexpr size_t kInputSize = 16 * MiB;

Buffer text_like(size_t size)
{
    static const char* words[] = { "the ", "kernel ", "zstd ", "frame ", "block ", "of ", "and ", "a ", "sequence ",
        "literal ", "Huffman ", "table ", "state ", "offset ", "window ", "memory ", "page ", "to ", "in ", "is ",
        "scheduler ", "interrupt ", "module ", "initramfs ", "\n", ", ", ". ", "decoder ", "buffer ", "bits " };
    std::mt19937 rng(1);
    std::string s;
    s.reserve(size + 32);
    while (s.size() < size) {
        s += words[rng() % 30];
        if (rng() % 40 == 0)
            s += std::to_string(rng());
    }
    return Buffer(s.begin(), s.begin() + size);
}

Buffer random_bytes(size_t size)
{
    std::mt19937_64 rng(2);
    Buffer b(size);
    for (size_t i = 0; i + 8 <= size; i += 8) {
        u64 v = rng();
        __builtin_memcpy(b.data() + i, &v, 8);
    }
    return b;
}

struct Case {
    Buffer original;
    Buffer compressed;
};

const Case& get_case(int which)
{
    static Case cases[3];
    Case& c = cases[which];
    if (c.original.empty()) {
        c.original = which == 2 ? random_bytes(kInputSize) : text_like(kInputSize);
        int level = which == 0 ? 3 : which == 1 ? 19 : 3;
        c.compressed.resize(ZSTD_compressBound(c.original.size()));
        size_t n = ZSTD_compress(c.compressed.data(), c.compressed.size(), c.original.data(), c.original.size(), level);
        c.compressed.resize(n);
    }
    return c;
}

void ours(benchmark::State& state)
{
    const Case& c = get_case(int(state.range(0)));
    auto decoder = std::make_unique<ZstdDecoder>();
    Buffer out(c.original.size());
    for (auto _ : state) {
        auto r = decoder->decompress(ReadonlyBytes(c.compressed.data(), c.compressed.size()), Bytes(out.data(), out.size()));
        if (r.is_error() || r.value() != c.original.size()) {
            state.SkipWithError(r.is_error() ? r.error().message() : "wrong size");
            break;
        }
        benchmark::DoNotOptimize(out.data());
    }
    if (out != c.original)
        state.SkipWithError("output differs");
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(c.original.size()));
}

void libzstd(benchmark::State& state)
{
    const Case& c = get_case(int(state.range(0)));
    Buffer out(c.original.size());
    ZSTD_DCtx* dctx = ZSTD_createDCtx();
    for (auto _ : state) {
        size_t n = ZSTD_decompressDCtx(dctx, out.data(), out.size(), c.compressed.data(), c.compressed.size());
        if (ZSTD_isError(n)) {
            state.SkipWithError(ZSTD_getErrorName(n));
            break;
        }
        benchmark::DoNotOptimize(out.data());
    }
    ZSTD_freeDCtx(dctx);
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(c.original.size()));
}

}

// Argument: 0 = 16 MiB text-like at level 3, 1 = the same at level 19, 2 = 16 MiB random.
BENCHMARK(ours)->Name("BM_ZstdDecode/ours/text-3")->Arg(0)->Unit(benchmark::kMillisecond);
BENCHMARK(libzstd)->Name("BM_ZstdDecode/libzstd/text-3")->Arg(0)->Unit(benchmark::kMillisecond);
BENCHMARK(ours)->Name("BM_ZstdDecode/ours/text-19")->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(libzstd)->Name("BM_ZstdDecode/libzstd/text-19")->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(ours)->Name("BM_ZstdDecode/ours/random-3")->Arg(2)->Unit(benchmark::kMillisecond);
BENCHMARK(libzstd)->Name("BM_ZstdDecode/libzstd/random-3")->Arg(2)->Unit(benchmark::kMillisecond);
