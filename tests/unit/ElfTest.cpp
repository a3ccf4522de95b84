// The library headers come first: ktl/Errno.h defines errno names that <cerrno> would turn into macros.
#include <lib/elf/ElfObject.h>
#include <lib/elf/ModuleLayout.h>
#include <lib/elf/Relocator.h>
#include <lib/elf/VersionTable.h>

#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <vector>

using namespace Elf;

namespace {

// Fixtures are built by tests/unit/fixtures.mk; tests run from the repository root.
std::string fixture_path(const char* name)
{
    const char* dir = getenv("HOMEOS_ELF_FIXTURES");
    return std::string(dir ? dir : "build/fixtures/elf") + "/" + name + ".o";
}

std::vector<u8> load_fixture(const char* name)
{
    std::ifstream in(fixture_path(name), std::ios::binary);
    if (!in) {
        ADD_FAILURE() << "missing fixture " << fixture_path(name) << " (build it with make " << fixture_path(name) << ")";
        return {};
    }
    return std::vector<u8>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

ReadonlyBytes bytes_of(const std::vector<u8>& file) { return ReadonlyBytes(file.data(), file.size()); }
std::string str(StringView view) { return std::string(view.characters(), view.length()); }

// Counts outstanding allocations so tests can see the layout returns what it took.
class CountingAllocator final : public Allocator {
public:
    ErrorOr<void*> allocate(usize size, usize alignment) override
    {
        if (fail_after >= 0 && allocations >= fail_after)
            return ENOMEM;
        ++allocations;
        ++outstanding;
        void* pointer = aligned_alloc(alignment < 16 ? 16 : alignment, size ? (size + 15) & ~usize(15) : 16);
        if (!pointer)
            return ENOMEM;
        return pointer;
    }
    void deallocate(void* pointer, usize) override
    {
        --outstanding;
        free(pointer);
    }
    int allocations { 0 };
    int outstanding { 0 };
    int fail_after { -1 };
};

class MapResolver final : public SymbolResolver {
public:
    ErrorOr<u64> resolve(StringView name) override
    {
        asked.push_back(str(name));
        auto it = symbols.find(str(name));
        if (it == symbols.end())
            return failure;
        return it->second;
    }
    std::map<std::string, u64> symbols;
    std::vector<std::string> asked;
    Errno::ErrnoCode failure { ENOENT };
};

template<typename T>
T get(const std::vector<u8>& file, u64 offset)
{
    T value;
    memcpy(&value, file.data() + offset, sizeof(T));
    return value;
}

template<typename T>
void put(std::vector<u8>& file, u64 offset, const T& value)
{
    memcpy(file.data() + offset, &value, sizeof(T));
}

u64 section_header_at(const std::vector<u8>& file, usize index)
{
    return get<FileHeader>(file, 0).section_header_offset + index * sizeof(SectionHeader);
}

// Read-modify-write of one section header, found by name in the unmodified file.
template<typename F>
void edit_section(std::vector<u8>& file, const char* name, F edit)
{
    ElfError error;
    auto object = ElfObject::parse(bytes_of(file), error);
    ASSERT_FALSE(object.is_error()) << error.c_str();
    auto index = object.value().find_section(name);
    ASSERT_FALSE(index.is_error()) << name;
    u64 at = section_header_at(file, index.value());
    auto header = get<SectionHeader>(file, at);
    edit(header);
    put(file, at, header);
}

usize section_index(const std::vector<u8>& file, const char* name)
{
    ElfError error;
    auto object = ElfObject::parse(bytes_of(file), error);
    if (object.is_error())
        return 0;
    auto index = object.value().find_section(name);
    return index.is_error() ? 0 : index.value();
}

// Parses and expects failure with code, and a message containing each of the fragments.
void expect_parse_error(const std::vector<u8>& file, int code, std::initializer_list<const char*> fragments)
{
    ElfError error;
    auto object = ElfObject::parse(bytes_of(file), error);
    ASSERT_TRUE(object.is_error());
    EXPECT_EQ(object.error().code(), code) << error.c_str();
    EXPECT_EQ(error.code(), code);
    // The Error itself says why, so a caller that keeps only the Error can still report it.
    EXPECT_TRUE(object.error().has_message()) << error.c_str();
    for (auto* fragment : fragments)
        EXPECT_NE(std::string(error.c_str()).find(fragment), std::string::npos) << "'" << fragment << "' not in: " << error.c_str();
}

// The whole pipeline over ordinary buffers, for kernel-model fixtures that are never executed.
struct BufferModule {
    std::vector<u8> file;
    std::optional<ElfObject> object;
    std::optional<ModuleLayout> layout;
    std::vector<u8> storage[MODULE_REGION_COUNT];
    ModuleMemory memory;
    ElfError error;
    CountingAllocator allocator;

    bool prepare(const char* name)
    {
        file = load_fixture(name);
        auto parsed = ElfObject::parse(bytes_of(file), error);
        if (parsed.is_error())
            return false;
        object.emplace(parsed.release_value());
        auto planned = ModuleLayout::plan(*object, allocator, error);
        if (planned.is_error())
            return false;
        layout.emplace(planned.release_value());
        return true;
    }
    void place(u64 text, u64 rodata, u64 data)
    {
        u64 addresses[] = { text, rodata, data };
        for (usize r = 0; r < MODULE_REGION_COUNT; ++r) {
            storage[r].assign(layout->region_size(ModuleRegion(r)) + 1, 0xcc);
            memory.regions[r] = RegionMemory { storage[r].data(), addresses[r], storage[r].size() };
        }
    }
    ErrorOr<void> relocate(SymbolResolver& resolver) { return Relocator::relocate(*object, *layout, memory, resolver, error); }
    u8* writable(usize section) { auto p = layout->placement(section); return memory[p.region].writable + p.offset; }
};

constexpr u64 KTEXT = 0xffffffffc0000000ull;
constexpr u64 KRODATA = 0xffffffffc0100000ull;
constexpr u64 KDATA = 0xffffffffc0200000ull;
constexpr u64 KPRINTK = 0xffffffff80100000ull;
constexpr u64 KJIFFIES = 0xffffffff80200000ull;

MapResolver kernel_resolver()
{
    MapResolver resolver;
    resolver.symbols["printk"] = KPRINTK;
    resolver.symbols["jiffies"] = KJIFFIES;
    return resolver;
}

// Host data and trampolines the executed fixtures link against, in a MAP_32BIT block so
// PC32 references from the module (also MAP_32BIT) reach them.
int host_add_impl(int a, int b) { return a + b; }

struct HostBlock {
    u8* base { nullptr };
    static constexpr usize SIZE = 4096;
    HostBlock()
    {
        void* mapping = mmap(nullptr, SIZE, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
        if (mapping != MAP_FAILED)
            base = static_cast<u8*>(mapping);
    }
    ~HostBlock()
    {
        if (base)
            munmap(base, SIZE);
    }
    int* value() { return reinterpret_cast<int*>(base + 0x100); }
    int* counter() { return reinterpret_cast<int*>(base + 0x104); }
    // movabs $target, %rax; jmp *%rax
    u64 trampoline(usize slot, void* target)
    {
        u8* code = base + slot * 16;
        code[0] = 0x48;
        code[1] = 0xb8;
        u64 address = u64(reinterpret_cast<uptr>(target));
        memcpy(code + 2, &address, 8);
        code[10] = 0xff;
        code[11] = 0xe0;
        return u64(reinterpret_cast<uptr>(code));
    }
};

// A fixture loaded into executable MAP_32BIT memory. With double_mapping, the relocator writes
// through one mapping of a memfd and the code runs from another, as the kernel loader may do.
struct HostModule {
    std::vector<u8> file;
    std::optional<ElfObject> object;
    std::optional<ModuleLayout> layout;
    ModuleMemory memory;
    ElfError error;
    CountingAllocator allocator;
    HostBlock host;
    MapResolver resolver;
    u8* run_mapping { nullptr };
    u8* write_mapping { nullptr };
    usize mapping_size { 0 };

    ~HostModule()
    {
        if (run_mapping)
            munmap(run_mapping, mapping_size);
        if (write_mapping && write_mapping != run_mapping)
            munmap(write_mapping, mapping_size);
    }

    bool load(const char* name, bool double_mapping = false)
    {
        if (!host.base)
            return false;
        *host.value() = 100;
        *host.counter() = 7;
        resolver.symbols["host_add"] = host.trampoline(0, reinterpret_cast<void*>(&host_add_impl));
        resolver.symbols["host_value"] = u64(reinterpret_cast<uptr>(host.value()));
        resolver.symbols["host_counter"] = u64(reinterpret_cast<uptr>(host.counter()));

        file = load_fixture(name);
        auto parsed = ElfObject::parse(bytes_of(file), error);
        if (parsed.is_error())
            return false;
        object.emplace(parsed.release_value());
        auto planned = ModuleLayout::plan(*object, allocator, error);
        if (planned.is_error())
            return false;
        layout.emplace(planned.release_value());

        u64 offsets[MODULE_REGION_COUNT];
        mapping_size = 0;
        for (usize r = 0; r < MODULE_REGION_COUNT; ++r) {
            offsets[r] = mapping_size;
            mapping_size += align_up(layout->region_size(ModuleRegion(r)), PAGE_SIZE);
        }
        if (mapping_size == 0)
            mapping_size = PAGE_SIZE;
        if (double_mapping) {
            int fd = memfd_create("elftest", 0);
            if (fd < 0 || ftruncate(fd, mapping_size) != 0)
                return false;
            void* run = mmap(nullptr, mapping_size, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_32BIT, fd, 0);
            void* write = mmap(nullptr, mapping_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            close(fd);
            if (run == MAP_FAILED || write == MAP_FAILED)
                return false;
            run_mapping = static_cast<u8*>(run);
            write_mapping = static_cast<u8*>(write);
        } else {
            void* mapping = mmap(nullptr, mapping_size, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
            if (mapping == MAP_FAILED)
                return false;
            run_mapping = write_mapping = static_cast<u8*>(mapping);
        }
        for (usize r = 0; r < MODULE_REGION_COUNT; ++r)
            memory.regions[r] = RegionMemory { write_mapping + offsets[r], u64(reinterpret_cast<uptr>(run_mapping + offsets[r])),
                align_up(layout->region_size(ModuleRegion(r)), PAGE_SIZE) };
        return !Relocator::relocate(*object, *layout, memory, resolver, error).is_error();
    }

    template<typename F>
    F function(const char* name)
    {
        ElfError lookup_error;
        auto address = layout->symbol_address(*object, name, memory, lookup_error);
        EXPECT_FALSE(address.is_error()) << lookup_error.c_str();
        return reinterpret_cast<F>(static_cast<uptr>(address.is_error() ? 0 : address.value()));
    }
};

#define ASSERT_LOADED(module, name) ASSERT_TRUE((module).load(name)) << (module).error.c_str()

}

// ---------------------------------------------------------------------------------------------
// Parsing real objects
// ---------------------------------------------------------------------------------------------

TEST(ElfParse, ParsesEveryFixture)
{
    for (auto* name : { "run_calls", "run_got", "run_ctor", "kmod", "kmod_debug", "abs32" }) {
        auto file = load_fixture(name);
        ElfError error;
        auto object = ElfObject::parse(bytes_of(file), error);
        EXPECT_FALSE(object.is_error()) << name << ": " << error.c_str();
        EXPECT_EQ(error.code(), 0);
    }
}

TEST(ElfParse, FindsSectionsByName)
{
    auto file = load_fixture("kmod");
    ElfError error;
    auto object = MUST(ElfObject::parse(bytes_of(file), error));
    for (auto* name : { ".text", ".data", ".bss", ".rodata", ".modinfo", ".symtab", ".strtab", ".rela.text" }) {
        auto index = object.find_section(name);
        ASSERT_FALSE(index.is_error()) << name;
        EXPECT_EQ(str(object.section(index.value()).name), name);
    }
    auto missing = object.find_section(".nonexistent");
    ASSERT_TRUE(missing.is_error());
    EXPECT_EQ(missing.error().code(), ENOENT);
}

TEST(ElfParse, SectionAttributes)
{
    auto file = load_fixture("kmod");
    ElfError error;
    auto object = MUST(ElfObject::parse(bytes_of(file), error));
    auto text = object.section(MUST(object.find_section(".text")));
    EXPECT_EQ(text.type, SectionType::Progbits);
    EXPECT_TRUE(text.flags & SectionFlag::ExecInstr);
    EXPECT_TRUE(text.is_alloc());
    EXPECT_GE(text.alignment, 1u);
    EXPECT_EQ(object.section_data(text.index).size(), text.size);
    auto bss = object.section(MUST(object.find_section(".bss")));
    EXPECT_TRUE(bss.is_nobits());
    EXPECT_EQ(bss.size, 256u);
    EXPECT_TRUE(object.section_data(bss.index).is_empty());
    auto symtab = object.section(object.symbol_table_index());
    EXPECT_EQ(symtab.type, SectionType::Symtab);
    EXPECT_EQ(symtab.entry_size, 24u);
}

TEST(ElfParse, SectionDataIsTheFileBytes)
{
    auto file = load_fixture("kmod");
    ElfError error;
    auto object = MUST(ElfObject::parse(bytes_of(file), error));
    auto data = object.section_data(MUST(object.find_section(".modinfo")));
    ASSERT_EQ(data.size(), 12u);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(data.data())), "license=GPL");
}

TEST(ElfParse, FindSymbolSeesDefinedGlobalsOnly)
{
    auto file = load_fixture("kmod");
    ElfError error;
    auto object = MUST(ElfObject::parse(bytes_of(file), error));
    EXPECT_FALSE(object.find_symbol("init_module").is_error());
    EXPECT_FALSE(object.find_symbol("handlers").is_error());
    EXPECT_EQ(object.find_symbol("hello").error().code(), ENOENT);  // static: local
    EXPECT_EQ(object.find_symbol("printk").error().code(), ENOENT); // undefined
    EXPECT_EQ(object.find_symbol("nope").error().code(), ENOENT);
}

TEST(ElfParse, SymbolAttributes)
{
    auto file = load_fixture("kmod");
    ElfError error;
    auto object = MUST(ElfObject::parse(bytes_of(file), error));
    auto init = object.symbol(MUST(object.find_symbol("init_module")));
    EXPECT_EQ(str(init.name), "init_module");
    EXPECT_EQ(init.type, SymbolType::Func);
    EXPECT_EQ(init.binding, SymbolBinding::Global);
    EXPECT_EQ(init.visibility, SymbolVisibility::Default);
    EXPECT_EQ(init.section_index, MUST(object.find_section(".text")));
    EXPECT_GT(init.size, 0u);
    bool saw_weak = false, saw_printk = false;
    for (usize i = 0; i < object.symbol_count(); ++i) {
        auto symbol = object.symbol(i);
        if (str(symbol.name) == "optional_hook") {
            saw_weak = true;
            EXPECT_TRUE(symbol.is_undefined());
            EXPECT_EQ(symbol.binding, SymbolBinding::Weak);
        }
        if (str(symbol.name) == "printk") {
            saw_printk = true;
            EXPECT_TRUE(symbol.is_undefined());
        }
    }
    EXPECT_TRUE(saw_weak);
    EXPECT_TRUE(saw_printk);
    EXPECT_TRUE(object.symbol(0).is_undefined());
}

TEST(ElfParse, RelocationAccessors)
{
    auto file = load_fixture("kmod");
    ElfError error;
    auto object = MUST(ElfObject::parse(bytes_of(file), error));
    usize rela = MUST(object.find_section(".rela.text"));
    EXPECT_EQ(object.section(rela).info, MUST(object.find_section(".text")));
    ASSERT_EQ(object.relocation_count(rela), 12u);
    bool saw_printk = false;
    for (usize i = 0; i < object.relocation_count(rela); ++i) {
        auto relocation = object.relocation(rela, i);
        EXPECT_LT(relocation.symbol_index, object.symbol_count());
        EXPECT_NE(relocation_type_name(relocation.type), nullptr);
        if (str(object.symbol(relocation.symbol_index).name) == "printk") {
            saw_printk = true;
            EXPECT_EQ(relocation.type, Reloc::Plt32);
            EXPECT_EQ(relocation.addend, -4);
        }
    }
    EXPECT_TRUE(saw_printk);
}

TEST(ElfParse, RelocationTypeNames)
{
    EXPECT_STREQ(relocation_type_name(Reloc::Pc32), "R_X86_64_PC32");
    EXPECT_STREQ(relocation_type_name(Reloc::RexGotPcRelX), "R_X86_64_REX_GOTPCRELX");
    EXPECT_EQ(relocation_type_name(37), nullptr);
}

// ---------------------------------------------------------------------------------------------
// Malformed input: each check returns the right errno and says what is wrong
// ---------------------------------------------------------------------------------------------

TEST(ElfCorrupt, EmptyFile)
{
    expect_parse_error({}, ENOEXEC, { "smaller than the 64-byte ELF header" });
}

TEST(ElfCorrupt, TruncatedHeader)
{
    auto file = load_fixture("kmod");
    file.resize(40);
    expect_parse_error(file, ENOEXEC, { "40 bytes", "smaller than" });
}

TEST(ElfCorrupt, TruncatedSectionTable)
{
    auto file = load_fixture("kmod");
    file.resize(get<FileHeader>(file, 0).section_header_offset + 100);
    expect_parse_error(file, ENOEXEC, { "section header table", "past the end of the file" });
}

TEST(ElfCorrupt, BadMagic)
{
    auto file = load_fixture("kmod");
    file[1] = 'X';
    expect_parse_error(file, ENOEXEC, { "magic" });
}

TEST(ElfCorrupt, WrongClass)
{
    auto file = load_fixture("kmod");
    file[Ident::ClassIndex] = 1;
    expect_parse_error(file, ENOEXEC, { "ELFCLASS64" });
}

TEST(ElfCorrupt, WrongEndianness)
{
    auto file = load_fixture("kmod");
    file[Ident::DataIndex] = 2;
    expect_parse_error(file, ENOEXEC, { "ELFDATA2LSB" });
}

TEST(ElfCorrupt, WrongVersion)
{
    auto file = load_fixture("kmod");
    file[Ident::VersionIndex] = 2;
    expect_parse_error(file, ENOEXEC, { "EV_CURRENT" });
}

TEST(ElfCorrupt, WrongMachine)
{
    auto file = load_fixture("kmod");
    auto header = get<FileHeader>(file, 0);
    header.machine = 183; // EM_AARCH64
    put(file, 0, header);
    expect_parse_error(file, ENOEXEC, { "machine 183", "EM_X86_64" });
}

TEST(ElfCorrupt, WrongType)
{
    auto file = load_fixture("kmod");
    auto header = get<FileHeader>(file, 0);
    header.type = 2; // ET_EXEC
    put(file, 0, header);
    expect_parse_error(file, ENOEXEC, { "type 2", "ET_REL" });
}

TEST(ElfCorrupt, BadSectionHeaderEntrySize)
{
    auto file = load_fixture("kmod");
    auto header = get<FileHeader>(file, 0);
    header.section_header_entry_size = 40;
    put(file, 0, header);
    expect_parse_error(file, ENOEXEC, { "e_shentsize 40" });
}

TEST(ElfCorrupt, ExtendedSectionNumberingRefused)
{
    auto file = load_fixture("kmod");
    auto header = get<FileHeader>(file, 0);
    header.section_header_count = 0;
    put(file, 0, header);
    expect_parse_error(file, ENOEXEC, { "extended section numbering is not supported" });
}

TEST(ElfCorrupt, SectionNameTableIndexOutOfRange)
{
    auto file = load_fixture("kmod");
    auto header = get<FileHeader>(file, 0);
    header.section_name_table_index = header.section_header_count;
    put(file, 0, header);
    expect_parse_error(file, ENOEXEC, { "e_shstrndx 15 is not a valid section index" });
}

TEST(ElfCorrupt, SectionNameTableIndexXIndex)
{
    auto file = load_fixture("kmod");
    auto header = get<FileHeader>(file, 0);
    header.section_name_table_index = SectionIndex::XIndex;
    put(file, 0, header);
    expect_parse_error(file, ENOEXEC, { "SHN_XINDEX" });
}

TEST(ElfCorrupt, SectionNameTableNotAStringTable)
{
    auto file = load_fixture("kmod");
    auto header = get<FileHeader>(file, 0);
    header.section_name_table_index = u16(section_index(file, ".text"));
    put(file, 0, header);
    expect_parse_error(file, ENOEXEC, { "not SHT_STRTAB" });
}

TEST(ElfCorrupt, SectionOffsetPastEnd)
{
    auto file = load_fixture("kmod");
    usize text = section_index(file, ".text");
    edit_section(file, ".text", [&](SectionHeader& h) { h.offset = file.size() - 8; });
    char expected[128];
    snprintf(expected, sizeof expected, "section %zu (.text) offset 0x%zx + size 0xaf is past the end of the file (0x%zx bytes)", text,
        file.size() - 8, file.size());
    expect_parse_error(file, ENOEXEC, { expected });
}

TEST(ElfCorrupt, SectionSizeOverflow)
{
    auto file = load_fixture("kmod");
    edit_section(file, ".rodata", [](SectionHeader& h) { h.size = ~u64(0) - 0x10; });
    expect_parse_error(file, ENOEXEC, { "(.rodata)", "past the end of the file" });
}

TEST(ElfCorrupt, SectionNameOffsetPastTable)
{
    auto file = load_fixture("kmod");
    edit_section(file, ".data", [](SectionHeader& h) { h.name = 0x7fffffff; });
    expect_parse_error(file, ENOEXEC, { "name offset 0x7fffffff", "section name table" });
}

TEST(ElfCorrupt, AlignmentNotPowerOfTwo)
{
    auto file = load_fixture("kmod");
    edit_section(file, ".data", [](SectionHeader& h) { h.alignment = 24; });
    expect_parse_error(file, ENOEXEC, { "(.data) alignment 0x18 is not a power of two" });
}

TEST(ElfCorrupt, NoSymbolTable)
{
    auto file = load_fixture("kmod");
    edit_section(file, ".symtab", [](SectionHeader& h) { h.type = SectionType::Progbits; });
    expect_parse_error(file, ENOEXEC, { "0 SHT_SYMTAB sections" });
}

TEST(ElfCorrupt, SymbolTableEntrySize)
{
    auto file = load_fixture("kmod");
    edit_section(file, ".symtab", [](SectionHeader& h) { h.entry_size = 16; });
    expect_parse_error(file, ENOEXEC, { ".symtab has sh_entsize 16" });
}

TEST(ElfCorrupt, SymbolTableLinkNotStringTable)
{
    auto file = load_fixture("kmod");
    usize text = section_index(file, ".text");
    edit_section(file, ".symtab", [&](SectionHeader& h) { h.link = u32(text); });
    expect_parse_error(file, ENOEXEC, { "sh_link", "not a SHT_STRTAB" });
}

TEST(ElfCorrupt, SymbolNamePastStringTable)
{
    auto file = load_fixture("kmod");
    ElfError error;
    auto object = MUST(ElfObject::parse(bytes_of(file), error));
    usize index = MUST(object.find_symbol("init_module"));
    u64 at = object.section(object.symbol_table_index()).offset + index * sizeof(Symbol);
    auto symbol = get<Symbol>(file, at);
    symbol.name = 0x10000;
    put(file, at, symbol);
    expect_parse_error(file, ENOEXEC, { "name offset 0x10000 is past the end of the string table" });
}

TEST(ElfCorrupt, StringTableNotTerminated)
{
    auto file = load_fixture("kmod");
    auto strtab = get<SectionHeader>(file, section_header_at(file, section_index(file, ".strtab")));
    file[strtab.offset + strtab.size - 1] = 'x';
    // The symbol and section name tables are the same section in clang's output.
    expect_parse_error(file, ENOEXEC, { "not NUL-terminated" });
}

TEST(ElfCorrupt, SymbolSectionIndexOutOfRange)
{
    auto file = load_fixture("kmod");
    ElfError error;
    auto object = MUST(ElfObject::parse(bytes_of(file), error));
    usize index = MUST(object.find_symbol("init_module"));
    u64 at = object.section(object.symbol_table_index()).offset + index * sizeof(Symbol);
    auto symbol = get<Symbol>(file, at);
    symbol.section_index = 200;
    put(file, at, symbol);
    expect_parse_error(file, ENOEXEC, { "'init_module' section index 200 is out of range (15 sections)" });
}

TEST(ElfCorrupt, CommonSymbolRefused)
{
    auto file = load_fixture("common");
    expect_parse_error(file, ENOEXEC, { "'common_variable' is a COMMON symbol", "-fno-common" });
}

TEST(ElfCorrupt, RelocationSymbolIndexOutOfRange)
{
    auto file = load_fixture("kmod");
    ElfError error;
    auto object = MUST(ElfObject::parse(bytes_of(file), error));
    usize rela = MUST(object.find_section(".rela.text"));
    u64 at = object.section(rela).offset;
    auto entry = get<Rela>(file, at);
    entry.info = rela_info(99, Reloc::Pc32);
    put(file, at, entry);
    char expected[96];
    snprintf(expected, sizeof expected, "symbol index 99 out of range in .rela.text (%zu symbols)", object.symbol_count());
    expect_parse_error(file, ENOEXEC, { expected });
}

TEST(ElfCorrupt, RelocationTableLinkNotSymbolTable)
{
    auto file = load_fixture("kmod");
    edit_section(file, ".rela.data", [](SectionHeader& h) { h.link = 1; });
    expect_parse_error(file, ENOEXEC, { "(.rela.data) sh_link 1 is not the symbol table" });
}

TEST(ElfCorrupt, RelocationTableTargetInvalid)
{
    auto file = load_fixture("kmod");
    edit_section(file, ".rela.data", [](SectionHeader& h) { h.info = 1000; });
    expect_parse_error(file, ENOEXEC, { "(.rela.data) sh_info 1000 is not a valid target section" });
}

TEST(ElfCorrupt, RelocationTableEntrySize)
{
    auto file = load_fixture("kmod");
    edit_section(file, ".rela.data", [](SectionHeader& h) { h.entry_size = 16; });
    expect_parse_error(file, ENOEXEC, { "(.rela.data) has sh_entsize 16" });
}

TEST(ElfCorrupt, RelSectionRefused)
{
    auto file = load_fixture("kmod");
    edit_section(file, ".rela.data", [](SectionHeader& h) { h.type = SectionType::Rel; });
    expect_parse_error(file, ENOEXEC, { "SHT_REL" });
}

TEST(ElfCorrupt, ReasonIsStaticAndDetailNamesTheCulprit)
{
    auto file = load_fixture("kmod");
    file[0] = 0;
    ElfError error;
    auto object = ElfObject::parse(bytes_of(file), error);
    ASSERT_TRUE(object.is_error());
    EXPECT_STREQ(object.error().message(), "not an ELF file (bad magic)");

    file = load_fixture("kmod");
    edit_section(file, ".data", [&](SectionHeader& header) { header.offset = file.size() + 0x1000; });
    object = ElfObject::parse(bytes_of(file), error);
    ASSERT_TRUE(object.is_error());
    EXPECT_STREQ(object.error().message(), "section data past the end of the file");
    EXPECT_NE(std::string(error.c_str()).find("(.data) offset 0x"), std::string::npos) << error.c_str();
}

TEST(ElfCorrupt, ErrorMessagesSanitizeAndBoundNames)
{
    ElfError error;
    std::string name(300, 'a');
    name[0] = '\x01';
    Error result = error.fail(ENOEXEC, "a bad symbol", "symbol '", StringView(name.data(), name.size()), "' ", Hex { 0x1c }, " ", i64(-5));
    EXPECT_EQ(result.code(), ENOEXEC);
    // The reason travels in the Error; the detail, built from the file, stays in the ElfError.
    EXPECT_STREQ(result.message(), "a bad symbol");
    std::string message = error.c_str();
    EXPECT_EQ(message.rfind("symbol '?aaa", 0), 0u);
    EXPECT_NE(message.find("...' 0x1c -5"), std::string::npos) << message;
    EXPECT_LT(message.size(), ElfError::CAPACITY);
    EXPECT_EQ(str(error.message()), message);
}

// ---------------------------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------------------------

TEST(ElfLayout, RegionsFollowSectionFlags)
{
    BufferModule module;
    ASSERT_TRUE(module.prepare("kmod")) << module.error.c_str();
    auto& object = *module.object;
    auto& layout = *module.layout;
    auto region_of = [&](const char* name) {
        auto placement = layout.placement(MUST(object.find_section(name)));
        EXPECT_TRUE(placement.loaded) << name;
        return placement.region;
    };
    EXPECT_EQ(region_of(".text"), ModuleRegion::Text);
    EXPECT_EQ(region_of(".rodata"), ModuleRegion::Rodata);
    EXPECT_EQ(region_of(".rodata.str1.1"), ModuleRegion::Rodata);
    EXPECT_EQ(region_of(".modinfo"), ModuleRegion::Rodata);
    EXPECT_EQ(region_of(".data"), ModuleRegion::Data);
    EXPECT_EQ(region_of(".bss"), ModuleRegion::Data);
    for (auto* name : { ".symtab", ".strtab", ".rela.text", ".comment", ".note.GNU-stack", ".llvm_addrsig" })
        EXPECT_FALSE(layout.is_loaded(MUST(object.find_section(name)))) << name;
    EXPECT_FALSE(layout.is_loaded(0));
}

TEST(ElfLayout, InitArrayGoesToRodata)
{
    BufferModule module;
    ASSERT_TRUE(module.prepare("run_ctor")) << module.error.c_str();
    auto placement = module.layout->placement(MUST(module.object->find_section(".init_array")));
    EXPECT_TRUE(placement.loaded);
    EXPECT_EQ(placement.region, ModuleRegion::Rodata);
}

TEST(ElfLayout, AlignedAndNonOverlapping)
{
    for (auto* name : { "kmod", "run_calls", "run_got", "run_ctor", "kmod_debug" }) {
        BufferModule module;
        ASSERT_TRUE(module.prepare(name)) << module.error.c_str();
        auto& object = *module.object;
        auto& layout = *module.layout;
        for (usize i = 0; i < object.section_count(); ++i) {
            auto section = object.section(i);
            auto placement = layout.placement(i);
            if (!placement.loaded)
                continue;
            EXPECT_TRUE(section.is_alloc());
            EXPECT_TRUE(is_aligned(placement.offset, section.alignment)) << name << " " << str(section.name);
            EXPECT_LE(section.alignment, layout.region_alignment(placement.region));
            EXPECT_LE(placement.offset + section.size, layout.region_size(placement.region));
            for (usize j = i + 1; j < object.section_count(); ++j) {
                auto other = layout.placement(j);
                if (!other.loaded || other.region != placement.region)
                    continue;
                u64 other_size = object.section(j).size;
                bool disjoint = placement.offset + section.size <= other.offset || other.offset + other_size <= placement.offset;
                EXPECT_TRUE(disjoint || section.size == 0 || other_size == 0) << str(section.name) << " overlaps " << str(object.section(j).name);
            }
        }
        if (layout.got_slot_count()) {
            EXPECT_TRUE(is_aligned(layout.got_offset(), 8));
            EXPECT_EQ(layout.got_offset() + layout.got_slot_count() * 8, layout.region_size(ModuleRegion::Rodata));
        }
    }
}

TEST(ElfLayout, RegionSizesCoverSections)
{
    BufferModule module;
    ASSERT_TRUE(module.prepare("kmod")) << module.error.c_str();
    // .bss (256) and .data (16) are both in Data, each 16-aligned.
    EXPECT_GE(module.layout->region_size(ModuleRegion::Data), 256u + 16u);
    EXPECT_GE(module.layout->region_size(ModuleRegion::Text), 0xafu);
    EXPECT_EQ(module.layout->region_alignment(ModuleRegion::Text), 16u);
    EXPECT_EQ(module.layout->got_slot_count(), 0u);
}

TEST(ElfLayout, GotHasOneSlotPerDistinctSymbol)
{
    BufferModule module;
    ASSERT_TRUE(module.prepare("run_got")) << module.error.c_str();
    auto& object = *module.object;
    auto& layout = *module.layout;
    // host_counter (read, write, address-of), host_add and weak_missing.
    EXPECT_EQ(layout.got_slot_count(), 3u);
    std::vector<bool> used(layout.got_slot_count());
    for (usize i = 0; i < object.symbol_count(); ++i) {
        u32 slot = layout.got_slot(i);
        std::string name = str(object.symbol(i).name);
        if (name == "host_counter" || name == "host_add" || name == "weak_missing") {
            ASSERT_NE(slot, ModuleLayout::NO_GOT_SLOT) << name;
            ASSERT_LT(slot, layout.got_slot_count());
            EXPECT_FALSE(used[slot]);
            used[slot] = true;
        } else {
            EXPECT_EQ(slot, ModuleLayout::NO_GOT_SLOT) << name;
        }
    }
    EXPECT_EQ(layout.region_alignment(ModuleRegion::Rodata) % 8, 0u);
}

TEST(ElfLayout, AllocationFailureIsEnomem)
{
    for (int fail_after = 0; fail_after < 2; ++fail_after) {
        auto file = load_fixture("kmod");
        ElfError error;
        auto object = MUST(ElfObject::parse(bytes_of(file), error));
        CountingAllocator allocator;
        allocator.fail_after = fail_after;
        auto layout = ModuleLayout::plan(object, allocator, error);
        ASSERT_TRUE(layout.is_error());
        EXPECT_EQ(layout.error().code(), ENOMEM);
        EXPECT_EQ(error.code(), ENOMEM);
        EXPECT_EQ(allocator.outstanding, 0);
    }
}

TEST(ElfLayout, ReturnsItsMemory)
{
    auto file = load_fixture("run_got");
    ElfError error;
    auto object = MUST(ElfObject::parse(bytes_of(file), error));
    CountingAllocator allocator;
    {
        auto layout = MUST(ModuleLayout::plan(object, allocator, error));
        EXPECT_EQ(allocator.outstanding, 2);
        ModuleLayout moved(std::move(layout));
        EXPECT_EQ(moved.got_slot_count(), 3u);
        EXPECT_EQ(allocator.outstanding, 2);
    }
    EXPECT_EQ(allocator.outstanding, 0);
}

TEST(ElfLayout, HugeNobitsSectionRefused)
{
    auto file = load_fixture("kmod");
    edit_section(file, ".bss", [](SectionHeader& h) { h.size = u64(1) << 62; });
    ElfError error;
    auto object = MUST(ElfObject::parse(bytes_of(file), error)); // NOBITS occupies no file bytes
    CountingAllocator allocator;
    auto layout = ModuleLayout::plan(object, allocator, error);
    ASSERT_TRUE(layout.is_error());
    EXPECT_EQ(layout.error().code(), ENOEXEC);
    EXPECT_NE(std::string(error.c_str()).find("(.bss) size 0x4000000000000000 makes the data region larger"), std::string::npos) << error.c_str();
}

TEST(ElfLayout, HugeAlignmentRefused)
{
    auto file = load_fixture("kmod");
    edit_section(file, ".data", [](SectionHeader& h) { h.alignment = u64(1) << 40; });
    ElfError error;
    auto object = MUST(ElfObject::parse(bytes_of(file), error));
    CountingAllocator allocator;
    auto layout = ModuleLayout::plan(object, allocator, error);
    ASSERT_TRUE(layout.is_error());
    EXPECT_EQ(layout.error().code(), ENOEXEC);
    EXPECT_NE(std::string(error.c_str()).find("(.data) alignment 0x10000000000 exceeds"), std::string::npos) << error.c_str();
}

// ---------------------------------------------------------------------------------------------
// Relocating a kernel-model module into buffers, checked against independent arithmetic
// ---------------------------------------------------------------------------------------------

TEST(ElfRelocate, KernelModelArithmetic)
{
    BufferModule module;
    ASSERT_TRUE(module.prepare("kmod")) << module.error.c_str();
    module.place(KTEXT, KRODATA, KDATA);
    auto resolver = kernel_resolver();
    auto result = module.relocate(resolver);
    ASSERT_FALSE(result.is_error()) << module.error.c_str();

    auto& object = *module.object;
    auto& layout = *module.layout;
    u64 bases[] = { KTEXT, KRODATA, KDATA };
    auto section_base = [&](usize index) {
        auto p = layout.placement(index);
        return bases[usize(p.region)] + p.offset;
    };
    // Recompute every field from the raw rela entries.
    usize checked = 0;
    for (usize i = 0; i < object.section_count(); ++i) {
        auto rela = object.section(i);
        if (rela.type != SectionType::Rela)
            continue;
        for (usize n = 0; n < rela.size / 24; ++n) {
            auto raw = get<Rela>(module.file, rela.offset + n * 24);
            auto raw_symbol = get<Symbol>(module.file, object.section(object.symbol_table_index()).offset + rela_symbol(raw.info) * 24);
            std::string name = str(object.symbol(rela_symbol(raw.info)).name);
            u64 S;
            if (raw_symbol.section_index == 0)
                S = resolver.symbols.count(name) ? resolver.symbols[name] : 0;
            else
                S = section_base(raw_symbol.section_index) + raw_symbol.value;
            u64 P = section_base(rela.info) + raw.offset;
            u8* where = module.writable(rela.info) + raw.offset;
            switch (rela_type(raw.info)) {
            case Reloc::Abs64:
                EXPECT_EQ(get<u64>(std::vector<u8>(where, where + 8), 0), S + u64(raw.addend));
                break;
            case Reloc::Pc32:
            case Reloc::Plt32:
                EXPECT_EQ(i64(get<i32>(std::vector<u8>(where, where + 4), 0)), i64(S + u64(raw.addend) - P)) << name;
                break;
            case Reloc::Abs32S:
                EXPECT_EQ(i64(get<i32>(std::vector<u8>(where, where + 4), 0)), i64(S + u64(raw.addend))) << name;
                break;
            default:
                ADD_FAILURE() << "unexpected type " << rela_type(raw.info);
            }
            ++checked;
        }
    }
    EXPECT_EQ(checked, 16u);
    // Unrelocated bytes are the file's, and NOBITS and padding are zero.
    auto bss = layout.placement(MUST(object.find_section(".bss")));
    for (usize i = 0; i < 256; ++i)
        ASSERT_EQ(module.memory[bss.region].writable[bss.offset + i], 0);
    EXPECT_EQ(memcmp(module.writable(MUST(object.find_section(".modinfo"))), "license=GPL", 12), 0);
    EXPECT_EQ(resolver.asked.size(), 5u); // printk x2, jiffies, optional_hook x2 (weak)
}

TEST(ElfRelocate, KernelModelFunctionPointerTables)
{
    BufferModule module;
    ASSERT_TRUE(module.prepare("kmod")) << module.error.c_str();
    module.place(KTEXT, KRODATA, KDATA);
    auto resolver = kernel_resolver();
    ASSERT_FALSE(module.relocate(resolver).is_error()) << module.error.c_str();
    u64 handlers = MUST(module.layout->symbol_address(*module.object, "handlers", module.memory, module.error));
    EXPECT_EQ(module.layout->placement(MUST(module.object->find_section(".rodata"))).region, ModuleRegion::Rodata);
    u64 offset = handlers - KRODATA;
    u64 first, second;
    memcpy(&first, module.memory[ModuleRegion::Rodata].writable + offset, 8);
    memcpy(&second, module.memory[ModuleRegion::Rodata].writable + offset + 8, 8);
    u64 text = module.layout->section_address(MUST(module.object->find_section(".text")), module.memory);
    EXPECT_EQ(text, KTEXT);
    EXPECT_EQ(first, text);         // hello at .text+0
    EXPECT_EQ(second, text + 0x10); // world at .text+0x10
}

TEST(ElfRelocate, SymbolAddressForEntryPoints)
{
    BufferModule module;
    ASSERT_TRUE(module.prepare("kmod")) << module.error.c_str();
    module.place(KTEXT, KRODATA, KDATA);
    auto& object = *module.object;
    auto init = object.symbol(MUST(object.find_symbol("init_module")));
    EXPECT_EQ(MUST(module.layout->symbol_address(object, "init_module", module.memory, module.error)), KTEXT + init.value);
    u64 mutable_handlers = MUST(module.layout->symbol_address(object, "mutable_handlers", module.memory, module.error));
    EXPECT_GE(mutable_handlers, KDATA);
    auto missing = module.layout->symbol_address(object, "printk", module.memory, module.error);
    ASSERT_TRUE(missing.is_error());
    EXPECT_EQ(missing.error().code(), ENOENT);
    EXPECT_NE(std::string(module.error.c_str()).find("'printk'"), std::string::npos);
}

TEST(ElfRelocate, DebugRelocationsAreSkipped)
{
    BufferModule module;
    ASSERT_TRUE(module.prepare("kmod_debug")) << module.error.c_str();
    auto& object = *module.object;
    EXPECT_FALSE(object.find_section(".rela.debug_info").is_error());
    EXPECT_FALSE(module.layout->is_loaded(MUST(object.find_section(".debug_info"))));
    module.place(KTEXT, KRODATA, KDATA);
    auto resolver = kernel_resolver();
    EXPECT_FALSE(module.relocate(resolver).is_error()) << module.error.c_str();
}

TEST(ElfRelocate, Abs32SOverflowsOutsideTopTwoGiB)
{
    BufferModule module;
    ASSERT_TRUE(module.prepare("kmod")) << module.error.c_str();
    module.place(0x100000000ull, 0x100100000ull, 0x100200000ull);
    MapResolver resolver;
    resolver.symbols["printk"] = 0x100300000ull;
    resolver.symbols["jiffies"] = 0x100400000ull;
    auto result = module.relocate(resolver);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ERANGE);
    EXPECT_NE(std::string(module.error.c_str()).find("R_X86_64_32S at .text+0x24 against '.rodata.str1.1' overflows (value 0x1001"),
        std::string::npos)
        << module.error.c_str();
}

// R_X86_64_32 and R_X86_64_32S, hand-built: kmod's first .rela.data entry (an R_X86_64_64 at
// .data+0) is rewritten into one against symbol 0 (value 0), so the field's value is the addend.
struct HandBuiltRelocation {
    BufferModule module;
    MapResolver resolver { kernel_resolver() };

