#pragma once
// ElfError: the detail of why an object was refused, for the log: an errno code plus a message that
// names the culprit ("section 7 (.rela.text) offset 0x4000 + size 0x180 is past the end of the
// file (0x3a20 bytes)"). The returned Error carries the reason itself as a static message
// ("section data past the end of the file"), so a caller that only sees the Error still knows why;
// the detail is what a caller logs at the point of failure.
//
// Interface:
//   return error.fail(ENOEXEC, "static reason", "section ", index, " (", name, ") is bad");
//       Replaces the detail, records the code and returns Error::with_message(code, reason), so a
//       parser can `return error.fail(...)` from any ErrorOr function. With no detail arguments
//       the reason is the detail. The reason must be a string with static lifetime. Detail
//       arguments: const char*, StringView (printed with non-printable bytes as '?', at most
//       NAME_LIMIT of them: names come from the file), unsigned/signed integers (decimal) and
//       Hex{value} ("0x1c").
//   error.code(), error.message()  - the last failure's detail; code 0 and "" when nothing failed.
//
// The detail lives in a fixed buffer inside the object: reporting an error never allocates.
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
    Error fail(Errno::ErrnoCode code, const char* reason, Args... detail)
    {
        clear();
        m_code = code;
        if constexpr (sizeof...(Args) == 0)
            append_one(reason);
        else
            (append_one(detail), ...);
        return Error::with_message(code, reason);
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
