#pragma once
// Parser for a kernel module's `.modinfo` section, Linux style: NUL-separated "key=value" strings.
//
// Interface:
//   ModInfo info;
//   if (info.parse(section_bytes).is_error()) log("%s", info.error_message());
//   info.name(), info.version(), info.abi_major() ...
//   info.for_each_dependency([](StringView name) { ... });
//   info.for_each_alias([](StringView pattern) { ... });
//   info.for_each_param([](const ModuleParam& param) { ... });
//   if (modalias_match(pattern, "pci:v00001AF4d00001005sv...")) ...
//
// Keys understood: name, version, description, author (may repeat), license, abi ("M.m"),
// vermagic, depends (comma-separated module names, may be empty), alias (may repeat),
// parm ("name:description") and parmtype ("name:type"). Other keys (srcversion, intree, ...)
// are ignored, and so are empty strings, which is how section padding reads.
//
// Errors are EINVAL with error_message() set: a string without '=', an empty key, a missing or
// empty name, a second name/version/description/license/abi/vermagic, an abi that is not two
// decimal numbers below 65536 joined by '.', a parm/parmtype without ':' or with no parameter name,
// and a module name (in name= or depends=) that is empty, longer than MaxNameLength, or holds
// anything but [A-Za-z0-9_-] (the name becomes a file name, so '/' and ".." must never get through).
//
// All strings are views into the section bytes, which must outlive the ModInfo.
#include <ktl/ErrorOr.h>
#include <ktl/Span.h>
#include <ktl/StringView.h>
#include <ktl/Types.h>

struct ModuleParam {
    StringView name;
    StringView description; // from parm=, empty if there is none
    StringView type;        // from parmtype=, empty if there is none
};

class ModInfo {
public:
    static constexpr usize MaxNameLength = 55; // Linux's MODULE_NAME_LEN, less the NUL

    ModInfo() { m_error[0] = 0; }

    ErrorOr<void> parse(ReadonlyBytes section);

    StringView name() const { return m_name; }
    StringView version() const { return m_version; }
    StringView description() const { return m_description; }
    StringView author() const { return m_author; } // the first author= entry
    StringView license() const { return m_license; }
    StringView vermagic() const { return m_vermagic; }
    bool has_abi() const { return m_has_abi; }
    u16 abi_major() const { return m_abi_major; }
    u16 abi_minor() const { return m_abi_minor; }

    // Each name in depends=, in order; empty items (",," or a trailing comma) are skipped.
    template<typename Callback>
    void for_each_dependency(Callback callback) const
    {
        for_each_value("depends", [&](StringView list) {
            for_each_list_item(list, callback);
        });
    }
    // Each alias= value, in section order.
    template<typename Callback>
    void for_each_alias(Callback callback) const { for_each_value("alias", callback); }
    // Each author= value, in section order.
    template<typename Callback>
    void for_each_author(Callback callback) const { for_each_value("author", callback); }
    // Each parameter named by parm= or parmtype=, once, in order of first mention.
    template<typename Callback>
    void for_each_param(Callback callback) const
    {
        for (usize i = 0; i < m_param_count_upper_bound; ++i) {
            ModuleParam param;
            if (param_at(i, param)) callback(static_cast<const ModuleParam&>(param));
        }
    }

    usize dependency_count() const;
    usize alias_count() const;
    usize param_count() const;
    // The parameter with this name, if the section describes one.
    bool find_param(StringView name, ModuleParam& out) const;

    const char* error_message() const { return m_error; }

    // Calls callback(StringView value) for every key=value string whose key is `key`.
    template<typename Callback>
    void for_each_value(StringView key, Callback callback) const
    {
        for_each_string([&](StringView string) {
            if (string.length() > key.length() && string.starts_with(key) && string[key.length()] == '=')
                callback(string.substring(key.length() + 1));
        });
    }

    // Whether s is a valid module name: 1..MaxNameLength bytes of [A-Za-z0-9_-].
    static bool is_valid_module_name(StringView s);

private:
    template<typename Callback>
    void for_each_string(Callback callback) const
    {
        const char* chars = reinterpret_cast<const char*>(m_section.data());
        usize size = m_section.size();
        usize start = 0;
        for (usize i = 0; i <= size; ++i) {
            if (i == size || chars[i] == 0) {
                if (i > start) callback(StringView(chars + start, i - start));
                start = i + 1;
            }
        }
    }
    template<typename Callback>
    static void for_each_list_item(StringView list, Callback& callback)
    {
        usize start = 0;
        for (usize i = 0; i <= list.length(); ++i) {
            if (i == list.length() || list[i] == ',') {
                if (i > start) callback(list.substring(start, i - start));
                start = i + 1;
            }
        }
    }
    // The i-th parm/parmtype string, if it is the first mention of its parameter.
    bool param_at(usize index, ModuleParam& out) const;
    Error fail(const char* fmt, ...) __attribute__((format(printf, 2, 3)));

    ReadonlyBytes m_section;
    StringView m_name, m_version, m_description, m_author, m_license, m_vermagic;
    bool m_has_abi { false };
    u16 m_abi_major { 0 };
    u16 m_abi_minor { 0 };
    usize m_param_count_upper_bound { 0 }; // number of parm= and parmtype= strings
    char m_error[160];
};

// Whether a module alias pattern matches a device's modalias, as Linux's modprobe decides it with
// fnmatch(pattern, modalias, 0): '*' matches any run of characters (including none), '?' any one,
// "[...]" one from a set ("[0-9a-f]", "[!x]" or "[^x]" to negate), and '\' makes the next
// character literal. Matching is case-sensitive and runs in O(|pattern| * |modalias|) worst case.
bool modalias_match(StringView pattern, StringView modalias);
