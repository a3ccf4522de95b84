#pragma once
// ZstdError: the errno and the human-readable reason for the last zstd decoding failure.
//
// Interface:
//   return error.fail(EBADMSG, "zstd: FSE table log ", log, " exceeds the maximum ", max, " for literal lengths");
//   error.message();   // "zstd: FSE table log 10 exceeds the maximum 9 for literal lengths"
//
// The message is composed into a fixed buffer inside the decoder object from static strings and
// integers, so reporting an error never allocates and never reads the (untrusted) input as text.
#include <ktl/ErrorOr.h>
#include <ktl/Types.h>
#include <type_traits>

class ZstdError {
public:
    static constexpr usize capacity = 160;

    const char* message() const { return m_message; }
    void clear()
    {
        m_message[0] = '\0';
        m_length = 0;
    }

    // Records the reason and returns the errno as an Error, for `return m_error.fail(...)`.
    template<typename... Parts>
    Error fail(Errno::ErrnoCode code, const Parts&... parts)
    {
        m_length = 0;
        (append(parts), ...);
        m_message[m_length] = '\0';
        return Error(code);
    }

private:
    template<typename T>
    void append(const T& part)
    {
        if constexpr (std::is_integral_v<T>)
            append_number(static_cast<u64>(part));
        else
            append_string(part);
    }

    void append_string(const char* text)
    {
        while (*text && m_length + 1 < capacity)
            m_message[m_length++] = *text++;
    }

    void append_number(u64 value)
    {
        char digits[20];
        usize count = 0;
        do {
            digits[count++] = char('0' + value % 10);
            value /= 10;
        } while (value);
        while (count && m_length + 1 < capacity)
            m_message[m_length++] = digits[--count];
    }

    char m_message[capacity] { "zstd: no error" };
    usize m_length { 0 };
};
