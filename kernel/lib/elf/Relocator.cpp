#include <lib/elf/Relocator.h>

using namespace Elf;

namespace {

bool fits_signed32(u64 value)
{
    i64 as_signed = i64(value);
    return as_signed >= -(i64(1) << 31) && as_signed < (i64(1) << 31);
}

u64 field_width(u32 type)
{
    switch (type) {
    case Reloc::Abs64:
    case Reloc::Pc64:
        return 8;
    case Reloc::Pc32:
    case Reloc::Plt32:
    case Reloc::Abs32:
    case Reloc::Abs32S:
    case Reloc::GotPcRel:
    case Reloc::GotPcRelX:
    case Reloc::RexGotPcRelX:
        return 4;
    default:
        return 0;
    }
}

void write64(u8* where, u64 value) { __builtin_memcpy(where, &value, sizeof(value)); }
void write32(u8* where, u32 value) { __builtin_memcpy(where, &value, sizeof(value)); }

}

ErrorOr<void> Relocator::relocate(const ElfObject& object, const ModuleLayout& layout, const ModuleMemory& memory,
    SymbolResolver& resolver, ElfError& error)
{
    error.clear();
    Relocator relocator(object, layout, memory, resolver, error);
    TRY(relocator.check_memory());
    relocator.copy_sections();
    for (usize i = 1; i < object.section_count(); ++i) {
        auto section = object.section(i);
        if (section.type != SectionType::Rela || !layout.is_loaded(section.info))
            continue;
        TRY(relocator.apply(i));
    }
    return {};
}

ErrorOr<void> Relocator::check_memory()
{
    if (m_layout.section_count() != m_object.section_count() || m_layout.symbol_count() != m_object.symbol_count())
        return m_error.fail(EINVAL, "layout planned for a different object",
            "layout was planned for a different object (", m_layout.section_count(), " sections and ",
            m_layout.symbol_count(), " symbols; object has ", m_object.section_count(), " and ", m_object.symbol_count(), ")");
    for (usize r = 0; r < MODULE_REGION_COUNT; ++r) {
        auto region = ModuleRegion(r);
        auto& memory = m_memory[region];
        u64 needed = m_layout.region_size(region);
        if (needed == 0)
            continue;
        if (!memory.writable)
            return m_error.fail(EINVAL, "module region has no writable mapping",
                module_region_name(region), " region has no writable mapping");
        if (memory.size < needed)
            return m_error.fail(EINVAL, "module region smaller than the layout",
                module_region_name(region), " region is ", Hex { memory.size }, " bytes, layout needs ", Hex { needed });
        if (!is_aligned(memory.address, m_layout.region_alignment(region)))
            return m_error.fail(EINVAL, "module region misaligned",
                module_region_name(region), " region address ", Hex { memory.address }, " is not aligned to ",
                Hex { m_layout.region_alignment(region) });
        u64 end;
        if (add_overflows(memory.address, needed, &end))
            return m_error.fail(EINVAL, "module region wraps the address space",
                module_region_name(region), " region at ", Hex { memory.address }, " wraps the address space");
    }
    return {};
}

void Relocator::copy_sections()
{
    for (usize r = 0; r < MODULE_REGION_COUNT; ++r) {
        auto region = ModuleRegion(r);
        if (u64 size = m_layout.region_size(region))
            __builtin_memset(m_memory[region].writable, 0, size);
    }
    for (usize i = 1; i < m_object.section_count(); ++i) {
        auto placement = m_layout.placement(i);
        if (!placement.loaded)
            continue;
        ReadonlyBytes data = m_object.section_data(i);
        if (!data.is_empty())
            __builtin_memcpy(m_memory[placement.region].writable + placement.offset, data.data(), data.size());
    }
}

StringView Relocator::symbol_name(u32 symbol_index) const
{
    auto symbol = m_object.symbol(symbol_index);
    if (symbol.type == SymbolType::Section && symbol.section_index != SectionIndex::Undef && symbol.section_index < m_object.section_count())
        return m_object.section(symbol.section_index).name;
    return symbol.name;
}

