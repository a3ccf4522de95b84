#pragma once
// Relocator: puts a planned module into the memory the loader mapped for it, and links it.
//
// Interface:
//   TRY(Relocator::relocate(object, layout, memory, resolver, error));
//     1. Checks memory against the layout (each region large enough, its address aligned to the
//        region's alignment, writable pointer present): EINVAL otherwise.
//     2. Zeroes each region up to the layout's size, copies every loaded section's file bytes
//        into place (SHT_NOBITS stays zero).
//     3. Applies every SHT_RELA section whose target section is loaded; others (.rela.debug_*)
//        are skipped. Supported: R_X86_64_NONE, 64, PC64, PC32, PLT32 (as PC32: a module is in
//        range of everything it calls), 32 (zero-extended), 32S (sign-extended), GOTPCREL,
//        GOTPCRELX and REX_GOTPCRELX (the GOT slot gets S, the field G + GOT + A - P; the
//        instruction is left unrelaxed).
//   Symbol values: defined -> final section address + st_value; SHN_ABS -> st_value;
//   undefined -> resolver (a weak undefined symbol the resolver answers ENOENT for is 0).
//
// Errors: unknown relocation type, a relocation outside its section -> ENOEXEC; a value that does
// not fit its field -> ERANGE; unresolved symbol -> ENOENT. Each names the site
// ("R_X86_64_PC32 at .text+0x1c against 'far_away' overflows (value 0x...)").
//
// NOTE: on failure the regions hold a partly linked module; the loader must discard them.
#include <lib/elf/ElfError.h>
#include <lib/elf/ElfObject.h>
#include <lib/elf/ModuleLayout.h>
#include <lib/elf/SymbolResolver.h>

class Relocator {
public:
    static ErrorOr<void> relocate(const ElfObject& object, const ModuleLayout& layout, const ModuleMemory& memory,
        SymbolResolver& resolver, ElfError& error);

private:
    Relocator(const ElfObject& object, const ModuleLayout& layout, const ModuleMemory& memory, SymbolResolver& resolver,
        ElfError& error)
        : m_object(object)
        , m_layout(layout)
        , m_memory(memory)
        , m_resolver(resolver)
        , m_error(error)
    {
    }

    ErrorOr<void> check_memory();
    void copy_sections();
    ErrorOr<void> apply(usize rela_section);
    ErrorOr<u64> symbol_value(u32 symbol_index);
    // The symbol's name for messages; a section symbol is named after its section.
    StringView symbol_name(u32 symbol_index) const;

    const ElfObject& m_object;
    const ModuleLayout& m_layout;
    const ModuleMemory& m_memory;
    SymbolResolver& m_resolver;
    ElfError& m_error;
};
