#pragma once
// ZstdGrowingOutput: a ZstdOutput that grows as the data arrives, for streams whose frames do
// not declare their content size (`find . | cpio -o -H newc | zstd`, or zstd reading a pipe).
//
// Interface:
//   ZstdGrowingOutput output(allocator, cap, initial);   - never holds more than `cap` bytes
//   usize size = TRY(decoder.decompress(input, output));
//   Bytes buffer = output.release();                     - caller frees: allocator.deallocate(
//                                                          buffer.data(), buffer.size())
//
// Growing doubles the buffer (at least), so the copying costs O(n) in total; the old buffer is
// freed right after each copy. Past the cap, decoding fails with EFBIG; when the allocator
// refuses, with ENOMEM. The destructor frees a buffer that was not released.
#include "ZstdOutput.h"
#include <ktl/Allocator.h>

class ZstdGrowingOutput final : public ZstdOutput {
public:
    ZstdGrowingOutput(Allocator& allocator, usize cap, usize initial_capacity);
    ZstdGrowingOutput(const ZstdGrowingOutput&) = delete;
    ZstdGrowingOutput& operator=(const ZstdGrowingOutput&) = delete;
    ~ZstdGrowingOutput();

    ErrorOr<Bytes> reserve(usize used, usize wanted) override;
    usize limit() const override { return m_cap; }
    Error full_error() const override { return Error::with_message(EFBIG, "zstd: the decoded data exceeds the size cap"); }

    // The whole buffer (its capacity, of which the decoder's result is the used part); the
    // caller owns it from now on.
    Bytes release();
    usize capacity() const { return m_capacity; }
    usize grow_count() const { return m_grows; }

private:
    Allocator& m_allocator;
    u8* m_data { nullptr };
    usize m_capacity { 0 };
    usize m_cap;
    usize m_initial;
    usize m_grows { 0 };
};
