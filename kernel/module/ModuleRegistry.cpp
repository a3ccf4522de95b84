#include <lib/text/Format.h>
#include <log/Log.h>
#include <module/Exports.h>
#include <module/ModuleRegistry.h>

extern "C" const KernelExport __kexports_start[];
extern "C" const KernelExport __kexports_end[];

const ModuleSymbol* Module::symbol_for(u64 address) const
{
    const ModuleSymbol* best = nullptr;
    for (usize i = 0; i < m_symbol_count; ++i) {
        auto& s = m_symbols[i];
        if (s.address <= address && (!best || s.address > best->address))
            best = &s;
    }
    if (best && best->size && address >= best->address + best->size)
        return nullptr;
    return best;
}

namespace kexports {

Span<const KernelExport> all() { return Span<const KernelExport>(__kexports_start, (usize)(__kexports_end - __kexports_start)); }

const KernelExport* find(StringView name)
{
    for (auto& e : all())
        if (StringView(e.name) == name)
            return &e;
    return nullptr;
}

} // namespace kexports

namespace modules {

namespace {
ModuleList g_list;
Module* g_current = nullptr;
}

void set_current(Module* module) { g_current = module; }
Module* current() { return g_current; }

ModuleList& list() { return g_list; }

Module* find(StringView name)
{
    for (auto& module : g_list)
        if (module.name() == name)
            return &module;
    return nullptr;
}

Module* find_by_address(u64 address)
{
    for (auto& module : g_list)
        if (module.contains(address))
            return &module;
    return nullptr;
}

const char* name_for_address(u64 address)
{
    auto* module = find_by_address(address);
    if (!module)
        module = g_current;
    return module ? module->name_cstr() : nullptr;
}

bool describe(u64 address, char* buffer, usize capacity)
{
    auto* module = find_by_address(address);
    if (!module)
        return false;
    if (auto* symbol = module->symbol_for(address))
        format(buffer, capacity, "%s+0x%llx [%s]", symbol->name, (unsigned long long)(address - symbol->address), module->name_cstr());
    else
        format(buffer, capacity, "0x%llx [%s]", (unsigned long long)(address - module->base()), module->name_cstr());
    return true;
}

const homeos_export* find_export(StringView name, Module** owner)
{
    for (auto& module : g_list) {
        for (auto& e : module.exports()) {
            if (StringView(e.name) == name) {
                if (owner)
                    *owner = &module;
                return &e;
            }
        }
    }
    return nullptr;
}

usize count() { return g_list.size_slow(); }

void print_lsmod()
{
    klog::console_printf("%-24s %10s %5s  %s\n", "Module", "Size", "Used", "by");
    for (auto& module : g_list) {
        char users[256];
        usize length = 0;
        users[0] = 0;
        for (auto& other : g_list) {
            for (auto* dependency : other.dependencies()) {
                if (dependency == &module && length + 64 < sizeof(users))
                    length += format(users + length, sizeof(users) - length, "%s%s", length ? "," : "", other.name_cstr());
            }
        }
        klog::console_printf("%-24s %10llu %5u  %s\n", module.name_cstr(), (unsigned long long)module.size(), module.use_count(), users);
    }
}

void print_kallsyms()
{
    for (auto& e : kexports::all())
        klog::console_printf("%016llx T %s\t[kernel] crc 0x%08x\n", (unsigned long long)e.address, e.name, e.crc);
    for (auto& module : g_list)
        for (auto& symbol : module.symbols())
            klog::console_printf("%016llx t %s\t[%s]\n", (unsigned long long)symbol.address, symbol.name, module.name_cstr());
}

} // namespace modules
