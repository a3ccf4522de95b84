// The library header comes first: ktl/Errno.h defines errno names that <cerrno> would turn into macros.
#include <lib/boot/Multiboot2.h>

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

using namespace Multiboot2;

namespace {

// Builds a Multiboot2 information structure the way GRUB lays it out: 8-byte header, tags
// padded to 8 bytes, an end tag. Storage is u64 so the result is 8-byte aligned.
class InfoBuilder {
public:
    InfoBuilder& raw_tag(u32 type, const std::vector<u8>& payload, u32 size_override = 0)
    {
        usize start = m_bytes.size();
        put32(type);
        put32(size_override ? size_override : u32(8 + payload.size()));
        m_bytes.insert(m_bytes.end(), payload.begin(), payload.end());
        while ((m_bytes.size() - start) % 8)
            m_bytes.push_back(0);
        return *this;
    }
    InfoBuilder& string_tag(u32 type, const std::string& text)
    {
        std::vector<u8> payload(text.begin(), text.end());
        payload.push_back(0);
        return raw_tag(type, payload);
    }
    InfoBuilder& mmap(const std::vector<MemoryMapEntry>& entries, u32 entry_size = 24, u32 version = 0)
    {
        std::vector<u8> payload;
        append32(payload, entry_size);
        append32(payload, version);
        for (auto& entry : entries) {
            usize start = payload.size();
            append64(payload, entry.base);
            append64(payload, entry.length);
            append32(payload, entry.type);
            append32(payload, 0);
            while (payload.size() - start < entry_size)
                payload.push_back(0);
        }
        return raw_tag(TagMemoryMap, payload);
    }
    InfoBuilder& default_mmap()
    {
        return mmap({ { 0, 0x9fc00, MemoryAvailable }, { 0x100000, 0x7ee0000, MemoryAvailable }, { 0xfffc0000, 0x40000, MemoryReserved } });
    }
    InfoBuilder& module(u32 start, u32 end, const std::string& cmdline)
    {
        std::vector<u8> payload;
        append32(payload, start);
        append32(payload, end);
        payload.insert(payload.end(), cmdline.begin(), cmdline.end());
        payload.push_back(0);
        return raw_tag(TagModule, payload);
    }
    InfoBuilder& end() { return raw_tag(TagEnd, {}); }

    // total_size defaults to the real size.
    std::vector<u64> build(u32 total_size_override = 0) const
    {
        std::vector<u8> bytes(8, 0);
        u32 total = total_size_override ? total_size_override : u32(8 + m_bytes.size());
        std::memcpy(bytes.data(), &total, 4);
        bytes.insert(bytes.end(), m_bytes.begin(), m_bytes.end());
        std::vector<u64> storage((bytes.size() + 7) / 8 + 1, 0);
        std::memcpy(storage.data(), bytes.data(), bytes.size());
        m_size = bytes.size();
        return storage;
    }
    usize size() const { return m_size; }

    static void append32(std::vector<u8>& out, u32 v) { for (int i = 0; i < 4; ++i) out.push_back(u8(v >> (8 * i))); }
    static void append64(std::vector<u8>& out, u64 v) { for (int i = 0; i < 8; ++i) out.push_back(u8(v >> (8 * i))); }

private:
    void put32(u32 v) { append32(m_bytes, v); }
    std::vector<u8> m_bytes;
    mutable usize m_size { 0 };
};

ReadonlyBytes bytes_of(const std::vector<u64>& storage, usize size)
{
    return ReadonlyBytes(reinterpret_cast<const u8*>(storage.data()), size);
}

struct Parsed {
    std::vector<u64> storage;
    BootInfo info;
    ErrorOr<void> result;
};

// BootInfo is large; keep it off the test's stack frame.
std::unique_ptr<Parsed> parse(const InfoBuilder& builder, u32 total_size_override = 0, usize size_override = 0)
{
    auto parsed = std::make_unique<Parsed>();
    parsed->storage = builder.build(total_size_override);
    usize size = size_override ? size_override : builder.size();
    parsed->result = parse_multiboot2(bytes_of(parsed->storage, size), parsed->info);
    return parsed;
}

std::string sv(StringView view) { return std::string(view.characters(), view.length()); }

} // namespace

TEST(Multiboot2, ParsesMinimalInfo)
{
    auto p = parse(InfoBuilder().default_mmap().end());
    ASSERT_FALSE(p->result.is_error()) << p->info.error;
    EXPECT_EQ(p->info.memory_map_count, 3u);
    EXPECT_EQ(p->info.memory_map()[1].base, 0x100000u);
    EXPECT_EQ(p->info.memory_map()[1].length, 0x7ee0000u);
    EXPECT_EQ(p->info.memory_map()[2].type, u32(MemoryReserved));
    EXPECT_TRUE(p->info.command_line.is_empty());
    EXPECT_FALSE(p->info.framebuffer.present);
    EXPECT_EQ(p->info.acpi_rsdp_version, 0);
}

