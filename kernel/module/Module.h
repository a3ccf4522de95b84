#pragma once
// A loaded module: its memory, symbols, exports, entry points and links to the modules it uses.
//
//   module region (top 2 GiB, beside the kernel image)
//   +------------+-------------+-----------+-------+
//   | text  (RX) | rodata (R)  | data (RW) | guard |   each region page-aligned; the guard
//   +------------+-------------+-----------+-------+   page stays unmapped between modules
//   ^ base
#include <homeos/module.h>
#include <ktl/IntrusiveList.h>
#include <ktl/Span.h>
#include <ktl/StringView.h>
#include <lib/elf/ModuleLayout.h>
#include <test/KTest.h>

struct ModuleSymbol {
    u64 address;
    u64 size;
    const char* name; // inside Module::m_strings
};

class Module {
public:
    static constexpr usize MAX_DEPENDENCIES = 16;
    static constexpr usize NAME_CAPACITY = 64;

    StringView name() const { return StringView(m_name); }
    const char* name_cstr() const { return m_name; }
    StringView version() const { return StringView(m_version); }
    u64 base() const { return m_base; }
    u64 size() const { return m_size; }
    bool contains(u64 address) const { return address >= m_base && address < m_base + m_size; }
    u32 use_count() const { return m_use_count; }
    usize page_count() const { return m_page_count; }
    Span<Module* const> dependencies() const { return Span<Module* const>(m_dependencies, m_dependency_count); }
    Span<const homeos_export> exports() const { return m_exports; }
    Span<const ktest::Suite* const> suites() const { return m_suites; }
    Span<const ModuleSymbol> symbols() const { return Span<const ModuleSymbol>(m_symbols, m_symbol_count); }
    // The function symbol containing address, if any.
    const ModuleSymbol* symbol_for(u64 address) const;

    // The loader's bookkeeping. Public for the loader's helpers; nothing else writes these.

    char m_name[NAME_CAPACITY] {};
    char m_version[32] {};
    u64 m_base { 0 };
    u64 m_size { 0 };
    usize m_page_count { 0 };
    ModuleMemory m_memory {};
    u32 m_use_count { 0 };
    Module* m_dependencies[MAX_DEPENDENCIES] {};
    usize m_dependency_count { 0 };
    homeos_exitcall m_exit { nullptr };
    Span<void (*const)()> m_fini_array;
    Span<const homeos_export> m_exports;
    Span<const ktest::Suite* const> m_suites;
    ModuleSymbol* m_symbols { nullptr };
    usize m_symbol_count { 0 };
    char* m_strings { nullptr };
    bool m_live { false }; // init finished: visible to symbol resolution and lsmod

public:
    IntrusiveListNode list_node;
};
