// libFuzzer target: arbitrary bytes as a Multiboot2 boot information structure.
#include <lib/boot/Multiboot2.h>

#include <cstdlib>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    // The kernel hands the parser an 8-byte aligned structure; malloc gives at least that, and
    // an exact-size copy lets ASan catch any read past the end.
    void* copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    static BootInfo info; // several KiB: keep it off the stack
    ReadonlyBytes bytes(static_cast<const u8*>(copy), size);
    if (!parse_multiboot2(bytes, info).is_error()) {
        const char* why = nullptr;
        if (validate_memory_map(info, &why).is_error() && !why)
            abort();
        // Touch everything the parser handed out, so ASan checks the views are in bounds.
        volatile u8 sink = 0;
        for (usize i = 0; i < info.command_line.length(); ++i) sink = sink + u8(info.command_line[i]);
        for (usize i = 0; i < info.bootloader_name.length(); ++i) sink = sink + u8(info.bootloader_name[i]);
        for (auto& module : info.boot_modules())
            for (usize i = 0; i < module.command_line.length(); ++i) sink = sink + u8(module.command_line[i]);
        for (u8 byte : info.acpi_rsdp) sink = sink + byte;
        (void)sink;
    } else if (!info.error) {
        abort(); // every failure must explain itself
    }
    free(copy);
    return 0;
}
