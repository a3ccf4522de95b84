#include <lib/boot/Multiboot2.h>

using namespace Multiboot2;

namespace {

// Formats a diagnostic into a fixed buffer, truncating instead of overflowing.
// NOTE: kept private to this file; the ktl has no formatter the pure libraries may share yet.
class MessageWriter {
public:
    MessageWriter(char* buffer, usize capacity) : m_buffer(buffer), m_capacity(capacity) { m_buffer[0] = 0; }
    MessageWriter& text(const char* s)
    {
        while (*s) put(*s++);
        return *this;
    }
    MessageWriter& dec(u64 value)
    {
        char digits[20];
        int n = 0;
        do { digits[n++] = char('0' + value % 10); value /= 10; } while (value);
        while (n) put(digits[--n]);
        return *this;
    }
    MessageWriter& hex(u64 value)
    {
        text("0x");
        int shift = 60;
        while (shift > 0 && ((value >> shift) & 0xf) == 0) shift -= 4;
        for (; shift >= 0; shift -= 4) put("0123456789abcdef"[(value >> shift) & 0xf]);
        return *this;
    }
    const char* c_str() const { return m_buffer; }

private:
    void put(char c)
    {
        if (m_length + 1 >= m_capacity) return;
        m_buffer[m_length++] = c;
        m_buffer[m_length] = 0;
    }
    char* m_buffer;
    usize m_capacity;
    usize m_length { 0 };
};

u32 read_u32(ReadonlyBytes bytes, usize offset)
{
    VERIFY(bytes.contains_range(offset, 4));
    u32 value;
    __builtin_memcpy(&value, bytes.data() + offset, 4);
    return value;
}

u64 read_u64(ReadonlyBytes bytes, usize offset)
{
    VERIFY(bytes.contains_range(offset, 8));
    u64 value;
    __builtin_memcpy(&value, bytes.data() + offset, 8);
    return value;
}

const char* tag_name(u32 type)
{
    switch (type) {
    case TagEnd: return "end";
    case TagCommandLine: return "command line";
    case TagBootLoaderName: return "boot loader name";
    case TagModule: return "module";
    case TagBasicMemoryInfo: return "basic memory info";
    case TagBiosBootDevice: return "BIOS boot device";
    case TagMemoryMap: return "memory map";
    case TagVbeInfo: return "VBE info";
    case TagFramebuffer: return "framebuffer";
    case TagElfSections: return "ELF sections";
    case TagApmTable: return "APM table";
    case TagEfi32SystemTable: return "EFI32 system table";
    case TagEfi64SystemTable: return "EFI64 system table";
    case TagSmbios: return "SMBIOS";
    case TagAcpiOldRsdp: return "ACPI old RSDP";
    case TagAcpiNewRsdp: return "ACPI new RSDP";
    case TagNetwork: return "network";
    case TagEfiMemoryMap: return "EFI memory map";
    case TagEfiBootServicesNotTerminated: return "EFI boot services not terminated";
    case TagEfi32ImageHandle: return "EFI32 image handle";
    case TagEfi64ImageHandle: return "EFI64 image handle";
    case TagLoadBaseAddress: return "load base address";
    default: return "unknown";
    }
}

// One tag as seen by the per-type parsers: its payload starts at TagHeaderSize.
struct Tag {
    u32 type;
    usize offset; // from the start of the boot information, for messages
    ReadonlyBytes bytes; // exactly `size` bytes, header included
};

class Parser {
public:
    explicit Parser(BootInfo& out) : m_out(out) { }

    ErrorOr<void> fail(const char* literal)
    {
        m_out.error = literal;
        return EINVAL;
    }
    // "multiboot2: tag 6 (memory map) at offset 0x48 <problem>"
    MessageWriter tag_message(const Tag& tag)
    {
        MessageWriter writer(m_out.error_buffer, sizeof(m_out.error_buffer));
        writer.text("multiboot2: tag ").dec(tag.type).text(" (").text(tag_name(tag.type)).text(") at offset ").hex(tag.offset).text(" ");
        m_out.error = m_out.error_buffer;
        return writer;
    }
    ErrorOr<void> fail_tag(const Tag& tag, const char* problem)
    {
        tag_message(tag).text(problem);
        return EINVAL;
    }
    ErrorOr<void> require_size(const Tag& tag, usize minimum)
    {
        if (tag.bytes.size() >= minimum)
            return {};
        tag_message(tag).text("has size ").dec(tag.bytes.size()).text(", smaller than the ").dec(minimum).text(" bytes it needs");
        return EINVAL;
    }

    // A NUL-terminated string that must end inside the tag.
    ErrorOr<StringView> string_at(const Tag& tag, usize offset)
    {
        for (usize i = offset; i < tag.bytes.size(); ++i) {
            if (tag.bytes[i] == 0)
                return StringView(reinterpret_cast<const char*>(tag.bytes.data() + offset), i - offset);
        }
        tag_message(tag).text("has a string that is not NUL-terminated within the tag");
        return Error(EINVAL);
    }

