#pragma once
// ModuleLayout: where each loaded section of a module goes, before any memory exists.
//
// Interface:
//   auto layout = TRY(ModuleLayout::plan(object, allocator, error));
//   layout.region_size(ModuleRegion::Text), layout.region_alignment(...)
//       Raw sizes (the caller rounds each region up to pages and maps it) and the largest
//       section alignment in each region (the caller's base address must honour it).
//   layout.placement(section_index)  - loaded or not, and (region, offset) when loaded.
//   layout.got_offset(), got_slot_count(), got_slot(symbol_index)  - the GOT, in Rodata.
//   layout.section_address(...), symbol_address(...)  - final addresses once the regions are placed.
//
// Every SHF_ALLOC section is loaded into one of three regions, chosen by its flags so that each
// region gets one set of page permissions once relocation is done:
//
//   Text    SHF_EXECINSTR                   .text*                          R-X
//   Rodata  neither EXECINSTR nor WRITE     .rodata*, .init_array*, .eh_frame,
//                                           .modinfo, then the GOT          R--
//   Data    SHF_WRITE                       .data*, .bss* (SHT_NOBITS)      RW-
//
// Within a region, sections keep their order in the file, each at an offset aligned to its
// sh_addralign. The GOT gets one 8-byte slot per distinct symbol named by a GOTPCREL-family
// relocation; the relocator fills it before the region turns read-only. .init_array and
// .fini_array are in Rodata for the same reason: written while relocating, read-only after.
// Non-ALLOC sections (.symtab, .strtab, .rela.*, .comment, .note.*, .debug_*) are not loaded.
//
// The layout allocates two small arrays (per section, per symbol) from the Allocator it was
// planned with, and returns them when destroyed.
#include <lib/elf/ElfError.h>
#include <lib/elf/ElfObject.h>
#include <ktl/Allocator.h>

enum class ModuleRegion : u8 {
    Text = 0,
    Rodata = 1,
    Data = 2,
};
constexpr usize MODULE_REGION_COUNT = 3;
const char* module_region_name(ModuleRegion region);

// One region as the loader mapped it: `writable` is where the relocator may write now, `address`
// the virtual address the code will run at. They may be different mappings of the same pages.
struct RegionMemory {
    u8* writable { nullptr };
    u64 address { 0 };
    u64 size { 0 };
};

struct ModuleMemory {
    RegionMemory regions[MODULE_REGION_COUNT];

    RegionMemory& operator[](ModuleRegion region) { return regions[usize(region)]; }
    const RegionMemory& operator[](ModuleRegion region) const { return regions[usize(region)]; }
};

struct SectionPlacement {
    bool loaded { false };
    ModuleRegion region { ModuleRegion::Text };
    u64 offset { 0 };
};

class ModuleLayout {
public:
    // Refused at planning time: nothing a module needs comes close, and the bounds keep every
    // later offset computation far from overflow.
    static constexpr u64 MAX_REGION_SIZE = 1 * GiB;
    static constexpr u64 MAX_ALIGNMENT = 2 * MiB;
    static constexpr u32 NO_GOT_SLOT = 0xffffffff;
    static constexpr u64 GOT_ENTRY_SIZE = 8;

    static ErrorOr<ModuleLayout> plan(const ElfObject& object, Allocator& allocator, ElfError& error);

    ModuleLayout(ModuleLayout&& other);
    ModuleLayout& operator=(ModuleLayout&& other);
    ModuleLayout(const ModuleLayout&) = delete;
    ModuleLayout& operator=(const ModuleLayout&) = delete;
    ~ModuleLayout();

    u64 region_size(ModuleRegion region) const { return m_region_size[usize(region)]; }
    u64 region_alignment(ModuleRegion region) const { return m_region_alignment[usize(region)]; }

    usize section_count() const { return m_section_count; }
    usize symbol_count() const { return m_symbol_count; }
    SectionPlacement placement(usize section_index) const;
    bool is_loaded(usize section_index) const { return placement(section_index).loaded; }

    // The GOT sits at got_offset() in Rodata, got_slot_count() slots of 8 bytes.
    u64 got_offset() const { return m_got_offset; }
    u32 got_slot_count() const { return m_got_slot_count; }
    // The GOT slot of a symbol, or NO_GOT_SLOT when no GOTPCREL-family relocation names it.
    u32 got_slot(usize symbol_index) const;
    static bool uses_got(u32 relocation_type);

    // Final address of a loaded section.
    u64 section_address(usize section_index, const ModuleMemory& memory) const;
    // Final address of a symbol the module defines (in a loaded section, or SHN_ABS). An
    // undefined symbol is ENOENT; one in a section that is not loaded is ENOEXEC.
    ErrorOr<u64> symbol_address(const ElfObject& object, usize symbol_index, const ModuleMemory& memory, ElfError& error) const;
    // The same by name, for the loader's init/exit entry points and exports: defined global or
    // weak symbols only (ENOENT otherwise).
    ErrorOr<u64> symbol_address(const ElfObject& object, StringView name, const ModuleMemory& memory, ElfError& error) const;

private:
    explicit ModuleLayout(Allocator& allocator) : m_allocator(&allocator) { }
    void release();

    Allocator* m_allocator { nullptr };
    SectionPlacement* m_placements { nullptr };
    usize m_section_count { 0 };
    u32* m_got_slots { nullptr };
    usize m_symbol_count { 0 };
    u64 m_region_size[MODULE_REGION_COUNT] { 0, 0, 0 };
    u64 m_region_alignment[MODULE_REGION_COUNT] { 1, 1, 1 };
    u64 m_got_offset { 0 };
    u32 m_got_slot_count { 0 };
};
