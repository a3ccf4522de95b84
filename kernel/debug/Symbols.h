#pragma once
// Symbolization against the kernel's embedded symbol table: "func+0x12/0x40".
#include <ktl/Types.h>

class SymbolTable;

namespace symbols {

const SymbolTable& kernel_table();
// Writes "name+0xoff/0xsize" (or "?") for address into buffer.
void describe(u64 address, char* buffer, usize capacity);

} // namespace symbols