    ErrorOr<void> relocate(u32 type, i64 addend)
    {
        module.file = load_fixture("kmod");
        usize rela = section_index(module.file, ".rela.data");
        auto header = get<SectionHeader>(module.file, section_header_at(module.file, rela));
        auto entry = get<Rela>(module.file, header.offset);
        u32 symbol_index = 0;
        entry.info = rela_info(symbol_index, type);
        entry.addend = addend;
        put(module.file, header.offset, entry);
        module.object.emplace(MUST(ElfObject::parse(bytes_of(module.file), module.error)));
        module.layout.emplace(MUST(ModuleLayout::plan(*module.object, module.allocator, module.error)));
        module.place(KTEXT, KRODATA, KDATA);
        return module.relocate(resolver);
    }
    // The 8 bytes at .data+0: the 4-byte field and the 4 bytes after it.
    u64 data_word() { return get<u64>(std::vector<u8>(module.writable(MUST(module.object->find_section(".data"))),
                                           module.writable(MUST(module.object->find_section(".data"))) + 8), 0); }
    std::string detail() { return module.error.c_str(); }
};

TEST(ElfRelocate, Abs32JustFits)
{
    HandBuiltRelocation r;
    auto result = r.relocate(Reloc::Abs32, 0xffffffff);
    ASSERT_FALSE(result.is_error()) << r.detail();
    // Zero-extended: the field holds the value and the bytes after it are untouched (the file's zeros).
    EXPECT_EQ(r.data_word(), 0xffffffffull);
    ASSERT_FALSE(r.relocate(Reloc::Abs32, 0).is_error()) << r.detail();
    EXPECT_EQ(r.data_word(), 0ull);
}

TEST(ElfRelocate, Abs32OverflowsPastFourGiB)
{
    HandBuiltRelocation r;
    auto result = r.relocate(Reloc::Abs32, 0x100000000ll);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ERANGE);
    EXPECT_STREQ(result.error().message(), "relocation overflows its field");
    EXPECT_NE(r.detail().find("R_X86_64_32 at .data+0x0 against"), std::string::npos) << r.detail();
    EXPECT_NE(r.detail().find("overflows (value 0x100000000)"), std::string::npos) << r.detail();
}

