#pragma once
// Loading and unloading modules, modelled on Linux's load_module(): one straight pipeline over
// the image, with a single unwind ladder, so a refused or failed load leaves nothing behind.
//
//   decompress (.ko.zst) -> parse and validate the ELF -> read .modinfo -> check ABI version,
//   vermagic and name -> plan the layout -> allocate and map the module region -> copy and
//   relocate (imports checked against the kernel's CRCs) -> apply W^X -> parse parameters ->
//   constructors -> module_init -> live
//
// Every refusal logs the module, the symbol if any, and the reason, and returns a distinct errno:
//   ENOEXEC  not a valid module: bad ELF, unknown relocation, no .modinfo or no name
//   ERANGE   a relocation overflows its field
//   ENOENT   an imported symbol is exported by nobody
//   EBADMSG  an import's CRC differs from the kernel's (built against another declaration)
//   ENOPKG   the import has no CRC in the module's __versions
//   EPROTONOSUPPORT  the module's ABI major differs from the kernel's
//   EPROTO   the module needs a newer ABI minor than the kernel has
//   EKEYREJECTED  vermagic mismatch
//   EEXIST   a module with that name is loaded
//   EINVAL   bad parameters;  ENOMEM  out of memory;  EBADMSG/ENOTSUP  corrupt or unsupported .ko.zst
//   module_init's own negative errno when init fails
#include <ktl/ErrorOr.h>
#include <ktl/Span.h>
#include <module/Module.h>

class ModuleLoader {
public:
    // Loads a module image (.ko or .ko.zst); params is "key=value key2=value2".
    static ErrorOr<Module*> load(ReadonlyBytes image, StringView params);
    // EBUSY while other modules use it; ENOENT if not loaded.
    static ErrorOr<void> unload(StringView name);
    // The reason for the last refusal, for tests and the prompt.
    static const char* last_error();
};

// Linux-numbered errnos the loader uses that ktl/Errno.h may not name.
namespace module_errno {
constexpr int ENOPKG = 65;
constexpr int EPROTO = 71;
constexpr int EPROTONOSUPPORT = 93;
}
