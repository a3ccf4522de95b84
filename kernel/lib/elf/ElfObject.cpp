#include <lib/elf/ElfObject.h>

using namespace Elf;

namespace {

// A string table is usable when it is file-backed and ends in NUL: then every offset inside it
// starts a terminated string, and checking a name is one comparison.
bool is_terminated_string_table(ReadonlyBytes table)
{
    return table.size() > 0 && table[table.size() - 1] == 0;
}

StringView string_in(ReadonlyBytes table, u32 offset)
{
    VERIFY(offset < table.size());
    auto* chars = reinterpret_cast<const char*>(table.data() + offset);
    usize length = 0;
    while (chars[length] != '\0')
        ++length;
    return StringView(chars, length);
}

}

Elf::SectionHeader ElfObject::header(usize index) const
{
    VERIFY(index < m_section_count);
    return read<SectionHeader>(m_file, m_section_header_offset + index * sizeof(SectionHeader));
}

ReadonlyBytes ElfObject::section_data(usize index) const
{
    auto header = this->header(index);
    if (header.type == SectionType::Nobits || header.type == SectionType::Null)
        return {};
    return m_file.slice(header.offset, header.size);
}

StringView ElfObject::string_at(usize strtab_index, u32 offset) const
{
    return string_in(section_data(strtab_index), offset);
}

ElfSection ElfObject::section(usize index) const
{
    auto header = this->header(index);
    ElfSection section;
    section.index = u32(index);
    section.name = string_at(m_shstrtab_index, header.name);
    section.type = header.type;
    section.flags = header.flags;
    section.offset = header.offset;
    section.size = header.size;
    section.alignment = header.alignment ? header.alignment : 1;
    section.link = header.link;
    section.info = header.info;
    section.entry_size = header.entry_size;
    return section;
}

ErrorOr<usize> ElfObject::find_section(StringView name) const
{
    for (usize i = 1; i < m_section_count; ++i) {
        if (string_at(m_shstrtab_index, header(i).name) == name)
            return i;
    }
    return ENOENT;
}

ElfSymbol ElfObject::symbol(usize index) const
{
    VERIFY(index < m_symbol_count);
    auto raw = read<Symbol>(section_data(m_symtab_index), index * sizeof(Symbol));
    ElfSymbol symbol;
    symbol.index = u32(index);
    symbol.name = string_at(m_strtab_index, raw.name);
    symbol.value = raw.value;
    symbol.size = raw.size;
    symbol.section_index = raw.section_index;
    symbol.binding = symbol_binding(raw.info);
    symbol.type = symbol_type(raw.info);
    symbol.visibility = symbol_visibility(raw.other);
    return symbol;
}

ErrorOr<usize> ElfObject::find_symbol(StringView name) const
{
    for (usize i = 1; i < m_symbol_count; ++i) {
        auto symbol = this->symbol(i);
        if (symbol.is_undefined() || !symbol.is_global_or_weak())
            continue;
        if (symbol.name == name)
            return i;
    }
    return ENOENT;
}

usize ElfObject::relocation_count(usize rela_section) const
{
    auto header = this->header(rela_section);
    VERIFY(header.type == SectionType::Rela);
    return header.size / sizeof(Rela);
}

ElfRelocation ElfObject::relocation(usize rela_section, usize index) const
{
    VERIFY(index < relocation_count(rela_section));
    auto raw = read<Rela>(section_data(rela_section), index * sizeof(Rela));
    return ElfRelocation { raw.offset, rela_type(raw.info), rela_symbol(raw.info), raw.addend };
}