    ErrorOr<void> parse_tag(const Tag& tag);

private:
    ErrorOr<void> parse_memory_map(const Tag& tag);
    ErrorOr<void> parse_module(const Tag& tag);
    ErrorOr<void> parse_framebuffer(const Tag& tag);

    BootInfo& m_out;
};

ErrorOr<void> Parser::parse_memory_map(const Tag& tag)
{
    TRY(require_size(tag, 16));
    if (m_out.has_memory_map)
        return fail_tag(tag, "is a second memory map tag");
    u32 entry_size = read_u32(tag.bytes, 8);
    u32 entry_version = read_u32(tag.bytes, 12);
    // The specification allows bigger entries in future versions, always a multiple of 8.
    if (entry_size < MemoryMapEntryMinSize || entry_size % 8 != 0) {
        tag_message(tag).text("has entry_size ").dec(entry_size).text(", expected a multiple of 8 of at least 24");
        return EINVAL;
    }
    if (entry_version != 0) {
        tag_message(tag).text("has entry_version ").dec(entry_version).text(", expected 0");
        return EINVAL;
    }
    usize payload = tag.bytes.size() - 16;
    if (payload % entry_size != 0) {
        tag_message(tag).text("has ").dec(payload).text(" bytes of entries, not a multiple of entry_size ").dec(entry_size);
        return EINVAL;
    }
    usize count = payload / entry_size;
    if (count > MaxMemoryMapEntries) {
        tag_message(tag).text("has ").dec(count).text(" entries, more than the ").dec(MaxMemoryMapEntries).text(" supported");
        m_out.error = m_out.error_buffer;
        return E2BIG;
    }
    for (usize i = 0; i < count; ++i) {
        usize at = 16 + i * entry_size;
        auto& entry = m_out.memory_map_entries[i];
        entry.base = read_u64(tag.bytes, at);
        entry.length = read_u64(tag.bytes, at + 8);
        entry.type = read_u32(tag.bytes, at + 16);
    }
    m_out.memory_map_count = count;
    m_out.has_memory_map = true;
    return {};
}

ErrorOr<void> Parser::parse_module(const Tag& tag)
{
    // u32 mod_start, u32 mod_end, then a NUL-terminated string (at least the NUL).
    TRY(require_size(tag, 17));
    if (m_out.module_count == MaxModules) {
        tag_message(tag).text("is more than the ").dec(MaxModules).text(" supported modules");
        return E2BIG;
    }
    BootModule module;
    module.start = read_u32(tag.bytes, 8);
    module.end = read_u32(tag.bytes, 12);
    if (module.start > module.end) {
        tag_message(tag).text("has start ").hex(module.start).text(" after end ").hex(module.end);
        return EINVAL;
    }
    module.command_line = TRY(string_at(tag, 16));
    m_out.modules[m_out.module_count++] = module;
    return {};
}

ErrorOr<void> Parser::parse_framebuffer(const Tag& tag)
{
    // GRUB's layout: addr u64 @8, pitch @16, width @20, height @24, bpp u8 @28, type u8 @29,
    // u16 reserved @30, colour info @32.
    TRY(require_size(tag, 32));
    auto& fb = m_out.framebuffer;
    fb = {};
    fb.address = read_u64(tag.bytes, 8);
    fb.pitch = read_u32(tag.bytes, 16);
    fb.width = read_u32(tag.bytes, 20);
    fb.height = read_u32(tag.bytes, 24);
    fb.bpp = tag.bytes[28];
    fb.type = tag.bytes[29];
    if (fb.type == FramebufferRgb) {
        TRY(require_size(tag, 38));
        fb.red_position = tag.bytes[32];
        fb.red_size = tag.bytes[33];
        fb.green_position = tag.bytes[34];
        fb.green_size = tag.bytes[35];
        fb.blue_position = tag.bytes[36];
        fb.blue_size = tag.bytes[37];
    }
    fb.present = true;
    return {};
}

ErrorOr<void> Parser::parse_tag(const Tag& tag)
{
    switch (tag.type) {
    case TagCommandLine:
        m_out.command_line = TRY(string_at(tag, TagHeaderSize));
        return {};
    case TagBootLoaderName:
        m_out.bootloader_name = TRY(string_at(tag, TagHeaderSize));
        return {};
    case TagModule:
        return parse_module(tag);
    case TagBasicMemoryInfo:
        TRY(require_size(tag, 16));
        m_out.mem_lower_kib = read_u32(tag.bytes, 8);
        m_out.mem_upper_kib = read_u32(tag.bytes, 12);
        m_out.has_basic_memory_info = true;
        return {};
    case TagMemoryMap:
        return parse_memory_map(tag);
    case TagFramebuffer:
        return parse_framebuffer(tag);
    case TagAcpiOldRsdp:
    case TagAcpiNewRsdp:
        // A newer RSDP wins over an old one, whatever order the loader used.
        if (tag.type == TagAcpiOldRsdp && m_out.acpi_rsdp_version == 2)
            return {};
        m_out.acpi_rsdp = tag.bytes.slice(TagHeaderSize);
        m_out.acpi_rsdp_version = tag.type == TagAcpiOldRsdp ? 1 : 2;
        return {};
    case TagLoadBaseAddress:
        TRY(require_size(tag, 12));
        m_out.load_base_address = read_u32(tag.bytes, 8);
        m_out.has_load_base_address = true;
        return {};
    default:
        // Tags we do not use are skipped: the specification says to ignore unknown ones.
        return {};
    }
}

} // namespace

