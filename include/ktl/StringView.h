#pragma once
// A non-owning, not necessarily NUL-terminated string.
#include <ktl/Types.h>

class StringView {
public:
    constexpr StringView() = default;
    constexpr StringView(const char* chars, usize length) : m_chars(chars), m_length(length) { }
    constexpr StringView(const char* cstring) : m_chars(cstring), m_length(cstring ? __builtin_strlen(cstring) : 0) { }

    constexpr const char* characters() const { return m_chars; }
    constexpr usize length() const { return m_length; }
    constexpr bool is_empty() const { return m_length == 0; }
    constexpr char operator[](usize i) const { return m_chars[i]; }

    constexpr bool operator==(StringView other) const
    {
        if (m_length != other.m_length) return false;
        for (usize i = 0; i < m_length; ++i)
            if (m_chars[i] != other.m_chars[i]) return false;
        return true;
    }
    constexpr bool starts_with(StringView prefix) const
    {
        return prefix.m_length <= m_length && StringView(m_chars, prefix.m_length) == prefix;
    }
    constexpr StringView substring(usize start, usize length) const
    {
        if (start > m_length) start = m_length;
        if (length > m_length - start) length = m_length - start;
        return StringView(m_chars + start, length);
    }
    constexpr StringView substring(usize start) const { return substring(start, m_length); }
    // Index of the first occurrence of c, or -1.
    constexpr isize find(char c) const
    {
        for (usize i = 0; i < m_length; ++i)
            if (m_chars[i] == c) return (isize)i;
        return -1;
    }

private:
    const char* m_chars { "" };
    usize m_length { 0 };
};
