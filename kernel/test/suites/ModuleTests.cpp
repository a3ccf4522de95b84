// The module loader on the running kernel: loading from the initramfs, dependencies and use
// counts, parameters, W^X, symbolization, and every bad-input refusal with its errno. Each refusal
// must leave nothing loaded and nothing leaked.
#include <arch/Exceptions.h>
#include <crcs.h>
#include <debug/Symbols.h>
#include <lib/elf/ElfObject.h>
#include <lib/elf/ElfTypes.h>
#include <lib/elf/VersionTable.h>
#include <lib/text/Format.h>
#include <log/Log.h>
#include <mm/Kmalloc.h>
#include <mm/MemoryManager.h>
#include <mm/Vmalloc.h>
#include <module/Exports.h>
#include <module/Initramfs.h>
#include <module/ModuleLoader.h>
#include <module/ModuleRegistry.h>
#include <module/ModuleService.h>
#include <pci/Pci.h>
#include <test/KTest.h>
#include <time/Timers.h>

namespace {

// Free pages and heap bytes before and after: a refused or unloaded module must give back all.
// Empty slabs a cache keeps for reuse are not leaks: shrink the heap before each snapshot.
u64 settled_free_pages()
{
    kheap::heap_for_tests().shrink();
    return mm::page_stats().free_pages;
}

struct LeakCheck {
    u64 pages { settled_free_pages() };
    u64 heap { kheap::stats().bytes_in_use };
    u64 vm { vmalloc::pages_in_use() };
    usize modules { modules::count() };
    bool clean() const
    {
        return settled_free_pages() == pages && kheap::stats().bytes_in_use == heap && vmalloc::pages_in_use() == vm
            && modules::count() == modules;
    }
};

#define KEXPECT_NO_LEAK(t, check)                                                                                   \
    do {                                                                                                            \
        if (!(check).clean())                                                                                       \
            (t).fail(__FILE__, __LINE__, "leak: pages %lld, heap bytes %lld, modules %lld",                         \
                (long long)(mm::page_stats().free_pages - (check).pages), (long long)(kheap::stats().bytes_in_use - (check).heap), \
                (long long)(modules::count() - (check).modules));                                                  \
    } while (0)

bool have_initramfs(ktest::Test& t)
{
    if (initramfs::is_available() && !initramfs::root().read_file("lib/modules/hello.ko").is_error())
        return true;
    t.skip("no initramfs with the test modules");
    return false;
}

// A private, writable copy of a module (hello.ko unless named) for corruption.
struct ImageCopy {
    u8* bytes { nullptr };
    usize size { 0 };
    explicit ImageCopy(const char* path = "lib/modules/hello.ko")
    {
        auto image = initramfs::root().read_file(path);
        if (image.is_error())
            return;
        auto buffer = try_kmalloc(image.value().size());
        if (buffer.is_error())
            return;
        bytes = (u8*)buffer.value();
        size = image.value().size();
        __builtin_memcpy(bytes, image.value().data(), size);
    }
    ~ImageCopy() { kfree(bytes); }
    ReadonlyBytes view(usize length) const { return ReadonlyBytes(bytes, length); }
    ReadonlyBytes view() const { return view(size); }
    Elf::FileHeader* header() { return (Elf::FileHeader*)bytes; }
    Elf::SectionHeader* section(usize i) { return (Elf::SectionHeader*)(bytes + header()->section_header_offset) + i; }
    // Finds a byte string in the image (for .modinfo and __versions edits).
    u8* find(const char* text)
    {
        usize n = __builtin_strlen(text);
        for (usize i = 0; i + n <= size; ++i)
            if (__builtin_memcmp(bytes + i, text, n) == 0)
                return bytes + i;
        return nullptr;
    }
    usize section_index(StringView name)
    {
        ElfError error;
        auto object = ElfObject::parse(view(), error);
        if (object.is_error())
            return 0;
        auto index = object.value().find_section(name);
        return index.is_error() ? 0 : index.value();
    }
    // The R_X86_64_64 relocation that fills the pointer at `offset` in section `target`.
    Elf::Rela* pointer_rela(StringView target, u64 offset)
    {
        usize index = section_index(target);
        if (!index)
            return nullptr;
        for (usize i = 0; i < header()->section_header_count; ++i) {
            auto* s = section(i);
            if (s->type != 4 /* SHT_RELA */ || s->info != index)
                continue;
            auto* relas = (Elf::Rela*)(bytes + s->offset);
            for (usize n = 0; n < s->size / sizeof(Elf::Rela); ++n)
                if (relas[n].offset == offset && (u32)relas[n].info == 1 /* R_X86_64_64 */)
                    return &relas[n];
        }
        return nullptr;
    }
    // Makes the pointer at `offset` in `target` load as `value`: symbol 0 (value 0) plus an addend.
    bool set_pointer(StringView target, u64 offset, u64 value)
    {
        auto* rela = pointer_rela(target, offset);
        if (!rela)
            return false;
        rela->info = 1; // symbol 0, R_X86_64_64
        rela->addend = (i64)value;
        return true;
    }
    // First relocation of the first SHT_RELA section that targets an allocated section.
    Elf::Rela* first_text_rela()
    {
        for (usize i = 0; i < header()->section_header_count; ++i) {
            auto* s = section(i);
            if (s->type == 4 /* SHT_RELA */ && s->size >= sizeof(Elf::Rela) && (section(s->info)->flags & 2 /* ALLOC */))
                return (Elf::Rela*)(bytes + s->offset);
        }
        return nullptr;
    }
};

// Counts the log records that contain `needle`, through a console that sees the whole ring.
const char* g_log_needle = nullptr;
usize g_log_hits = 0;
void count_needle(const char* text, usize length)
{
    usize n = __builtin_strlen(g_log_needle);
    for (usize i = 0; i + n <= length; ++i) {
        if (__builtin_memcmp(text + i, g_log_needle, n) == 0) {
            ++g_log_hits;
            return;
        }
    }
}
usize count_in_log(const char* needle)
{
    g_log_needle = needle;
    g_log_hits = 0;
    klog::replay_ring(count_needle);
    return g_log_hits;
}

int load_error(ReadonlyBytes image, StringView params = {})
{
    auto result = ModuleLoader::load(image, params);
    if (!result.is_error()) {
        (void)ModuleLoader::unload(result.value()->name());
        return 0;
    }
    return result.error().code();
}

// A zstd frame of raw blocks around `data`: how a test makes a .ko.zst without a compressor.
usize wrap_in_zstd(ReadonlyBytes data, u8* out, usize capacity)
{
    usize n = 0;
    auto put = [&](u8 byte) {
        if (n < capacity)
            out[n] = byte;
        ++n;
    };
    for (u8 b : { 0x28, 0xB5, 0x2F, 0xFD, 0xE0 }) // magic, single segment, 8-byte content size
        put(b);
    for (int i = 0; i < 8; ++i)
        put((u8)((u64)data.size() >> (8 * i)));
    usize offset = 0;
    do {
        usize chunk = data.size() - offset < 128 * KiB ? data.size() - offset : 128 * KiB;
        bool last = offset + chunk == data.size();
        u32 header = (u32)(last ? 1 : 0) | (0 << 1) | (u32)(chunk << 3);
        put((u8)header);
        put((u8)(header >> 8));
        put((u8)(header >> 16));
        for (usize i = 0; i < chunk; ++i)
            put(data[offset + i]);
        offset += chunk;
    } while (offset < data.size());
    return n;
}

void test_kernel_exports_carry_abi_crcs(ktest::Test& t)
{
    auto* e = kexports::find("kmalloc");
    KASSERT_TRUE(t, e != nullptr);
    KEXPECT_EQ(t, e->crc, (u32)HOMEOS_CRC_kmalloc);
    KEXPECT_EQ(t, (u64)e->address, (u64)&kmalloc);
    KEXPECT_TRUE(t, kexports::all().size() >= 40);
    // Only explicitly exported functions are visible: kernel internals are not.
    KEXPECT_TRUE(t, kexports::find("kernel_main") == nullptr);
    KEXPECT_TRUE(t, kexports::find("panic") == nullptr);
}

void test_initramfs_has_module_index(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    KEXPECT_FALSE(t, initramfs::root().read_file("lib/modules/modules.dep").is_error());
    KEXPECT_FALSE(t, initramfs::root().read_file("lib/modules/modules.alias").is_error());
    KEXPECT_TRUE(t, initramfs::stats().files >= 3);
}

void test_load_and_unload_hello(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    LeakCheck check;
    auto loaded = module_service::load_by_name("hello");
    KASSERT_TRUE(t, !loaded.is_error());
    Module* module = loaded.value();
    KEXPECT_TRUE(t, modules::find("hello") == module);
    KEXPECT_TRUE(t, module->version() == "1.0");
    KEXPECT_TRUE(t, module->page_count() >= 3);
    Module* owner = nullptr;
    KEXPECT_TRUE(t, modules::find_export("hello_add", &owner) != nullptr);
    KEXPECT_TRUE(t, owner == module);
    KASSERT_TRUE(t, !ModuleLoader::unload("hello").is_error());
    KEXPECT_TRUE(t, modules::find("hello") == nullptr);
    KEXPECT_NO_LEAK(t, check);
}

void test_load_unload_loop_leaks_nothing(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    LeakCheck check;
    for (int i = 0; i < 25; ++i) {
        auto loaded = module_service::load_by_name("hello", "count=10");
        KASSERT_TRUE(t, !loaded.is_error());
        KASSERT_TRUE(t, !ModuleLoader::unload("hello").is_error());
    }
    KEXPECT_NO_LEAK(t, check);
}

void test_exported_function_callable(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    KASSERT_TRUE(t, !module_service::load_by_name("hello").is_error());
    auto* e = modules::find_export("hello_add", nullptr);
    KASSERT_TRUE(t, e != nullptr);
    auto add = (int (*)(int, int))e->address;
    KEXPECT_EQ(t, add(20, 22), 42);
    KEXPECT_FALSE(t, ModuleLoader::unload("hello").is_error());
}

void test_section_permissions_w_xor_x(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    KASSERT_TRUE(t, !module_service::load_by_name("hello").is_error());
    auto* module = modules::find("hello");
    auto* e = modules::find_export("hello_add", nullptr);
    auto text = mm::translate(VirtAddr((u64)e->address));
    KASSERT_TRUE(t, !text.is_error());
    KEXPECT_FALSE(t, has_flag(text.value().flags, PageFlags::Writable));
    KEXPECT_FALSE(t, has_flag(text.value().flags, PageFlags::NoExecute));
    // The export record itself lives in rodata: read-only and NX.
    auto rodata = mm::translate(VirtAddr((u64)e));
    KASSERT_TRUE(t, !rodata.is_error());
    KEXPECT_FALSE(t, has_flag(rodata.value().flags, PageFlags::Writable));
    KEXPECT_TRUE(t, has_flag(rodata.value().flags, PageFlags::NoExecute));
    // The last page is data: writable and NX. The page after the module is an unmapped guard.
    auto data = mm::translate(VirtAddr(module->base() + module->size() - PAGE_SIZE));
    KASSERT_TRUE(t, !data.is_error());
    KEXPECT_TRUE(t, has_flag(data.value().flags, PageFlags::Writable));
    KEXPECT_TRUE(t, has_flag(data.value().flags, PageFlags::NoExecute));
    KEXPECT_TRUE(t, mm::translate(VirtAddr(module->base() + module->size())).is_error());
    KEXPECT_TRUE(t, module->base() >= 0xffffffff80000000ull);
    KEXPECT_FALSE(t, ModuleLoader::unload("hello").is_error());
}

void test_backtrace_symbolizes_module_code(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    KASSERT_TRUE(t, !module_service::load_by_name("hello").is_error());
    auto* e = modules::find_export("hello_add", nullptr);
    char buffer[128];
    symbols::describe((u64)e->address + 2, buffer, sizeof(buffer));
    KEXPECT_TRUE(t, StringView(buffer) == "hello_add+0x2 [hello]");
    KEXPECT_FALSE(t, ModuleLoader::unload("hello").is_error());
}

bool contains_text(const char* haystack, const char* needle)
{
    usize n = __builtin_strlen(needle);
    for (const char* p = haystack; *p; ++p)
        if (__builtin_memcmp(p, needle, n) == 0)
            return true;
    return false;
}

void test_exception_in_module_is_symbolized(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    KASSERT_TRUE(t, !module_service::load_by_name("hello").is_error());
    auto* e = modules::find_export("hello_trap", nullptr);
    KASSERT_TRUE(t, e != nullptr);
    static void (*trap)() = nullptr;
    trap = (void (*)())e->address;
    ExceptionCatch c;
    if (ksetjmp(&c.jump) == 0) {
        exceptions::arm(c, VECTOR_UD);
        trap();
        exceptions::disarm();
    }
    KEXPECT_TRUE(t, c.caught);
    // The faulting RIP is named from the module's symbol table: "hello_trap+0x.. [hello]".
    if (!contains_text(c.report, "hello_trap+0x") || !contains_text(c.report, "[hello]"))
        t.fail(__FILE__, __LINE__, "report lacks the module symbol; it starts: %.200s", c.report);
    KEXPECT_FALSE(t, ModuleLoader::unload("hello").is_error());
}

void test_unload_sweeps_leftover_timers(ktest::Test& t)
{
    // hello leak_timer=1 arms a periodic timer in its .bss from module_exit and never cancels it.
    if (!have_initramfs(t))
        return;
    LeakCheck check;
    KASSERT_TRUE(t, !module_service::load_by_name("hello", "leak_timer=1").is_error());
    KASSERT_TRUE(t, !ModuleLoader::unload("hello").is_error());
    // Were the timer still armed, its next tick would run freed module code and fault.
    timers::sleep_ns(20ull * 1000 * 1000);
    KEXPECT_NO_LEAK(t, check);
}

void test_dependencies_and_use_counts(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    LeakCheck check;
    // hello_user imports hello_add; modules.dep makes hello load first.
    auto user = module_service::load_by_name("hello_user");
    KASSERT_TRUE(t, !user.is_error());
    auto* hello = modules::find("hello");
    KASSERT_TRUE(t, hello != nullptr);
    KEXPECT_EQ(t, hello->use_count(), 1u);
    KEXPECT_EQ(t, user.value()->dependencies().size(), (usize)1);
    auto busy = ModuleLoader::unload("hello");
    KEXPECT_TRUE(t, busy.is_error() && busy.error().code() == EBUSY);
    KEXPECT_FALSE(t, ModuleLoader::unload("hello_user").is_error());
    KEXPECT_EQ(t, hello->use_count(), 0u);
    KEXPECT_FALSE(t, ModuleLoader::unload("hello").is_error());
    KEXPECT_NO_LEAK(t, check);
}

void test_unload_unknown_is_enoent(ktest::Test& t)
{
    auto result = ModuleLoader::unload("no_such_module");
    KASSERT_TRUE(t, result.is_error());
    KEXPECT_EQ(t, result.error().code(), (int)ENOENT);
}

void test_parameters_typed_and_validated(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    LeakCheck check;
    KEXPECT_EQ(t, load_error(initramfs::root().read_file("lib/modules/hello.ko").value(), "count=5 verbose=1 greeting=hey"), 0);
    auto image = initramfs::root().read_file("lib/modules/hello.ko").value();
    KEXPECT_EQ(t, load_error(image, "count=500"), (int)EINVAL);     // out of range
    KEXPECT_EQ(t, load_error(image, "count=-1"), (int)EINVAL);      // below the minimum
    KEXPECT_EQ(t, load_error(image, "count=abc"), (int)EINVAL);     // not a number
    KEXPECT_EQ(t, load_error(image, "verbose=maybe"), (int)EINVAL); // not a boolean
    KEXPECT_EQ(t, load_error(image, "nonexistent=1"), (int)EINVAL); // unknown
    KEXPECT_EQ(t, load_error(image, "greeting=\"this greeting is far longer than thirty-two bytes\""), (int)EINVAL);
    KEXPECT_NO_LEAK(t, check);
}

void test_init_failure_unwinds(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    LeakCheck check;
    auto image = initramfs::root().read_file("lib/modules/hello.ko").value();
    KEXPECT_EQ(t, load_error(image, "fail_init=1"), (int)EIO);
    KEXPECT_TRUE(t, modules::find("hello") == nullptr);
    KEXPECT_NO_LEAK(t, check);
}

void test_init_failure_runs_destructors(ktest::Test& t)
{
    // hello_user fail_init=1: its constructor ran, then module_init fails. Its destructors (one
    // registered with atexit(), one plain .fini_array entry) must run before the unwind.
    if (!have_initramfs(t))
        return;
    LeakCheck check;
    char params[64], atexit_line[64], fini_line[64];
    u64 tag = klog::now_ns();
    format(params, sizeof(params), "fail_init=1 tag=%llu", (unsigned long long)tag);
    format(atexit_line, sizeof(atexit_line), "hello_user: destructor ran tag=%llu", (unsigned long long)tag);
    format(fini_line, sizeof(fini_line), "hello_user: fini_array ran tag=%llu", (unsigned long long)tag);
    auto result = module_service::load_by_name("hello_user", StringView(params));
    if (!result.is_error()) {
        t.fail(__FILE__, __LINE__, "hello_user fail_init=1 loaded");
        (void)ModuleLoader::unload("hello_user");
        (void)ModuleLoader::unload("hello");
        return;
    }
    KEXPECT_EQ(t, result.error().code(), (int)EIO);
    KEXPECT_TRUE(t, StringView(result.error().message()) == "module_init failed");
    KEXPECT_EQ(t, count_in_log(atexit_line), (usize)1);
    KEXPECT_EQ(t, count_in_log(fini_line), (usize)1);
    KEXPECT_TRUE(t, modules::find("hello_user") == nullptr);
    auto* hello = modules::find("hello"); // loaded first, from modules.dep
    KASSERT_TRUE(t, hello != nullptr);
    KEXPECT_EQ(t, hello->use_count(), 0u);
    KEXPECT_FALSE(t, ModuleLoader::unload("hello").is_error());
    KEXPECT_NO_LEAK(t, check);
}

void test_entry_points_outside_text_refused(ktest::Test& t)
{
    // Each table the loader calls through, pointed at what would crash it: a non-canonical
    // pattern, NULL, a never-mapped page and kernel text (not the module's own).
    if (!have_initramfs(t))
        return;
    static const char* const tables[] = { ".homeos.init", ".homeos.exit", ".init_array", ".fini_array" };
    const u64 targets[] = { 0x4141414141414141ull, 0, 0xffffc00000000000ull, (u64)&kmalloc };
    LeakCheck check;
    for (auto* table : tables) {
        for (u64 target : targets) {
            ImageCopy copy;
            if (!copy.set_pointer(table, 0, target)) {
                t.fail(__FILE__, __LINE__, "hello.ko has no R_X86_64_64 filling %s", table);
                continue;
            }
            auto result = ModuleLoader::load(copy.view(), {});
            if (!result.is_error()) {
                t.fail(__FILE__, __LINE__, "%s entry 0x%llx was accepted", table, (unsigned long long)target);
                (void)ModuleLoader::unload("hello");
                continue;
            }
            KEXPECT_EQ(t, result.error().code(), (int)ENOEXEC);
            KEXPECT_TRUE(t, StringView(result.error().message()) == "an entry point is outside the module's text");
        }
    }
    KEXPECT_TRUE(t, modules::find("hello") == nullptr);
    KEXPECT_NO_LEAK(t, check);
}

void test_pointers_outside_module_refused(ktest::Test& t)
{
    // The loader reads export names and writes parameter values: those pointers must stay in the
    // module. hello's .homeos.exports entry 0 is {name, address, ...}; .homeos.params entry 0 is
    // {name, description, type, capacity, value, ...}.
    if (!have_initramfs(t))
        return;
    struct Case {
        const char* table;
        u64 offset;
        const char* reason;
    };
    static const Case cases[] = {
        { ".homeos.exports", 0, "an export points outside the module" },
        { ".homeos.exports", 8, "an export points outside the module" },
        { ".homeos.params", 0, "a parameter points outside the module's data" },
        { ".homeos.params", 24, "a parameter points outside the module's data" },
        { ".ktest_suites", 0, "a selftest suite points outside the module" },
    };
    LeakCheck check;
    for (auto& c : cases) {
        ImageCopy copy;
        if (!copy.set_pointer(c.table, c.offset, (u64)&kmalloc)) {
            t.fail(__FILE__, __LINE__, "hello.ko has no R_X86_64_64 at %s+%llu", c.table, (unsigned long long)c.offset);
            continue;
        }
        auto result = ModuleLoader::load(copy.view(), {});
        if (!result.is_error()) {
            t.fail(__FILE__, __LINE__, "a pointer at %s+%llu into kernel text was accepted", c.table, (unsigned long long)c.offset);
            (void)ModuleLoader::unload("hello");
            continue;
        }
        KEXPECT_EQ(t, result.error().code(), (int)ENOEXEC);
        if (StringView(result.error().message()) != c.reason)
            t.fail(__FILE__, __LINE__, "%s+%llu: reason \"%s\", expected \"%s\"", c.table, (unsigned long long)c.offset,
                result.error().message(), c.reason);
    }
    KEXPECT_NO_LEAK(t, check);
}

void test_duplicate_export_refused(ktest::Test& t)
{
    // A renamed copy of hello exports hello_add too: a later module would bind to either.
    if (!have_initramfs(t))
        return;
    KASSERT_TRUE(t, !module_service::load_by_name("hello").is_error());
    Module* hello = modules::find("hello");
    ImageCopy copy;
    u8* name = copy.find("name=hello");
    KASSERT_TRUE(t, name != nullptr);
    name[9] = 'p'; // "hellp"
    LeakCheck check;
    auto result = ModuleLoader::load(copy.view(), {});
    if (!result.is_error()) {
        // Leave nothing loaded for the cases after this one.
        t.fail(__FILE__, __LINE__, "the renamed copy loaded beside hello");
        (void)ModuleLoader::unload("hellp");
        (void)ModuleLoader::unload("hello");
        return;
    }
    KEXPECT_EQ(t, result.error().code(), (int)ENOEXEC);
    KEXPECT_TRUE(t, StringView(result.error().message()) == "exports a duplicate symbol");
    KEXPECT_TRUE(t, modules::find("hellp") == nullptr);
    // The log names both modules.
    KEXPECT_TRUE(t, count_in_log("hellp: exports duplicate symbol 'hello_add' (owned by hello)") >= 1);
    Module* owner = nullptr;
    KEXPECT_TRUE(t, modules::find_export("hello_add", &owner) != nullptr && owner == hello);
    KEXPECT_NO_LEAK(t, check);
    KEXPECT_FALSE(t, ModuleLoader::unload("hello").is_error());
    // Alone, the renamed copy loads: the refusal was about the duplicate, not the copy.
    KEXPECT_EQ(t, load_error(copy.view()), 0);
    KEXPECT_TRUE(t, modules::find("hellp") == nullptr);
}

void test_inter_module_crc_checked(ktest::Test& t)
{
    // hello with every export's CRC changed: hello_user, built against the real declaration,
    // must be refused, EBADMSG if its __versions records hello_add, ENOPKG if it does not.
    if (!have_initramfs(t))
        return;
    ImageCopy hello;
    usize index = hello.section_index(".homeos.exports");
    KASSERT_TRUE(t, index != 0);
    auto* exports = (homeos_export*)(hello.bytes + hello.section(index)->offset);
    usize count = hello.section(index)->size / sizeof(homeos_export);
    KASSERT_TRUE(t, count >= 1);
    for (usize i = 0; i < count; ++i)
        exports[i].crc ^= 0x5a5a5a5a;
    ImageCopy user("lib/modules/hello_user.ko");
    usize versions_index = user.section_index("__versions");
    KASSERT_TRUE(t, versions_index != 0);
    VersionTable versions(ReadonlyBytes(user.bytes + user.section(versions_index)->offset, user.section(versions_index)->size));
    int expected = versions.find("hello_add").is_error() ? (int)ENOPKG : (int)EBADMSG;

    KASSERT_TRUE(t, !ModuleLoader::load(hello.view(), {}).is_error());
    LeakCheck check;
    auto result = ModuleLoader::load(user.view(), {});
    if (!result.is_error()) {
        t.fail(__FILE__, __LINE__, "hello_user bound to an export whose CRC differs from its own");
        (void)ModuleLoader::unload("hello_user");
        (void)ModuleLoader::unload("hello");
        return;
    }
    KEXPECT_EQ(t, result.error().code(), expected);
    KEXPECT_TRUE(t, StringView(result.error().message()).starts_with(expected == (int)EBADMSG
            ? "import disagrees about the version of a module export" : "no CRC for a versioned module export"));
    KEXPECT_EQ(t, modules::find("hello")->use_count(), 0u);
    KEXPECT_NO_LEAK(t, check);
    KEXPECT_FALSE(t, ModuleLoader::unload("hello").is_error());
}

void test_refusal_reasons_belong_to_the_call(ktest::Test& t)
{
    // Each Error says why it failed, and a later call's reason is its own.
    if (!have_initramfs(t))
        return;
    auto image = initramfs::root().read_file("lib/modules/hello.ko").value();
    auto bad_param = ModuleLoader::load(image, "count=500");
    KASSERT_TRUE(t, bad_param.is_error());
    KEXPECT_TRUE(t, StringView(bad_param.error().message()) == "outside the parameter's allowed range");
    auto missing = module_service::load_by_name("no_such_module");
    KASSERT_TRUE(t, missing.is_error());
    KEXPECT_EQ(t, missing.error().code(), (int)ENOENT);
    KEXPECT_TRUE(t, StringView(missing.error().message()) == "not found in /lib/modules");
    auto not_loaded = ModuleLoader::unload("no_such_module");
    KASSERT_TRUE(t, not_loaded.is_error());
    KEXPECT_TRUE(t, StringView(not_loaded.error().message()) == "not loaded");
}

void test_duplicate_name_refused(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    auto image = initramfs::root().read_file("lib/modules/hello.ko").value();
    auto first = ModuleLoader::load(image, {});
    KASSERT_TRUE(t, !first.is_error());
    LeakCheck check;
    auto second = ModuleLoader::load(image, {});
    KEXPECT_TRUE(t, second.is_error() && second.error().code() == EEXIST);
    KEXPECT_NO_LEAK(t, check);
    KEXPECT_FALSE(t, ModuleLoader::unload("hello").is_error());
}

void test_truncated_elf(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    ImageCopy copy;
    LeakCheck check;
    KEXPECT_EQ(t, load_error(copy.view(10)), (int)ENOEXEC);
    KEXPECT_EQ(t, load_error(copy.view(63)), (int)ENOEXEC);
    KEXPECT_EQ(t, load_error(copy.view(copy.size / 2)), (int)ENOEXEC);
    KEXPECT_EQ(t, load_error(copy.view(copy.size - 1)), (int)ENOEXEC);
    KEXPECT_NO_LEAK(t, check);
}

void test_wrong_machine_and_type(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    LeakCheck check;
    {
        ImageCopy copy;
        copy.header()->machine = 3; // EM_386
        KEXPECT_EQ(t, load_error(copy.view()), (int)ENOEXEC);
    }
    {
        ImageCopy copy;
        copy.header()->type = 2; // ET_EXEC
        KEXPECT_EQ(t, load_error(copy.view()), (int)ENOEXEC);
    }
    {
        ImageCopy copy;
        copy.bytes[4] = 1; // ELFCLASS32
        KEXPECT_EQ(t, load_error(copy.view()), (int)ENOEXEC);
    }
    KEXPECT_NO_LEAK(t, check);
}

void test_section_offset_past_end(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    ImageCopy copy;
    LeakCheck check;
    usize index = copy.section_index(".text");
    KASSERT_TRUE(t, index != 0);
    copy.section(index)->offset = copy.size + 4096;
    copy.section(index)->size = 16;
    KEXPECT_EQ(t, load_error(copy.view()), (int)ENOEXEC);
    KEXPECT_NO_LEAK(t, check);
}

void test_symbol_index_out_of_range(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    ImageCopy copy;
    LeakCheck check;
    auto* rela = copy.first_text_rela();
    KASSERT_TRUE(t, rela != nullptr);
    rela->info = ((u64)0xFFFFFF << 32) | (rela->info & 0xFFFFFFFF);
    KEXPECT_EQ(t, load_error(copy.view()), (int)ENOEXEC);
    KEXPECT_NO_LEAK(t, check);
}

void test_unknown_relocation_type(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    ImageCopy copy;
    LeakCheck check;
    auto* rela = copy.first_text_rela();
    KASSERT_TRUE(t, rela != nullptr);
    rela->info = (rela->info & ~0xFFFFFFFFull) | 37; // R_X86_64_GOTPC32_TLSDESC: not supported
    KEXPECT_EQ(t, load_error(copy.view()), (int)ENOEXEC);
    KEXPECT_NO_LEAK(t, check);
}

void test_overflowing_pc32(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    ImageCopy copy;
    LeakCheck check;
    // Find a PC32/PLT32 relocation and push its addend beyond +-2 GiB.
    bool found = false;
    for (usize i = 0; i < copy.header()->section_header_count && !found; ++i) {
        auto* s = copy.section(i);
        if (s->type != 4 || !(copy.section(s->info)->flags & 2))
            continue;
        auto* relas = (Elf::Rela*)(copy.bytes + s->offset);
        for (usize j = 0; j < s->size / sizeof(Elf::Rela); ++j) {
            u32 type = (u32)relas[j].info;
            if (type == 2 || type == 4) {
                relas[j].addend = (i64)1 << 40;
                found = true;
                break;
            }
        }
    }
    KASSERT_TRUE(t, found);
    KEXPECT_EQ(t, load_error(copy.view()), (int)ERANGE);
    KEXPECT_NO_LEAK(t, check);
}

void test_unresolved_symbol(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    ImageCopy copy;
    LeakCheck check;
    // Rename the import in the string table (the first occurrence is in .strtab or __versions;
    // rename every occurrence so neither the symbol nor its CRC entry matches).
    for (u8* p = copy.find("homeos_monotonic_ns"); p; p = copy.find("homeos_monotonic_ns"))
        p[7] = 'X';
    auto result = ModuleLoader::load(copy.view(), {});
    KASSERT_TRUE(t, result.is_error());
    KEXPECT_EQ(t, result.error().code(), (int)ENOENT);
    KEXPECT_TRUE(t, StringView(result.error().message()) == "unresolved symbol");
    KEXPECT_NO_LEAK(t, check);
}

void test_crc_mismatch(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    ImageCopy copy;
    LeakCheck check;
    usize index = copy.section_index("__versions");
    KASSERT_TRUE(t, index != 0);
    auto* entries = (homeos_version_entry*)(copy.bytes + copy.section(index)->offset);
    entries[0].crc ^= 0x1;
    auto result = ModuleLoader::load(copy.view(), {});
    KASSERT_TRUE(t, result.is_error());
    KEXPECT_EQ(t, result.error().code(), (int)EBADMSG);
    KEXPECT_TRUE(t, StringView(result.error().message()) == "import disagrees about the version of a kernel symbol");
    KEXPECT_NO_LEAK(t, check);
}

void test_missing_versions(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    ImageCopy copy;
    LeakCheck check;
    usize index = copy.section_index("__versions");
    KASSERT_TRUE(t, index != 0);
    __builtin_memset(copy.bytes + copy.section(index)->offset, 0, copy.section(index)->size);
    KEXPECT_EQ(t, load_error(copy.view()), ENOPKG);
    KEXPECT_NO_LEAK(t, check);
}

void test_missing_modstruct_version_refused(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    ImageCopy copy;
    LeakCheck check;
    // Drop only the homeos_module_layout entry (rename it inside __versions): the module would
    // otherwise load without the check that covers the section structs.
    usize index = copy.section_index("__versions");
    KASSERT_TRUE(t, index != 0);
    auto* entries = (homeos_version_entry*)(copy.bytes + copy.section(index)->offset);
    usize count = copy.section(index)->size / sizeof(homeos_version_entry);
    bool renamed = false;
    for (usize i = 0; i < count; ++i) {
        if (StringView(entries[i].name) == "homeos_module_layout") {
            entries[i].name[0] = 'X';
            renamed = true;
        }
    }
    KASSERT_TRUE(t, renamed);
    auto result = ModuleLoader::load(copy.view(), {});
    KASSERT_TRUE(t, result.is_error());
    KEXPECT_EQ(t, result.error().code(), (int)ENOPKG);
    KEXPECT_TRUE(t, StringView(result.error().message()) == "no CRC for homeos_module_layout in __versions");
    KEXPECT_NO_LEAK(t, check);
}

void test_newer_abi_minor_refused(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    ImageCopy copy;
    LeakCheck check;
    static_assert(HOMEOS_ABI_MINOR < 9);
    u8* abi = copy.find("abi=" HOMEOS_ABI_VERSION_STRING);
    KASSERT_TRUE(t, abi != nullptr);
    u8* minor = abi + __builtin_strlen("abi=" HOMEOS_STRINGIFY(HOMEOS_ABI_MAJOR) ".");
    minor[0] = '9';
    auto result = ModuleLoader::load(copy.view(), {});
    KASSERT_TRUE(t, result.is_error());
    KEXPECT_EQ(t, result.error().code(), (int)EPROTO);
    KEXPECT_TRUE(t, StringView(result.error().message()) == "built for a newer ABI minor version");
    KEXPECT_NO_LEAK(t, check);
}

void test_abi_major_mismatch_refused(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    ImageCopy copy;
    LeakCheck check;
    u8* abi = copy.find("abi=" HOMEOS_ABI_VERSION_STRING);
    KASSERT_TRUE(t, abi != nullptr);
    abi[4] = abi[4] == '9' ? '1' : (u8)(abi[4] + 1); // another major, same length
    KEXPECT_EQ(t, load_error(copy.view()), (int)EPROTONOSUPPORT);
    KEXPECT_NO_LEAK(t, check);
}

void test_older_abi_minor_accepted(ktest::Test& t)
{
    // A module built for M.n loads on M.k with k >= n: M.k on M.k is the boundary case.
    if (!have_initramfs(t))
        return;
    KEXPECT_EQ(t, load_error(initramfs::root().read_file("lib/modules/hello.ko").value()), 0);
}

void test_vermagic_mismatch_refused(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    ImageCopy copy;
    LeakCheck check;
    u8* magic = copy.find("vermagic=" HOMEOS_VERMAGIC);
    KASSERT_TRUE(t, magic != nullptr);
    magic[__builtin_strlen("vermagic=" HOMEOS_VERMAGIC) - 1] ^= 0x20; // flip the case of its last letter
    KEXPECT_EQ(t, load_error(copy.view()), (int)EKEYREJECTED);
    KEXPECT_NO_LEAK(t, check);
}

void test_compressed_module_loads(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    auto image = initramfs::root().read_file("lib/modules/hello.ko").value();
    usize capacity = image.size() + 64 + image.size() / 1000;
    auto buffer = try_kmalloc(capacity);
    KASSERT_TRUE(t, !buffer.is_error());
    usize size = wrap_in_zstd(image, (u8*)buffer.value(), capacity);
    LeakCheck check;
    KEXPECT_EQ(t, load_error(ReadonlyBytes((u8*)buffer.value(), size)), 0);
    KEXPECT_NO_LEAK(t, check);
    kfree(buffer.value());
}

void test_corrupt_zstd_module_refused(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    auto image = initramfs::root().read_file("lib/modules/hello.ko").value();
    usize capacity = image.size() + 64 + image.size() / 1000;
    auto buffer = try_kmalloc(capacity);
    KASSERT_TRUE(t, !buffer.is_error());
    u8* bytes = (u8*)buffer.value();
    usize size = wrap_in_zstd(image, bytes, capacity);
    LeakCheck check;
    // A block claiming to be larger than the frame: corrupt framing.
    bytes[13] = 0xFF;
    bytes[14] = 0xFF;
    bytes[15] = 0x3F;
    KEXPECT_NE(t, load_error(ReadonlyBytes(bytes, size)), 0);
    // Truncated frame.
    usize again = wrap_in_zstd(image, bytes, capacity);
    KEXPECT_NE(t, load_error(ReadonlyBytes(bytes, again / 2)), 0);
    KEXPECT_NO_LEAK(t, check);
    kfree(buffer.value());
}

void test_truncated_cpio_refused(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    // A valid zstd frame around half a cpio archive: the zstd layer is fine, the cpio is not.
    static const char cpio_start[] = "070701000000010000A1A4000000000000000000000001000000000000000A00000000000000000000000000000000"
                                     "0000000B00000000hello.txt";
    auto buffer = try_kmalloc(512);
    KASSERT_TRUE(t, !buffer.is_error());
    usize size = wrap_in_zstd(ReadonlyBytes((const u8*)cpio_start, sizeof(cpio_start) - 1), (u8*)buffer.value(), 512);
    LeakCheck check;
    RamTree* before = &initramfs::root();
    auto result = initramfs::unpack(ReadonlyBytes((u8*)buffer.value(), size));
    KEXPECT_TRUE(t, result.is_error());
    KEXPECT_TRUE(t, &initramfs::root() == before);
    KEXPECT_FALSE(t, initramfs::root().read_file("lib/modules/hello.ko").is_error()); // the old root survives
    KEXPECT_NO_LEAK(t, check);
    kfree(buffer.value());
}

void test_corrupt_initramfs_refused(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    static const u8 garbage[] = { 0x28, 0xB5, 0x2F, 0xFD, 0x24, 0x10, 0x05, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x01 };
    LeakCheck check;
    KEXPECT_TRUE(t, initramfs::unpack(ReadonlyBytes(garbage, sizeof(garbage))).is_error());
    KEXPECT_TRUE(t, initramfs::unpack(ReadonlyBytes(garbage, 3)).is_error());
    KEXPECT_NO_LEAK(t, check);
}

void test_syscalls_linux_semantics(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    auto image = initramfs::root().read_file("lib/modules/hello.ko").value();
    KEXPECT_EQ(t, sys_init_module(nullptr, 10, nullptr), (long)-EINVAL);
    KEXPECT_EQ(t, sys_init_module(image.data(), image.size(), "count=1"), 0L);
    KEXPECT_EQ(t, sys_init_module(image.data(), image.size(), ""), (long)-EEXIST);
    KEXPECT_EQ(t, sys_delete_module("hello", 0x80000000u), (long)-EINVAL);
    KEXPECT_EQ(t, sys_delete_module("hello", 0), 0L);
    KEXPECT_EQ(t, sys_delete_module("hello", 0), (long)-ENOENT);
    KEXPECT_EQ(t, sys_finit_module_path("lib/modules/hello.ko", "", 0), 0L);
    KEXPECT_EQ(t, sys_delete_module("hello", 0), 0L);
    // A plain .ko declared compressed, and unknown flags, are refused.
    KEXPECT_EQ(t, sys_finit_module_path("lib/modules/hello.ko", "", MODULE_INIT_COMPRESSED_FILE), (long)-EINVAL);
    KEXPECT_EQ(t, sys_finit_module_path("lib/modules/hello.ko", "", 0x100), (long)-EINVAL);
    KEXPECT_EQ(t, sys_finit_module_path("lib/modules/none.ko", "", 0), (long)-ENOENT);
}

void test_modalias_format_and_match(ktest::Test& t)
{
    homeos_pci_device d {};
    d.vendor = 0x1AF4;
    d.device = 0x1005;
    d.subvendor = 0x1AF4;
    d.subdevice = 0x0004;
    d.class_code = 0x00FF00;
    char alias[64];
    pci::format_modalias(d, alias, sizeof(alias));
    KEXPECT_TRUE(t, StringView(alias) == "pci:v00001AF4d00001005sv00001AF4sd00000004bc00scFFi00");
    homeos_pci_device_id exact { 0x1AF4, 0x1005, HOMEOS_PCI_ANY_ID, HOMEOS_PCI_ANY_ID, 0, 0, 0 };
    homeos_pci_device_id other { 0x8086, 0x100E, HOMEOS_PCI_ANY_ID, HOMEOS_PCI_ANY_ID, 0, 0, 0 };
    homeos_pci_device_id by_class { HOMEOS_PCI_ANY_ID, HOMEOS_PCI_ANY_ID, HOMEOS_PCI_ANY_ID, HOMEOS_PCI_ANY_ID, 0x00FF00, 0xFFFF00, 0 };
    KEXPECT_TRUE(t, pci::id_matches(exact, d));
    KEXPECT_FALSE(t, pci::id_matches(other, d));
    KEXPECT_TRUE(t, pci::id_matches(by_class, d));
}

void test_pci_enumerated(ktest::Test& t)
{
    KEXPECT_TRUE(t, pci::devices().size() >= 3); // q35: host bridge, LPC, SMBus, VGA...
    bool host_bridge = false;
    for (auto& d : pci::devices())
        host_bridge |= d.bus == 0 && d.slot == 0 && (d.class_code >> 16) == 0x06;
    KEXPECT_TRUE(t, host_bridge);
}

} // namespace

