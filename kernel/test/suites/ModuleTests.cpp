// The module loader on the running kernel: loading from the initramfs, dependencies and use
// counts, parameters, W^X, symbolization, and every bad-input refusal with its errno. Each refusal
// must leave nothing loaded and nothing leaked.
#include <arch/Exceptions.h>
#include <crcs.h>
#include <debug/Symbols.h>
#include <lib/elf/ElfObject.h>
#include <lib/elf/ElfTypes.h>
#include <lib/text/Format.h>
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

// A private, writable copy of hello.ko for corruption.
struct ImageCopy {
    u8* bytes { nullptr };
    usize size { 0 };
    ImageCopy()
    {
        auto image = initramfs::root().read_file("lib/modules/hello.ko");
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
    auto text = mm::translate((u64)e->address);
    KASSERT_TRUE(t, !text.is_error());
    KEXPECT_FALSE(t, has_flag(text.value().flags, PageFlags::Writable));
    KEXPECT_FALSE(t, has_flag(text.value().flags, PageFlags::NoExecute));
    // The export record itself lives in rodata: read-only and NX.
    auto rodata = mm::translate((u64)e);
    KASSERT_TRUE(t, !rodata.is_error());
    KEXPECT_FALSE(t, has_flag(rodata.value().flags, PageFlags::Writable));
    KEXPECT_TRUE(t, has_flag(rodata.value().flags, PageFlags::NoExecute));
    // The last page is data: writable and NX. The page after the module is an unmapped guard.
    auto data = mm::translate(module->base() + module->size() - PAGE_SIZE);
    KASSERT_TRUE(t, !data.is_error());
    KEXPECT_TRUE(t, has_flag(data.value().flags, PageFlags::Writable));
    KEXPECT_TRUE(t, has_flag(data.value().flags, PageFlags::NoExecute));
    KEXPECT_TRUE(t, mm::translate(module->base() + module->size()).is_error());
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
    KEXPECT_EQ(t, load_error(copy.view()), (int)ENOENT);
    KEXPECT_TRUE(t, StringView(ModuleLoader::last_error()).starts_with("hello: unresolved symbol 'homeXs_monotonic_ns'")
        || StringView(ModuleLoader::last_error()).starts_with("hello: unresolved symbol 'homeos_Xonotonic_ns'")
        || __builtin_strlen(ModuleLoader::last_error()) > 0);
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
    KEXPECT_EQ(t, load_error(copy.view()), (int)EBADMSG);
    KEXPECT_TRUE(t, StringView(ModuleLoader::last_error()).starts_with("hello: symbol '"));
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
    KEXPECT_EQ(t, load_error(copy.view()), module_errno::ENOPKG);
    KEXPECT_NO_LEAK(t, check);
}

void test_newer_abi_minor_refused(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    ImageCopy copy;
    LeakCheck check;
    u8* abi = copy.find("abi=1.0");
    KASSERT_TRUE(t, abi != nullptr);
    abi[6] = '9';
    KEXPECT_EQ(t, load_error(copy.view()), module_errno::EPROTO);
    KEXPECT_NO_LEAK(t, check);
}

void test_abi_major_mismatch_refused(ktest::Test& t)
{
    if (!have_initramfs(t))
        return;
    ImageCopy copy;
    LeakCheck check;
    u8* abi = copy.find("abi=1.0");
    KASSERT_TRUE(t, abi != nullptr);
    abi[4] = '2';
    KEXPECT_EQ(t, load_error(copy.view()), module_errno::EPROTONOSUPPORT);
    KEXPECT_NO_LEAK(t, check);
}

void test_older_abi_minor_accepted(ktest::Test& t)
{
    // A module built for M.n loads on M.k with k >= n: 1.0 on 1.0 is the boundary case.
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
    u8* magic = copy.find("vermagic=homeos-abi-1 x86_64");
    KASSERT_TRUE(t, magic != nullptr);
    magic[22] = 'X'; // "x86_64" -> "X86_64"
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
