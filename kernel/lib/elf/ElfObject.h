#pragma once
// ElfObject: a validated view of an x86-64 ELF relocatable object (a kernel module, .ko).
//
// Interface:
//   auto object = TRY(ElfObject::parse(file, error));
//       Checks every header, section, symbol and relocation-table field against the file before
//       anything is read through it; on failure, error names the culprit. ENOEXEC for anything
//       malformed or unsupported (extended section numbering, COMMON symbols, SHT_REL).
//   section_count(), section(i), section_data(i)  - section headers and their file bytes.
//   symbol_count(), symbol(i)                      - the one symbol table (index 0 is the null symbol).
//   relocation_count(i), relocation(i, n)          - entries of SHT_RELA section i.
//   find_section(name), find_symbol(name)          - by name; find_symbol sees defined global/weak only.
//
// The object does not own or copy the file; the bytes must outlive it and must not change
// after parse() (the kernel copies a module in before parsing it). Nothing is allocated:
// accessors decode the validated headers again on each call.
#include <lib/elf/ElfError.h>
#include <lib/elf/ElfTypes.h>
#include <ktl/ErrorOr.h>
#include <ktl/Span.h>
#include <ktl/StringView.h>

struct ElfSection {
    u32 index { 0 };
    StringView name;
    u32 type { 0 };
    u64 flags { 0 };
    u64 offset { 0 };
    u64 size { 0 };
    // Always a power of two (an sh_addralign of 0 reads as 1).
    u64 alignment { 1 };
    u32 link { 0 };
    u32 info { 0 };
    u64 entry_size { 0 };

    bool is_alloc() const { return flags & Elf::SectionFlag::Alloc; }
    bool is_nobits() const { return type == Elf::SectionType::Nobits; }
};

struct ElfSymbol {
    u32 index { 0 };
    StringView name;
    u64 value { 0 };
    u64 size { 0 };
    u16 section_index { 0 };
    u8 binding { 0 };
    u8 type { 0 };
    u8 visibility { 0 };

    bool is_undefined() const { return section_index == Elf::SectionIndex::Undef; }
    bool is_absolute() const { return section_index == Elf::SectionIndex::Abs; }
    bool is_global_or_weak() const
    {
        return binding == Elf::SymbolBinding::Global || binding == Elf::SymbolBinding::Weak;
    }
};

struct ElfRelocation {
    u64 offset { 0 };
    u32 type { 0 };
    u32 symbol_index { 0 };
    i64 addend { 0 };
};

class ElfObject {
public:
    static ErrorOr<ElfObject> parse(ReadonlyBytes file, ElfError& error);

    ReadonlyBytes file() const { return m_file; }

    usize section_count() const { return m_section_count; }
    ElfSection section(usize index) const;
    // The section's bytes in the file; empty for SHT_NOBITS and SHT_NULL.
    ReadonlyBytes section_data(usize index) const;
    // Index of the first section with this name, or ENOENT.
    ErrorOr<usize> find_section(StringView name) const;

    usize symbol_table_index() const { return m_symtab_index; }
    usize symbol_count() const { return m_symbol_count; }
    ElfSymbol symbol(usize index) const;
    // Index of the defined (not UNDEF) global or weak symbol with this name, or ENOENT.
    ErrorOr<usize> find_symbol(StringView name) const;

    // Entries of SHT_RELA section rela_section (validated: entsize 24, symbol indices in range).
    usize relocation_count(usize rela_section) const;
    ElfRelocation relocation(usize rela_section, usize index) const;

private:
    ElfObject() = default;
    Elf::SectionHeader header(usize index) const;
    // A validated string at offset in string table section strtab_index.
    StringView string_at(usize strtab_index, u32 offset) const;

    ReadonlyBytes m_file;
    u64 m_section_header_offset { 0 };
    usize m_section_count { 0 };
    usize m_shstrtab_index { 0 };
    usize m_symtab_index { 0 };
    usize m_strtab_index { 0 };
    usize m_symbol_count { 0 };
};
