#pragma once
// ElfError: why an object was refused, as an errno code plus a message that names the culprit
// ("section 7 (.rela.text) offset 0x4000 + size 0x180 is past the end of the file (0x3a20 bytes)").
//
// Interface:
//   return error.fail(ENOEXEC, "section ", index, " (", name, ") is bad");
//       Replaces the message, records the code and returns it as an Error, so a parser can
//       `return error.fail(...)` from any ErrorOr function. Arguments: const char*, StringView
//       (printed with non-printable bytes as '?', at most NAME_LIMIT of them: names come from the
//       file), unsigned/signed integers (decimal) and Hex{value} ("0x1c").
//   error.code(), error.message()  - the last failure; code 0 and "" when nothing failed.
//
// The message lives in a fixed buffer inside the object: reporting an error never allocates.
#include <ktl/ErrorOr.h>
#include <ktl/StringView.h>
#include <type_traits>

struct Hex {
    u64 value;
};

class ElfError {
public:
    static constexpr usize CAPACITY = 256;
    static constexpr usize NAME_LIMIT = 64;

    ElfError() { clear(); }

    int code() const { return m_code; }
    StringView message() const { return StringView(m_message, m_length); }
    // NUL-terminated, for printf-style consumers.
    const char* c_str() const { return m_message; }
    void clear();

    template<typename... Args>
    Error fail(Errno::ErrnoCode code, Args... args)
    {
        clear();
        m_code = code;
        (append_one(args), ...);
        return Error(code);
    }

    // Building blocks for fail(); public so callers can extend a message.
    void append(StringView text, bool sanitize);
    void append_unsigned(u64 value, unsigned base);
    void append_signed(i64 value);

private:
    void append_one(const char* text) { append(StringView(text), false); }
    void append_one(StringView text) { append(text, true); }
    void append_one(Hex hex) { append_unsigned(hex.value, 16); }
    template<typename T>
        requires std::is_integral_v<T>
    void append_one(T value)
    {
        if constexpr (std::is_signed_v<T>)
            append_signed(i64(value));
        else
            append_unsigned(u64(value), 10);
    }
    void put(char c);

    int m_code { 0 };
    usize m_length { 0 };
    char m_message[CAPACITY];
};
