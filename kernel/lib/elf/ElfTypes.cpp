#include <lib/elf/ElfTypes.h>

namespace Elf {

const char* relocation_type_name(u32 type)
{
    switch (type) {
    case Reloc::None: return "R_X86_64_NONE";
    case Reloc::Abs64: return "R_X86_64_64";
    case Reloc::Pc32: return "R_X86_64_PC32";
    case Reloc::Got32: return "R_X86_64_GOT32";
    case Reloc::Plt32: return "R_X86_64_PLT32";
    case Reloc::Copy: return "R_X86_64_COPY";
    case Reloc::GlobDat: return "R_X86_64_GLOB_DAT";
    case Reloc::JumpSlot: return "R_X86_64_JUMP_SLOT";
    case Reloc::Relative: return "R_X86_64_RELATIVE";
    case Reloc::GotPcRel: return "R_X86_64_GOTPCREL";
    case Reloc::Abs32: return "R_X86_64_32";
    case Reloc::Abs32S: return "R_X86_64_32S";
    case Reloc::Abs16: return "R_X86_64_16";
    case Reloc::Pc16: return "R_X86_64_PC16";
    case Reloc::Abs8: return "R_X86_64_8";
    case Reloc::Pc8: return "R_X86_64_PC8";
    case Reloc::Pc64: return "R_X86_64_PC64";
    case Reloc::GotOff64: return "R_X86_64_GOTOFF64";
    case Reloc::GotPc32: return "R_X86_64_GOTPC32";
    case Reloc::GotPcRelX: return "R_X86_64_GOTPCRELX";
    case Reloc::RexGotPcRelX: return "R_X86_64_REX_GOTPCRELX";
    default: return nullptr;
    }
}

}
