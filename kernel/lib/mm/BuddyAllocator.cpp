#include <lib/mm/BuddyAllocator.h>

BuddyAllocator::BuddyAllocator(PhysAddr base, Span<PageFrame> frames)
    : m_base(base)
    , m_frames(frames)
{
    VERIFY(is_aligned(base, PAGE_SIZE));
    u64 bytes;
    PhysAddr limit;
    VERIFY(!mul_overflows(frames.size(), PAGE_SIZE, &bytes) && !add_overflows(base, bytes, &limit));
    for (auto& frame : m_frames)
        new (&frame) PageFrame;
}

u64 BuddyAllocator::metadata_bytes(u64 page_count)
{
    return align_up(page_count * sizeof(PageFrame), PAGE_SIZE);
}

unsigned BuddyAllocator::order_for_pages(u64 page_count)
{
    VERIFY(page_count != 0);
    if (page_count == 1)
        return 0;
    return 64 - __builtin_clzll(page_count - 1);
}

bool BuddyAllocator::block_in_range(PhysAddr address, unsigned order) const
{
    return address >= m_base && address < limit() && block_bytes(order) <= limit() - address;
}

PageFrame* BuddyAllocator::frame_for(PhysAddr address)
{
    if (address < m_base || address >= limit())
        return nullptr;
    return &m_frames[index_of(address)];
}

const PageFrame* BuddyAllocator::frame_for(PhysAddr address) const
{
    return const_cast<BuddyAllocator*>(this)->frame_for(address);
}

PhysAddr BuddyAllocator::address_of(const PageFrame& frame) const
{
    VERIFY(&frame >= m_frames.begin() && &frame < m_frames.end());
    return m_base + static_cast<u64>(&frame - m_frames.begin()) * PAGE_SIZE;
}

void BuddyAllocator::push_free(PageFrame& frame, unsigned order)
{
    frame.flags = PageFrame::Free;
    frame.order = static_cast<u8>(order);
    frame.owner = nullptr;
    frame.refcount = 0;
    // NOTE: LIFO, so the block freed last (likely still in cache) is handed out next.
    m_free_lists[order].prepend(frame);
    ++m_free_blocks[order];
    m_free_pages += 1ull << order;
}

void BuddyAllocator::remove_free(PageFrame& frame)
{
    VERIFY(frame.has(PageFrame::Free));
    unsigned order = frame.order;
    FreeList::remove(frame);
    frame.clear(PageFrame::Free);
    --m_free_blocks[order];
    m_free_pages -= 1ull << order;
}

void BuddyAllocator::free_block(PhysAddr address, unsigned order)
{
    while (order < MAX_ORDER) {
        PhysAddr buddy(address.value() ^ block_bytes(order));
        auto* buddy_frame = frame_for(buddy);
        // A buddy outside the span, allocated, reserved, or split into smaller pieces stops the merge.
        if (!buddy_frame || !buddy_frame->has(PageFrame::Free) || buddy_frame->order != order)
            break;
        remove_free(*buddy_frame);
        address = address < buddy ? address : buddy;
        ++order;
    }
    push_free(*frame_for(address), order);
}

void BuddyAllocator::add_free_range(PhysAddr start, PhysAddr end)
{
    if (start < m_base)
        start = m_base;
    if (end > limit())
        end = limit();
    if (start >= end)
        return;
    PhysAddr rounded;
    if (add_overflows(start, PAGE_SIZE - 1, &rounded))
        return;
    start = align_down(rounded, PAGE_SIZE);
    end = align_down(end, PAGE_SIZE);
    if (start >= end)
        return;

    for (PhysAddr page = start; page < end; page += PAGE_SIZE) {
        auto& frame = m_frames[index_of(page)];
        VERIFY(frame.has(PageFrame::Reserved));
        frame.flags = 0;
    }
    m_total_pages += (end - start) / PAGE_SIZE;

    // Carve the range into the largest naturally aligned blocks that fit, left to right. free_block()
    // merges each with whatever neighbour an earlier call already freed.
    PhysAddr address = start;
    while (address < end) {
        unsigned order = MAX_ORDER;
        while (order > 0 && (!is_aligned(address, block_bytes(order)) || block_bytes(order) > end - address))
            --order;
        free_block(address, order);
        address += block_bytes(order);
    }
}

