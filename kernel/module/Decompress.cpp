#include <lib/zstd/ZstdDecoder.h>
#include <lib/zstd/ZstdGrowingOutput.h>
#include <mm/MemoryManager.h>
#include <mm/Vmalloc.h>
#include <module/Decompress.h>
#include <new>

namespace {

// Decoded images can exceed the buddy allocator's largest block, so they live in vmalloc space.
class VmallocAllocator final : public Allocator {
public:
    ErrorOr<void*> allocate(usize size, usize) override { return vmalloc::allocate(size); }
    void deallocate(void* pointer, usize) override { vmalloc::free(pointer); }
};

// Growing keeps the old and the new buffer for a moment, so half the free memory is the most a
// decode may take without starving everything else.
usize memory_cap(usize cap)
{
    u64 free_bytes = mm::page_stats().free_pages * PAGE_SIZE;
    return free_bytes / 2 < cap ? static_cast<usize>(free_bytes / 2) : cap;
}

}

bool DecompressedImage::is_compressed(ReadonlyBytes image) { return ZstdDecoder::starts_with_frame(image); }

ErrorOr<DecompressedImage> DecompressedImage::decompress(ReadonlyBytes image, usize cap)
{
    cap = memory_cap(cap);
    // A declared size is only a hint for the first allocation; without one, guess a typical
    // ratio. A wrong guess costs a copy, never correctness.
    auto declared = ZstdDecoder::content_size(image);
    usize initial;
    if (!declared.is_error())
        initial = declared.value() <= cap ? static_cast<usize>(declared.value()) + ZstdDecoder::output_slack : cap;
    else
        initial = image.size() <= cap / 4 ? image.size() * 4 : cap;
    if (initial < PAGE_SIZE)
        initial = PAGE_SIZE;

    auto* decoder = new (std::nothrow) ZstdDecoder;
    if (!decoder)
        return Error::with_message(ENOMEM, "out of memory for the zstd decoder");
    VmallocAllocator allocator;
    ZstdGrowingOutput output(allocator, cap, initial);
    auto decoded = decoder->decompress(image, output);
    delete decoder;
    if (decoded.is_error())
        return decoded.release_error();
    if (decoded.value() == 0)
        return Error::with_message(ENODATA, "zstd: the stream decodes to nothing");
    Bytes buffer = output.release();
    return DecompressedImage(buffer.data(), decoded.value());
}

DecompressedImage::DecompressedImage(DecompressedImage&& other) : m_data(other.m_data), m_size(other.m_size)
{
    other.m_data = nullptr;
    other.m_size = 0;
}

DecompressedImage::~DecompressedImage()
{
    if (m_data)
        vmalloc::free(m_data);
}

void* DecompressedImage::leak()
{
    void* data = m_data;
    m_data = nullptr;
    m_size = 0;
    return data;
}
