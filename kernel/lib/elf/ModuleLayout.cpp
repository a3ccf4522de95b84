#include <lib/elf/ModuleLayout.h>
#include <utility>

using namespace Elf;

const char* module_region_name(ModuleRegion region)
{
    switch (region) {
    case ModuleRegion::Text: return "text";
    case ModuleRegion::Rodata: return "rodata";
    case ModuleRegion::Data: return "data";
    }
    return "?";
}

namespace {

// Constructor and destructor tables are SHF_WRITE by convention, but only the relocator writes
// them; afterwards they are read-only, so they share Rodata's permissions.
bool is_pointer_table(const ElfSection& section)
{
    return section.type == SectionType::InitArray || section.type == SectionType::FiniArray
        || section.type == SectionType::PreinitArray || section.name.starts_with(".init_array")
        || section.name.starts_with(".fini_array") || section.name.starts_with(".preinit_array");
}

ModuleRegion region_for(const ElfSection& section)
{
    if (section.flags & SectionFlag::ExecInstr)
        return ModuleRegion::Text;
    if (is_pointer_table(section))
        return ModuleRegion::Rodata;
    if (section.flags & SectionFlag::Write)
        return ModuleRegion::Data;
    return ModuleRegion::Rodata;
}

}

bool ModuleLayout::uses_got(u32 relocation_type)
{
    return relocation_type == Reloc::GotPcRel || relocation_type == Reloc::GotPcRelX || relocation_type == Reloc::RexGotPcRelX;
}

ModuleLayout::ModuleLayout(ModuleLayout&& other)
{
    *this = std::move(other);
}

ModuleLayout& ModuleLayout::operator=(ModuleLayout&& other)
{
    if (this == &other)
        return *this;
    release();
    m_allocator = other.m_allocator;
    m_placements = std::exchange(other.m_placements, nullptr);
    m_section_count = std::exchange(other.m_section_count, 0);
    m_got_slots = std::exchange(other.m_got_slots, nullptr);
    m_symbol_count = std::exchange(other.m_symbol_count, 0);
    for (usize i = 0; i < MODULE_REGION_COUNT; ++i) {
        m_region_size[i] = other.m_region_size[i];
        m_region_alignment[i] = other.m_region_alignment[i];
    }
    m_got_offset = other.m_got_offset;
    m_got_slot_count = other.m_got_slot_count;
    return *this;
}

ModuleLayout::~ModuleLayout()
{
    release();
}

void ModuleLayout::release()
{
    if (m_placements)
        m_allocator->deallocate(m_placements, m_section_count * sizeof(SectionPlacement));
    if (m_got_slots)
        m_allocator->deallocate(m_got_slots, m_symbol_count * sizeof(u32));
    m_placements = nullptr;
    m_got_slots = nullptr;
    m_section_count = 0;
    m_symbol_count = 0;
}

SectionPlacement ModuleLayout::placement(usize section_index) const
{
    VERIFY(section_index < m_section_count);
    return m_placements[section_index];
}

u32 ModuleLayout::got_slot(usize symbol_index) const
{
    VERIFY(symbol_index < m_symbol_count);
    return m_got_slots[symbol_index];
}

u64 ModuleLayout::section_address(usize section_index, const ModuleMemory& memory) const
{
    auto placement = this->placement(section_index);
    VERIFY(placement.loaded);
    return memory[placement.region].address + placement.offset;
}

ErrorOr<u64> ModuleLayout::symbol_address(const ElfObject& object, usize symbol_index, const ModuleMemory& memory, ElfError& error) const
{
    auto symbol = object.symbol(symbol_index);
    if (symbol.is_undefined())
        return error.fail(ENOENT, "symbol not defined by the module", "symbol '", symbol.name, "' is not defined by the module");
    if (symbol.is_absolute())
        return symbol.value;
    if (symbol.section_index >= m_section_count || !m_placements[symbol.section_index].loaded) {
        StringView section_name = symbol.section_index < object.section_count() ? object.section(symbol.section_index).name : StringView();
        return error.fail(ENOEXEC, "symbol defined in a section that is not loaded",
            "symbol '", symbol.name, "' is defined in section ", symbol.section_index, " (", section_name,
            ") which is not loaded");
    }
    // NOTE: wrapping arithmetic on purpose: a symbol value is only a number until something is
    // written through it, and every write is bounds-checked against its section.
    return section_address(symbol.section_index, memory) + symbol.value;
}