TEST(Multiboot2, ParsesCommandLineAndLoaderName)
{
    auto p = parse(InfoBuilder().string_tag(TagCommandLine, "console=serial selftest=all").string_tag(TagBootLoaderName, "GRUB 2.06").default_mmap().end());
    ASSERT_FALSE(p->result.is_error()) << p->info.error;
    EXPECT_EQ(sv(p->info.command_line), "console=serial selftest=all");
    EXPECT_EQ(sv(p->info.bootloader_name), "GRUB 2.06");
}

TEST(Multiboot2, ParsesModules)
{
    auto p = parse(InfoBuilder().module(0x200000, 0x201000, "initrd").module(0x300000, 0x300000, "").default_mmap().end());
    ASSERT_FALSE(p->result.is_error()) << p->info.error;
    ASSERT_EQ(p->info.module_count, 2u);
    EXPECT_EQ(p->info.modules[0].start, 0x200000u);
    EXPECT_EQ(p->info.modules[0].end, 0x201000u);
    EXPECT_EQ(sv(p->info.modules[0].command_line), "initrd");
    EXPECT_TRUE(p->info.modules[1].command_line.is_empty());
}

TEST(Multiboot2, RejectsModuleStartAfterEnd)
{
    auto p = parse(InfoBuilder().module(0x300000, 0x200000, "bad").default_mmap().end());
    ASSERT_TRUE(p->result.is_error());
    EXPECT_NE(std::string(p->info.error).find("start 0x300000 after end 0x200000"), std::string::npos) << p->info.error;
}

TEST(Multiboot2, RejectsTooManyModules)
{
    InfoBuilder builder;
    for (int i = 0; i < 33; ++i)
        builder.module(0x1000 * i, 0x1000 * i + 0x100, "m");
    auto p = parse(builder.default_mmap().end());
    ASSERT_TRUE(p->result.is_error());
    EXPECT_EQ(p->result.error().code(), E2BIG);
}

TEST(Multiboot2, ParsesBasicMemoryInfoAndLoadBase)
{
    std::vector<u8> meminfo, load;
    InfoBuilder::append32(meminfo, 639);
    InfoBuilder::append32(meminfo, 130048);
    InfoBuilder::append32(load, 0x100000);
    auto p = parse(InfoBuilder().raw_tag(TagBasicMemoryInfo, meminfo).raw_tag(TagLoadBaseAddress, load).default_mmap().end());
    ASSERT_FALSE(p->result.is_error()) << p->info.error;
    EXPECT_TRUE(p->info.has_basic_memory_info);
    EXPECT_EQ(p->info.mem_lower_kib, 639u);
    EXPECT_EQ(p->info.mem_upper_kib, 130048u);
    EXPECT_TRUE(p->info.has_load_base_address);
    EXPECT_EQ(p->info.load_base_address, 0x100000u);
}

TEST(Multiboot2, ParsesRgbFramebuffer)
{
    std::vector<u8> fb;
    InfoBuilder::append64(fb, 0xfd000000);
    InfoBuilder::append32(fb, 4096); // pitch
    InfoBuilder::append32(fb, 1024);
    InfoBuilder::append32(fb, 768);
    fb.push_back(32); // bpp
    fb.push_back(FramebufferRgb);
    fb.push_back(0);
    fb.push_back(0);
    for (u8 v : { 16, 8, 8, 8, 0, 8 })
        fb.push_back(v);
    auto p = parse(InfoBuilder().raw_tag(TagFramebuffer, fb).default_mmap().end());
    ASSERT_FALSE(p->result.is_error()) << p->info.error;
    auto& f = p->info.framebuffer;
    EXPECT_TRUE(f.present);
    EXPECT_EQ(f.address, 0xfd000000u);
    EXPECT_EQ(f.pitch, 4096u);
    EXPECT_EQ(f.width, 1024u);
    EXPECT_EQ(f.height, 768u);
    EXPECT_EQ(f.bpp, 32);
    EXPECT_EQ(f.red_position, 16);
    EXPECT_EQ(f.green_position, 8);
    EXPECT_EQ(f.blue_size, 8);
}

