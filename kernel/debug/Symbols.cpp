#include <debug/Symbols.h>
#include <lib/text/Format.h>
#include <lib/debug/SymbolTable.h>
#include <module/ModuleRegistry.h>

extern "C" const u8 __ksyms_start[];
extern "C" const u8 __ksyms_end[];

namespace symbols {

const SymbolTable& kernel_table()
{
    // Built on first use: the blob is in .rodata, so there is nothing to initialize at boot.
    static SymbolTable table(ReadonlyBytes(__ksyms_start, (usize)(__ksyms_end - __ksyms_start)));
    return table;
}

void describe(u64 address, char* buffer, usize capacity)
{
    SymbolTable::Match match;
    if (kernel_table().lookup(address, match))
        format(buffer, capacity, "%.*s+0x%llx", (int)match.name.length(), match.name.characters(), (unsigned long long)match.offset);
    else if (!modules::describe(address, buffer, capacity))
        format(buffer, capacity, "?");
}

} // namespace symbols