ErrorOr<u64> ModuleLayout::symbol_address(const ElfObject& object, StringView name, const ModuleMemory& memory, ElfError& error) const
{
    auto index = object.find_symbol(name);
    if (index.is_error())
        return error.fail(ENOENT, "symbol not defined by the module", "module defines no global symbol '", name, "'");
    return symbol_address(object, index.value(), memory, error);
}

ErrorOr<ModuleLayout> ModuleLayout::plan(const ElfObject& object, Allocator& allocator, ElfError& error)
{
    error.clear();
    ModuleLayout layout(allocator);

    usize section_count = object.section_count();
    auto placements = allocator.allocate(section_count * sizeof(SectionPlacement), alignof(SectionPlacement));
    if (placements.is_error())
        return error.fail(ENOMEM, "out of memory for the section placement", "no memory for the placement of ", section_count, " sections");
    layout.m_placements = static_cast<SectionPlacement*>(placements.value());
    layout.m_section_count = section_count;
    for (usize i = 0; i < section_count; ++i)
        new (&layout.m_placements[i]) SectionPlacement();

    usize symbol_count = object.symbol_count();
    if (symbol_count > 0) {
        auto slots = allocator.allocate(symbol_count * sizeof(u32), alignof(u32));
        if (slots.is_error())
            return error.fail(ENOMEM, "out of memory for the GOT", "no memory for the GOT slots of ", symbol_count, " symbols");
        layout.m_got_slots = static_cast<u32*>(slots.value());
        layout.m_symbol_count = symbol_count;
        for (usize i = 0; i < symbol_count; ++i)
            layout.m_got_slots[i] = NO_GOT_SLOT;
    }

    for (usize i = 1; i < section_count; ++i) {
        auto section = object.section(i);
        if (!section.is_alloc() || section.type == SectionType::Null)
            continue;
        if (section.alignment > MAX_ALIGNMENT)
            return error.fail(ENOEXEC, "section alignment too large",
                "section ", i, " (", section.name, ") alignment ", Hex { section.alignment }, " exceeds the maximum ",
                Hex { MAX_ALIGNMENT });
        ModuleRegion region = region_for(section);
        usize r = usize(region);
        // Both operands are bounded (size by MAX_REGION_SIZE, alignment by MAX_ALIGNMENT), so
        // align_up cannot overflow; the section size is compared, never added blindly.
        u64 offset = align_up(layout.m_region_size[r], section.alignment);
        if (offset > MAX_REGION_SIZE || section.size > MAX_REGION_SIZE - offset)
            return error.fail(ENOEXEC, "module region too large",
                "section ", i, " (", section.name, ") size ", Hex { section.size }, " makes the ",
                module_region_name(region), " region larger than ", Hex { MAX_REGION_SIZE }, " bytes");
        layout.m_placements[i] = SectionPlacement { true, region, offset };
        layout.m_region_size[r] = offset + section.size;
        if (section.alignment > layout.m_region_alignment[r])
            layout.m_region_alignment[r] = section.alignment;
    }

    // GOT slots: one per distinct symbol named by a GOTPCREL-family relocation that will be
    // applied, i.e. whose target section is loaded.
    u32 got_slots = 0;
    for (usize i = 1; i < section_count; ++i) {
        auto section = object.section(i);
        if (section.type != SectionType::Rela || !layout.m_placements[section.info].loaded)
            continue;
        usize count = object.relocation_count(i);
        for (usize n = 0; n < count; ++n) {
            auto relocation = object.relocation(i, n);
            if (!uses_got(relocation.type) || layout.m_got_slots[relocation.symbol_index] != NO_GOT_SLOT)
                continue;
            layout.m_got_slots[relocation.symbol_index] = got_slots++;
        }
    }
    if (got_slots > 0) {
        usize r = usize(ModuleRegion::Rodata);
        u64 offset = align_up(layout.m_region_size[r], GOT_ENTRY_SIZE);
        u64 size = u64(got_slots) * GOT_ENTRY_SIZE;
        if (offset > MAX_REGION_SIZE || size > MAX_REGION_SIZE - offset)
            return error.fail(ENOEXEC, "module region too large",
                "GOT of ", got_slots, " slots makes the rodata region larger than ", Hex { MAX_REGION_SIZE }, " bytes");
        layout.m_got_offset = offset;
        layout.m_got_slot_count = got_slots;
        layout.m_region_size[r] = offset + size;
        if (layout.m_region_alignment[r] < GOT_ENTRY_SIZE)
            layout.m_region_alignment[r] = GOT_ENTRY_SIZE;
    }
    return layout;
}
