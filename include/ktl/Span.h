#pragma once
// A non-owning view of contiguous objects, with bounds-checked slicing for parsers.
#include <ktl/Assertions.h>
#include <ktl/Types.h>

template<typename T>
class Span {
public:
    constexpr Span() = default;
    constexpr Span(T* data, usize size) : m_data(data), m_size(size) { }
    template<usize N>
    constexpr Span(T (&array)[N]) : m_data(array), m_size(N) { }

    constexpr T* data() const { return m_data; }
    constexpr usize size() const { return m_size; }
    constexpr bool is_empty() const { return m_size == 0; }
    constexpr T& operator[](usize i) const { VERIFY(i < m_size); return m_data[i]; }
    constexpr T* begin() const { return m_data; }
    constexpr T* end() const { return m_data + m_size; }

    // Slices that cannot leave the span: out-of-range requests are a caller bug.
    constexpr Span slice(usize offset, usize length) const
    {
        VERIFY(offset <= m_size && length <= m_size - offset);
        return Span(m_data + offset, length);
    }
    constexpr Span slice(usize offset) const { VERIFY(offset <= m_size); return Span(m_data + offset, m_size - offset); }
    // Whether [offset, offset + length) lies inside the span, without overflow.
    constexpr bool contains_range(u64 offset, u64 length) const { return offset <= m_size && length <= m_size - offset; }

private:
    T* m_data { nullptr };
    usize m_size { 0 };
};

using Bytes = Span<u8>;
using ReadonlyBytes = Span<const u8>;