TEST(ElfRelocate, Abs32RefusesNegativeValues)
{
    // A kernel address (top 2 GiB) does not fit a zero-extended field: that is what 32S is for.
    HandBuiltRelocation r;
    auto result = r.relocate(Reloc::Abs32, -1);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ERANGE);
    result = r.relocate(Reloc::Abs32, i64(KTEXT));
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ERANGE);
}

// The abs32 fixture: R_X86_64_32 against far32 + 0x10, R_X86_64_32S against far32s - 8, as the
// assembler emits them.
struct Abs32Fixture {
    BufferModule module;
    MapResolver resolver;
    ErrorOr<void> relocate(u64 far32, u64 far32s)
    {
        if (!module.prepare("abs32")) {
            ADD_FAILURE() << "abs32: " << module.error.c_str();
            return ENOEXEC;
        }
        module.place(KTEXT, KRODATA, KDATA);
        resolver.symbols["far32"] = far32;
        resolver.symbols["far32s"] = far32s;
        return module.relocate(resolver);
    }
    u32 field(const char* section, usize offset)
    {
        u32 value;
        memcpy(&value, module.writable(MUST(module.object->find_section(section))) + offset, sizeof(value));
        return value;
    }
    std::string detail() { return module.error.c_str(); }
};

TEST(ElfRelocate, AssembledAbs32AndAbs32SAtTheirLimits)
{
    Abs32Fixture f;
    auto result = f.relocate(0xffffffffull - 0x10, 0xffffffff80000000ull + 8);
    ASSERT_FALSE(result.is_error()) << f.detail();
    EXPECT_EQ(f.field(".data.fields", 0), 0xffffffffu);
    EXPECT_EQ(f.field(".text", 3), 0x80000000u);
}

