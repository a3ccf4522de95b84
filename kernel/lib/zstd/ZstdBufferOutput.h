#pragma once
// ZstdBufferOutput: a fixed, caller-owned output buffer for ZstdDecoder. It never grows, so a
// stream that decodes to more than the buffer holds fails with ENOSPC.
#include "ZstdOutput.h"

class ZstdBufferOutput final : public ZstdOutput {
public:
    explicit ZstdBufferOutput(Bytes buffer) : m_buffer(buffer) { }
    ErrorOr<Bytes> reserve(usize, usize) override { return m_buffer; }
    usize limit() const override { return m_buffer.size(); }

private:
    Bytes m_buffer;
};
