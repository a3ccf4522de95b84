#include <lib/elf/ElfError.h>

void ElfError::clear()
{
    m_code = 0;
    m_length = 0;
    m_message[0] = '\0';
}

void ElfError::put(char c)
{
    // Keep one byte for the terminator; a message that does not fit is cut, never overrun.
    if (m_length + 1 >= CAPACITY)
        return;
    m_message[m_length++] = c;
    m_message[m_length] = '\0';
}

void ElfError::append(StringView text, bool sanitize)
{
    usize limit = sanitize && text.length() > NAME_LIMIT ? NAME_LIMIT : text.length();
    for (usize i = 0; i < limit; ++i) {
        char c = text[i];
        if (sanitize && (u8(c) < 0x20 || u8(c) >= 0x7f))
            c = '?';
        put(c);
    }
    if (limit < text.length()) {
        put('.');
        put('.');
        put('.');
    }
}

void ElfError::append_unsigned(u64 value, unsigned base)
{
    char digits[24];
    usize count = 0;
    do {
        unsigned digit = unsigned(value % base);
        digits[count++] = char(digit < 10 ? '0' + digit : 'a' + digit - 10);
        value /= base;
    } while (value);
    if (base == 16) {
        put('0');
        put('x');
    }
    while (count)
        put(digits[--count]);
}

void ElfError::append_signed(i64 value)
{
    if (value < 0) {
        put('-');
        // Negate in unsigned arithmetic: -INT64_MIN does not fit an i64.
        append_unsigned(0 - u64(value), 10);
        return;
    }
    append_unsigned(u64(value), 10);
}