TEST(ElfRelocate, AssembledAbs32OverflowsByOne)
{
    Abs32Fixture f;
    auto result = f.relocate(0xffffffffull - 0xf, 0x1000);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ERANGE);
    EXPECT_NE(f.detail().find("R_X86_64_32 at .data.fields+0x0 against 'far32' overflows (value 0x100000000)"), std::string::npos)
        << f.detail();
}

TEST(ElfRelocate, AssembledAbs32SOverflowsByOne)
{
    Abs32Fixture f;
    auto result = f.relocate(0x1000, 0xffffffff80000000ull + 7);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ERANGE);
    EXPECT_NE(f.detail().find("R_X86_64_32S at .text+0x3 against 'far32s' overflows (value 0xffffffff7fffffff)"), std::string::npos)
        << f.detail();
    Abs32Fixture high;
    result = high.relocate(0x1000, 0x80000000ull + 8);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ERANGE);
    EXPECT_NE(high.detail().find("overflows (value 0x80000000)"), std::string::npos) << high.detail();
}

TEST(ElfRelocate, Abs32SJustFitsBothWays)
{
    HandBuiltRelocation r;
    ASSERT_FALSE(r.relocate(Reloc::Abs32S, 0x7fffffff).is_error()) << r.detail();
    EXPECT_EQ(r.data_word(), 0x7fffffffull);
    // The most negative value: the field holds its low 32 bits; the CPU sign-extends them.
    ASSERT_FALSE(r.relocate(Reloc::Abs32S, -0x80000000ll).is_error()) << r.detail();
    EXPECT_EQ(r.data_word(), 0x80000000ull);
}

