#include <Panic.h>
#include <crcs.h>
#include <homeos/abi.h>
#include <lib/boot/CommandLine.h>
#include <lib/text/Format.h>
#include <lib/module/ModInfo.h>
#include <lib/mm/RegionSet.h>
#include <lib/elf/ElfObject.h>
#include <lib/elf/ModuleLayout.h>
#include <lib/elf/Relocator.h>
#include <lib/zstd/ZstdDecoder.h>
#include <log/Log.h>
#include <mm/KernelAllocator.h>
#include <mm/MemoryManager.h>
#include <mm/Vmalloc.h>
#include <module/AbiCleanup.h>
#include <module/Exports.h>
#include <module/ModuleLoader.h>
#include <module/ModuleParams.h>
#include <module/ModuleRegistry.h>
#include <pci/Pci.h>
#include <sync/Mutex.h>
#include <new>

namespace {

// The module region sits in the top 2 GiB with the kernel, so rel32 references reach both ways.
constexpr u64 MODULE_REGION_START = 0xffffffffa0000000ull;
constexpr u64 MODULE_REGION_END = 0xfffffffff0000000ull;

// Serializes loads and unloads, like Linux's module_mutex: the registry, the module address
// space and the dependency links change only under it. Readers on the fault path (symbolization)
// walk the list without it; modules are linked only once complete and unlinked before freeing.
Mutex g_module_mutex;
char g_last_error[256];
RegionSet g_free_virtual GUARDED_BY(g_module_mutex);
bool g_region_ready GUARDED_BY(g_module_mutex) = false;

Error refuse(int code, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
Error refuse(int code, const char* fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vformat(g_last_error, sizeof(g_last_error), fmt, args);
    va_end(args);
    log_err("module: %s", g_last_error);
    return Error(code);
}

ErrorOr<u64> allocate_virtual(u64 size) REQUIRES(g_module_mutex)
{
    if (!g_region_ready) {
        MUST(g_free_virtual.add(MODULE_REGION_START, MODULE_REGION_END));
        g_region_ready = true;
    }
    u64 base = TRY(g_free_virtual.find_fit(size, PAGE_SIZE));
    TRY(g_free_virtual.subtract(base, base + size));
    return base;
}

void free_virtual(u64 base, u64 size) REQUIRES(g_module_mutex) { MUST(g_free_virtual.add(base, base + size)); }

bool is_zstd(ReadonlyBytes image) { return image.size() >= 4 && image[0] == 0x28 && image[1] == 0xB5 && image[2] == 0x2F && image[3] == 0xFD; }

// Resolves a module's imports: kernel exports (checked against __versions CRCs), then exports of
// live modules. Remembers which modules it used, for the dependency links.
class ImportResolver final : public SymbolResolver {
public:
    ImportResolver(StringView module, ReadonlyBytes versions) : m_module(module), m_versions(versions) { }

    ErrorOr<u64> resolve(StringView name) override
    {
        if (auto* e = kexports::find(name)) {
            u32 crc;
            if (!find_version(name, crc))
                return refuse(module_errno::ENOPKG, "%.*s: no CRC for kernel symbol '%.*s' (__versions missing or incomplete)",
                    (int)m_module.length(), m_module.characters(), (int)name.length(), name.characters());
            if (crc != e->crc)
                return refuse(EBADMSG, "%.*s: symbol '%.*s' disagrees about its version: module CRC 0x%08x, kernel CRC 0x%08x",
                    (int)m_module.length(), m_module.characters(), (int)name.length(), name.characters(), crc, e->crc);
            return (u64)e->address;
        }
        Module* owner = nullptr;
        if (auto* e = modules::find_export(name, &owner)) {
            note_dependency(owner);
            return (u64)e->address;
        }
        return refuse(ENOENT, "%.*s: unresolved symbol '%.*s'", (int)m_module.length(), m_module.characters(), (int)name.length(),
            name.characters());
    }

    Module* dependencies[Module::MAX_DEPENDENCIES];
    usize dependency_count { 0 };
    bool too_many_dependencies { false };

private:
    bool find_version(StringView name, u32& crc)
    {
        constexpr usize ENTRY = sizeof(homeos_version_entry);
        for (usize offset = 0; offset + ENTRY <= m_versions.size(); offset += ENTRY) {
            homeos_version_entry entry;
            __builtin_memcpy(&entry, m_versions.data() + offset, ENTRY);
            entry.name[sizeof(entry.name) - 1] = 0;
            if (StringView(entry.name) == name) {
                crc = entry.crc;
                return true;
            }
        }
        return false;
    }
    void note_dependency(Module* owner)
    {
        for (usize i = 0; i < dependency_count; ++i)
            if (dependencies[i] == owner)
                return;
        if (dependency_count == Module::MAX_DEPENDENCIES) {
            too_many_dependencies = true;
            return;
        }
        dependencies[dependency_count++] = owner;
    }

    StringView m_module;
    ReadonlyBytes m_versions;
};

void copy_string(char* out, usize capacity, StringView text)
{
    usize n = text.length() < capacity - 1 ? text.length() : capacity - 1;
    __builtin_memcpy(out, text.characters(), n);
    out[n] = 0;
}

// Unwinds a partially built module: unmaps and frees every page, returns the address range.
void release_memory(Module& module) REQUIRES(g_module_mutex)
{
    for (u64 va = module.m_base; va < module.m_base + module.m_size; va += PAGE_SIZE) {
        auto phys = mm::unmap(va);
        if (!phys.is_error())
            mm::free_pages(phys.value(), 0);
    }
    if (module.m_base)
        free_virtual(module.m_base, module.m_size + PAGE_SIZE);
    module.m_base = 0;
}

// Timers, interrupt handlers and PCI drivers that point into the module's memory would call freed
// code after unload: sweep them, and say so, since a correct module releases them itself.
void sweep_leftovers(Module& module)
{
    u64 start = module.m_base, end = module.m_base + module.m_size;
    usize timers_left = abi_cleanup::cancel_timers_in(start, end);
    usize vectors_left = abi_cleanup::free_vectors_in(start, end);
    if (timers_left || vectors_left)
        log_warn("module: %s left %zu timer(s) armed and %zu interrupt handler(s) registered; released them", module.name_cstr(),
            timers_left, vectors_left);
    pci::unregister_drivers_in(start, end);
}

void release(Module* module) REQUIRES(g_module_mutex)
{
    if (!module)
        return;
    release_memory(*module);
    kfree(module->m_symbols);
    kfree(module->m_strings);
    module->~Module();
    kfree(module);
}

template<typename T>
Span<const T> section_span(const ElfObject& object, const ModuleLayout& layout, const ModuleMemory& memory, StringView name)
{
    auto index = object.find_section(name);
    if (index.is_error() || !layout.is_loaded(index.value()))
        return {};
    auto section = object.section(index.value());
    return Span<const T>((const T*)layout.section_address(index.value(), memory), section.size / sizeof(T));
}

// Copies the module's function symbols (for backtraces and kallsyms) out of the ELF image.
ErrorOr<void> collect_symbols(Module& module, const ElfObject& object, const ModuleLayout& layout, ElfError& error)
{
    usize count = 0, bytes = 0;
    for (usize i = 1; i < object.symbol_count(); ++i) {
        auto symbol = object.symbol(i);
        if (symbol.type != 2 /* STT_FUNC */ || symbol.is_undefined() || symbol.name.is_empty())
            continue;
        if (symbol.section_index >= object.section_count() || !layout.is_loaded(symbol.section_index))
            continue;
        ++count;
        bytes += symbol.name.length() + 1;
    }
    if (!count)
        return {};
    module.m_symbols = (ModuleSymbol*)TRY(try_kmalloc(count * sizeof(ModuleSymbol)));
    module.m_strings = (char*)TRY(try_kmalloc(bytes));
    usize n = 0, offset = 0;
    for (usize i = 1; i < object.symbol_count() && n < count; ++i) {
        auto symbol = object.symbol(i);
        if (symbol.type != 2 || symbol.is_undefined() || symbol.name.is_empty())
            continue;
        if (symbol.section_index >= object.section_count() || !layout.is_loaded(symbol.section_index))
            continue;
        u64 address = TRY(layout.symbol_address(object, i, module.m_memory, error));
        char* name = module.m_strings + offset;
        __builtin_memcpy(name, symbol.name.characters(), symbol.name.length());
        name[symbol.name.length()] = 0;
        offset += symbol.name.length() + 1;
        module.m_symbols[n++] = { address, symbol.size, name };
    }
    module.m_symbol_count = n;
    return {};
}

ErrorOr<void> protect_region(const RegionMemory& region, PageFlags flags)
{
    for (u64 va = region.address; va < region.address + align_up(region.size, PAGE_SIZE); va += PAGE_SIZE)
        TRY(mm::protect(va, flags));
    return {};
}

ErrorOr<Module*> load_elf(ReadonlyBytes image, StringView params) REQUIRES(g_module_mutex)
{
    auto& allocator = KernelAllocator::the();
    ElfError elf_error;
    auto parsed = ElfObject::parse(image, elf_error);
    if (parsed.is_error())
        return refuse(parsed.error().code(), "invalid module image: %.*s", (int)elf_error.message().length(), elf_error.message().characters());
    auto object = parsed.release_value();

    // Metadata first: nothing is allocated until the module is known to be acceptable.
    auto modinfo_index = object.find_section(".modinfo");
    if (modinfo_index.is_error())
        return refuse(ENOEXEC, "invalid module image: no .modinfo section");
    ModInfo info;
    if (info.parse(object.section_data(modinfo_index.value())).is_error() || info.name().is_empty())
        return refuse(ENOEXEC, "invalid module image: .modinfo has no valid name");
    StringView name = info.name();
    int name_length = (int)name.length();
    if (!info.has_abi())
        return refuse(module_errno::EPROTONOSUPPORT, "%.*s: no ABI version in .modinfo", name_length, name.characters());
    if (info.abi_major() != HOMEOS_ABI_KERNEL_MAJOR)
        return refuse(module_errno::EPROTONOSUPPORT, "%.*s: built for ABI %u.%u, kernel ABI is %u.%u (major differs)", name_length,
            name.characters(), info.abi_major(), info.abi_minor(), HOMEOS_ABI_KERNEL_MAJOR, HOMEOS_ABI_KERNEL_MINOR);
    if (info.abi_minor() > HOMEOS_ABI_KERNEL_MINOR)
        return refuse(module_errno::EPROTO, "%.*s: built for ABI %u.%u, newer than the kernel's %u.%u", name_length, name.characters(),
            info.abi_major(), info.abi_minor(), HOMEOS_ABI_KERNEL_MAJOR, HOMEOS_ABI_KERNEL_MINOR);
    if (info.vermagic() != StringView(HOMEOS_VERMAGIC))
        return refuse(EKEYREJECTED, "%.*s: vermagic \"%.*s\" does not match the kernel's \"%s\"", name_length, name.characters(),
            (int)info.vermagic().length(), info.vermagic().characters(), HOMEOS_VERMAGIC);
    if (modules::find(name))
        return refuse(EEXIST, "%.*s: a module with this name is already loaded", name_length, name.characters());

    auto planned = ModuleLayout::plan(object, allocator, elf_error);
    if (planned.is_error())
        return refuse(planned.error().code(), "%.*s: %.*s", name_length, name.characters(), (int)elf_error.message().length(), elf_error.message().characters());
    auto layout = planned.release_value();

    // From here on, every failure unwinds through release().
    auto* module = new (std::nothrow) Module;
    if (!module)
        return refuse(ENOMEM, "%.*s: out of memory", name_length, name.characters());
    copy_string(module->m_name, sizeof(module->m_name), name);
    copy_string(module->m_version, sizeof(module->m_version), info.version());

    auto fail = [&](Error error) REQUIRES(g_module_mutex) -> Error {
        release(module);
        return error;
    };

    u64 region_offsets[MODULE_REGION_COUNT];
    u64 total = 0;
    for (usize r = 0; r < MODULE_REGION_COUNT; ++r) {
        region_offsets[r] = total;
        total += align_up(layout.region_size((ModuleRegion)r), PAGE_SIZE);
    }
    if (total == 0)
        return fail(refuse(ENOEXEC, "%.*s: the module has no loadable sections", name_length, name.characters()));
    auto base = allocate_virtual(total + PAGE_SIZE); // plus an unmapped guard page after it
    if (base.is_error())
        return fail(refuse(ENOMEM, "%.*s: module address space exhausted", name_length, name.characters()));
    module->m_base = base.value();
    module->m_size = total;
    for (u64 va = module->m_base; va < module->m_base + total; va += PAGE_SIZE) {
        auto phys = mm::allocate_pages(0);
        if (phys.is_error())
            return fail(refuse(ENOMEM, "%.*s: out of memory for module pages", name_length, name.characters()));
        __builtin_memset(mm::phys_to_virt(phys.value()), 0, PAGE_SIZE);
        if (auto mapped = mm::map(va, phys.value(), PageFlags::Writable | PageFlags::NoExecute); mapped.is_error()) {
            mm::free_pages(phys.value(), 0);
            return fail(refuse(ENOMEM, "%.*s: cannot map module pages", name_length, name.characters()));
        }
        module->m_page_count++;
    }
    for (usize r = 0; r < MODULE_REGION_COUNT; ++r) {
        auto& region = module->m_memory.regions[r];
        region.address = module->m_base + region_offsets[r];
        region.writable = (u8*)region.address;
        region.size = layout.region_size((ModuleRegion)r);
    }

    ReadonlyBytes versions;
    if (auto index = object.find_section("__versions"); !index.is_error())
        versions = object.section_data(index.value());
    ImportResolver resolver(name, versions);
    g_last_error[0] = 0;
    if (auto relocated = Relocator::relocate(object, layout, module->m_memory, resolver, elf_error); relocated.is_error()) {
        if (g_last_error[0] && (relocated.error().code() == ENOENT || relocated.error().code() == EBADMSG
                                   || relocated.error().code() == module_errno::ENOPKG))
            return fail(relocated.error()); // the resolver already said why
        return fail(refuse(relocated.error().code(), "%.*s: %.*s", name_length, name.characters(), (int)elf_error.message().length(), elf_error.message().characters()));
    }
    if (resolver.too_many_dependencies)
        return fail(refuse(E2BIG, "%.*s: uses more than %zu modules", name_length, name.characters(), Module::MAX_DEPENDENCIES));
    if (auto collected = collect_symbols(*module, object, layout, elf_error); collected.is_error())
        return fail(refuse(collected.error().code(), "%.*s: cannot record its symbols", name_length, name.characters()));

    // W^X: text RX, rodata R, data RW+NX. Relocation is done, so nothing writes text again.
    auto& memory = module->m_memory;
    if (protect_region(memory[ModuleRegion::Text], PageFlags::None).is_error()
        || protect_region(memory[ModuleRegion::Rodata], PageFlags::NoExecute).is_error())
        return fail(refuse(ENOMEM, "%.*s: cannot apply page permissions", name_length, name.characters()));

    auto init = section_span<homeos_initcall>(object, layout, memory, ".homeos.init");
    auto exit = section_span<homeos_exitcall>(object, layout, memory, ".homeos.exit");
    auto ctors = section_span<void (*)()>(object, layout, memory, ".init_array");
    auto dtors = section_span<void (*)()>(object, layout, memory, ".fini_array");
    auto params_table = section_span<homeos_module_param>(object, layout, memory, ".homeos.params");
    module->m_exports = section_span<homeos_export>(object, layout, memory, ".homeos.exports");
    module->m_suites = section_span<const ktest::Suite*>(object, layout, memory, ".ktest_suites");
    module->m_exit = exit.size() ? exit[0] : nullptr;
    module->m_fini_array = Span<void (*const)()>(dtors.data(), dtors.size());

    if (auto applied = module_params::apply(module->name(), params_table, params); applied.is_error())
        return fail(applied.release_error()); // apply() logged which parameter and why

    for (usize i = 0; i < resolver.dependency_count; ++i) {
        module->m_dependencies[module->m_dependency_count++] = resolver.dependencies[i];
        resolver.dependencies[i]->m_use_count++;
    }
    auto drop_dependencies = [&]() {
        for (usize i = 0; i < module->m_dependency_count; ++i)
            module->m_dependencies[i]->m_use_count--;
        module->m_dependency_count = 0;
    };

    // Listed before init runs, so backtraces and log prefixes from init name the module.
    modules::list().append(*module);
    modules::set_current(module);
    for (auto* ctor : ctors)
        ctor();
    if (init.size()) {
        int result = init[0]();
        modules::set_current(nullptr);
        if (result != 0) {
            modules::list().remove(*module);
            sweep_leftovers(*module);
            drop_dependencies();
            int code = result < 0 ? -result : EINVAL;
            return fail(refuse(code, "%.*s: module_init failed with %d (%s)", name_length, name.characters(), result, errno_name(code)));
        }
    }
    modules::set_current(nullptr);
    module->m_live = true;
    CommandLine options;
    if (!options.parse(params).is_error() && options.get_bool("selftest") && module->m_suites.size()) {
        log_info("module: %s: running its %zu selftest suite(s)", module->name_cstr(), module->m_suites.size());
        ktest::run_suite_array(module->m_suites.data(), module->m_suites.size());
    }
    log_info("module: loaded %s %s at 0x%llx (%llu KiB: text %llu, rodata %llu, data %llu bytes)", module->name_cstr(),
        module->m_version[0] ? module->m_version : "", (unsigned long long)module->m_base, (unsigned long long)(total / KiB),
        (unsigned long long)memory[ModuleRegion::Text].size, (unsigned long long)memory[ModuleRegion::Rodata].size,
        (unsigned long long)memory[ModuleRegion::Data].size);
    return module;
}

} // namespace

ErrorOr<Module*> ModuleLoader::load(ReadonlyBytes image, StringView params)
{
    MutexLocker locker(g_module_mutex);
    if (!is_zstd(image))
        return load_elf(image, params);
    // .ko.zst: decode with the kernel's own zstd decoder.
    auto size = ZstdDecoder::content_size(image);
    if (size.is_error() || size.value() == 0 || size.value() > 64 * MiB)
        return refuse(size.is_error() ? size.error().code() : EFBIG, "compressed module: no usable content size in its zstd frame");
    // The decoded image can exceed kmalloc's largest block: it goes in vmalloc space.
    auto* decoder = new (std::nothrow) ZstdDecoder;
    auto buffer = vmalloc::allocate(size.value());
    if (!decoder || buffer.is_error()) {
        delete decoder;
        if (!buffer.is_error())
            vmalloc::free(buffer.value());
        return refuse(ENOMEM, "compressed module: out of memory for %llu bytes", (unsigned long long)size.value());
    }
    auto decoded = decoder->decompress(image, Bytes((u8*)buffer.value(), size.value()));
    if (decoded.is_error()) {
        auto error = refuse(decoded.error().code(), "compressed module: %s", decoder->error());
        delete decoder;
        vmalloc::free(buffer.value());
        return error;
    }
    delete decoder;
    auto result = load_elf(ReadonlyBytes((const u8*)buffer.value(), decoded.value()), params);
    vmalloc::free(buffer.value());
    return result;
}

ErrorOr<void> ModuleLoader::unload(StringView name)
{
    MutexLocker locker(g_module_mutex);
    auto* module = modules::find(name);
    if (!module)
        return refuse(ENOENT, "%.*s: not loaded", (int)name.length(), name.characters());
    if (module->use_count() > 0)
        return refuse(EBUSY, "%.*s: in use by %u module(s)", (int)name.length(), name.characters(), module->use_count());
    modules::set_current(module);
    if (module->m_exit)
        module->m_exit();
    for (usize i = module->m_fini_array.size(); i > 0; --i)
        module->m_fini_array[i - 1]();
    modules::set_current(nullptr);
    sweep_leftovers(*module);
    modules::list().remove(*module);
    for (usize i = 0; i < module->m_dependency_count; ++i)
        module->m_dependencies[i]->m_use_count--;
    log_info("module: unloaded %s", module->name_cstr());
    release(module);
    return {};
}

const char* ModuleLoader::last_error() { return g_last_error; }
