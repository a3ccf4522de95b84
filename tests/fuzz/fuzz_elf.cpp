// libFuzzer target: arbitrary bytes as a kernel module, through parse, layout and relocation into
// bounded buffers, the way the module loader drives the library.
#include <lib/elf/ElfObject.h>
#include <lib/elf/ModuleLayout.h>
#include <lib/elf/Relocator.h>

#include <cstdlib>
#include <cstring>

namespace {

class MallocAllocator final : public Allocator {
public:
    ErrorOr<void*> allocate(usize size, usize) override
    {
        void* pointer = malloc(size ? size : 1);
        if (!pointer)
            return ENOMEM;
        return pointer;
    }
    void deallocate(void* pointer, usize) override { free(pointer); }
};

// Known symbols live in the kernel image; names starting with 'x' are unknown.
class FixedResolver final : public SymbolResolver {
public:
    ErrorOr<u64> resolve(StringView name) override
    {
        if (name.starts_with("x"))
            return ENOENT;
        u64 hash = 1469598103934665603ull;
        for (usize i = 0; i < name.length(); ++i)
            hash = (hash ^ u8(name[i])) * 1099511628211ull;
        return 0xffffffff80000000ull + (hash & 0xfffff) * 16;
    }
};

// Each failure must explain itself: a code and a message.
void check_error(const ElfError& error)
{
    if (error.code() == 0 || error.message().is_empty())
        abort();
}

volatile u8 g_sink;

void touch(StringView view)
{
    for (usize i = 0; i < view.length(); ++i)
        g_sink = g_sink + u8(view[i]);
}

void touch(ReadonlyBytes bytes)
{
    for (u8 byte : bytes)
        g_sink = g_sink + byte;
}

constexpr u64 MAX_FUZZ_REGION = 1 * MiB;

}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    // An exact-size copy lets ASan catch any read past the end of the file.
    u8* copy = static_cast<u8*>(malloc(size ? size : 1));
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);

    static ElfError error;
    MallocAllocator allocator;
    auto parsed = ElfObject::parse(ReadonlyBytes(copy, size), error);
    if (parsed.is_error()) {
        check_error(error);
        free(copy);
        return 0;
    }
    auto& object = parsed.value();
    for (usize i = 0; i < object.section_count(); ++i) {
        auto section = object.section(i);
        touch(section.name);
        touch(object.section_data(i));
        if (section.type == Elf::SectionType::Rela) {
            for (usize n = 0; n < object.relocation_count(i); ++n)
                g_sink = g_sink + u8(object.relocation(i, n).symbol_index);
        }
    }
    for (usize i = 0; i < object.symbol_count(); ++i)
        touch(object.symbol(i).name);
    (void)object.find_section(".text");
    (void)object.find_symbol("init_module");

    auto planned = ModuleLayout::plan(object, allocator, error);
    if (planned.is_error()) {
        check_error(error);
        free(copy);
        return 0;
    }
    auto& layout = planned.value();

    // Regions at kernel-module addresses, each aligned to 2 MiB (the largest alignment a layout
    // accepts), backed by exact-size buffers.
    static constexpr u64 bases[MODULE_REGION_COUNT] = { 0xffffffffc0000000ull, 0xffffffffc0400000ull, 0xffffffffc0800000ull };
    ModuleMemory memory;
    bool fits = true;
    for (usize r = 0; r < MODULE_REGION_COUNT; ++r) {
        u64 needed = layout.region_size(ModuleRegion(r));
        if (needed > MAX_FUZZ_REGION)
            fits = false;
    }
    if (fits) {
        u8* buffers[MODULE_REGION_COUNT] = {};
        for (usize r = 0; r < MODULE_REGION_COUNT; ++r) {
            u64 needed = layout.region_size(ModuleRegion(r));
            buffers[r] = static_cast<u8*>(malloc(needed ? needed : 1));
            memory.regions[r] = RegionMemory { buffers[r], bases[r], needed };
        }
        FixedResolver resolver;
        auto result = Relocator::relocate(object, layout, memory, resolver, error);
        if (result.is_error()) {
            check_error(error);
        } else {
            for (usize r = 0; r < MODULE_REGION_COUNT; ++r)
                touch(ReadonlyBytes(buffers[r], layout.region_size(ModuleRegion(r))));
            ElfError lookup_error;
            auto entry = layout.symbol_address(object, "init_module", memory, lookup_error);
            if (entry.is_error())
                check_error(lookup_error);
        }
        for (auto* buffer : buffers)
            free(buffer);
    }
    free(copy);
    return 0;
}
