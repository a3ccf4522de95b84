#pragma once
// The list of loaded modules: lookup by name and by address (symbolization), export resolution,
// and lsmod/kallsyms-style listings.
#include <ktl/IntrusiveList.h>
#include <ktl/StringView.h>
#include <module/Module.h>

namespace modules {

using ModuleList = IntrusiveList<Module, &Module::list_node>;
ModuleList& list();
Module* find(StringView name);
Module* find_by_address(u64 address);
// For log prefixes: the module whose code contains address, or nullptr.
const char* name_for_address(u64 address);
// "func+0x12 [mod]" for an address in module code; false if no module contains it.
bool describe(u64 address, char* buffer, usize capacity);
// A symbol exported by a live module, and the module that exports it.
const homeos_export* find_export(StringView name, Module** owner);
usize count();
// The module whose init or exit is running: names log lines whose caller address is not in the
// module (a tail call from module code into homeos_log returns straight to the loader).
void set_current(Module*);
Module* current();

// Prints one line per module: name, size, use count, users.
void print_lsmod();
// Prints "address T name [module]" for kernel exports and every module symbol.
void print_kallsyms();

} // namespace modules
