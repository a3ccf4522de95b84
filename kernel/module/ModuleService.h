#pragma once
// Loading modules by name from the initramfs, with modules.dep (dependencies first) and
// modules.alias (device autoload), and the kernel's init_module/finit_module/delete_module.
#include <ktl/ErrorOr.h>
#include <ktl/StringView.h>
#include <module/Module.h>

class CommandLine;

namespace module_service {

// The kernel command line: `name.key=value` entries become parameters of module `name`, as on Linux.
void set_command_line(const CommandLine*);

// Loads lib/modules/<name>.ko (or .ko.zst) and, first, everything modules.dep lists for it.
// Already-loaded modules are skipped. params apply to `name` only.
ErrorOr<Module*> load_by_name(StringView name, StringView params = {});
// /etc/modules-load, then the comma-separated `modules=` list from the command line.
void load_boot_modules(StringView command_line_list);
// For every PCI device without a driver: find a module whose alias matches its modalias, load it.
usize autoload_pci();
// The module name for a modalias from modules.alias, if any (writes into out).
bool module_for_alias(StringView modalias, char* out, usize capacity);

} // namespace module_service

// The module syscalls, with Linux numbers and semantics (-errno returns). Until userland exists
// the kernel calls them with kernel pointers; the syscall layer will validate user pointers.
constexpr int SYS_INIT_MODULE = 175;
constexpr int SYS_DELETE_MODULE = 176;
constexpr int SYS_FINIT_MODULE = 313;
constexpr unsigned MODULE_INIT_IGNORE_MODVERSIONS = 1;
constexpr unsigned MODULE_INIT_IGNORE_VERMAGIC = 2;
constexpr unsigned MODULE_INIT_COMPRESSED_FILE = 4;
constexpr unsigned O_NONBLOCK_FLAG = 04000;
constexpr unsigned O_TRUNC_FLAG = 01000;

long sys_init_module(const void* image, unsigned long length, const char* params);
// `fd` is resolved through the in-memory root until file descriptors exist: fd_path names it.
long sys_finit_module_path(const char* path, const char* params, int flags);
long sys_delete_module(const char* name, unsigned flags);
