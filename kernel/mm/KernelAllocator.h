#pragma once
// The Allocator interface (include/ktl/Allocator.h) over kmalloc, for pure libraries in the kernel.
#include <ktl/Allocator.h>
#include <mm/Kmalloc.h>

class KernelAllocator final : public Allocator {
public:
    ErrorOr<void*> allocate(usize size, usize alignment) override
    {
        // kmalloc's size classes are naturally aligned up to a page; larger alignments need pages.
        if (alignment > PAGE_SIZE)
            return EINVAL;
        return try_kmalloc(size < alignment ? alignment : size);
    }
    void deallocate(void* pointer, usize) override { kfree(pointer); }

    static KernelAllocator& the()
    {
        static KernelAllocator allocator;
        return allocator;
    }
};
