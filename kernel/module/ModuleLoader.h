#pragma once
// Loading and unloading modules, modelled on Linux's load_module(): a straight pipeline of named
// stages over one LoadInfo, with a single unwind ladder, so a refused or failed load leaves
// nothing behind (ModuleLoader.cpp draws the ladder).
//
//   decompress (.ko.zst) -> parse_elf -> check_modinfo (ABI version, vermagic, name) ->
//   check_modstruct_version (__versions has homeos_module_layout) ->
//   plan_layout -> allocate_module -> map_memory -> relocate (import CRCs checked) ->
//   check_exports (no duplicates) -> check_entry_points (into the module's own text) ->
//   check_tables (parameters, selftest suites) -> collect_symbols -> protect (W^X) -> apply_params -> link_dependencies -> run_init
//   (constructors, module_init) -> live
//
// Every refusal logs the module, the symbol if any, and the detail, and returns a distinct errno
// whose Error carries the static reason (error.message()), for the prompt and the syscalls:
//   ENOEXEC  not a valid module: bad ELF, unknown relocation, no .modinfo or no name; an entry
//            point (.init_array, .fini_array, module_init/exit) outside the module's text; an
//            export or parameter that points outside the module; a duplicate export
//   ERANGE   a relocation overflows its field
//   ENOENT   an imported symbol is exported by nobody
//   EBADMSG  an import's CRC differs from its exporter's (built against another declaration)
//   ENOPKG   the import has no CRC in the module's __versions (kernel exports, versioned module
//            exports), or __versions has no entry for homeos_module_layout
//   EPROTONOSUPPORT  the module's ABI major differs from the kernel's
//   EPROTO   the module needs a newer ABI minor than the kernel has
//   EKEYREJECTED  vermagic mismatch
//   EEXIST   a module with that name is loaded
//   ENAMETOOLONG  the module's name does not fit
//   E2BIG    the module uses more modules than it can record
//   EINVAL   bad parameters;  ENOMEM  out of memory;  EBADMSG/ENOTSUP/EFBIG  corrupt, unsupported
//            or oversized .ko.zst
//   module_init's own negative errno when init fails (its C++ destructors run before the unwind)
#include <ktl/ErrorOr.h>
#include <ktl/Span.h>
#include <module/Module.h>

class ModuleLoader {
public:
    // Loads a module image (.ko or .ko.zst); params is "key=value key2=value2".
    static ErrorOr<Module*> load(ReadonlyBytes image, StringView params);
    // EBUSY while other modules use it; ENOENT if not loaded.
    static ErrorOr<void> unload(StringView name);
};
