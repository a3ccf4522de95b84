#pragma once
// Multiboot2 boot information parser.
//
// Interface:
//   BootInfo info;
//   if (parse_multiboot2(ReadonlyBytes(mbi, total_size), info).is_error()) panic(info.error);
//   const char* why;
//   if (validate_memory_map(info, &why).is_error()) panic(why);
//   for (auto& entry : info.memory_map()) { ... }
//
// The parser is pure: it reads only the bytes it is given and never trusts them. Every length
// and offset is checked against the buffer, and a failure leaves a human-readable reason in
// BootInfo::error. Strings and the RSDP copy are views into the caller's buffer, so the buffer
// must outlive the BootInfo (the kernel keeps the boot information page reserved).
#include <ktl/ErrorOr.h>
#include <ktl/Span.h>
#include <ktl/StringView.h>
#include <ktl/Types.h>

namespace Multiboot2 {

// Tag types from the Multiboot2 specification (section 3.6).
enum TagType : u32 {
    TagEnd = 0,
    TagCommandLine = 1,
    TagBootLoaderName = 2,
    TagModule = 3,
    TagBasicMemoryInfo = 4,
    TagBiosBootDevice = 5,
    TagMemoryMap = 6,
    TagVbeInfo = 7,
    TagFramebuffer = 8,
    TagElfSections = 9,
    TagApmTable = 10,
    TagEfi32SystemTable = 11,
    TagEfi64SystemTable = 12,
    TagSmbios = 13,
    TagAcpiOldRsdp = 14,
    TagAcpiNewRsdp = 15,
    TagNetwork = 16,
    TagEfiMemoryMap = 17,
    TagEfiBootServicesNotTerminated = 18,
    TagEfi32ImageHandle = 19,
    TagEfi64ImageHandle = 20,
    TagLoadBaseAddress = 21,
};

// Memory map entry types.
enum MemoryType : u32 {
    MemoryAvailable = 1,
    MemoryReserved = 2,
    MemoryAcpiReclaimable = 3,
    MemoryAcpiNvs = 4,
    MemoryBad = 5,
};

enum FramebufferType : u8 {
    FramebufferIndexed = 0,
    FramebufferRgb = 1,
    FramebufferEgaText = 2,
};

constexpr u32 InfoHeaderSize = 8; // u32 total_size, u32 reserved
constexpr u32 TagHeaderSize = 8;  // u32 type, u32 size
constexpr u32 TagAlignment = 8;
constexpr u32 MemoryMapEntryMinSize = 24; // u64 base, u64 length, u32 type, u32 reserved

constexpr usize MaxMemoryMapEntries = 256;
constexpr usize MaxModules = 32;

} // namespace Multiboot2

struct MemoryMapEntry {
    u64 base { 0 };
    u64 length { 0 };
    u32 type { 0 }; // Multiboot2::MemoryType
};

struct BootModule {
    u32 start { 0 };
    u32 end { 0 }; // exclusive, as GRUB reports it
    StringView command_line;
};

struct FramebufferInfo {
    bool present { false };
    u64 address { 0 };
    u32 pitch { 0 };
    u32 width { 0 };
    u32 height { 0 };
    u8 bpp { 0 };
    u8 type { 0 }; // Multiboot2::FramebufferType
    // Only meaningful for FramebufferRgb.
    u8 red_position { 0 }, red_size { 0 };
    u8 green_position { 0 }, green_size { 0 };
    u8 blue_position { 0 }, blue_size { 0 };
};

struct BootInfo {
    StringView command_line;
    StringView bootloader_name;

    MemoryMapEntry memory_map_entries[Multiboot2::MaxMemoryMapEntries];
    usize memory_map_count { 0 };
    bool has_memory_map { false };
    Span<const MemoryMapEntry> memory_map() const { return { memory_map_entries, memory_map_count }; }

    BootModule modules[Multiboot2::MaxModules];
    usize module_count { 0 };
    Span<const BootModule> boot_modules() const { return { modules, module_count }; }

    FramebufferInfo framebuffer;

    // A copy of the firmware's RSDP inside the boot information (tag 14 or 15). Not validated
    // here: Acpi's parse_rsdp() checks signature and checksums.
    ReadonlyBytes acpi_rsdp;
    u8 acpi_rsdp_version { 0 }; // 0 absent, 1 from tag 14 (ACPI 1.0), 2 from tag 15 (ACPI 2.0+)

    bool has_basic_memory_info { false };
    u32 mem_lower_kib { 0 }; // below 1 MiB
    u32 mem_upper_kib { 0 }; // above 1 MiB, up to the first hole

    bool has_load_base_address { false };
    u32 load_base_address { 0 };

    // Why parsing or validation failed. Points either at a string literal or into error_buffer,
    // which is mutable so that validate_memory_map() can explain itself through a const BootInfo.
    mutable const char* error { nullptr };
    mutable char error_buffer[192] {};
};

// Parses the boot information. `info` must start at the structure (8-byte aligned) and may be
// longer than total_size; nothing past total_size is read. On error, out.error says why.
ErrorOr<void> parse_multiboot2(ReadonlyBytes info, BootInfo& out);

// Sanity checks the kernel needs before it trusts the map: some available RAM, no entry wrapping
// past 2^64 and no two entries overlapping. *why (and info.error) get the reason on error.
ErrorOr<void> validate_memory_map(const BootInfo& info, const char** why);

// Calls callback(const MemoryMapEntry&) for each entry of the given type.
template<typename Callback>
void for_each_memory_region(const BootInfo& info, u32 type, Callback callback)
{
    for (auto& entry : info.memory_map())
        if (entry.type == type)
            callback(entry);
}

const char* memory_type_name(u32 type);
