#include <lib/boot/CommandLine.h>

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// A view of a literal with its length known at compile time, so no strlen call is emitted.
template<usize N>
constexpr StringView literal(const char (&text)[N]) { return StringView(text, N - 1); }

} // namespace

ErrorOr<void> CommandLine::parse(StringView text)
{
    m_count = 0;
    m_error = nullptr;
    auto fail = [&](const char* message, int code) -> ErrorOr<void> {
        m_count = 0;
        m_error = message;
        return Error(code);
    };

    usize i = 0;
    usize length = text.length();
    while (true) {
        while (i < length && is_space(text[i]))
            ++i;
        if (i >= length)
            break;

        usize key_start = i;
        while (i < length && !is_space(text[i]) && text[i] != '=') {
            if (text[i] == '"')
                return fail("command line: quote in a key", EINVAL);
            ++i;
        }
        usize key_length = i - key_start;
        if (key_length == 0)
            return fail("command line: entry with an empty key", EINVAL);
        if (key_length > MaxKeyLength)
            return fail("command line: key longer than 64 characters", ENAMETOOLONG);

        Entry entry;
        entry.key = text.substring(key_start, key_length);
        if (i < length && text[i] == '=') {
            ++i;
            entry.has_value = true;
            if (i < length && text[i] == '"') {
                usize value_start = ++i;
                while (i < length && text[i] != '"')
                    ++i;
                if (i >= length)
                    return fail("command line: unterminated quote", EINVAL);
                entry.value = text.substring(value_start, i - value_start);
                ++i; // closing quote
                if (i < length && !is_space(text[i]))
                    return fail("command line: text right after a closing quote", EINVAL);
            } else {
                usize value_start = i;
                while (i < length && !is_space(text[i])) {
                    if (text[i] == '"')
                        return fail("command line: quote inside an unquoted value", EINVAL);
                    ++i;
                }
                entry.value = text.substring(value_start, i - value_start);
            }
        }
        if (m_count == MaxEntries)
            return fail("command line: more than 32 entries", E2BIG);
        m_entries[m_count++] = entry;
    }
    return {};
}

const CommandLine::Entry* CommandLine::lookup(StringView key) const
{
    // Backwards, so that the last occurrence wins.
    for (usize i = m_count; i > 0; --i) {
        if (m_entries[i - 1].key == key)
            return &m_entries[i - 1];
    }
    return nullptr;
}

StringView CommandLine::get(StringView key, StringView fallback) const
{
    auto* entry = lookup(key);
    return entry ? entry->value : fallback;
}

ErrorOr<u64> CommandLine::parse_u64(StringView text)
{
    u64 base = 10;
    if (text.starts_with(literal("0x")) || text.starts_with(literal("0X"))) {
        base = 16;
        text = text.substring(2);
    }
    if (text.is_empty())
        return Error(EINVAL);
    u64 value = 0;
    for (usize i = 0; i < text.length(); ++i) {
        char c = text[i];
        u64 digit;
        if (c >= '0' && c <= '9')
            digit = u64(c - '0');
        else if (base == 16 && c >= 'a' && c <= 'f')
            digit = u64(c - 'a' + 10);
        else if (base == 16 && c >= 'A' && c <= 'F')
            digit = u64(c - 'A' + 10);
        else
            return Error(EINVAL);
        if (mul_overflows(value, base, &value) || add_overflows(value, digit, &value))
            return Error(ERANGE);
    }
    return value;
}

ErrorOr<u64> CommandLine::get_u64(StringView key) const
{
    auto* entry = lookup(key);
    if (!entry || !entry->has_value)
        return Error(ENOENT);
    return parse_u64(entry->value);
}

bool CommandLine::get_bool(StringView key, bool fallback) const
{
    auto* entry = lookup(key);
    if (!entry)
        return fallback;
    if (!entry->has_value)
        return true;
    auto value = entry->value;
    if (value == literal("1") || value == literal("true") || value == literal("yes") || value == literal("on"))
        return true;
    if (value == literal("0") || value == literal("false") || value == literal("no") || value == literal("off"))
        return false;
    return fallback;
}
