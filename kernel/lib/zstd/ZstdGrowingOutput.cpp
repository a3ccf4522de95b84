#include "ZstdGrowingOutput.h"

ZstdGrowingOutput::ZstdGrowingOutput(Allocator& allocator, usize cap, usize initial_capacity)
    : m_allocator(allocator)
    , m_cap(cap)
    , m_initial(initial_capacity < cap ? initial_capacity : cap)
{
}

ZstdGrowingOutput::~ZstdGrowingOutput()
{
    if (m_data)
        m_allocator.deallocate(m_data, m_capacity);
}

Bytes ZstdGrowingOutput::release()
{
    Bytes buffer(m_data, m_capacity);
    m_data = nullptr;
    m_capacity = 0;
    return buffer;
}

ErrorOr<Bytes> ZstdGrowingOutput::reserve(usize used, usize wanted)
{
    VERIFY(used <= m_capacity);
    if (m_capacity - used >= wanted)
        return Bytes(m_data, m_capacity);
    usize target = m_capacity > m_cap / 2 ? m_cap : 2 * m_capacity;
    if (target < m_initial)
        target = m_initial;
    usize needed = wanted > m_cap - used ? m_cap : used + wanted;
    if (target < needed)
        target = needed;
    if (target > m_cap)
        target = m_cap;
    // At the cap: the decoder fails with full_error() only if the data really does not fit.
    if (target <= m_capacity)
        return Bytes(m_data, m_capacity);

    auto allocated = m_allocator.allocate(target);
    if (allocated.is_error())
        return Error::with_message(ENOMEM, "zstd: out of memory for the decoded data");
    u8* grown = static_cast<u8*>(allocated.value());
    // 32 bytes per round in 8-byte moves: the kernel's memcpy is `rep movsb`, which emulators
    // run a byte per iteration.
    usize i = 0;
    for (; i + 32 <= used; i += 32) {
        u64 a, b, c, d;
        __builtin_memcpy(&a, m_data + i, 8);
        __builtin_memcpy(&b, m_data + i + 8, 8);
        __builtin_memcpy(&c, m_data + i + 16, 8);
        __builtin_memcpy(&d, m_data + i + 24, 8);
        __builtin_memcpy(grown + i, &a, 8);
        __builtin_memcpy(grown + i + 8, &b, 8);
        __builtin_memcpy(grown + i + 16, &c, 8);
        __builtin_memcpy(grown + i + 24, &d, 8);
    }
    for (; i + 8 <= used; i += 8)
        __builtin_memcpy(grown + i, m_data + i, 8);
    for (; i < used; ++i)
        grown[i] = m_data[i];
    if (m_data)
        m_allocator.deallocate(m_data, m_capacity);
    m_data = grown;
    m_capacity = target;
    ++m_grows;
    return Bytes(m_data, m_capacity);
}
