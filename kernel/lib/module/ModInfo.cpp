#include <lib/text/Format.h>
#include <lib/module/ModInfo.h>

namespace {

// Matches "parm=..." or "parmtype=..."; out is which one (true for parmtype) and the value.
bool is_param_string(StringView string, bool& is_type, StringView& value)
{
    if (string.starts_with("parm=")) {
        is_type = false;
        value = string.substring(5);
        return true;
    }
    if (string.starts_with("parmtype=")) {
        is_type = true;
        value = string.substring(9);
        return true;
    }
    return false;
}

// Splits "name:rest" at the first ':'; false without a ':' or with an empty name.
bool split_param(StringView value, StringView& name, StringView& rest)
{
    isize colon = value.find(':');
    if (colon <= 0) return false;
    name = value.substring(0, usize(colon));
    rest = value.substring(usize(colon) + 1);
    return true;
}

// Parses a decimal number below 65536: digits only, no sign or spaces.
bool parse_u16(StringView s, u16& out)
{
    if (s.is_empty() || s.length() > 5) return false;
    u32 value = 0;
    for (usize i = 0; i < s.length(); ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        value = value * 10 + u32(s[i] - '0');
    }
    if (value > 0xffff) return false;
    out = u16(value);
    return true;
}

int clip(usize length) { return int(length > 64 ? 64 : length); }

} // namespace