TEST(Multiboot2, RejectsTruncatedRgbFramebuffer)
{
    std::vector<u8> fb(24, 0);
    fb[21] = FramebufferRgb; // type at tag offset 29
    auto p = parse(InfoBuilder().raw_tag(TagFramebuffer, fb).default_mmap().end());
    ASSERT_TRUE(p->result.is_error());
    EXPECT_NE(std::string(p->info.error).find("framebuffer"), std::string::npos) << p->info.error;
}

TEST(Multiboot2, ParsesAcpiRsdpTags)
{
    std::vector<u8> old_rsdp(20, 0x11), new_rsdp(36, 0x22);
    auto p = parse(InfoBuilder().raw_tag(TagAcpiNewRsdp, new_rsdp).raw_tag(TagAcpiOldRsdp, old_rsdp).default_mmap().end());
    ASSERT_FALSE(p->result.is_error()) << p->info.error;
    EXPECT_EQ(p->info.acpi_rsdp_version, 2);
    ASSERT_EQ(p->info.acpi_rsdp.size(), 36u);
    EXPECT_EQ(p->info.acpi_rsdp[0], 0x22);

    auto q = parse(InfoBuilder().raw_tag(TagAcpiOldRsdp, old_rsdp).default_mmap().end());
    ASSERT_FALSE(q->result.is_error());
    EXPECT_EQ(q->info.acpi_rsdp_version, 1);
    EXPECT_EQ(q->info.acpi_rsdp.size(), 20u);
}

TEST(Multiboot2, SkipsUnknownTags)
{
    auto p = parse(InfoBuilder().raw_tag(999, { 1, 2, 3 }).raw_tag(TagElfSections, std::vector<u8>(40, 0)).default_mmap().end());
    ASSERT_FALSE(p->result.is_error()) << p->info.error;
    EXPECT_EQ(p->info.memory_map_count, 3u);
}

TEST(Multiboot2, AcceptsLargerEntrySize)
{
    auto p = parse(InfoBuilder().mmap({ { 0x100000, 0x100000, MemoryAvailable }, { 0x300000, 0x1000, MemoryBad } }, 32).end());
    ASSERT_FALSE(p->result.is_error()) << p->info.error;
    ASSERT_EQ(p->info.memory_map_count, 2u);
    EXPECT_EQ(p->info.memory_map()[1].base, 0x300000u);
    EXPECT_EQ(p->info.memory_map()[1].type, u32(MemoryBad));
}

TEST(Multiboot2, RejectsBadEntrySize)
{
    auto p = parse(InfoBuilder().mmap({ { 0, 0x1000, 1 } }, 20).end());
    ASSERT_TRUE(p->result.is_error());
    EXPECT_NE(std::string(p->info.error).find("entry_size 20"), std::string::npos) << p->info.error;

    auto q = parse(InfoBuilder().mmap({ { 0, 0x1000, 1 } }, 28).end());
    ASSERT_TRUE(q->result.is_error());
}

TEST(Multiboot2, RejectsBadEntryVersion)
{
    auto p = parse(InfoBuilder().mmap({ { 0, 0x1000, 1 } }, 24, 1).end());
    ASSERT_TRUE(p->result.is_error());
    EXPECT_NE(std::string(p->info.error).find("entry_version 1"), std::string::npos) << p->info.error;
}

TEST(Multiboot2, RejectsPartialMemoryMapEntry)
{
    // 16-byte tag header plus 30 bytes: one whole entry and 6 stray bytes.
    std::vector<u8> payload;
    InfoBuilder::append32(payload, 24);
    InfoBuilder::append32(payload, 0);
    payload.resize(8 + 30, 0);
    auto p = parse(InfoBuilder().raw_tag(TagMemoryMap, payload).end());
    ASSERT_TRUE(p->result.is_error());
    EXPECT_NE(std::string(p->info.error).find("not a multiple of entry_size"), std::string::npos) << p->info.error;
}

TEST(Multiboot2, RejectsTooManyMemoryMapEntries)
{
    std::vector<MemoryMapEntry> entries;
    for (u64 i = 0; i < 257; ++i)
        entries.push_back({ i * 0x1000, 0x1000, MemoryAvailable });
    auto p = parse(InfoBuilder().mmap(entries).end());
    ASSERT_TRUE(p->result.is_error());
    EXPECT_EQ(p->result.error().code(), E2BIG);

    entries.pop_back();
    auto q = parse(InfoBuilder().mmap(entries).end());
    ASSERT_FALSE(q->result.is_error()) << q->info.error;
    EXPECT_EQ(q->info.memory_map_count, 256u);
}

TEST(Multiboot2, RejectsDuplicateMemoryMap)
{
    auto p = parse(InfoBuilder().default_mmap().default_mmap().end());
    ASSERT_TRUE(p->result.is_error());
}