ErrorOr<PhysAddr> BuddyAllocator::allocate(unsigned order)
{
    ++m_alloc_calls;
    if (order > MAX_ORDER) {
        ++m_failed_calls;
        return EINVAL;
    }
    unsigned found = order;
    while (found <= MAX_ORDER && m_free_lists[found].is_empty())
        ++found;
    if (found > MAX_ORDER) {
        ++m_failed_calls;
        return ENOMEM;
    }

    auto& head = *m_free_lists[found].first();
    remove_free(head);
    PhysAddr address = address_of(head);
    // Split: keep the lower half, give the upper half back at each step down.
    while (found > order) {
        --found;
        push_free(*frame_for(address + block_bytes(found)), found);
    }
    head.flags = PageFrame::Allocated;
    head.order = static_cast<u8>(order);
    head.refcount = 1;
    head.owner = nullptr;
    return address;
}

void BuddyAllocator::free(PhysAddr address, unsigned order)
{
    VERIFY(order <= MAX_ORDER);
    VERIFY(is_aligned(address, block_bytes(order)));
    VERIFY(block_in_range(address, order));
    auto& head = *frame_for(address);
    // Allocated is set only on a head this allocator handed out and cleared when it comes back,
    // so this one check catches double frees, interior pointers, reserved pages and wrong orders.
    VERIFY(head.has(PageFrame::Allocated));
    VERIFY(head.order == order);
    ++m_free_calls;
    // Users tag pages of a block (Slab, owner); scrub them all so no stale tag outlives the block.
    for (u64 i = 0; i < (1ull << order); ++i) {
        auto& frame = (&head)[i];
        VERIFY(!frame.has(PageFrame::Free) && !frame.has(PageFrame::Reserved));
        frame.flags = 0;
        frame.owner = nullptr;
        frame.refcount = 0;
    }
    free_block(address, order);
}

ErrorOr<PhysAddr> BuddyAllocator::allocate_pages(u64 count)
{
    if (count == 0 || count > (1ull << MAX_ORDER)) {
        ++m_alloc_calls;
        ++m_failed_calls;
        return count == 0 ? EINVAL : ENOMEM;
    }
    return allocate(order_for_pages(count));
}

void BuddyAllocator::free_pages(PhysAddr address, u64 count)
{
    VERIFY(count != 0 && count <= (1ull << MAX_ORDER));
    free(address, order_for_pages(count));
}

bool BuddyAllocator::is_free(PhysAddr address) const
{
    if (!frame_for(address))
        return false;
    PhysAddr page = align_down(address, PAGE_SIZE);
    for (unsigned order = 0; order <= MAX_ORDER; ++order) {
        PhysAddr head = align_down(page, block_bytes(order));
        auto* frame = frame_for(head);
        if (!frame)
            break;
        if (frame->has(PageFrame::Free) && frame->order >= order)
            return true;
    }
    return false;
}

BuddyStats BuddyAllocator::stats() const
{
    BuddyStats stats;
    stats.total_pages = m_total_pages;
    stats.free_pages = m_free_pages;
    stats.used_pages = m_total_pages - m_free_pages;
    stats.reserved_pages = m_frames.size() - m_total_pages;
    for (unsigned order = 0; order <= MAX_ORDER; ++order)
        stats.free_blocks_per_order[order] = m_free_blocks[order];
    stats.alloc_calls = m_alloc_calls;
    stats.free_calls = m_free_calls;
    stats.failed_calls = m_failed_calls;
    return stats;
}

u64 BuddyAllocator::check_consistency() const
{
    u64 free_pages = 0;
    for (unsigned order = 0; order <= MAX_ORDER; ++order) {
        u64 blocks = 0;
        for (auto& frame : m_free_lists[order]) {
            PhysAddr address = address_of(frame);
            VERIFY(frame.has(PageFrame::Free) && frame.order == order);
            VERIFY(is_aligned(address, block_bytes(order)) && block_in_range(address, order));
            // Interior pages of a free block must not look like heads or be reserved.
            for (u64 i = 1; i < (1ull << order); ++i)
                VERIFY(m_frames[index_of(address) + i].flags == 0);
            // Two free buddies of the same order would have been merged.
            if (order < MAX_ORDER) {
                auto* buddy = frame_for(PhysAddr(address.value() ^ block_bytes(order)));
                VERIFY(!buddy || !buddy->has(PageFrame::Free) || buddy->order != order);
            }
            ++blocks;
            free_pages += 1ull << order;
        }
        VERIFY(blocks == m_free_blocks[order]);
    }
    VERIFY(free_pages == m_free_pages);
    return free_pages;
}
