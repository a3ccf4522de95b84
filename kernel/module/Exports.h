#pragma once
// The kernel's export table: what modules may link against, each with the CRC of its declaration
// in abi/ (generated into $(BUILD)/abi/crcs.h by abi/abi-crc.py). Nothing else is visible.
//
//   KEXPORT(kmalloc);   // in the file that implements it; fails to compile if abi/ lacks it
#include <ktl/Span.h>
#include <ktl/StringView.h>

struct KernelExport {
    const char* name;
    const void* address;
    u32 crc;
    u32 reserved;
};
static_assert(sizeof(KernelExport) == 24);

#define KEXPORT(symbol)                                                                                  \
    [[gnu::used, gnu::section(".kexports")]] static const KernelExport __kexport_##symbol                \
        = { #symbol, (const void*)&symbol, HOMEOS_CRC_##symbol, 0 }

namespace kexports {

Span<const KernelExport> all();
const KernelExport* find(StringView name);

} // namespace kexports
