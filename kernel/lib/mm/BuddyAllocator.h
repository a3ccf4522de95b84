#pragma once
// BuddyAllocator: the physical page allocator. Binary buddy system over one contiguous array of
// PageFrames, with blocks of 2^order pages for order 0..MAX_ORDER (4 KiB .. 4 MiB).
//
// Interface:
//   BuddyAllocator buddy(base, Span<PageFrame>(frames, page_count));  // every page starts Reserved
//   buddy.add_free_range(start, end);    // for each usable range; may be called many times
//   PhysAddr page = TRY(buddy.allocate(order));
//   buddy.free(page, order);             // the same order it was allocated with
//
// Blocks are naturally aligned in physical address space (a block of order k starts at a multiple
// of 4 KiB << k), so a block's buddy is `address ^ (PAGE_SIZE << k)`. Only the head frame of a free
// block is marked Free and linked on free_lists[order]:
//
//   order 2 block at 0x10000:  [Free,o=2][ ][ ][ ]   <- interior frames carry no flag
//   after allocate(0):         [Alloc,o=0][Free,o=0][Free,o=1][ ]
//
// Not thread-safe: the kernel wraps it in its own lock. Never touches the memory it manages.
#include <ktl/ErrorOr.h>
#include <ktl/IntrusiveList.h>
#include <ktl/Span.h>
#include <ktl/Types.h>
#include <lib/mm/PageFrame.h>

struct BuddyStats {
    static constexpr unsigned order_count = 11;

    // Pages handed to the allocator with add_free_range().
    u64 total_pages { 0 };
    u64 free_pages { 0 };
    u64 used_pages { 0 };
    // Pages described by the frame array that were never added.
    u64 reserved_pages { 0 };
    u64 free_blocks_per_order[order_count] {};
    u64 alloc_calls { 0 };
    u64 free_calls { 0 };
    // allocate()/allocate_pages() calls that returned an error.
    u64 failed_calls { 0 };
};

class BuddyAllocator {
public:
    static constexpr unsigned MAX_ORDER = 10;
    static_assert(BuddyStats::order_count == MAX_ORDER + 1);

    // `frames` describes the pages [base, base + frames.size() * PAGE_SIZE). base must be page-aligned.
    BuddyAllocator(PhysAddr base, Span<PageFrame> frames);
    BuddyAllocator(const BuddyAllocator&) = delete;
    BuddyAllocator& operator=(const BuddyAllocator&) = delete;

    // Bytes of PageFrame array needed for page_count pages, rounded up to whole pages so the
    // array can come straight from the bump allocator.
    static u64 metadata_bytes(u64 page_count);
    // The smallest order whose block holds `page_count` pages (page_count >= 1); may exceed MAX_ORDER.
    static unsigned order_for_pages(u64 page_count);

    // Gives [start, end) to the allocator, shrunk inward to whole pages and clipped to the frame
    // array. Every page in it must still be Reserved (adding a page twice is a bug).
    void add_free_range(PhysAddr start, PhysAddr end);

    // A naturally aligned block of 2^order pages. EINVAL for order > MAX_ORDER, ENOMEM if none is free.
    ErrorOr<PhysAddr> allocate(unsigned order);
    // Returns a block. VERIFYs that it is exactly a block this allocator handed out with this order.
    void free(PhysAddr address, unsigned order);

    // A block of at least `count` pages (rounded up to a power of two). EINVAL for 0, ENOMEM if
    // more than a MAX_ORDER block or nothing fits. Release with free_pages() and the same count.
    ErrorOr<PhysAddr> allocate_pages(u64 count);
    void free_pages(PhysAddr address, u64 count);

    // The frame for the page holding `address`, or nullptr outside the managed span.
    PageFrame* frame_for(PhysAddr address);
    const PageFrame* frame_for(PhysAddr address) const;
    PhysAddr address_of(const PageFrame& frame) const;
    // Whether the page holding `address` is inside some free block.
    bool is_free(PhysAddr address) const;

    PhysAddr base() const { return m_base; }
    PhysAddr limit() const { return m_base + m_frames.size() * PAGE_SIZE; }
    u64 page_count() const { return m_frames.size(); }
    u64 free_pages() const { return m_free_pages; }
    BuddyStats stats() const;

    // Walks the free lists and frame flags and VERIFYs every invariant; for tests and debug builds.
    // Returns the number of free pages found.
    u64 check_consistency() const;

private:
    using FreeList = IntrusiveList<PageFrame, &PageFrame::list_node>;

    static constexpr u64 block_bytes(unsigned order) { return PAGE_SIZE << order; }
    usize index_of(PhysAddr address) const { return (address - m_base) / PAGE_SIZE; }
    bool block_in_range(PhysAddr address, unsigned order) const;
    // Links a free block, merging it with its free buddies first.
    void free_block(PhysAddr address, unsigned order);
    void push_free(PageFrame& frame, unsigned order);
    void remove_free(PageFrame& frame);

    PhysAddr m_base;
    Span<PageFrame> m_frames;
    FreeList m_free_lists[MAX_ORDER + 1];
    u64 m_free_blocks[MAX_ORDER + 1] {};
    u64 m_total_pages { 0 };
    u64 m_free_pages { 0 };
    u64 m_alloc_calls { 0 };
    u64 m_free_calls { 0 };
    u64 m_failed_calls { 0 };
};
