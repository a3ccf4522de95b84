#include <lib/text/Format.h>
#include <lib/boot/Multiboot2.h>
#include <log/Log.h>
#include <mm/KernelAllocator.h>
#include <mm/MemoryManager.h>
#include <mm/Vmalloc.h>
#include <module/Decompress.h>
#include <module/Initramfs.h>
#include <time/Clock.h>
#include <new>

namespace initramfs {

namespace {
RamTree* g_tree = nullptr;
void* g_archive = nullptr; // the decoded archive; the tree borrows file data from it
Stats g_stats;
char g_error[192];

Error fail(int code, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
Error fail(int code, const char* fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vformat(g_error, sizeof(g_error), fmt, args);
    va_end(args);
    log_err("initramfs: %s", g_error);
    return Error(code);
}

bool ends_with(StringView text, StringView suffix)
{
    return text.length() >= suffix.length() && text.substring(text.length() - suffix.length()) == suffix;
}
}

ErrorOr<void> unpack(ReadonlyBytes compressed)
{
    u64 start = clock::monotonic_ns();
    // Frames without a declared size (`find . | cpio -o -H newc | zstd`) stream into a growing
    // buffer; the decoder's own reason names any problem.
    auto decoded = DecompressedImage::decompress(compressed, DecompressedImage::initramfs_cap);
    if (decoded.is_error())
        return fail(decoded.error().code(), "cannot decode the archive: %s (%s)", decoded.error().message(), decoded.error().name());
    ReadonlyBytes archive = decoded.value().bytes();
    u64 decoded_at = clock::monotonic_ns();

    auto tree = RamTree::create(KernelAllocator::the());
    if (tree.is_error())
        return fail(ENOMEM, "out of memory for the root tree");
    auto* new_tree = new (std::nothrow) RamTree(tree.release_value());
    if (!new_tree)
        return fail(ENOMEM, "out of memory for the root tree");
    if (auto populated = new_tree->populate_from_cpio(archive); populated.is_error()) {
        // RamTree's reason already starts with "initramfs: ".
        StringView reason(new_tree->error_message());
        if (reason.starts_with("initramfs: "))
            reason = reason.substring(11);
        auto error = fail(populated.error().code(), "corrupt cpio archive: %.*s (%s)", int(reason.length()), reason.characters(),
            populated.error().name());
        delete new_tree;
        return error;
    }
    // Replace a previous root only once the new one is complete.
    if (g_tree) {
        delete g_tree;
        vmalloc::free(g_archive);
    }
    g_tree = new_tree;
    g_archive = decoded.value().leak();
    auto tree_stats = g_tree->stats();
    g_stats = { compressed.size(), archive.size(), decoded_at - start, clock::monotonic_ns() - decoded_at, tree_stats.files,
        tree_stats.directories };
    return {};
}

ErrorOr<void> init(const BootInfo& info)
{
    const BootModule* found = nullptr;
    for (auto& module : info.boot_modules())
        if (module.command_line == "initramfs" || ends_with(module.command_line, ".cpio.zst"))
            found = &module;
    if (!found)
        return ENOENT;
    if (found->end <= found->start)
        return fail(EINVAL, "boot module [0x%x-0x%x) is empty", found->start, found->end);
    ReadonlyBytes compressed((const u8*)mm::phys_to_virt(PhysAddr(found->start)), found->end - found->start);
    TRY(unpack(compressed));
    log_info("initramfs: %llu KiB compressed -> %llu KiB, %zu files in %zu directories (zstd %llu us, cpio %llu us)",
        (unsigned long long)(g_stats.compressed_bytes / KiB), (unsigned long long)(g_stats.archive_bytes / KiB), g_stats.files,
        g_stats.directories, (unsigned long long)(g_stats.decode_ns / 1000), (unsigned long long)(g_stats.unpack_ns / 1000));
    return {};
}

bool is_available() { return g_tree != nullptr; }
RamTree& root() { return *g_tree; }
const Stats& stats() { return g_stats; }
const char* last_error() { return g_error; }

} // namespace initramfs