const char* memory_type_name(u32 type)
{
    switch (type) {
    case MemoryAvailable: return "available";
    case MemoryReserved: return "reserved";
    case MemoryAcpiReclaimable: return "ACPI reclaimable";
    case MemoryAcpiNvs: return "ACPI NVS";
    case MemoryBad: return "bad";
    default: return "reserved (unknown type)";
    }
}

ErrorOr<void> parse_multiboot2(ReadonlyBytes info, BootInfo& out)
{
    // Constructed in place: BootInfo is several KiB, too big for a temporary on a kernel stack.
    new (&out) BootInfo;
    Parser parser(out);

    if (info.data() == nullptr || info.size() < InfoHeaderSize)
        return parser.fail("multiboot2: boot information is shorter than its 8-byte header");
    if (reinterpret_cast<uptr>(info.data()) % TagAlignment != 0)
        return parser.fail("multiboot2: boot information is not 8-byte aligned");
    u32 total_size = read_u32(info, 0);
    if (total_size < InfoHeaderSize + TagHeaderSize) {
        MessageWriter(out.error_buffer, sizeof(out.error_buffer)).text("multiboot2: total_size ").dec(total_size).text(" is too small to hold the header and an end tag");
        out.error = out.error_buffer;
        return EINVAL;
    }
    if (total_size > info.size()) {
        MessageWriter(out.error_buffer, sizeof(out.error_buffer)).text("multiboot2: total_size ").dec(total_size).text(" is larger than the ").dec(info.size()).text(" bytes available");
        out.error = out.error_buffer;
        return EINVAL;
    }
    info = info.slice(0, total_size);

    bool found_end = false;
    usize offset = InfoHeaderSize;
    while (offset < info.size()) {
        if (!info.contains_range(offset, TagHeaderSize)) {
            MessageWriter(out.error_buffer, sizeof(out.error_buffer)).text("multiboot2: tag header at offset ").hex(offset).text(" runs past total_size");
            out.error = out.error_buffer;
            return EINVAL;
        }
        u32 type = read_u32(info, offset);
        u32 size = read_u32(info, offset + 4);
        Tag tag { type, offset, {} };
        if (size < TagHeaderSize) {
            parser.tag_message(tag).text("has size ").dec(size).text(", smaller than its header");
            return EINVAL;
        }
        if (!info.contains_range(offset, size)) {
            parser.tag_message(tag).text("has size ").dec(size).text(", past the end of the boot information (").dec(info.size() - offset).text(" bytes left)");
            return EINVAL;
        }
        tag.bytes = info.slice(offset, size);
        if (type == TagEnd) {
            found_end = true;
            break;
        }
        TRY(parser.parse_tag(tag));
        // size <= total_size < 2^32, so the padded size cannot overflow a usize.
        offset += align_up(size, TagAlignment);
    }
    if (!found_end)
        return parser.fail("multiboot2: missing end tag");
    if (!out.has_memory_map)
        return parser.fail("multiboot2: no memory map tag");
    return {};
}

ErrorOr<void> validate_memory_map(const BootInfo& info, const char** why)
{
    auto fail = [&](const char* message) -> ErrorOr<void> {
        if (why)
            *why = message;
        info.error = message;
        return EINVAL;
    };
    auto map = info.memory_map();
    if (map.is_empty())
        return fail("multiboot2: memory map is empty");

    bool has_ram = false;
    for (usize i = 0; i < map.size(); ++i) {
        u64 end;
        if (add_overflows(map[i].base, map[i].length, &end)) {
            MessageWriter(info.error_buffer, sizeof(info.error_buffer)).text("multiboot2: memory map entry ").dec(i).text(" at ").hex(map[i].base).text(" with length ").hex(map[i].length).text(" wraps past 2^64");
            return fail(info.error_buffer);
        }
        if (map[i].type == MemoryAvailable && map[i].length != 0)
            has_ram = true;
    }
    if (!has_ram)
        return fail("multiboot2: memory map has no available RAM");

    // At most 256 entries: the quadratic check is cheap and needs no scratch space for sorting.
    for (usize i = 0; i < map.size(); ++i) {
        for (usize j = i + 1; j < map.size(); ++j) {
            if (map[i].length == 0 || map[j].length == 0)
                continue;
            u64 a = map[i].base, b = map[i].base + map[i].length;
            u64 c = map[j].base, d = map[j].base + map[j].length;
            if (a < d && c < b) {
                MessageWriter(info.error_buffer, sizeof(info.error_buffer)).text("multiboot2: memory map entries ").dec(i).text(" and ").dec(j).text(" overlap: [").hex(a).text(",").hex(b).text(") and [").hex(c).text(",").hex(d).text(")");
                return fail(info.error_buffer);
            }
        }
    }
    return {};
}