bool ModInfo::is_valid_module_name(StringView s)
{
    if (s.is_empty() || s.length() > MaxNameLength) return false;
    for (usize i = 0; i < s.length(); ++i) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

Error ModInfo::fail(const char* fmt, ...)
{
    char detail[128];
    va_list args;
    va_start(args, fmt);
    vformat(detail, sizeof(detail), fmt, args);
    va_end(args);
    format(m_error, sizeof(m_error), "modinfo: %s", detail);
    return EINVAL;
}

ErrorOr<void> ModInfo::parse(ReadonlyBytes section)
{
    m_section = section;
    m_name = m_version = m_description = m_author = m_license = m_vermagic = StringView();
    m_has_abi = false;
    m_abi_major = m_abi_minor = 0;
    m_param_count_upper_bound = 0;
    m_error[0] = 0;

    struct Single {
        StringView key;
        StringView* field;
        bool seen;
    };
    Single singles[] = {
        { "name", &m_name, false },
        { "version", &m_version, false },
        { "description", &m_description, false },
        { "license", &m_license, false },
        { "vermagic", &m_vermagic, false },
        { "abi", nullptr, false },
    };

    const char* chars = reinterpret_cast<const char*>(section.data());
    usize const size = section.size();
    usize index = 0;
    for (usize start = 0, i = 0; i <= size; ++i) {
        if (i < size && chars[i] != 0) continue;
        StringView string(chars + start, i - start);
        start = i + 1;
        if (string.is_empty()) continue; // padding between strings
        usize const this_index = index++;

        isize equals = string.find('=');
        if (equals < 0)
            return fail("string %zu ('%.*s') has no '='", this_index, clip(string.length()), string.characters());
        if (equals == 0)
            return fail("string %zu ('%.*s') has an empty key", this_index, clip(string.length()), string.characters());
        StringView key = string.substring(0, usize(equals));
        StringView value = string.substring(usize(equals) + 1);

        bool handled = false;
        for (auto& single : singles) {
            if (!(key == single.key)) continue;
            if (single.seen) return fail("'%.*s' given twice", clip(key.length()), key.characters());
            single.seen = true;
            if (single.field) *single.field = value;
            handled = true;
        }
        if (key == "abi") {
            isize dot = value.find('.');
            if (dot < 0 || !parse_u16(value.substring(0, usize(dot)), m_abi_major)
                || !parse_u16(value.substring(usize(dot) + 1), m_abi_minor))
                return fail("abi '%.*s' is not MAJOR.MINOR", clip(value.length()), value.characters());
            m_has_abi = true;
        } else if (key == "author") {
            if (m_author.is_empty()) m_author = value;
        } else if (key == "name") {
            if (!is_valid_module_name(value))
                return fail("name '%.*s' is not a valid module name", clip(value.length()), value.characters());
        } else if (key == "depends") {
            usize item_start = 0;
            for (usize j = 0; j <= value.length(); ++j) {
                if (j < value.length() && value[j] != ',') continue;
                StringView item = value.substring(item_start, j - item_start);
                item_start = j + 1;
                if (!item.is_empty() && !is_valid_module_name(item))
                    return fail("depends names '%.*s', not a valid module name", clip(item.length()), item.characters());
            }
        } else if (!handled) {
            bool is_type;
            StringView param_value, param_name, rest;
            if (is_param_string(string, is_type, param_value)) {
                if (!split_param(param_value, param_name, rest))
                    return fail("%s '%.*s' is not NAME:%s", is_type ? "parmtype" : "parm", clip(param_value.length()),
                        param_value.characters(), is_type ? "TYPE" : "DESCRIPTION");
                ++m_param_count_upper_bound;
            }
        }
    }
    if (m_name.is_empty()) return fail("no name= entry");
    return {};
}

usize ModInfo::dependency_count() const
{
    usize count = 0;
    for_each_dependency([&](StringView) { ++count; });
    return count;
}

usize ModInfo::alias_count() const
{
    usize count = 0;
    for_each_alias([&](StringView) { ++count; });
    return count;
}

usize ModInfo::param_count() const
{
    usize count = 0;
    for_each_param([&](const ModuleParam&) { ++count; });
    return count;
}

bool ModInfo::param_at(usize wanted, ModuleParam& out) const
{
    // Find the wanted parm/parmtype string, then decide whether it is its parameter's first mention.
    usize index = 0;
    bool found = false;
    bool first_mention = true;
    StringView wanted_name;
    ModuleParam result;
    for_each_string([&](StringView string) {
        bool is_type;
        StringView value, name, rest;
        if (!is_param_string(string, is_type, value) || !split_param(value, name, rest)) return;
        usize const this_index = index++;
        if (this_index < wanted) return; // earlier ones are checked once the wanted name is known
        if (this_index == wanted) {
            found = true;
            wanted_name = name;
            result.name = name;
        }
        if (!(name == wanted_name)) return;
        if (is_type && result.type.is_empty()) result.type = rest;
        if (!is_type && result.description.is_empty()) result.description = rest;
    });
    if (!found) return false;
    index = 0;
    for_each_string([&](StringView string) {
        bool is_type;
        StringView value, name, rest;
        if (!is_param_string(string, is_type, value) || !split_param(value, name, rest)) return;
        if (index++ < wanted && name == wanted_name) first_mention = false;
    });
    if (!first_mention) return false;
    out = result;
    return true;
}

bool ModInfo::find_param(StringView name, ModuleParam& out) const
{
    bool found = false;
    for_each_param([&](const ModuleParam& param) {
        if (!found && param.name == name) {
            out = param;
            found = true;
        }
    });
    return found;
}

namespace {

// Matches one bracket expression starting at pattern[p] == '['. Returns false if the pattern has
// no closing ']' (then '[' is an ordinary character, as fnmatch treats it). On success sets
// *matched and *end (the index just past the ']').
bool match_bracket(StringView pattern, usize p, char c, bool& matched, usize& end)
{
    usize i = p + 1;
    bool negate = false;
    if (i < pattern.length() && (pattern[i] == '!' || pattern[i] == '^')) {
        negate = true;
        ++i;
    }
    bool hit = false;
    bool first = true;
    while (i < pattern.length()) {
        char low = pattern[i];
        if (low == ']' && !first) {
            matched = hit != negate;
            end = i + 1;
            return true;
        }
        first = false;
        if (low == '\\' && i + 1 < pattern.length()) low = pattern[++i];
        char high = low;
        if (i + 2 < pattern.length() && pattern[i + 1] == '-' && pattern[i + 2] != ']') {
            high = pattern[i + 2];
            if (high == '\\' && i + 3 < pattern.length()) high = pattern[++i + 2];
            i += 2;
        }
        if (u8(c) >= u8(low) && u8(c) <= u8(high)) hit = true;
        ++i;
    }
    return false;
}

} // namespace

bool modalias_match(StringView pattern, StringView text)
{
    // Greedy matching with one backtrack point: the most recent '*'. A later '*' makes earlier
    // ones irrelevant, which keeps this linear in practice and quadratic at worst.
    usize p = 0, t = 0;
    bool have_star = false;
    usize star_p = 0, star_t = 0;
    while (t < text.length()) {
        if (p < pattern.length()) {
            char pc = pattern[p];
            if (pc == '*') {
                have_star = true;
                star_p = ++p;
                star_t = t;
                continue;
            }
            if (pc == '?') {
                ++p;
                ++t;
                continue;
            }
            if (pc == '[') {
                bool matched;
                usize end;
                if (match_bracket(pattern, p, text[t], matched, end)) {
                    if (matched) {
                        p = end;
                        ++t;
                        continue;
                    }
                    goto mismatch;
                }
                // No closing ']': a literal '['.
            }
            if (pc == '\\' && p + 1 < pattern.length()) pc = pattern[++p];
            if (pc == text[t]) {
                ++p;
                ++t;
                continue;
            }
        }
    mismatch:
        if (!have_star) return false;
        p = star_p;
        t = ++star_t;
    }
    while (p < pattern.length() && pattern[p] == '*') ++p;
    return p == pattern.length();
}