ErrorOr<ElfObject> ElfObject::parse(ReadonlyBytes file, ElfError& error)
{
    error.clear();
    if (file.size() < sizeof(FileHeader))
        return error.fail(ENOEXEC, "file smaller than an ELF header",
            "file is ", file.size(), " bytes, smaller than the 64-byte ELF header");
    auto ehdr = read<FileHeader>(file, 0);

    if (ehdr.ident[0] != Ident::Magic0 || ehdr.ident[1] != Ident::Magic1 || ehdr.ident[2] != Ident::Magic2
        || ehdr.ident[3] != Ident::Magic3)
        return error.fail(ENOEXEC, "not an ELF file (bad magic)");
    if (ehdr.ident[Ident::ClassIndex] != Ident::Class64)
        return error.fail(ENOEXEC, "not a 64-bit ELF object", "ELF class ", ehdr.ident[Ident::ClassIndex], " is not ELFCLASS64");
    if (ehdr.ident[Ident::DataIndex] != Ident::Data2Lsb)
        return error.fail(ENOEXEC, "not a little-endian ELF object",
            "ELF data encoding ", ehdr.ident[Ident::DataIndex], " is not ELFDATA2LSB (little-endian)");
    if (ehdr.ident[Ident::VersionIndex] != Ident::VersionCurrent || ehdr.version != VersionCurrent)
        return error.fail(ENOEXEC, "unsupported ELF version",
            "ELF version ", ehdr.ident[Ident::VersionIndex], "/", ehdr.version, " is not EV_CURRENT");
    if (ehdr.type != TypeRelocatable)
        return error.fail(ENOEXEC, "not a relocatable object (ET_REL)",
            "ELF type ", ehdr.type, " is not ET_REL (a module is a relocatable object)");
    if (ehdr.machine != MachineX86_64)
        return error.fail(ENOEXEC, "not an x86-64 object", "ELF machine ", ehdr.machine, " is not EM_X86_64 (62)");
    if (ehdr.header_size < sizeof(FileHeader))
        return error.fail(ENOEXEC, "ELF header size too small", "e_ehsize ", ehdr.header_size, " is smaller than the 64-byte ELF header");

    // Extended numbering keeps the real counts in section 0; modules never need 65280 sections.
    if (ehdr.section_header_count == 0) {
        if (ehdr.section_header_offset != 0)
            return error.fail(ENOEXEC, "extended section numbering is not supported",
                "e_shnum is 0 with e_shoff ", Hex { ehdr.section_header_offset },
                ": extended section numbering is not supported");
        return error.fail(ENOEXEC, "object has no section headers");
    }
    if (ehdr.section_header_count >= SectionIndex::LoReserve)
        return error.fail(ENOEXEC, "too many sections", "e_shnum ", ehdr.section_header_count, " reaches the reserved section indices");
    if (ehdr.section_header_entry_size != sizeof(SectionHeader))
        return error.fail(ENOEXEC, "bad section header entry size", "e_shentsize ", ehdr.section_header_entry_size, " is not 64");
    u64 table_size = u64(ehdr.section_header_count) * sizeof(SectionHeader);
    if (!file.contains_range(ehdr.section_header_offset, table_size))
        return error.fail(ENOEXEC, "section header table past the end of the file",
            "section header table at e_shoff ", Hex { ehdr.section_header_offset }, " (", ehdr.section_header_count,
            " x 64 bytes) is past the end of the file (", Hex { file.size() }, " bytes)");
    if (ehdr.section_name_table_index == SectionIndex::XIndex)
        return error.fail(ENOEXEC, "e_shstrndx is SHN_XINDEX: extended section numbering is not supported");
    if (ehdr.section_name_table_index == SectionIndex::Undef || ehdr.section_name_table_index >= ehdr.section_header_count)
        return error.fail(ENOEXEC, "bad section name table index",
            "e_shstrndx ", ehdr.section_name_table_index, " is not a valid section index (",
            ehdr.section_header_count, " sections)");

    ElfObject object;
    object.m_file = file;
    object.m_section_header_offset = ehdr.section_header_offset;
    object.m_section_count = ehdr.section_header_count;
    object.m_shstrtab_index = ehdr.section_name_table_index;

    // The section name table first: every later message names sections through it.
    {
        auto shstrtab = object.header(object.m_shstrtab_index);
        usize index = object.m_shstrtab_index;
        if (shstrtab.type != SectionType::Strtab)
            return error.fail(ENOEXEC, "section name table is not a string table",
                "section name table (section ", index, ") has type ", shstrtab.type, ", not SHT_STRTAB");
        if (!file.contains_range(shstrtab.offset, shstrtab.size))
            return error.fail(ENOEXEC, "section name table past the end of the file",
                "section name table (section ", index, ") offset ", Hex { shstrtab.offset }, " + size ",
                Hex { shstrtab.size }, " is past the end of the file (", Hex { file.size() }, " bytes)");
        if (!is_terminated_string_table(file.slice(shstrtab.offset, shstrtab.size)))
            return error.fail(ENOEXEC, "section name table not NUL-terminated",
                "section name table (section ", index, ") is empty or not NUL-terminated");
    }
    ReadonlyBytes section_names = object.section_data(object.m_shstrtab_index);

    usize symtab_count = 0;
    for (usize i = 0; i < object.m_section_count; ++i) {
        auto header = object.header(i);
        if (header.name >= section_names.size())
            return error.fail(ENOEXEC, "section name offset out of range",
                "section ", i, " name offset ", Hex { header.name }, " is past the end of the section name table (",
                Hex { section_names.size() }, " bytes)");
        StringView name = string_in(section_names, header.name);
        if (header.type != SectionType::Nobits && header.type != SectionType::Null && !file.contains_range(header.offset, header.size))
            return error.fail(ENOEXEC, "section data past the end of the file",
                "section ", i, " (", name, ") offset ", Hex { header.offset }, " + size ", Hex { header.size },
                " is past the end of the file (", Hex { file.size() }, " bytes)");
        if (header.alignment > 1 && !is_power_of_two(header.alignment))
            return error.fail(ENOEXEC, "section alignment not a power of two",
                "section ", i, " (", name, ") alignment ", Hex { header.alignment }, " is not a power of two");
        if (header.type == SectionType::Symtab) {
            ++symtab_count;
            object.m_symtab_index = i;
        }
        if (header.type == SectionType::Rel)
            return error.fail(ENOEXEC, "SHT_REL sections are not supported",
                "section ", i, " (", name, ") is SHT_REL; x86-64 modules must use SHT_RELA");
        if (header.type == SectionType::SymtabShndx)
            return error.fail(ENOEXEC, "extended section numbering is not supported",
                "section ", i, " (", name, ") is SHT_SYMTAB_SHNDX: extended section numbering is not supported");
        if ((header.flags & SectionFlag::Alloc) && (header.flags & SectionFlag::Tls))
            return error.fail(ENOEXEC, "thread-local sections are not supported",
                "section ", i, " (", name, ") is thread-local (SHF_TLS); modules cannot have TLS");
    }

    if (symtab_count != 1)
        return error.fail(ENOEXEC, "not exactly one symbol table",
            "object has ", symtab_count, " SHT_SYMTAB sections; exactly one is required");

    // The symbol table and its string table.
    auto symtab = object.header(object.m_symtab_index);
    StringView symtab_name = string_in(section_names, symtab.name);
    if (symtab.entry_size != sizeof(Symbol))
        return error.fail(ENOEXEC, "bad symbol table entry size",
            "symbol table ", symtab_name, " has sh_entsize ", symtab.entry_size, ", not 24");
    if (symtab.size % sizeof(Symbol) != 0)
        return error.fail(ENOEXEC, "symbol table size not a multiple of its entry",
            "symbol table ", symtab_name, " size ", Hex { symtab.size }, " is not a multiple of 24");
    if (symtab.link == 0 || symtab.link >= object.m_section_count || object.header(symtab.link).type != SectionType::Strtab)
        return error.fail(ENOEXEC, "symbol table has no string table",
            "symbol table ", symtab_name, " sh_link ", symtab.link, " is not a SHT_STRTAB section");
    object.m_strtab_index = symtab.link;
    object.m_symbol_count = symtab.size / sizeof(Symbol);
    if (symtab.info > object.m_symbol_count)
        return error.fail(ENOEXEC, "symbol table sh_info out of range",
            "symbol table ", symtab_name, " sh_info ", symtab.info, " is past its ", object.m_symbol_count, " symbols");

    ReadonlyBytes symbol_names = object.section_data(object.m_strtab_index);
    ReadonlyBytes symbols = object.section_data(object.m_symtab_index);
    if (object.m_symbol_count > 0 && !is_terminated_string_table(symbol_names))
        return error.fail(ENOEXEC, "symbol string table not NUL-terminated",
            "symbol string table (section ", object.m_strtab_index, ") is empty or not NUL-terminated");
    for (usize i = 0; i < object.m_symbol_count; ++i) {
        auto raw = read<Symbol>(symbols, i * sizeof(Symbol));
        if (raw.name >= symbol_names.size())
            return error.fail(ENOEXEC, "symbol name offset out of range",
                "symbol ", i, " name offset ", Hex { raw.name }, " is past the end of the string table (",
                Hex { symbol_names.size() }, " bytes)");
        StringView name = string_in(symbol_names, raw.name);
        u16 shndx = raw.section_index;
        if (shndx == SectionIndex::Common)
            return error.fail(ENOEXEC, "COMMON symbols are not supported",
                "symbol ", i, " '", name, "' is a COMMON symbol; build modules with -fno-common");
        if (shndx == SectionIndex::XIndex)
            return error.fail(ENOEXEC, "extended section numbering is not supported",
                "symbol ", i, " '", name, "' uses SHN_XINDEX: extended section numbering is not supported");
        if (shndx >= SectionIndex::LoReserve && shndx != SectionIndex::Abs)
            return error.fail(ENOEXEC, "symbol has a reserved section index",
                "symbol ", i, " '", name, "' has reserved section index ", Hex { shndx });
        if (shndx < SectionIndex::LoReserve && shndx >= object.m_section_count)
            return error.fail(ENOEXEC, "symbol section index out of range",
                "symbol ", i, " '", name, "' section index ", shndx, " is out of range (",
                object.m_section_count, " sections)");
        if (symbol_type(raw.info) == SymbolType::Tls)
            return error.fail(ENOEXEC, "thread-local symbols are not supported",
                "symbol ", i, " '", name, "' is thread-local (STT_TLS); modules cannot have TLS");
        if (symbol_type(raw.info) == SymbolType::Common)
            return error.fail(ENOEXEC, "COMMON symbols are not supported",
                "symbol ", i, " '", name, "' is STT_COMMON; build modules with -fno-common");
    }

    // Relocation tables.
    for (usize i = 0; i < object.m_section_count; ++i) {
        auto header = object.header(i);
        if (header.type != SectionType::Rela)
            continue;
        StringView name = string_in(section_names, header.name);
        if (header.entry_size != sizeof(Rela))
            return error.fail(ENOEXEC, "bad relocation entry size",
                "section ", i, " (", name, ") has sh_entsize ", header.entry_size, ", not 24");
        if (header.size % sizeof(Rela) != 0)
            return error.fail(ENOEXEC, "relocation table size not a multiple of its entry",
                "section ", i, " (", name, ") size ", Hex { header.size }, " is not a multiple of 24");
        if (header.link != object.m_symtab_index)
            return error.fail(ENOEXEC, "relocation table not linked to the symbol table",
                "section ", i, " (", name, ") sh_link ", header.link, " is not the symbol table (section ",
                object.m_symtab_index, ")");
        if (header.info == 0 || header.info >= object.m_section_count)
            return error.fail(ENOEXEC, "relocation table target section invalid",
                "section ", i, " (", name, ") sh_info ", header.info, " is not a valid target section (",
                object.m_section_count, " sections)");
        ReadonlyBytes entries = object.section_data(i);
        usize count = header.size / sizeof(Rela);
        for (usize n = 0; n < count; ++n) {
            auto rela = read<Rela>(entries, n * sizeof(Rela));
            u32 symbol = rela_symbol(rela.info);
            if (symbol >= object.m_symbol_count)
                return error.fail(ENOEXEC, "relocation symbol index out of range",
                    "symbol index ", symbol, " out of range in ", name, " (", object.m_symbol_count, " symbols)");
        }
    }
    return object;
}
