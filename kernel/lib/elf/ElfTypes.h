#pragma once
// The x86-64 ELF structures and constants a kernel module loader needs, defined here rather than
// taken from <elf.h>: the library must build freestanding. The names live in namespace Elf and
// avoid the <elf.h> spellings (SHT_SYMTAB, R_X86_64_PC32, ...) because those are macros there,
// and a test or tool that includes both must still compile.
//
// NOTE: these structures describe bytes in an untrusted file, which need not be aligned. Read
// them with Elf::read<T>(bytes, offset) (a memcpy) after a bounds check, never by casting.
#include <ktl/Span.h>
#include <ktl/Types.h>

namespace Elf {

struct FileHeader {
    u8 ident[16];
    u16 type;
    u16 machine;
    u32 version;
    u64 entry;
    u64 program_header_offset;
    u64 section_header_offset;
    u32 flags;
    u16 header_size;
    u16 program_header_entry_size;
    u16 program_header_count;
    u16 section_header_entry_size;
    u16 section_header_count;
    u16 section_name_table_index;
};
static_assert(sizeof(FileHeader) == 64);

struct SectionHeader {
    u32 name;
    u32 type;
    u64 flags;
    u64 address;
    u64 offset;
    u64 size;
    u32 link;
    u32 info;
    u64 alignment;
    u64 entry_size;
};
static_assert(sizeof(SectionHeader) == 64);

struct Symbol {
    u32 name;
    u8 info;
    u8 other;
    u16 section_index;
    u64 value;
    u64 size;
};
static_assert(sizeof(Symbol) == 24);

struct Rela {
    u64 offset;
    u64 info;
    i64 addend;
};
static_assert(sizeof(Rela) == 24);

// e_ident.
namespace Ident {
constexpr u8 Magic0 = 0x7f, Magic1 = 'E', Magic2 = 'L', Magic3 = 'F';
constexpr usize ClassIndex = 4, DataIndex = 5, VersionIndex = 6;
constexpr u8 Class64 = 2;
constexpr u8 Data2Lsb = 1;
constexpr u8 VersionCurrent = 1;
}

constexpr u16 TypeRelocatable = 1; // ET_REL
constexpr u16 MachineX86_64 = 62;  // EM_X86_64
constexpr u32 VersionCurrent = 1;

namespace SectionType {
constexpr u32 Null = 0, Progbits = 1, Symtab = 2, Strtab = 3, Rela = 4, Hash = 5, Dynamic = 6, Note = 7,
              Nobits = 8, Rel = 9, Dynsym = 11, InitArray = 14, FiniArray = 15, PreinitArray = 16, Group = 17,
              SymtabShndx = 18;
}

namespace SectionFlag {
constexpr u64 Write = 0x1, Alloc = 0x2, ExecInstr = 0x4, Merge = 0x10, Strings = 0x20, InfoLink = 0x40,
              Group = 0x200, Tls = 0x400;
}

// Special values of a symbol's section index (st_shndx) and of e_shstrndx.
namespace SectionIndex {
constexpr u16 Undef = 0, LoReserve = 0xff00, Abs = 0xfff1, Common = 0xfff2, XIndex = 0xffff;
}

namespace SymbolBinding {
constexpr u8 Local = 0, Global = 1, Weak = 2;
}

namespace SymbolType {
constexpr u8 NoType = 0, Object = 1, Func = 2, Section = 3, File = 4, Common = 5, Tls = 6;
}

namespace SymbolVisibility {
constexpr u8 Default = 0, Internal = 1, Hidden = 2, Protected = 3;
}

// x86-64 relocation types this loader knows by name. Only some are supported; see Relocator.
namespace Reloc {
constexpr u32 None = 0, Abs64 = 1, Pc32 = 2, Got32 = 3, Plt32 = 4, Copy = 5, GlobDat = 6, JumpSlot = 7,
              Relative = 8, GotPcRel = 9, Abs32 = 10, Abs32S = 11, Abs16 = 12, Pc16 = 13, Abs8 = 14, Pc8 = 15,
              Pc64 = 24, GotOff64 = 25, GotPc32 = 26, GotPcRelX = 41, RexGotPcRelX = 42;
}

constexpr u8 symbol_binding(u8 info) { return info >> 4; }
constexpr u8 symbol_type(u8 info) { return info & 0xf; }
constexpr u8 symbol_visibility(u8 other) { return other & 0x3; }
constexpr u32 rela_symbol(u64 info) { return u32(info >> 32); }
constexpr u32 rela_type(u64 info) { return u32(info & 0xffffffff); }
constexpr u64 rela_info(u32 symbol, u32 type) { return (u64(symbol) << 32) | type; }

// "R_X86_64_PC32" for messages, or nullptr for a type without a name here.
const char* relocation_type_name(u32 type);

// Reads a T at offset. The caller has checked bytes.contains_range(offset, sizeof(T)).
template<typename T>
inline T read(ReadonlyBytes bytes, u64 offset)
{
    VERIFY(bytes.contains_range(offset, sizeof(T)));
    T value;
    __builtin_memcpy(&value, bytes.data() + offset, sizeof(T));
    return value;
}

}