TEST(ElfRelocate, Abs32SOverflowsByOne)
{
    HandBuiltRelocation r;
    auto result = r.relocate(Reloc::Abs32S, 0x80000000ll);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ERANGE);
    EXPECT_NE(r.detail().find("R_X86_64_32S at .data+0x0"), std::string::npos) << r.detail();
    result = r.relocate(Reloc::Abs32S, -0x80000001ll);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ERANGE);
    EXPECT_NE(r.detail().find("overflows (value 0xffffffff7fffffff)"), std::string::npos) << r.detail();
}

TEST(ElfRelocate, Pc32OverflowAgainstFarSymbol)
{
    BufferModule module;
    ASSERT_TRUE(module.prepare("kmod")) << module.error.c_str();
    module.place(KTEXT, KRODATA, KDATA);
    auto resolver = kernel_resolver();
    resolver.symbols["jiffies"] = 0xffffffff00000000ull; // 3 GiB below the module
    auto result = module.relocate(resolver);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ERANGE);
    EXPECT_NE(std::string(module.error.c_str()).find("R_X86_64_PC32 at .text+0x73 against 'jiffies' overflows (value 0x"), std::string::npos)
        << module.error.c_str();
}

TEST(ElfRelocate, Plt32OverflowAgainstFarFunction)
{
    BufferModule module;
    ASSERT_TRUE(module.prepare("kmod")) << module.error.c_str();
    module.place(KTEXT, KRODATA, KDATA);
    auto resolver = kernel_resolver();
    resolver.symbols["printk"] = 0x00007fff00001000ull; // a user-half address: far from everything
    auto result = module.relocate(resolver);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ERANGE);
    EXPECT_NE(std::string(module.error.c_str()).find("R_X86_64_PLT32 at .text+0x32 against 'printk' overflows"), std::string::npos)
        << module.error.c_str();
}