TEST(Multiboot2, RejectsMissingMemoryMap)
{
    auto p = parse(InfoBuilder().string_tag(TagCommandLine, "x").end());
    ASSERT_TRUE(p->result.is_error());
    EXPECT_STREQ(p->info.error, "multiboot2: no memory map tag");
}

TEST(Multiboot2, RejectsMissingEndTag)
{
    auto p = parse(InfoBuilder().default_mmap());
    ASSERT_TRUE(p->result.is_error());
    EXPECT_STREQ(p->info.error, "multiboot2: missing end tag");
}

TEST(Multiboot2, RejectsTagSmallerThanHeader)
{
    // The memory map tag declares size 4; it sits right after the 8-byte header... after one
    // 16-byte command line tag, at offset 0x18.
    auto p = parse(InfoBuilder().string_tag(TagCommandLine, "abc").raw_tag(TagMemoryMap, { 0, 0, 0, 0, 0, 0, 0, 0 }, 4).end());
    ASSERT_TRUE(p->result.is_error());
    EXPECT_STREQ(p->info.error, "multiboot2: tag 6 (memory map) at offset 0x18 has size 4, smaller than its header");
}

TEST(Multiboot2, RejectsTagSizePastEnd)
{
    auto p = parse(InfoBuilder().raw_tag(TagMemoryMap, { 24, 0, 0, 0, 0, 0, 0, 0 }, 0xfffffff0).end());
    ASSERT_TRUE(p->result.is_error());
    EXPECT_NE(std::string(p->info.error).find("past the end"), std::string::npos) << p->info.error;
}

TEST(Multiboot2, RejectsTotalSizeLargerThanBuffer)
{
    InfoBuilder builder;
    builder.default_mmap().end();
    auto p = parse(builder, 0, 16);
    ASSERT_TRUE(p->result.is_error());
    EXPECT_NE(std::string(p->info.error).find("larger than the 16 bytes"), std::string::npos) << p->info.error;
}

TEST(Multiboot2, RejectsTruncatedBuffers)
{
    InfoBuilder builder;
    builder.string_tag(TagCommandLine, "hello world").default_mmap().end();
    auto storage = builder.build();
    usize full = builder.size();
    // Every shorter total_size must fail cleanly (ASan checks nothing past it is read).
    for (usize size = 0; size < full; ++size) {
        std::vector<u64> copy((size + 7) / 8 + 1, 0);
        std::memcpy(copy.data(), storage.data(), size);
        if (size >= 4) {
            u32 total = u32(size);
            std::memcpy(copy.data(), &total, 4);
        }
        auto info = std::make_unique<BootInfo>();
        // A heap copy of exactly `size` bytes, so ASan sees any overread.
        auto exact = std::make_unique<u64[]>((size + 7) / 8 + 1);
        std::memcpy(exact.get(), copy.data(), size);
        EXPECT_TRUE(parse_multiboot2(ReadonlyBytes(reinterpret_cast<const u8*>(exact.get()), size), *info).is_error()) << size;
        EXPECT_NE(info->error, nullptr);
    }
}

TEST(Multiboot2, RejectsTinyTotalSize)
{
    auto p = parse(InfoBuilder().default_mmap().end(), 8);
    ASSERT_TRUE(p->result.is_error());
    EXPECT_NE(std::string(p->info.error).find("total_size 8"), std::string::npos) << p->info.error;
}

TEST(Multiboot2, RejectsMisalignedBuffer)
{
    InfoBuilder builder;
    builder.default_mmap().end();
    auto storage = builder.build();
    std::vector<u8> shifted(builder.size() + 1);
    std::memcpy(shifted.data() + 1, storage.data(), builder.size());
    auto info = std::make_unique<BootInfo>();
    const u8* start = shifted.data() + 1;
    if (reinterpret_cast<uptr>(start) % 8 == 0)
        GTEST_SKIP() << "vector happened to be misaligned by 7";
    auto result = parse_multiboot2(ReadonlyBytes(start, builder.size()), *info);
    ASSERT_TRUE(result.is_error());
    EXPECT_STREQ(info->error, "multiboot2: boot information is not 8-byte aligned");
}

TEST(Multiboot2, RejectsUnterminatedCommandLine)
{
    auto p = parse(InfoBuilder().raw_tag(TagCommandLine, { 'a', 'b', 'c' }).default_mmap().end());
    ASSERT_TRUE(p->result.is_error());
    EXPECT_NE(std::string(p->info.error).find("not NUL-terminated"), std::string::npos) << p->info.error;
}