KTEST_SUITE(modules,
    KTEST_CASE(test_kernel_exports_carry_abi_crcs),
    KTEST_CASE(test_initramfs_has_module_index),
    KTEST_CASE(test_load_and_unload_hello),
    KTEST_CASE(test_load_unload_loop_leaks_nothing),
    KTEST_CASE(test_exported_function_callable),
    KTEST_CASE(test_section_permissions_w_xor_x),
    KTEST_CASE(test_backtrace_symbolizes_module_code),
    KTEST_CASE(test_exception_in_module_is_symbolized),
    KTEST_CASE(test_unload_sweeps_leftover_timers),
    KTEST_CASE(test_dependencies_and_use_counts),
    KTEST_CASE(test_unload_unknown_is_enoent),
    KTEST_CASE(test_parameters_typed_and_validated),
    KTEST_CASE(test_init_failure_unwinds),
    KTEST_CASE(test_init_failure_runs_destructors),
    KTEST_CASE(test_entry_points_outside_text_refused),
    KTEST_CASE(test_pointers_outside_module_refused),
    KTEST_CASE(test_duplicate_export_refused),
    KTEST_CASE(test_inter_module_crc_checked),
    KTEST_CASE(test_refusal_reasons_belong_to_the_call),
    KTEST_CASE(test_duplicate_name_refused),
    KTEST_CASE(test_truncated_elf),
    KTEST_CASE(test_wrong_machine_and_type),
    KTEST_CASE(test_section_offset_past_end),
    KTEST_CASE(test_symbol_index_out_of_range),
    KTEST_CASE(test_unknown_relocation_type),
    KTEST_CASE(test_overflowing_pc32),
    KTEST_CASE(test_unresolved_symbol),
    KTEST_CASE(test_crc_mismatch),
    KTEST_CASE(test_missing_versions),
    KTEST_CASE(test_missing_modstruct_version_refused),
    KTEST_CASE(test_newer_abi_minor_refused),
    KTEST_CASE(test_abi_major_mismatch_refused),
    KTEST_CASE(test_older_abi_minor_accepted),
    KTEST_CASE(test_vermagic_mismatch_refused),
    KTEST_CASE(test_compressed_module_loads),
    KTEST_CASE(test_corrupt_zstd_module_refused),
    KTEST_CASE(test_truncated_cpio_refused),
    KTEST_CASE(test_corrupt_initramfs_refused),
    KTEST_CASE(test_syscalls_linux_semantics),
    KTEST_CASE(test_modalias_format_and_match),
    KTEST_CASE(test_pci_enumerated));
