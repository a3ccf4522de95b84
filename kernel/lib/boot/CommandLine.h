#pragma once
// Kernel command line parser.
//
// Interface:
//   CommandLine cmdline;
//   if (cmdline.parse(boot_info.command_line).is_error()) panic(cmdline.error());
//   if (cmdline.has("quiet")) ...
//   auto cpus = cmdline.get_u64("smp");            // ENOENT absent, EINVAL malformed, ERANGE too big
//   StringView tests = cmdline.get("selftest", "none");
//
// Syntax: entries separated by spaces or tabs, each `key=value` or a bare `flag`. A value may be
// double-quoted to hold spaces (`init="/bin/sh -x"`); the quotes are not part of the value. The
// last occurrence of a key wins. Keys and values are views into the parsed string, which must
// outlive the CommandLine.
#include <ktl/ErrorOr.h>
#include <ktl/StringView.h>
#include <ktl/Types.h>

class CommandLine {
public:
    static constexpr usize MaxEntries = 32;
    static constexpr usize MaxKeyLength = 64;

    struct Entry {
        StringView key;
        StringView value;
        bool has_value { false }; // false for a bare flag
    };

    // Replaces any previous contents. Errors: E2BIG for more than MaxEntries entries, EINVAL for an
    // unterminated quote, an empty key or text glued to a closing quote, ENAMETOOLONG for a key
    // longer than MaxKeyLength. error() then names the problem; no entries are kept.
    ErrorOr<void> parse(StringView text);

    bool has(StringView key) const { return lookup(key) != nullptr; }
    // The value of the last `key=value`; fallback when the key is absent. A bare flag gives "".
    StringView get(StringView key, StringView fallback = "") const;
    // Decimal or 0x-prefixed hexadecimal. ENOENT if absent (or a bare flag), EINVAL if malformed,
    // ERANGE if it does not fit in 64 bits.
    ErrorOr<u64> get_u64(StringView key) const;
    // A bare flag and 1/true/yes/on are true; 0/false/no/off are false; anything else or an absent
    // key gives fallback.
    bool get_bool(StringView key, bool fallback = false) const;

    usize entry_count() const { return m_count; }
    const Entry& entry(usize i) const { VERIFY(i < m_count); return m_entries[i]; }
    const char* error() const { return m_error; }

    static ErrorOr<u64> parse_u64(StringView text);

private:
    const Entry* lookup(StringView key) const;

    Entry m_entries[MaxEntries];
    usize m_count { 0 };
    const char* m_error { nullptr };
};
