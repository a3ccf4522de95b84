#include <Panic.h>
#include <crcs.h>
#include <homeos/abi.h>
#include <lib/boot/CommandLine.h>
#include <lib/elf/ElfObject.h>
#include <lib/elf/ModuleLayout.h>
#include <lib/elf/Relocator.h>
#include <lib/elf/VersionTable.h>
#include <lib/mm/RegionSet.h>
#include <lib/module/ModInfo.h>
#include <lib/text/Format.h>
#include <log/Log.h>
#include <mm/KernelAllocator.h>
#include <mm/MemoryManager.h>
#include <mm/Vmalloc.h>
#include <module/AbiCleanup.h>
#include <module/Decompress.h>
#include <module/Exports.h>
#include <module/ImportResolver.h>
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
VirtRegionSet g_free_virtual GUARDED_BY(g_module_mutex);
bool g_region_ready GUARDED_BY(g_module_mutex) = false;

// Everything one load knows and owns, like Linux's struct load_info. Each stage fills in what
// the next needs; unwind() undoes, in reverse, exactly what the stages recorded as done.
//
//   stage              records                         unwind (bottom up)
//   decompress         decompressed (vmalloc)          free the decoded image
//   parse_elf          object                          -
//   check_modinfo      info, name                      -
//   plan_layout        layout                          (its destructor)
//   allocate_module    module                          release(): symbols, pages, address range
//   map_memory         module->m_base/m_page_count     (release())
//   relocate           resolver                        -
//   check_exports, check_entry_points, check_tables    -
//   collect_symbols    module->m_symbols               (release())
//   protect, apply_params                              -
//   link_dependencies  dependencies_taken              drop the use counts
//   run_init           listed, constructed             destructors, sweep, unlist
struct LoadInfo {
    ReadonlyBytes image; // the ELF: the caller's bytes, or the decoded .ko.zst
    StringView params;
    void* decompressed { nullptr };

    ErrorOr<ElfObject> object { Error(ENOEXEC) };
    ElfError detail; // the ELF library's description of its last failure, for the log
    ModInfo info;
    StringView name; // in .modinfo; empty until check_modinfo
    ErrorOr<ModuleLayout> layout { Error(ENOEXEC) };
    u64 region_offsets[MODULE_REGION_COUNT] {}; // each region page-aligned, text first
    u64 total_size { 0 };                        // of all regions, without the guard page

    Module* module { nullptr };
    ImportResolver* resolver { nullptr };
    Span<const homeos_initcall> init;
    Span<const homeos_exitcall> exit;
    Span<void (*const)()> ctors;
    Span<const homeos_module_param> params_table;

    bool dependencies_taken { false };
    bool listed { false };
    bool constructed { false };

    // For log lines: the module's name once known.
    const char* label() const { return module ? module->name_cstr() : "(module image)"; }
};

