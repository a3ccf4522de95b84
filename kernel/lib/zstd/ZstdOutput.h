#pragma once
// ZstdOutput: where ZstdDecoder writes, so a frame without a declared content size can be decoded
// into a buffer that grows as the data arrives.
//
// Interface:
//   class MyOutput final : public ZstdOutput {
//       ErrorOr<Bytes> reserve(usize used, usize wanted) override;   - grow (and maybe move)
//       usize limit() const override;                                 - the most it will hold
//       Error full_error() const override;                            - e.g. EFBIG past a cap
//   };
//
// The decoder calls reserve() before each block with the bytes written so far (`used`) and the
// most the block can add (`wanted`). The returned buffer must start with those `used` bytes; it
// may be a new buffer (the data moved) and may have less room than asked, for example at a memory
// cap: the decoder then fails with full_error() only if the block really does not fit. Because
// the output stays one flat buffer, the window of a frame is simply its output so far.
#include <ktl/ErrorOr.h>
#include <ktl/Span.h>
#include <ktl/Types.h>

class ZstdOutput {
public:
    virtual ErrorOr<Bytes> reserve(usize used, usize wanted) = 0;
    // The most the output can ever hold: a frame that declares more fails at once.
    virtual usize limit() const = 0;
    virtual Error full_error() const { return Error::with_message(ENOSPC, "zstd: the output buffer is too small"); }

protected:
    ~ZstdOutput() = default;
};
