// zstd-decode: a host CLI over the kernel's zstd decoder, for tests/scripts/zstd-cli.sh and
// tests/scripts/zstd-huge-frame.sh.
//   zstd-decode [--cap BYTES] INPUT.zst OUTPUT
// The output grows as the frames decode (ZstdGrowingOutput), so frames need not declare their
// content size, and a header's declared size is never trusted to size a buffer: a stream that
// declares or decodes to more than the cap (default 4 GiB) is refused with EFBIG and exit 1.
#include <lib/zstd/ZstdDecoder.h>
#include <lib/zstd/ZstdGrowingOutput.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

namespace {

class MallocAllocator final : public Allocator {
public:
    ErrorOr<void*> allocate(usize size, usize) override
    {
        void* p = malloc(size ? size : 1);
        if (!p)
            return ENOMEM;
        return p;
    }
    void deallocate(void* pointer, usize) override { free(pointer); }
};

}

int main(int argc, char** argv)
{
    usize cap = usize(4) << 30;
    int arg = 1;
    if (argc == 5 && strcmp(argv[1], "--cap") == 0) {
        char* end;
        cap = strtoull(argv[2], &end, 0);
        if (*end) {
            fprintf(stderr, "zstd-decode: bad --cap %s\n", argv[2]);
            return 2;
        }
        arg = 3;
    } else if (argc != 3) {
        fprintf(stderr, "usage: %s [--cap BYTES] INPUT.zst OUTPUT\n", argv[0]);
        return 2;
    }
    FILE* in = fopen(argv[arg], "rb");
    if (!in) {
        perror(argv[arg]);
        return 1;
    }
    std::vector<u8> input;
    u8 chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, in)) > 0)
        input.insert(input.end(), chunk, chunk + n);
    fclose(in);

    ReadonlyBytes source(input.data(), input.size());
    // A declared size only picks the first allocation, and only when it is within the cap.
    auto declared = ZstdDecoder::content_size(source);
    usize initial = !declared.is_error() && declared.value() <= cap ? usize(declared.value()) + ZstdDecoder::output_slack : input.size() * 4 + 4096;
    auto decoder = std::make_unique<ZstdDecoder>();
    MallocAllocator allocator;
    ZstdGrowingOutput output(allocator, cap, initial);
    auto result = decoder->decompress(source, output);
    if (result.is_error()) {
        fprintf(stderr, "zstd-decode: %s (%s)\n", result.error().message(), result.error().name());
        return 1;
    }
    Bytes buffer = output.release();
    FILE* out = fopen(argv[arg + 1], "wb");
    bool ok = out && fwrite(buffer.data(), 1, result.value(), out) == result.value();
    if (out && fclose(out) != 0)
        ok = false;
    free(buffer.data());
    if (!ok) {
        perror(argv[arg + 1]);
        return 1;
    }
    return 0;
}