// Logs the detail of a refusal and returns the error, whose static message is the reason.
Error refuse(const LoadInfo& load, Error error, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
Error refuse(const LoadInfo& load, Error error, const char* fmt, ...)
{
    char detail[256];
    va_list args;
    va_start(args, fmt);
    vformat(detail, sizeof(detail), fmt, args);
    va_end(args);
    if (load.name.is_empty() || load.module)
        log_err("module: %s: %s", load.label(), detail);
    else
        log_err("module: %.*s: %s", (int)load.name.length(), load.name.characters(), detail);
    return error;
}

// A failure the ELF library described: log its detail beside the reason it returned.
Error refuse_elf(const LoadInfo& load, Error error, const char* stage)
{
    return refuse(load, error, "%s: %s (%s)", stage, load.detail.c_str(), error.has_message() ? error.message() : error.name());
}

ErrorOr<u64> allocate_virtual(u64 size) REQUIRES(g_module_mutex)
{
    if (!g_region_ready) {
        MUST(g_free_virtual.add(VirtAddr(MODULE_REGION_START), VirtAddr(MODULE_REGION_END)));
        g_region_ready = true;
    }
    VirtAddr base = TRY(g_free_virtual.find_fit(size, PAGE_SIZE));
    TRY(g_free_virtual.subtract(base, base + size));
    return base.value();
}

void free_virtual(u64 base, u64 size) REQUIRES(g_module_mutex) { MUST(g_free_virtual.add(VirtAddr(base), VirtAddr(base + size))); }

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
        auto phys = mm::unmap(VirtAddr(va));
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

// Runs the module's .fini_array in reverse: C++ destructors, and through the SDK runtime's own
// destructor, everything registered with atexit().
void run_destructors(Module& module)
{
    modules::set_current(&module);
    for (usize i = module.m_fini_array.size(); i > 0; --i)
        module.m_fini_array[i - 1]();
    modules::set_current(nullptr);
}

template<typename T>
Span<const T> section_span(const LoadInfo& load, StringView name)
{
    auto& object = load.object.value();
    auto& layout = load.layout.value();
    auto index = object.find_section(name);
    if (index.is_error() || !layout.is_loaded(index.value()))
        return {};
    auto section = object.section(index.value());
    return Span<const T>((const T*)layout.section_address(index.value(), load.module->m_memory), section.size / sizeof(T));
}

bool in_region(const RegionMemory& region, u64 address, u64 size)
{
    return address >= region.address && size <= region.size && address - region.address <= region.size - size;
}

// The module's loaded memory, any region: where its exports and parameters must point.
bool in_module(const Module& module, u64 address, u64 size)
{
    for (auto& region : module.m_memory.regions)
        if (in_region(region, address, size))
            return true;
    return false;
}

// A NUL-terminated string wholly inside one region of the module.
bool string_in_module(const Module& module, const char* text)
{
    for (auto& region : module.m_memory.regions) {
        if (!in_region(region, (u64)text, 1))
            continue;
        for (u64 p = (u64)text; p < region.address + region.size; ++p)
            if (*(const char*)p == 0)
                return true;
        return false;
    }
    return false;
}

ErrorOr<void> protect_region(const RegionMemory& region, PageFlags flags)
{
    for (u64 va = region.address; va < region.address + align_up(region.size, PAGE_SIZE); va += PAGE_SIZE)
        TRY(mm::protect(VirtAddr(va), flags));
    return {};
}

// ---------------------------------------------------------------------------------------------
// The stages, in pipeline order. Each checks before it changes anything it does not record.
// ---------------------------------------------------------------------------------------------

// .ko.zst: decode with the kernel's own zstd decoder into vmalloc space (the decoded image can
// exceed kmalloc's largest block).
ErrorOr<void> decompress(LoadInfo& load)
{
    if (!DecompressedImage::is_compressed(load.image))
        return {};
    auto decoded = DecompressedImage::decompress(load.image, DecompressedImage::module_cap);
    if (decoded.is_error())
        return refuse(load, decoded.error(), "compressed module: %s", decoded.error().message());
    load.image = decoded.value().bytes();
    load.decompressed = decoded.value().leak();
    return {};
}

ErrorOr<void> parse_elf(LoadInfo& load)
{
    load.object = ElfObject::parse(load.image, load.detail);
    if (load.object.is_error())
        return refuse_elf(load, load.object.error(), "invalid module image");
    return {};
}

// Metadata first: nothing is allocated until the module is known to be acceptable.
ErrorOr<void> check_modinfo(LoadInfo& load)
{
    auto& object = load.object.value();
    auto index = object.find_section(".modinfo");
    if (index.is_error())
        return refuse(load, Error::with_message(ENOEXEC, "no .modinfo section"), "invalid module image: no .modinfo section");
    if (load.info.parse(object.section_data(index.value())).is_error())
        return refuse(load, Error::with_message(ENOEXEC, "invalid .modinfo"), "invalid module image: .modinfo: %s", load.info.error_message());
    if (load.info.name().is_empty())
        return refuse(load, Error::with_message(ENOEXEC, ".modinfo has no name"), "invalid module image: .modinfo has no name");
    load.name = load.info.name();
    auto& info = load.info;
    if (load.name.length() >= Module::NAME_CAPACITY)
        return refuse(load, Error::with_message(ENAMETOOLONG, "module name too long"), "the name is longer than %zu bytes",
            Module::NAME_CAPACITY - 1);
    if (!info.has_abi())
        return refuse(load, Error::with_message(EPROTONOSUPPORT, "no ABI version in .modinfo"), "no ABI version in .modinfo");
    if (info.abi_major() != HOMEOS_ABI_KERNEL_MAJOR)
        return refuse(load, Error::with_message(EPROTONOSUPPORT, "built for another ABI major version"),
            "built for ABI %u.%u, kernel ABI is %u.%u (major differs)", info.abi_major(), info.abi_minor(), HOMEOS_ABI_KERNEL_MAJOR,
            HOMEOS_ABI_KERNEL_MINOR);
    if (info.abi_minor() > HOMEOS_ABI_KERNEL_MINOR)
        return refuse(load, Error::with_message(EPROTO, "built for a newer ABI minor version"),
            "built for ABI %u.%u, newer than the kernel's %u.%u", info.abi_major(), info.abi_minor(), HOMEOS_ABI_KERNEL_MAJOR,
            HOMEOS_ABI_KERNEL_MINOR);
    if (info.vermagic() != StringView(HOMEOS_VERMAGIC))
        return refuse(load, Error::with_message(EKEYREJECTED, "vermagic does not match the kernel's"),
            "vermagic \"%.*s\" does not match the kernel's \"%s\"", (int)info.vermagic().length(), info.vermagic().characters(),
            HOMEOS_VERMAGIC);
    if (modules::find(load.name))
        return refuse(load, Error::with_message(EEXIST, "a module with this name is already loaded"),
            "a module with this name is already loaded");
    return {};
}

// Like Linux's check_modstruct_version(): every SDK-built module imports homeos_module_layout,
// whose CRC covers the structs the kernel reads from module sections. Requiring the entry means a
// module cannot skip that check by not importing the symbol; its CRC is compared at relocation.
ErrorOr<void> check_modstruct_version(LoadInfo& load)
{
    auto& object = load.object.value();
    ReadonlyBytes versions;
    if (auto index = object.find_section("__versions"); !index.is_error())
        versions = object.section_data(index.value());
    if (VersionTable(versions).find("homeos_module_layout").is_error())
        return refuse(load, Error::with_message(ENOPKG, "no CRC for homeos_module_layout in __versions"),
            "__versions has no entry for homeos_module_layout: built without the SDK's module runtime?");
    return {};
}

ErrorOr<void> plan_layout(LoadInfo& load)
{
    load.layout = ModuleLayout::plan(load.object.value(), KernelAllocator::the(), load.detail);
    if (load.layout.is_error())
        return refuse_elf(load, load.layout.error(), "layout");
    u64 total = 0;
    for (usize r = 0; r < MODULE_REGION_COUNT; ++r) {
        load.region_offsets[r] = total;
        total += align_up(load.layout.value().region_size((ModuleRegion)r), PAGE_SIZE);
    }
    load.total_size = total;
    if (total == 0)
        return refuse(load, Error::with_message(ENOEXEC, "no loadable sections"), "the module has no loadable sections");
    return {};
}

ErrorOr<void> allocate_module(LoadInfo& load)
{
    load.module = new (std::nothrow) Module;
    if (!load.module)
        return refuse(load, Error::with_message(ENOMEM, "out of memory"), "out of memory for the module descriptor");
    copy_string(load.module->m_name, sizeof(load.module->m_name), load.name);
    copy_string(load.module->m_version, sizeof(load.module->m_version), load.info.version());
    return {};
}

ErrorOr<void> map_memory(LoadInfo& load) REQUIRES(g_module_mutex)
{
    auto& module = *load.module;
    auto& layout = load.layout.value();
    u64 total = load.total_size;
    auto base = allocate_virtual(total + PAGE_SIZE); // plus an unmapped guard page after it
    if (base.is_error())
        return refuse(load, Error::with_message(ENOMEM, "module address space exhausted"), "module address space exhausted");
    module.m_base = base.value();
    module.m_size = total;
    for (u64 va = module.m_base; va < module.m_base + total; va += PAGE_SIZE) {
        auto phys = mm::allocate_pages(0);
        if (phys.is_error())
            return refuse(load, Error::with_message(ENOMEM, "out of memory for module pages"), "out of memory for module pages");
        __builtin_memset(mm::phys_to_virt(phys.value()), 0, PAGE_SIZE);
        if (auto mapped = mm::map(VirtAddr(va), phys.value(), PageFlags::Writable | PageFlags::NoExecute); mapped.is_error()) {
            mm::free_pages(phys.value(), 0);
            return refuse(load, Error::with_message(ENOMEM, "cannot map module pages"), "cannot map module pages");
        }
        module.m_page_count++;
    }
    for (usize r = 0; r < MODULE_REGION_COUNT; ++r) {
        auto& region = module.m_memory.regions[r];
        region.address = module.m_base + load.region_offsets[r];
        region.writable = (u8*)region.address;
        region.size = layout.region_size((ModuleRegion)r);
    }
    return {};
}

ErrorOr<void> relocate(LoadInfo& load) REQUIRES(g_module_mutex)
{
    auto& object = load.object.value();
    auto result = Relocator::relocate(object, load.layout.value(), load.module->m_memory, *load.resolver, load.detail);
    if (result.is_error())
        return refuse_elf(load, result.error(), "relocation");
    if (load.resolver->too_many_dependencies())
        return refuse(load, Error::with_message(E2BIG, "uses too many modules"), "uses more than %zu modules", Module::MAX_DEPENDENCIES);
    return {};
}

// An export must name itself and point into the module, and nobody else may export that name:
// a later module would bind to whichever came first (Linux: "exports duplicate symbol").
ErrorOr<void> check_exports(LoadInfo& load) REQUIRES(g_module_mutex)
{
    auto& module = *load.module;
    module.m_exports = section_span<homeos_export>(load, ".homeos.exports");
    auto exports = module.m_exports;
    for (usize i = 0; i < exports.size(); ++i) {
        auto& e = exports[i];
        if (!string_in_module(module, e.name) || !in_module(module, (u64)e.address, 1))
            return refuse(load, Error::with_message(ENOEXEC, "an export points outside the module"),
                "export %zu points outside the module (name at 0x%llx, address 0x%llx)", i, (unsigned long long)e.name,
                (unsigned long long)e.address);
        StringView name(e.name);
        Module* owner = nullptr;
        if (kexports::find(name))
            return refuse(load, Error::with_message(ENOEXEC, "exports a duplicate symbol"),
                "exports duplicate symbol '%s' (owned by the kernel)", e.name);
        if (modules::find_export(name, &owner))
            return refuse(load, Error::with_message(ENOEXEC, "exports a duplicate symbol"),
                "exports duplicate symbol '%s' (owned by %s)", e.name, owner->name_cstr());
        for (usize j = 0; j < i; ++j)
            if (StringView(exports[j].name) == name)
                return refuse(load, Error::with_message(ENOEXEC, "exports a duplicate symbol"),
                    "exports duplicate symbol '%s' twice", e.name);
    }
    return {};
}

// The loader calls .init_array, .fini_array, module_init and module_exit, so each must point into
// the module's own text: anything else (NULL, 0x4141414141414141, kernel code, an unmapped page)
// is a corrupt module, refused here rather than a panic later.
ErrorOr<void> check_entry_points(LoadInfo& load)
{
    auto& module = *load.module;
    auto& text = module.m_memory[ModuleRegion::Text];
    load.init = section_span<homeos_initcall>(load, ".homeos.init");
    load.exit = section_span<homeos_exitcall>(load, ".homeos.exit");
    load.ctors = section_span<void (*)()>(load, ".init_array");
    auto dtors = section_span<void (*)()>(load, ".fini_array");
    auto check = [&](Span<const u64> entries, const char* what) -> ErrorOr<void> {
        for (usize i = 0; i < entries.size(); ++i)
            if (!in_region(text, entries[i], 1))
                return refuse(load, Error::with_message(ENOEXEC, "an entry point is outside the module's text"),
                    "%s entry %zu is 0x%llx, outside the module's text (0x%llx-0x%llx)", what, i, (unsigned long long)entries[i],
                    (unsigned long long)text.address, (unsigned long long)(text.address + text.size));
        return {};
    };
    TRY(check(Span<const u64>((const u64*)load.init.data(), load.init.size()), "module_init"));
    TRY(check(Span<const u64>((const u64*)load.exit.data(), load.exit.size()), "module_exit"));
    TRY(check(Span<const u64>((const u64*)load.ctors.data(), load.ctors.size()), ".init_array"));
    TRY(check(Span<const u64>((const u64*)dtors.data(), dtors.size()), ".fini_array"));
    module.m_exit = load.exit.size() ? load.exit[0] : nullptr;
    module.m_fini_array = Span<void (*const)()>(dtors.data(), dtors.size());
    return {};
}

// The loader writes through the parameter table (apply_params) and reads the selftest suite
// records (selftest=1), so their pointers must lie in the module too.
ErrorOr<void> check_tables(LoadInfo& load)
{
    auto& module = *load.module;
    load.params_table = section_span<homeos_module_param>(load, ".homeos.params");
    auto& data = module.m_memory[ModuleRegion::Data];
    for (usize i = 0; i < load.params_table.size(); ++i) {
        auto& p = load.params_table[i];
        u64 size = p.type == HOMEOS_PARAM_BOOL ? sizeof(bool) : p.type == HOMEOS_PARAM_STRING ? p.string_capacity : sizeof(u64);
        if (!string_in_module(module, p.name) || size == 0 || !in_region(data, (u64)p.value, size))
            return refuse(load, Error::with_message(ENOEXEC, "a parameter points outside the module's data"),
                "parameter %zu: its name or value (0x%llx, %llu bytes) is outside the module's data", i, (unsigned long long)p.value,
                (unsigned long long)size);
    }
    module.m_suites = section_span<const ktest::Suite*>(load, ".ktest_suites");
    for (usize i = 0; i < module.m_suites.size(); ++i)
        if (!in_module(module, (u64)module.m_suites[i], sizeof(ktest::Suite)))
            return refuse(load, Error::with_message(ENOEXEC, "a selftest suite points outside the module"),
                "selftest suite %zu points outside the module", i);
    return {};
}

// Copies the module's function symbols (for backtraces and kallsyms) out of the ELF image.
ErrorOr<void> collect_symbols(LoadInfo& load)
{
    auto& module = *load.module;
    auto& object = load.object.value();
    auto& layout = load.layout.value();
    auto wanted = [&](const ElfSymbol& symbol) {
        return symbol.type == 2 /* STT_FUNC */ && !symbol.is_undefined() && !symbol.name.is_empty()
            && symbol.section_index < object.section_count() && layout.is_loaded(symbol.section_index);
    };
    usize count = 0, bytes = 0;
    for (usize i = 1; i < object.symbol_count(); ++i) {
        auto symbol = object.symbol(i);
        if (!wanted(symbol))
            continue;
        ++count;
        bytes += symbol.name.length() + 1;
    }
    if (!count)
        return {};
    auto symbols = try_kmalloc(count * sizeof(ModuleSymbol));
    auto strings = try_kmalloc(bytes);
    if (!symbols.is_error())
        module.m_symbols = (ModuleSymbol*)symbols.value();
    if (!strings.is_error())
        module.m_strings = (char*)strings.value();
    if (symbols.is_error() || strings.is_error())
        return refuse(load, Error::with_message(ENOMEM, "out of memory for the module's symbols"), "cannot record its %zu symbols", count);
    usize n = 0, offset = 0;
    for (usize i = 1; i < object.symbol_count() && n < count; ++i) {
        auto symbol = object.symbol(i);
        if (!wanted(symbol))
            continue;
        auto address = layout.symbol_address(object, i, module.m_memory, load.detail);
        if (address.is_error())
            return refuse_elf(load, address.error(), "symbols");
        char* name = module.m_strings + offset;
        __builtin_memcpy(name, symbol.name.characters(), symbol.name.length());
        name[symbol.name.length()] = 0;
        offset += symbol.name.length() + 1;
        module.m_symbols[n++] = { address.value(), symbol.size, name };
    }
    module.m_symbol_count = n;
    return {};
}

// W^X: text RX, rodata R, data RW+NX. Relocation is done, so nothing writes text again.
ErrorOr<void> protect(LoadInfo& load)
{
    auto& memory = load.module->m_memory;
    if (protect_region(memory[ModuleRegion::Text], PageFlags::None).is_error()
        || protect_region(memory[ModuleRegion::Rodata], PageFlags::NoExecute).is_error())
        return refuse(load, Error::with_message(ENOMEM, "cannot apply page permissions"), "cannot apply page permissions");
    return {};
}

ErrorOr<void> apply_params(LoadInfo& load)
{
    // apply() logs which parameter and why, and its Error says why.
    return module_params::apply(load.module->name(), load.params_table, load.params);
}

ErrorOr<void> link_dependencies(LoadInfo& load)
{
    auto& module = *load.module;
    for (auto* dependency : load.resolver->dependencies()) {
        module.m_dependencies[module.m_dependency_count++] = dependency;
        dependency->m_use_count++;
    }
    load.dependencies_taken = true;
    return {};
}

ErrorOr<void> run_init(LoadInfo& load)
{
    auto& module = *load.module;
    // Listed before init runs, so backtraces and log prefixes from init name the module.
    modules::list().append(module);
    load.listed = true;
    modules::set_current(&module);
    for (auto* ctor : load.ctors)
        ctor();
    load.constructed = true;
    int result = load.init.size() ? load.init[0]() : 0;
    modules::set_current(nullptr);
    if (result == 0)
        return {};
    int code = result < 0 ? -result : EINVAL;
    return refuse(load, Error::with_message(code, "module_init failed"), "module_init failed with %d (%s)", result, errno_name(code));
}

// The single unwind ladder: undoes, last first, what the stages recorded.
void unwind(LoadInfo& load) REQUIRES(g_module_mutex)
{
    if (load.module) {
        if (load.constructed)
            run_destructors(*load.module);
        if (load.listed) {
            modules::list().remove(*load.module);
            sweep_leftovers(*load.module);
        }
        if (load.dependencies_taken) {
            for (auto* dependency : load.module->dependencies())
                dependency->m_use_count--;
            load.module->m_dependency_count = 0;
        }
        release(load.module);
        load.module = nullptr;
    }
}

// What a load holds only while it runs, whether it succeeded or not.
void free_load_info(LoadInfo& load)
{
    if (load.decompressed)
        vmalloc::free(load.decompressed);
    load.decompressed = nullptr;
}

// The pipeline: each stage returns at its first refusal, and load_module() unwinds once.
ErrorOr<void> run_stages(LoadInfo& load) REQUIRES(g_module_mutex)
{
    TRY(decompress(load));
    TRY(parse_elf(load));
    TRY(check_modinfo(load));
    TRY(check_modstruct_version(load));
    TRY(plan_layout(load));
    TRY(allocate_module(load));
    TRY(map_memory(load));
    // The resolver links the imports (relocate) and remembers the modules it bound to, for
    // link_dependencies; it lives on this frame, for exactly those stages.
    ReadonlyBytes versions;
    if (auto index = load.object.value().find_section("__versions"); !index.is_error())
        versions = load.object.value().section_data(index.value());
    ImportResolver resolver(load.name, versions);
    load.resolver = &resolver;
    TRY(relocate(load));
    TRY(check_exports(load));
    TRY(check_entry_points(load));
    TRY(check_tables(load));
    TRY(collect_symbols(load));
    TRY(protect(load));
    TRY(apply_params(load));
    TRY(link_dependencies(load));
    load.resolver = nullptr;
    TRY(run_init(load));
    return {};
}

ErrorOr<Module*> load_module(ReadonlyBytes image, StringView params) REQUIRES(g_module_mutex)
{
    LoadInfo load;
    load.image = image;
    load.params = params;
    auto result = run_stages(load);
    load.resolver = nullptr;
    if (result.is_error()) {
        unwind(load);
        free_load_info(load);
        return result.release_error();
    }
    free_load_info(load);

    Module* module = load.module;
    module->m_live = true;
    CommandLine options;
    if (!options.parse(params).is_error() && options.get_bool("selftest") && module->m_suites.size()) {
        log_info("module: %s: running its %zu selftest suite(s)", module->name_cstr(), module->m_suites.size());
        ktest::run_suite_array(module->m_suites.data(), module->m_suites.size());
    }
    auto& memory = module->m_memory;
    log_info("module: loaded %s %s at 0x%llx (%llu KiB: text %llu, rodata %llu, data %llu bytes)", module->name_cstr(),
        module->m_version[0] ? module->m_version : "", (unsigned long long)module->m_base, (unsigned long long)(module->m_size / KiB),
        (unsigned long long)memory[ModuleRegion::Text].size, (unsigned long long)memory[ModuleRegion::Rodata].size,
        (unsigned long long)memory[ModuleRegion::Data].size);
    return module;
}

} // namespace

ErrorOr<Module*> ModuleLoader::load(ReadonlyBytes image, StringView params)
{
    MutexLocker locker(g_module_mutex);
    return load_module(image, params);
}

ErrorOr<void> ModuleLoader::unload(StringView name)
{
    MutexLocker locker(g_module_mutex);
    auto* module = modules::find(name);
    if (!module) {
        log_err("module: %.*s: not loaded", (int)name.length(), name.characters());
        return Error::with_message(ENOENT, "not loaded");
    }
    if (module->use_count() > 0) {
        log_err("module: %.*s: in use by %u module(s)", (int)name.length(), name.characters(), module->use_count());
        return Error::with_message(EBUSY, "in use by other modules");
    }
    modules::set_current(module);
    if (module->m_exit)
        module->m_exit();
    modules::set_current(nullptr);
    run_destructors(*module);
    sweep_leftovers(*module);
    modules::list().remove(*module);
    for (usize i = 0; i < module->m_dependency_count; ++i)
        module->m_dependencies[i]->m_use_count--;
    log_info("module: unloaded %s", module->name_cstr());
    release(module);
    return {};
}
