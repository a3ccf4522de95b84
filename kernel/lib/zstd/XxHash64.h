#pragma once
// XxHash64: the 64-bit xxHash of a byte buffer, which zstd uses for its content checksum
// (RFC 8878 section 3.1.1; the frame stores the low 32 bits of XXH64 with seed 0).
//
// Interface:
//   u64 h = XxHash64::digest(bytes, seed);
//
// One-shot only: the zstd decoder writes a frame into one flat buffer and hashes it at the end.
#include <ktl/Span.h>
#include <ktl/Types.h>

class XxHash64 {
public:
    static u64 digest(ReadonlyBytes data, u64 seed = 0);
};
