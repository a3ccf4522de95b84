// zstd-decode: a host CLI over the kernel's zstd decoder, for tests/scripts/zstd-cli.sh.
//   zstd-decode INPUT.zst OUTPUT
// The output buffer is sized from the frames' declared content sizes when they all have one,
// and grown otherwise until the data fits.
#include <lib/zstd/ZstdDecoder.h>

#include <cstdio>
#include <memory>
#include <new>
#include <vector>

int main(int argc, char** argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s INPUT.zst OUTPUT\n", argv[0]);
        return 2;
    }
    FILE* in = fopen(argv[1], "rb");
    if (!in) {
        perror(argv[1]);
        return 1;
    }
    std::vector<u8> input;
    u8 chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, in)) > 0)
        input.insert(input.end(), chunk, chunk + n);
    fclose(in);

    ReadonlyBytes source(input.data(), input.size());
    auto declared = ZstdDecoder::content_size(source);
    size_t capacity = declared.is_error() ? input.size() * 4 + 4096 : size_t(declared.value());
    auto decoder = std::make_unique<ZstdDecoder>();
    std::vector<u8> output;
    for (;;) {
        output.resize(capacity ? capacity : 1);
        auto result = decoder->decompress(source, Bytes(output.data(), output.size()));
        if (!result.is_error()) {
            output.resize(result.value());
            break;
        }
        if (result.error().code() != ENOSPC || capacity > (size_t(1) << 36)) {
            fprintf(stderr, "zstd-decode: %s (%s)\n", decoder->error(), result.error().name());
            return 1;
        }
        capacity *= 2;
    }
    FILE* out = fopen(argv[2], "wb");
    if (!out || fwrite(output.data(), 1, output.size(), out) != output.size() || fclose(out) != 0) {
        perror(argv[2]);
        return 1;
    }
    return 0;
}