TEST(ElfRelocate, UnresolvedSymbol)
{
    BufferModule module;
    ASSERT_TRUE(module.prepare("kmod")) << module.error.c_str();
    module.place(KTEXT, KRODATA, KDATA);
    MapResolver resolver;
    resolver.symbols["printk"] = KPRINTK;
    auto result = module.relocate(resolver);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ENOENT);
    EXPECT_STREQ(module.error.c_str(), "unresolved symbol 'jiffies'");
}

TEST(ElfRelocate, ResolverErrorIsPassedOn)
{
    BufferModule module;
    ASSERT_TRUE(module.prepare("kmod")) << module.error.c_str();
    module.place(KTEXT, KRODATA, KDATA);
    MapResolver resolver;
    resolver.failure = EACCES;
    auto result = module.relocate(resolver);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), EACCES);
    EXPECT_NE(std::string(module.error.c_str()).find("'printk' failed: EACCES"), std::string::npos) << module.error.c_str();
}

TEST(ElfRelocate, ResolverReasonBecomesTheErrorsReason)
{
    // The kernel's resolver refuses with a reason (a CRC mismatch): the relocation's Error keeps it.
    class RefusingResolver final : public SymbolResolver {
    public:
        ErrorOr<u64> resolve(StringView) override { return Error::with_message(EBADMSG, "import disagrees about the version"); }
    };
    BufferModule module;
    ASSERT_TRUE(module.prepare("kmod")) << module.error.c_str();
    module.place(KTEXT, KRODATA, KDATA);
    RefusingResolver resolver;
    auto result = module.relocate(resolver);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), EBADMSG);
    EXPECT_STREQ(result.error().message(), "import disagrees about the version");
    EXPECT_NE(std::string(module.error.c_str()).find("resolving symbol 'printk' failed: EBADMSG"), std::string::npos) << module.error.c_str();
}

