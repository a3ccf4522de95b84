#pragma once
// The initramfs: a zstd-compressed cpio newc archive that GRUB loads as a multiboot2 module. The
// kernel decodes it with its own zstd decoder (DecompressedImage, so the frames need not declare
// their content size: `find . | cpio -o -H newc | zstd` works) and unpacks it into an in-memory
// root (RamTree) until the VFS exists. The tree's file data points into the decoded archive
// (zero-copy).
#include <ktl/ErrorOr.h>
#include <lib/archive/RamTree.h>

struct BootInfo;

namespace initramfs {

struct Stats {
    u64 compressed_bytes;
    u64 archive_bytes;
    u64 decode_ns;
    u64 unpack_ns;
    usize files;
    usize directories;
};

// Finds the boot module named "initramfs" (or the first *.cpio.zst) and unpacks it. ENOENT if
// there is none; a corrupt archive is an error naming the problem, never a panic.
ErrorOr<void> init(const BootInfo&);
// Unpacks an archive given in memory (also what the selftests call with corrupt input).
ErrorOr<void> unpack(ReadonlyBytes compressed);
bool is_available();
RamTree& root();
const Stats& stats();
const char* last_error();

} // namespace initramfs
