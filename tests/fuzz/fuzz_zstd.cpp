// libFuzzer target for the kernel's zstd decoder: decode into a bounded buffer, and whenever
// libzstd also accepts the input, the two decoders must agree byte for byte.
//
// The decoder must never crash, hang or touch memory outside its spans (ASan/UBSan watch). It
// may be stricter than libzstd (it rejects blocks that decode past the block maximum, for
// example), so a rejection alone is not a failure; a different successful output is.
#include <lib/zstd/ZstdDecoder.h>

#include <zstd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace {

constexpr size_t output_capacity = 1 << 20;

}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    static auto decoder = std::make_unique<ZstdDecoder>();
    static std::vector<u8> ours(output_capacity);
    static std::vector<u8> theirs(output_capacity);

    ReadonlyBytes input(data, size);
    (void)ZstdDecoder::content_size(input);
    auto result = decoder->decompress(input, Bytes(ours.data(), ours.size()));
    if (result.is_error()) {
        if (strncmp(decoder->error(), "zstd: ", 6) != 0) {
            fprintf(stderr, "error without a message: %s\n", decoder->error());
            abort();
        }
        return 0;
    }
    size_t n = ZSTD_decompress(theirs.data(), theirs.size(), data, size);
    if (ZSTD_isError(n))
        return 0;
    if (n != result.value() || memcmp(ours.data(), theirs.data(), n) != 0) {
        fprintf(stderr, "output differs from libzstd: ours %zu bytes, libzstd %zu\n", result.value(), n);
        abort();
    }
    return 0;
}