TEST(ElfRelocate, LayoutFromAnotherObjectRefused)
{
    BufferModule kmod;
    ASSERT_TRUE(kmod.prepare("kmod")) << kmod.error.c_str();
    BufferModule other;
    ASSERT_TRUE(other.prepare("run_got")) << other.error.c_str();
    other.place(KTEXT, KRODATA, KDATA);
    auto resolver = kernel_resolver();
    auto result = Relocator::relocate(*kmod.object, *other.layout, other.memory, resolver, kmod.error);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), EINVAL);
    EXPECT_NE(std::string(kmod.error.c_str()).find("different object"), std::string::npos) << kmod.error.c_str();
}

TEST(ElfRelocate, UnknownRelocationType)
{
    BufferModule module;
    module.file = load_fixture("kmod");
    usize rela = section_index(module.file, ".rela.text");
    auto header = get<SectionHeader>(module.file, section_header_at(module.file, rela));
    auto entry = get<Rela>(module.file, header.offset + 24);
    entry.info = rela_info(rela_symbol(entry.info), 37);
    put(module.file, header.offset + 24, entry);
    auto object = ElfObject::parse(bytes_of(module.file), module.error);
    ASSERT_FALSE(object.is_error()) << module.error.c_str();
    module.object.emplace(object.release_value());
    module.layout.emplace(MUST(ModuleLayout::plan(*module.object, module.allocator, module.error)));
    module.place(KTEXT, KRODATA, KDATA);
    auto resolver = kernel_resolver();
    auto result = module.relocate(resolver);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ENOEXEC);
    EXPECT_STREQ(module.error.c_str(), "unknown relocation type 37 at .text+0x2b");
}

TEST(ElfRelocate, RelocationPastEndOfSection)
{
    BufferModule module;
    module.file = load_fixture("kmod");
    usize rela = section_index(module.file, ".rela.data");
    auto header = get<SectionHeader>(module.file, section_header_at(module.file, rela));
    auto entry = get<Rela>(module.file, header.offset);
    entry.offset = 12; // .data is 16 bytes: an 8-byte field at 12 spills over
    put(module.file, header.offset, entry);
    module.object.emplace(MUST(ElfObject::parse(bytes_of(module.file), module.error)));
    module.layout.emplace(MUST(ModuleLayout::plan(*module.object, module.allocator, module.error)));
    module.place(KTEXT, KRODATA, KDATA);
    auto resolver = kernel_resolver();
    auto result = module.relocate(resolver);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ENOEXEC);
    EXPECT_STREQ(module.error.c_str(), "R_X86_64_64 at .data+0xc is past the end of the section (0x10 bytes)");
}

TEST(ElfRelocate, RegionTooSmallOrMisaligned)
{
    BufferModule module;
    ASSERT_TRUE(module.prepare("kmod")) << module.error.c_str();
    auto resolver = kernel_resolver();
    module.place(KTEXT, KRODATA, KDATA);
    module.memory[ModuleRegion::Data].size = 8;
    auto result = module.relocate(resolver);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), EINVAL);
    EXPECT_NE(std::string(module.error.c_str()).find("data region is 0x8 bytes"), std::string::npos) << module.error.c_str();

    module.place(KTEXT + 4, KRODATA, KDATA);
    result = module.relocate(resolver);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), EINVAL);
    EXPECT_NE(std::string(module.error.c_str()).find("not aligned"), std::string::npos) << module.error.c_str();
}

// ---------------------------------------------------------------------------------------------
// Relocating small-model fixtures into executable host memory and running them
// ---------------------------------------------------------------------------------------------

TEST(ElfRun, CallsBetweenFunctions)
{
    HostModule module;
    ASSERT_LOADED(module, "run_calls");
    EXPECT_EQ(module.function<int (*)(int)>("twice")(21), 42);
    EXPECT_EQ(module.function<int (*)(int)>("chain")(3), 19);
}

TEST(ElfRun, FunctionPointerTable)
{
    HostModule module;
    ASSERT_LOADED(module, "run_calls");
    auto apply = module.function<int (*)(int, int)>("apply_operation");
    EXPECT_EQ(apply(0, 7), 49);
    EXPECT_EQ(apply(1, 7), 14);
}

TEST(ElfRun, StringLiteralInRodata)
{
    HostModule module;
    ASSERT_LOADED(module, "run_calls");
    const char* message = module.function<const char* (*)()>("get_message")();
    EXPECT_STREQ(message, "hello from module");
    u64 address = u64(reinterpret_cast<uptr>(message));
    auto& rodata = module.memory[ModuleRegion::Rodata];
    EXPECT_GE(address, rodata.address);
    EXPECT_LT(address, rodata.address + module.layout->region_size(ModuleRegion::Rodata));
}

