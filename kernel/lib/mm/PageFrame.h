#pragma once
// PageFrame: the metadata for one physical page, like Linux's struct page. The kernel keeps one per
// page of RAM in an array (BuddyAllocator::metadata_bytes() says how big), so it must stay small.
//
// Who writes what:
//   flags Free/Reserved/Allocated, order  - BuddyAllocator only.
//   flags Slab/Large, owner               - the PageProvider for the slab heap: owner is the
//                                           SlabCache (or a tagged large-allocation order) so
//                                           kfree(ptr) finds its cache without a header.
//   refcount                              - 1 while allocated; later, mappings sharing a page (COW).
//   list_node                             - the buddy free list while free; the owner's while used.
#include <ktl/IntrusiveList.h>
#include <ktl/Types.h>

struct PageFrame {
    enum Flag : u16 {
        // The head page of a free buddy block of 2^order pages. Interior pages carry no flag.
        Free = 1 << 0,
        // Never handed to the allocator: firmware, the kernel image, memory-map holes.
        Reserved = 1 << 1,
        // The head page of a block returned by BuddyAllocator::allocate(); order says its size.
        Allocated = 1 << 2,
        // Part of a slab; owner is the SlabCache.
        Slab = 1 << 3,
        // The head of a large kmalloc allocation taken straight from the page allocator.
        Large = 1 << 4,
    };

    IntrusiveListNode list_node;
    void* owner { nullptr };
    u32 refcount { 0 };
    u16 flags { Reserved };
    u8 order { 0 };
    u8 padding { 0 };

    bool has(Flag flag) const { return (flags & flag) != 0; }
    void set(Flag flag) { flags = static_cast<u16>(flags | flag); }
    void clear(Flag flag) { flags = static_cast<u16>(flags & ~flag); }
};

static_assert(sizeof(PageFrame) <= 48, "PageFrame is per page of RAM: keep it small");
