#pragma once
// DecompressedImage: a zstd stream (a .ko.zst, the initramfs) decoded into vmalloc memory, after
// Linux's kernel/module/decompress.c.
//
// Interface:
//   if (DecompressedImage::is_compressed(image)) {            - zstd, after skippable frames
//       auto decoded = TRY(DecompressedImage::decompress(image, DecompressedImage::module_cap));
//       use(decoded.bytes());                                 - freed with `decoded`
//   }
//   void* buffer = decoded.leak();                            - or keep it: vmalloc::free() later
//
// Frames need not declare their content size: the output grows as it decodes, up to the cap the
// caller gives and never beyond half the free memory at the time of the call (EFBIG past it,
// ENOMEM when memory runs out). A declared size picks the first allocation, so a fully sized
// stream is decoded with one allocation and no copy. Errors carry the decoder's own reason.
#include <ktl/ErrorOr.h>
#include <ktl/Span.h>
#include <ktl/Types.h>

class DecompressedImage {
public:
    static constexpr usize module_cap = 64 * MiB;
    static constexpr usize initramfs_cap = 512 * MiB;

    static bool is_compressed(ReadonlyBytes image);
    static ErrorOr<DecompressedImage> decompress(ReadonlyBytes image, usize cap);

    DecompressedImage(DecompressedImage&& other);
    DecompressedImage(const DecompressedImage&) = delete;
    DecompressedImage& operator=(const DecompressedImage&) = delete;
    DecompressedImage& operator=(DecompressedImage&&) = delete;
    ~DecompressedImage();

    ReadonlyBytes bytes() const { return ReadonlyBytes(m_data, m_size); }
    // Hands the vmalloc buffer to the caller, who frees it with vmalloc::free().
    void* leak();

private:
    DecompressedImage(u8* data, usize size) : m_data(data), m_size(size) { }

    u8* m_data { nullptr };
    usize m_size { 0 };
};