TEST(ElfRun, BssStartsZeroAndDataInitialized)
{
    HostModule module;
    ASSERT_LOADED(module, "run_calls");
    auto bump = module.function<int (*)()>("bump");
    EXPECT_EQ(bump(), 1);
    EXPECT_EQ(bump(), 2);
    EXPECT_EQ(module.function<int (*)()>("sum_table")(), 10);
}

TEST(ElfRun, CallsHostThroughTrampoline)
{
    HostModule module;
    ASSERT_LOADED(module, "run_calls");
    EXPECT_EQ(module.function<int (*)(int, int)>("call_host")(2, 3), 105);
    *module.host.value() = 1000;
    EXPECT_EQ(module.function<int (*)(int, int)>("call_host")(2, 3), 1005);
}

TEST(ElfRun, GotReadsAndWritesHostData)
{
    HostModule module;
    ASSERT_LOADED(module, "run_got");
    EXPECT_EQ(module.function<int (*)()>("got_read")(), 7);
    module.function<void (*)(int)>("got_write")(1234);
    EXPECT_EQ(*module.host.counter(), 1234);
    EXPECT_EQ(module.function<int* (*)()>("got_address")(), module.host.counter());
    EXPECT_EQ(module.function<int (*)()>("local_read")(), 5);
}

TEST(ElfRun, GotCallAndSlotContents)
{
    HostModule module;
    ASSERT_LOADED(module, "run_got");
    EXPECT_EQ(module.function<int (*)(int, int)>("got_call")(40, 2), 42);
    auto& object = *module.object;
    auto& rodata = module.memory[ModuleRegion::Rodata];
    for (usize i = 0; i < object.symbol_count(); ++i) {
        u32 slot = module.layout->got_slot(i);
        if (slot == ModuleLayout::NO_GOT_SLOT)
            continue;
        u64 value;
        memcpy(&value, rodata.writable + module.layout->got_offset() + slot * 8, 8);
        std::string name = str(object.symbol(i).name);
        if (name == "weak_missing")
            EXPECT_EQ(value, 0u);
        else
            EXPECT_EQ(value, module.resolver.symbols[name]) << name;
    }
}

TEST(ElfRun, WeakUndefinedIsNull)
{
    HostModule module;
    ASSERT_LOADED(module, "run_got");
    EXPECT_EQ(module.function<int (*)()>("has_weak")(), 0);
}

TEST(ElfRun, InitArrayConstructorRuns)
{
    HostModule module;
    ASSERT_LOADED(module, "run_ctor");
    EXPECT_EQ(module.function<int (*)()>("ctor_value")(), 0); // not yet constructed
    usize init_array = MUST(module.object->find_section(".init_array"));
    u64 begin = module.layout->section_address(init_array, module.memory);
    u64 count = module.object->section(init_array).size / 8;
    ASSERT_GE(count, 1u);
    for (u64 i = 0; i < count; ++i) {
        u64 entry;
        memcpy(&entry, reinterpret_cast<void*>(static_cast<uptr>(begin + i * 8)), 8);
        reinterpret_cast<void (*)()>(static_cast<uptr>(entry))();
    }
    EXPECT_EQ(module.function<int (*)()>("ctor_value")(), 42);
}

TEST(ElfRun, WritesThroughOneMappingRunsFromAnother)
{
    HostModule module;
    ASSERT_TRUE(module.load("run_calls", /* double_mapping */ true)) << module.error.c_str();
    ASSERT_NE(module.write_mapping, module.run_mapping);
    EXPECT_EQ(module.function<int (*)(int)>("chain")(4), 33);
    EXPECT_EQ(module.function<int (*)(int, int)>("apply_operation")(0, 9), 81);
    EXPECT_STREQ(module.function<const char* (*)()>("get_message")(), "hello from module");
}

// ---------------------------------------------------------------------------------------------
// __versions: an import's CRC against its exporter's
// ---------------------------------------------------------------------------------------------

namespace {

std::vector<u8> versions_section(std::initializer_list<std::pair<u32, std::string>> entries)
{
    std::vector<u8> bytes;
    for (auto& [crc, name] : entries) {
        u8 entry[VersionTable::ENTRY_SIZE] = {};
        memcpy(entry, &crc, sizeof(crc));
        memcpy(entry + 4, name.data(), std::min(name.size(), VersionTable::NAME_SIZE));
        bytes.insert(bytes.end(), entry, entry + sizeof(entry));
    }
    return bytes;
}

}

TEST(ElfVersions, FindsRecordedCrcs)
{
    auto bytes = versions_section({ { 0x11111111, "kmalloc" }, { 0x22222222, "hello_add" } });
    VersionTable versions(bytes_of(bytes));
    EXPECT_EQ(versions.entry_count(), 2u);
    EXPECT_EQ(MUST(versions.find("kmalloc")), 0x11111111u);
    EXPECT_EQ(MUST(versions.find("hello_add")), 0x22222222u);
    EXPECT_TRUE(versions.find("hello").is_error());
    EXPECT_TRUE(versions.find("hello_add_more").is_error());
}

TEST(ElfVersions, PartialAndUnterminatedEntriesAreSafe)
{
    auto bytes = versions_section({ { 1, std::string(60, 'x') } });
    bytes.resize(bytes.size() + 10, 0xff); // a partial entry after the full one is ignored
    VersionTable versions(bytes_of(bytes));
    EXPECT_EQ(versions.entry_count(), 1u);
    // A name filling all 60 bytes reads as its first 59.
    EXPECT_EQ(MUST(versions.find(StringView(std::string(59, 'x').c_str()))), 1u);
    VersionTable empty(ReadonlyBytes {});
    EXPECT_TRUE(empty.find("kmalloc").is_error());
}

TEST(ElfVersions, KernelExportsNeedAMatchingCrc)
{
    auto bytes = versions_section({ { 0x1234, "kmalloc" } });
    VersionTable versions(bytes_of(bytes));
    EXPECT_FALSE(versions.check("kmalloc", 0x1234, VersionTable::Exporter::Kernel).is_error());
    auto mismatch = versions.check("kmalloc", 0x1235, VersionTable::Exporter::Kernel);
    ASSERT_TRUE(mismatch.is_error());
    EXPECT_EQ(mismatch.error().code(), EBADMSG);
    EXPECT_TRUE(mismatch.error().has_message());
    auto missing = versions.check("kfree", 0x1234, VersionTable::Exporter::Kernel);
    ASSERT_TRUE(missing.is_error());
    EXPECT_EQ(missing.error().code(), ENOPKG);
    // Even a kernel export with CRC 0 needs an entry: the kernel always versions its exports.
    missing = versions.check("kfree", 0, VersionTable::Exporter::Kernel);
    ASSERT_TRUE(missing.is_error());
    EXPECT_EQ(missing.error().code(), ENOPKG);
}

TEST(ElfVersions, ModuleExportsAreCheckedLikeKernelExports)
{
    auto bytes = versions_section({ { 0xabcd, "hello_add" } });
    VersionTable versions(bytes_of(bytes));
    EXPECT_FALSE(versions.check("hello_add", 0xabcd, VersionTable::Exporter::Module).is_error());
    auto mismatch = versions.check("hello_add", 0xabce, VersionTable::Exporter::Module);
    ASSERT_TRUE(mismatch.is_error());
    EXPECT_EQ(mismatch.error().code(), EBADMSG);
    EXPECT_STREQ(mismatch.error().message(), "import disagrees about the version of a module export");
    // The importer recorded a CRC, the exporter declares none: they disagree.
    mismatch = versions.check("hello_add", 0, VersionTable::Exporter::Module);
    ASSERT_TRUE(mismatch.is_error());
    EXPECT_EQ(mismatch.error().code(), EBADMSG);
    // A versioned export the importer has no CRC for.
    auto missing = versions.check("hello_sub", 0x1, VersionTable::Exporter::Module);
    ASSERT_TRUE(missing.is_error());
    EXPECT_EQ(missing.error().code(), ENOPKG);
    // An unversioned exporter (CRC 0) and no entry: nothing to compare, accepted.
    EXPECT_FALSE(versions.check("hello_sub", 0, VersionTable::Exporter::Module).is_error());
}