ErrorOr<u64> Relocator::symbol_value(u32 symbol_index)
{
    if (symbol_index == 0)
        return u64(0);
    auto symbol = m_object.symbol(symbol_index);
    if (!symbol.is_undefined())
        return m_layout.symbol_address(m_object, symbol_index, m_memory, m_error);
    if (symbol.name.is_empty())
        return m_error.fail(ENOEXEC, "undefined symbol without a name", "undefined symbol ", symbol_index, " has no name");
    auto resolved = m_resolver.resolve(symbol.name);
    if (!resolved.is_error())
        return resolved.value();
    if (resolved.error().code() == ENOENT) {
        if (symbol.binding == SymbolBinding::Weak)
            return u64(0);
        return m_error.fail(ENOENT, "unresolved symbol", "unresolved symbol '", symbol.name, "'");
    }
    // The resolver's reason (a CRC mismatch, a missing version) is the reason the relocation failed.
    const char* why = resolved.error().has_message() ? resolved.error().message() : "resolving an imported symbol failed";
    return m_error.fail(Errno::ErrnoCode(resolved.error().code()), why,
        "resolving symbol '", symbol.name, "' failed: ", resolved.error().name());
}

ErrorOr<void> Relocator::apply(usize rela_section)
{
    auto target = m_object.section(m_object.section(rela_section).info);
    auto placement = m_layout.placement(target.index);
    if (target.is_nobits())
        return m_error.fail(ENOEXEC, "relocation of a SHT_NOBITS section",
            "section ", m_object.section(rela_section).name, " relocates SHT_NOBITS section ", target.name);
    u64 target_address = m_layout.section_address(target.index, m_memory);
    u8* target_bytes = m_memory[placement.region].writable + placement.offset;

    usize count = m_object.relocation_count(rela_section);
    for (usize n = 0; n < count; ++n) {
        auto relocation = m_object.relocation(rela_section, n);
        if (relocation.type == Reloc::None)
            continue;
        u64 width = field_width(relocation.type);
        if (width == 0)
            return m_error.fail(ENOEXEC, "unknown relocation type",
                "unknown relocation type ", relocation.type, " at ", target.name, "+", Hex { relocation.offset });
        if (relocation.offset > target.size || width > target.size - relocation.offset)
            return m_error.fail(ENOEXEC, "relocation past the end of its section",
                relocation_type_name(relocation.type), " at ", target.name, "+", Hex { relocation.offset },
                " is past the end of the section (", Hex { target.size }, " bytes)");

        u64 S = TRY(symbol_value(relocation.symbol_index));
        u64 A = u64(relocation.addend);
        u64 P = target_address + relocation.offset;
        u8* where = target_bytes + relocation.offset;
        u64 value = 0;
        bool fits = true;

        switch (relocation.type) {
        case Reloc::Abs64:
            write64(where, S + A);
            continue;
        case Reloc::Pc64:
            write64(where, S + A - P);
            continue;
        case Reloc::Pc32:
        case Reloc::Plt32:
            value = S + A - P;
            fits = fits_signed32(value);
            break;
        case Reloc::Abs32:
            value = S + A;
            fits = value <= 0xffffffffull;
            break;
        case Reloc::Abs32S:
            value = S + A;
            fits = fits_signed32(value);
            break;
        case Reloc::GotPcRel:
        case Reloc::GotPcRelX:
        case Reloc::RexGotPcRelX: {
            u32 slot = m_layout.got_slot(relocation.symbol_index);
            if (slot == ModuleLayout::NO_GOT_SLOT || slot >= m_layout.got_slot_count())
                return m_error.fail(EINVAL, "no GOT slot for a GOT relocation",
                    "layout has no GOT slot for '", symbol_name(relocation.symbol_index), "'");
            u64 slot_offset = m_layout.got_offset() + u64(slot) * ModuleLayout::GOT_ENTRY_SIZE;
            auto& rodata = m_memory[ModuleRegion::Rodata];
            write64(rodata.writable + slot_offset, S);
            value = rodata.address + slot_offset + A - P;
            fits = fits_signed32(value);
            break;
        }
        default:
            VERIFY_NOT_REACHED();
        }
        if (!fits)
            return m_error.fail(ERANGE, "relocation overflows its field",
                relocation_type_name(relocation.type), " at ", target.name, "+", Hex { relocation.offset }, " against '",
                symbol_name(relocation.symbol_index), "' overflows (value ", Hex { value }, ")");
        write32(where, u32(value));
    }
    return {};
}