TEST(Multiboot2, CommandLineStopsAtFirstNul)
{
    auto p = parse(InfoBuilder().raw_tag(TagCommandLine, { 'a', 0, 'b', 0 }).default_mmap().end());
    ASSERT_FALSE(p->result.is_error());
    EXPECT_EQ(sv(p->info.command_line), "a");
}

TEST(Multiboot2, IgnoresBytesAfterEndTag)
{
    InfoBuilder builder;
    builder.default_mmap().end().raw_tag(TagMemoryMap, { 1, 2, 3 }, 4);
    auto p = parse(builder);
    ASSERT_FALSE(p->result.is_error()) << p->info.error;
}

TEST(Multiboot2, ValidateAcceptsGoodMap)
{
    auto p = parse(InfoBuilder().default_mmap().end());
    ASSERT_FALSE(p->result.is_error());
    const char* why = nullptr;
    EXPECT_FALSE(validate_memory_map(p->info, &why).is_error()) << why;
}

TEST(Multiboot2, ValidateRejectsEmptyMap)
{
    auto p = parse(InfoBuilder().mmap({}).end());
    ASSERT_FALSE(p->result.is_error());
    const char* why = nullptr;
    EXPECT_TRUE(validate_memory_map(p->info, &why).is_error());
    EXPECT_STREQ(why, "multiboot2: memory map is empty");
}

TEST(Multiboot2, ValidateRejectsMapWithoutRam)
{
    auto p = parse(InfoBuilder().mmap({ { 0, 0x1000, MemoryReserved }, { 0x100000, 0, MemoryAvailable } }).end());
    ASSERT_FALSE(p->result.is_error());
    const char* why = nullptr;
    EXPECT_TRUE(validate_memory_map(p->info, &why).is_error());
    EXPECT_STREQ(why, "multiboot2: memory map has no available RAM");
}

TEST(Multiboot2, ValidateRejectsOverlap)
{
    auto p = parse(InfoBuilder().mmap({ { 0, 0x9fc00, MemoryAvailable }, { 0x100000, 0x200000, MemoryAvailable }, { 0x200000, 0x1000, MemoryReserved } }).end());
    ASSERT_FALSE(p->result.is_error());
    const char* why = nullptr;
    EXPECT_TRUE(validate_memory_map(p->info, &why).is_error());
    EXPECT_STREQ(why, "multiboot2: memory map entries 1 and 2 overlap: [0x100000,0x300000) and [0x200000,0x201000)");
    EXPECT_EQ(p->info.error, why);
}

TEST(Multiboot2, ValidateAllowsTouchingAndEmptyEntries)
{
    auto p = parse(InfoBuilder().mmap({ { 0, 0x1000, MemoryAvailable }, { 0x1000, 0x1000, MemoryReserved }, { 0x800, 0, MemoryReserved } }).end());
    ASSERT_FALSE(p->result.is_error());
    const char* why = nullptr;
    EXPECT_FALSE(validate_memory_map(p->info, &why).is_error()) << why;
}

TEST(Multiboot2, ValidateRejectsWrappingEntry)
{
    auto p = parse(InfoBuilder().mmap({ { 0, 0x1000, MemoryAvailable }, { 0xfffffffffffff000, 0x2000, MemoryReserved } }).end());
    ASSERT_FALSE(p->result.is_error());
    const char* why = nullptr;
    EXPECT_TRUE(validate_memory_map(p->info, &why).is_error());
    EXPECT_NE(std::string(why).find("wraps"), std::string::npos) << why;
}

TEST(Multiboot2, ForEachMemoryRegionFiltersByType)
{
    auto p = parse(InfoBuilder().default_mmap().end());
    ASSERT_FALSE(p->result.is_error());
    u64 total = 0;
    int count = 0;
    for_each_memory_region(p->info, MemoryAvailable, [&](const MemoryMapEntry& entry) {
        total += entry.length;
        ++count;
    });
    EXPECT_EQ(count, 2);
    EXPECT_EQ(total, 0x9fc00u + 0x7ee0000u);
    EXPECT_STREQ(memory_type_name(MemoryAcpiNvs), "ACPI NVS");
}

TEST(Multiboot2, ReparseResetsPreviousResult)
{
    auto p = parse(InfoBuilder().string_tag(TagCommandLine, "one").module(1, 2, "m").default_mmap().end());
    ASSERT_FALSE(p->result.is_error());
    InfoBuilder second;
    second.default_mmap().end();
    auto storage = second.build();
    ASSERT_FALSE(parse_multiboot2(bytes_of(storage, second.size()), p->info).is_error());
    EXPECT_TRUE(p->info.command_line.is_empty());
    EXPECT_EQ(p->info.module_count, 0u);
}
