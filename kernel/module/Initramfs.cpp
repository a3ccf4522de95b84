#include <lib/text/Format.h>
#include <lib/boot/Multiboot2.h>
#include <lib/zstd/ZstdDecoder.h>
#include <log/Log.h>
#include <mm/KernelAllocator.h>
#include <mm/MemoryManager.h>
#include <mm/Vmalloc.h>
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
    auto size = ZstdDecoder::content_size(compressed);
    if (size.is_error())
        return fail(size.error().code(), "the archive's zstd frames do not declare their size (%s)", size.error().name());
    if (size.value() == 0 || size.value() > 512 * MiB)
        return fail(EFBIG, "implausible archive size %llu bytes", (unsigned long long)size.value());
    auto* decoder = new (std::nothrow) ZstdDecoder;
    if (!decoder)
        return fail(ENOMEM, "out of memory for the zstd decoder");
    auto buffer = vmalloc::allocate(size.value());
    if (buffer.is_error()) {
        delete decoder;
        return fail(ENOMEM, "out of memory for %llu bytes", (unsigned long long)size.value());
    }
    auto decoded = decoder->decompress(compressed, Bytes((u8*)buffer.value(), size.value()));
    if (decoded.is_error()) {
        auto error = fail(decoded.error().code(), "corrupt zstd data: %s", decoder->error());
        delete decoder;
        vmalloc::free(buffer.value());
        return error;
    }
    delete decoder;
    u64 decoded_at = clock::monotonic_ns();

    auto tree = RamTree::create(KernelAllocator::the());
    if (tree.is_error()) {
        vmalloc::free(buffer.value());
        return fail(ENOMEM, "out of memory for the root tree");
    }
    auto* new_tree = new (std::nothrow) RamTree(tree.release_value());
    if (!new_tree) {
        vmalloc::free(buffer.value());
        return fail(ENOMEM, "out of memory for the root tree");
    }
    if (auto populated = new_tree->populate_from_cpio(ReadonlyBytes((const u8*)buffer.value(), decoded.value())); populated.is_error()) {
        auto error = fail(populated.error().code(), "corrupt cpio archive (%s)", populated.error().name());
        delete new_tree;
        vmalloc::free(buffer.value());
        return error;
    }
    // Replace a previous root only once the new one is complete.
    if (g_tree) {
        delete g_tree;
        vmalloc::free(g_archive);
    }
    g_tree = new_tree;
    g_archive = buffer.value();
    auto tree_stats = g_tree->stats();
    g_stats = { compressed.size(), decoded.value(), decoded_at - start, clock::monotonic_ns() - decoded_at, tree_stats.files,
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
    ReadonlyBytes compressed((const u8*)mm::phys_to_virt(found->start), found->end - found->start);
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
