// The allocators on the running kernel: the buddy page allocator (the kernel's own, and a private
// one built over a block borrowed from it), slab caches over a PageProvider of real pages, kmalloc,
// the bump allocator, and the spinlocks that guard them.
//
// Every case leaves the kernel's allocators as it found them: page and heap statistics are checked
// against a baseline taken at the start of the case. The kernel runs on one CPU and no interrupt
// handler allocates, so between two snapshots only this code moves the counters; where a case
// reaches into an allocator without its lock (the *_for_tests() accessors) it does so with
// interrupts off.
//
// Nothing here provokes a VERIFY or a lock-rank panic on purpose: those end the kernel, and the
// host unit tests cover them.
#include <arch/Cpu.h>
#include <arch/PerCpu.h>
#include <debug/Symbols.h>
#include <lib/mm/BuddyAllocator.h>
#include <lib/mm/BumpAllocator.h>
#include <lib/mm/PageFrame.h>
#include <lib/mm/PageProvider.h>
#include <lib/mm/SlabCache.h>
#include <lib/mm/SlabHeap.h>
#include <lib/debug/SymbolTable.h>
#include <mm/Kmalloc.h>
#include <mm/MemoryManager.h>
#include <sync/Spinlock.h>
#include <test/KTest.h>
#include <new>

namespace {

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

// xorshift64: deterministic, so a failing sequence replays exactly.
class Prng {
public:
    explicit Prng(u64 seed) : m_state(seed ? seed : 0x9E3779B97F4A7C15ull) { }
    u64 next()
    {
        m_state ^= m_state << 13;
        m_state ^= m_state >> 7;
        m_state ^= m_state << 17;
        return m_state;
    }
    u64 below(u64 bound) { return next() % bound; }

private:
    u64 m_state;
};

// Interrupts off for a scope, restored to what they were.
class InterruptsOff {
public:
    InterruptsOff() : m_flags(arch::save_and_disable_interrupts()) { }
    ~InterruptsOff()
    {
        if (m_flags & (1 << 9))
            arch::enable_interrupts();
    }
    InterruptsOff(const InterruptsOff&) = delete;

private:
    u64 m_flags;
};

template<typename T>
int error_of(const ErrorOr<T>& result)
{
    return result.is_error() ? result.error().code() : 0;
}

// Keeps the compiler from proving a pointer dead (and an allocation elidable).
inline void escape(void* pointer) { asm volatile("" : : "r"(pointer) : "memory"); }

bool ranges_overlap(u64 a, u64 a_size, u64 b, u64 b_size) { return a < b + b_size && b < a + a_size; }

// Writes a pattern derived from the address over [virt, virt + bytes) and reads it back.
bool fill_and_verify(void* virt, u64 bytes, u64 seed)
{
    auto* words = (volatile u64*)virt;
    u64 count = bytes / sizeof(u64);
    for (u64 i = 0; i < count; ++i)
        words[i] = seed ^ ((u64)virt + i * 8) * 0x9E3779B97F4A7C15ull;
    for (u64 i = 0; i < count; ++i)
        if (words[i] != (seed ^ ((u64)virt + i * 8) * 0x9E3779B97F4A7C15ull))
            return false;
    return true;
}

void fill_bytes(void* pointer, usize bytes, u8 value)
{
    auto* p = (volatile u8*)pointer;
    for (usize i = 0; i < bytes; ++i)
        p[i] = value;
}

bool bytes_are(const void* pointer, usize bytes, u8 value)
{
    auto* p = (const volatile u8*)pointer;
    for (usize i = 0; i < bytes; ++i)
        if (p[i] != value)
            return false;
    return true;
}

u64 kernel_free_pages() { return mm::page_stats().free_pages; }

// Releases the heap's cached empty slabs, so page counts compare exactly.
void shrink_heap()
{
    InterruptsOff off;
    kheap::heap_for_tests().shrink();
}

// Scratch for cases that hold many pointers at once: too big for the 32 KiB boot stack.
constexpr usize SCRATCH = 1200;
void* g_pointers[SCRATCH];
PhysAddr g_blocks[SCRATCH];
unsigned g_orders[SCRATCH];

// ---------------------------------------------------------------------------------------------
// buddy: the kernel's page allocator through mm::, and a private BuddyAllocator
// ---------------------------------------------------------------------------------------------

constexpr unsigned MAX_ORDER = BuddyAllocator::MAX_ORDER;

void test_every_order_naturally_aligned(ktest::Test& t)
{
    u64 before = kernel_free_pages();
    for (unsigned order = 0; order <= MAX_ORDER; ++order) {
        auto block = mm::allocate_pages(order);
        KASSERT_TRUE(t, !block.is_error());
        PhysAddr phys = block.value();
        if (!is_aligned(phys, PAGE_SIZE << order))
            t.fail(__FILE__, __LINE__, "order %u block 0x%llx is not aligned to its size", order, phys.ull());
        KEXPECT_EQ(t, kernel_free_pages(), before - (1ull << order));
        mm::free_pages(phys, order);
        KEXPECT_EQ(t, kernel_free_pages(), before);
    }
}

void test_free_restores_page_count(ktest::Test& t)
{
    auto before = mm::page_stats();
    PhysAddr blocks[MAX_ORDER + 1];
    u64 taken = 0;
    for (unsigned order = 0; order <= MAX_ORDER; ++order) {
        auto block = mm::allocate_pages(order);
        KASSERT_TRUE(t, !block.is_error());
        blocks[order] = block.value();
        taken += 1ull << order;
    }
    auto during = mm::page_stats();
    KEXPECT_EQ(t, during.free_pages, before.free_pages - taken);
    KEXPECT_EQ(t, during.used_pages, before.used_pages + taken);
    KEXPECT_EQ(t, during.total_pages, before.total_pages);
    // Free in a different order than allocated: the count must not care.
    for (unsigned order = 0; order <= MAX_ORDER; ++order)
        mm::free_pages(blocks[(order * 7) % (MAX_ORDER + 1)], (order * 7) % (MAX_ORDER + 1));
    auto after = mm::page_stats();
    KEXPECT_EQ(t, after.free_pages, before.free_pages);
    KEXPECT_EQ(t, after.used_pages, before.used_pages);
}

void test_blocks_are_usable_memory(ktest::Test& t)
{
    for (unsigned order = 0; order <= MAX_ORDER; ++order) {
        auto block = mm::allocate_pages(order);
        KASSERT_TRUE(t, !block.is_error());
        bool ok = fill_and_verify(mm::phys_to_virt(block.value()), PAGE_SIZE << order, 0x5A5A0000ull + order);
        mm::free_pages(block.value(), order);
        if (!ok)
            t.fail(__FILE__, __LINE__, "order %u block at 0x%llx did not hold its pattern", order, block.value().ull());
    }
}

void test_allocations_never_overlap(ktest::Test& t)
{
    u64 before = kernel_free_pages();
    Prng rng(0xB0DD1);
    constexpr usize count = 64;
    usize held = 0;
    for (; held < count; ++held) {
        g_orders[held] = (unsigned)rng.below(7);
        auto block = mm::allocate_pages(g_orders[held]);
        if (block.is_error())
            break;
        g_blocks[held] = block.value();
    }
    KEXPECT_EQ(t, held, count);
    for (usize i = 0; i < held; ++i) {
        // Tag each block's first word, then check no other block's tag landed on it.
        *(volatile u64*)mm::phys_to_virt(g_blocks[i]) = i;
        for (usize j = i + 1; j < held; ++j) {
            if (ranges_overlap(g_blocks[i].value(), PAGE_SIZE << g_orders[i], g_blocks[j].value(), PAGE_SIZE << g_orders[j]))
                t.fail(__FILE__, __LINE__, "blocks %zu and %zu overlap", i, j);
        }
    }
    for (usize i = 0; i < held; ++i)
        KEXPECT_EQ(t, *(volatile u64*)mm::phys_to_virt(g_blocks[i]), (u64)i);
    for (usize i = 0; i < held; ++i)
        mm::free_pages(g_blocks[i], g_orders[i]);
    KEXPECT_EQ(t, kernel_free_pages(), before);
}

void test_order_above_max_is_einval(ktest::Test& t)
{
    auto before = mm::page_stats();
    for (unsigned order : { MAX_ORDER + 1, 20u, 63u, 255u, ~0u }) {
        auto block = mm::allocate_pages(order);
        KASSERT_TRUE(t, block.is_error());
        KEXPECT_EQ(t, block.error().code(), (int)EINVAL);
    }
    auto after = mm::page_stats();
    KEXPECT_EQ(t, after.free_pages, before.free_pages);
    KEXPECT_EQ(t, after.alloc_calls, before.alloc_calls + 5);
    KEXPECT_EQ(t, after.failed_calls, before.failed_calls + 5);
    KEXPECT_EQ(t, after.free_calls, before.free_calls);
}

void test_statistics_track_calls(ktest::Test& t)
{
    auto before = mm::page_stats();
    auto block = mm::allocate_pages(3);
    KASSERT_TRUE(t, !block.is_error());
    auto during = mm::page_stats();
    KEXPECT_EQ(t, during.alloc_calls, before.alloc_calls + 1);
    KEXPECT_EQ(t, during.free_calls, before.free_calls);
    KEXPECT_EQ(t, during.failed_calls, before.failed_calls);
    KEXPECT_EQ(t, during.free_pages, before.free_pages - 8);
    mm::free_pages(block.value(), 3);
    auto after = mm::page_stats();
    KEXPECT_EQ(t, after.alloc_calls, before.alloc_calls + 1);
    KEXPECT_EQ(t, after.free_calls, before.free_calls + 1);
    KEXPECT_EQ(t, after.free_pages, before.free_pages);
}

void test_statistics_are_consistent(ktest::Test& t)
{
    InterruptsOff off;
    auto& buddy = mm::buddy_for_tests();
    auto stats = buddy.stats();
    KEXPECT_EQ(t, stats.total_pages, stats.free_pages + stats.used_pages);
    KEXPECT_EQ(t, stats.reserved_pages, buddy.page_count() - stats.total_pages);
    u64 listed = 0;
    for (unsigned order = 0; order <= MAX_ORDER; ++order)
        listed += stats.free_blocks_per_order[order] << order;
    KEXPECT_EQ(t, listed, stats.free_pages);
    KEXPECT_EQ(t, buddy.check_consistency(), stats.free_pages);
    // 512 MiB of RAM with a small kernel: most of it should still be free.
    KEXPECT_TRUE(t, stats.free_pages > stats.total_pages / 2);
    KEXPECT_TRUE(t, stats.free_blocks_per_order[MAX_ORDER] > 0);
}

void test_kernel_image_frames_reserved(ktest::Test& t)
{
    InterruptsOff off;
    auto& buddy = mm::buddy_for_tests();
    auto& layout = mm::layout();
    u64 outside = 0;
    for (PhysAddr page = align_down(layout.kernel_phys_start, PAGE_SIZE); page < layout.kernel_phys_end; page += PAGE_SIZE) {
        KEXPECT_FALSE(t, buddy.is_free(page));
        const PageFrame* frame = buddy.frame_for(page);
        // The frame array starts at the lowest usable page, which may lie above the image.
        if (!frame) {
            ++outside;
            continue;
        }
        if (!frame->has(PageFrame::Reserved) || frame->has(PageFrame::Free) || frame->has(PageFrame::Allocated))
            t.fail(__FILE__, __LINE__, "kernel image page 0x%llx has flags 0x%x", page.ull(), (unsigned)frame->flags);
    }
    if (outside)
        t.log("%llu kernel image pages lie below the frame array (base 0x%llx): frame_for() gives nullptr",
            (unsigned long long)outside, buddy.base().ull());
    // The early allocator's region is inside the frame array and must be reserved.
    for (PhysAddr page = layout.bump_start; page < align_up(layout.bump_used_end, PAGE_SIZE); page += PAGE_SIZE) {
        const PageFrame* frame = buddy.frame_for(page);
        KASSERT_TRUE(t, frame != nullptr);
        KEXPECT_TRUE(t, frame->has(PageFrame::Reserved));
        KEXPECT_FALSE(t, buddy.is_free(page));
    }
    // Low memory is never handed out.
    KEXPECT_FALSE(t, buddy.is_free(PhysAddr(0)));
    KEXPECT_FALSE(t, buddy.is_free(PhysAddr(0x9F000)));
}

void test_free_page_frame_is_free(ktest::Test& t)
{
    auto block = mm::allocate_pages(0);
    KASSERT_TRUE(t, !block.is_error());
    PhysAddr page = block.value();
    {
        InterruptsOff off;
        auto& buddy = mm::buddy_for_tests();
        const PageFrame* frame = buddy.frame_for(page);
        KASSERT_TRUE(t, frame != nullptr);
        KEXPECT_TRUE(t, frame->has(PageFrame::Allocated));
        KEXPECT_FALSE(t, frame->has(PageFrame::Free));
        KEXPECT_FALSE(t, frame->has(PageFrame::Reserved));
        KEXPECT_EQ(t, frame->order, (u8)0);
        KEXPECT_EQ(t, frame->refcount, 1u);
        KEXPECT_FALSE(t, buddy.is_free(page));
        KEXPECT_EQ(t, buddy.address_of(*frame), page);
    }
    mm::free_pages(page, 0);
    InterruptsOff off;
    auto& buddy = mm::buddy_for_tests();
    const PageFrame* frame = buddy.frame_for(page);
    KEXPECT_TRUE(t, buddy.is_free(page));
    KEXPECT_FALSE(t, frame->has(PageFrame::Allocated));
    KEXPECT_FALSE(t, frame->has(PageFrame::Reserved));
    KEXPECT_EQ(t, frame->refcount, 0u);
}

void test_frame_for_outside_span_is_null(ktest::Test& t)
{
    InterruptsOff off;
    auto& buddy = mm::buddy_for_tests();
    KEXPECT_TRUE(t, buddy.frame_for(buddy.limit()) == nullptr);
    KEXPECT_TRUE(t, buddy.frame_for(PhysAddr(~0ull)) == nullptr);
    if (!buddy.base().is_null())
        KEXPECT_TRUE(t, buddy.frame_for(buddy.base() - 1) == nullptr);
    KEXPECT_TRUE(t, buddy.frame_for(buddy.base()) != nullptr);
    KEXPECT_TRUE(t, buddy.frame_for(buddy.limit() - 1) != nullptr);
    // An address inside a page maps to that page's frame.
    PhysAddr inside = buddy.base() + 5 * PAGE_SIZE + 123;
    KEXPECT_EQ(t, buddy.address_of(*buddy.frame_for(inside)), buddy.base() + 5 * PAGE_SIZE);
}

void test_free_scrubs_page_tags(ktest::Test& t)
{
    auto block = mm::allocate_pages(2);
    KASSERT_TRUE(t, !block.is_error());
    PhysAddr phys = block.value();
    {
        InterruptsOff off;
        for (u64 i = 0; i < 4; ++i) {
            auto* frame = mm::buddy_for_tests().frame_for(phys + i * PAGE_SIZE);
            frame->owner = (void*)0xDEAD0000;
            frame->set(PageFrame::Slab);
        }
    }
    mm::free_pages(phys, 2);
    InterruptsOff off;
    for (u64 i = 0; i < 4; ++i) {
        auto* frame = mm::buddy_for_tests().frame_for(phys + i * PAGE_SIZE);
        KEXPECT_TRUE(t, frame->owner == nullptr);
        KEXPECT_FALSE(t, frame->has(PageFrame::Slab));
    }
}

void test_helpers_order_for_pages(ktest::Test& t)
{
    KEXPECT_EQ(t, BuddyAllocator::order_for_pages(1), 0u);
    KEXPECT_EQ(t, BuddyAllocator::order_for_pages(2), 1u);
    KEXPECT_EQ(t, BuddyAllocator::order_for_pages(3), 2u);
    KEXPECT_EQ(t, BuddyAllocator::order_for_pages(4), 2u);
    KEXPECT_EQ(t, BuddyAllocator::order_for_pages(5), 3u);
    KEXPECT_EQ(t, BuddyAllocator::order_for_pages(1024), 10u);
    KEXPECT_EQ(t, BuddyAllocator::order_for_pages(1025), 11u);
    KEXPECT_EQ(t, BuddyAllocator::metadata_bytes(1), PAGE_SIZE);
    KEXPECT_EQ(t, BuddyAllocator::metadata_bytes(PAGE_SIZE / sizeof(PageFrame)), PAGE_SIZE);
    KEXPECT_EQ(t, BuddyAllocator::metadata_bytes(PAGE_SIZE / sizeof(PageFrame) + 1), 2 * PAGE_SIZE);
}

// A BuddyAllocator of its own over one order-6 block of real pages from the kernel, so exhaustion
// and coalescing can be driven to the end without starving the kernel. The frame array comes from
// kmalloc; both go back when the case ends, however it ends.
class PrivateBuddy {
public:
    static constexpr unsigned ORDER = 6;
    static constexpr u64 PAGES = 1ull << ORDER;

    PrivateBuddy()
    {
        auto block = mm::allocate_pages(ORDER);
        if (block.is_error())
            return;
        auto frames = try_kmalloc(PAGES * sizeof(PageFrame));
        if (frames.is_error()) {
            mm::free_pages(block.value(), ORDER);
            return;
        }
        m_block = block.value();
        m_frames = (PageFrame*)frames.value();
        rebuild();
        m_buddy->add_free_range(m_block, m_block + PAGES * PAGE_SIZE);
    }
    ~PrivateBuddy()
    {
        if (!m_frames)
            return;
        kfree(m_frames);
        mm::free_pages(m_block, ORDER);
    }
    PrivateBuddy(const PrivateBuddy&) = delete;

    bool ok() const { return m_frames != nullptr; }
    // A fresh allocator over the same frames with nothing added yet.
    BuddyAllocator& rebuild()
    {
        m_buddy = new (m_storage) BuddyAllocator(m_block, Span<PageFrame>(m_frames, PAGES));
        return *m_buddy;
    }
    BuddyAllocator& operator*() { return *m_buddy; }
    BuddyAllocator* operator->() { return m_buddy; }
    PhysAddr base() const { return m_block; }
    PhysAddr page(u64 index) const { return m_block + index * PAGE_SIZE; }
    PhysAddr end() const { return m_block + PAGES * PAGE_SIZE; }
    // True when the whole span is one free block again.
    bool is_one_block()
    {
        auto stats = m_buddy->stats();
        for (unsigned order = 0; order < ORDER; ++order)
            if (stats.free_blocks_per_order[order])
                return false;
        return stats.free_blocks_per_order[ORDER] == 1 && stats.free_pages == PAGES && m_buddy->is_free(m_block);
    }

private:
    PhysAddr m_block { 0 };
    PageFrame* m_frames { nullptr };
    BuddyAllocator* m_buddy { nullptr };
    alignas(BuddyAllocator) u8 m_storage[sizeof(BuddyAllocator)];
};

#define PRIVATE_BUDDY(t, name)      \
    PrivateBuddy name;              \
    KASSERT_TRUE(t, (name).ok())

void test_private_starts_as_one_block(ktest::Test& t)
{
    PRIVATE_BUDDY(t, buddy);
    auto stats = buddy->stats();
    KEXPECT_EQ(t, stats.total_pages, PrivateBuddy::PAGES);
    KEXPECT_EQ(t, stats.free_pages, PrivateBuddy::PAGES);
    KEXPECT_EQ(t, stats.used_pages, 0ull);
    KEXPECT_EQ(t, stats.reserved_pages, 0ull);
    KEXPECT_TRUE(t, buddy.is_one_block());
    KEXPECT_EQ(t, buddy->check_consistency(), PrivateBuddy::PAGES);
    // Every page of the free block reads as free; only the head carries the flag.
    for (u64 i = 0; i < PrivateBuddy::PAGES; ++i)
        KEXPECT_TRUE(t, buddy->is_free(buddy.page(i)));
    KEXPECT_TRUE(t, buddy->frame_for(buddy.base())->has(PageFrame::Free));
    KEXPECT_EQ(t, buddy->frame_for(buddy.page(1))->flags, (u16)0);
}

void test_private_split_leaves_one_block_per_order(ktest::Test& t)
{
    PRIVATE_BUDDY(t, buddy);
    auto page = buddy->allocate(0);
    KASSERT_TRUE(t, !page.is_error());
    // The lower half is kept at each split: the first page comes out.
    KEXPECT_EQ(t, page.value(), buddy.base());
    auto stats = buddy->stats();
    for (unsigned order = 0; order < PrivateBuddy::ORDER; ++order) {
        KEXPECT_EQ(t, stats.free_blocks_per_order[order], 1ull);
        // The buddy of each order sits right after the kept lower half.
        auto* frame = buddy->frame_for(buddy.base() + (PAGE_SIZE << order));
        KEXPECT_TRUE(t, frame->has(PageFrame::Free));
        KEXPECT_EQ(t, frame->order, (u8)order);
    }
    KEXPECT_EQ(t, stats.free_blocks_per_order[PrivateBuddy::ORDER], 0ull);
    KEXPECT_EQ(t, stats.free_pages, PrivateBuddy::PAGES - 1);
    buddy->free(page.value(), 0);
    KEXPECT_TRUE(t, buddy.is_one_block());
    KEXPECT_EQ(t, buddy->check_consistency(), PrivateBuddy::PAGES);
}

void test_private_exhaust_every_order(ktest::Test& t)
{
    PRIVATE_BUDDY(t, buddy);
    Prng rng(0xE4A05);
    for (unsigned order = 0; order <= PrivateBuddy::ORDER; ++order) {
        u64 count = PrivateBuddy::PAGES >> order;
        for (u64 i = 0; i < count; ++i) {
            auto block = buddy->allocate(order);
            KASSERT_TRUE(t, !block.is_error());
            g_blocks[i] = block.value();
            KEXPECT_TRUE(t, is_aligned(g_blocks[i], PAGE_SIZE << order));
            KEXPECT_TRUE(t, g_blocks[i] >= buddy.base() && g_blocks[i] + (PAGE_SIZE << order) <= buddy.end());
            for (u64 j = 0; j < i; ++j)
                KEXPECT_NE(t, g_blocks[i], g_blocks[j]);
        }
        KEXPECT_EQ(t, buddy->free_pages(), 0ull);
        auto failed_before = buddy->stats().failed_calls;
        for (unsigned probe = 0; probe <= PrivateBuddy::ORDER; ++probe) {
            auto none = buddy->allocate(probe);
            KASSERT_TRUE(t, none.is_error());
            KEXPECT_EQ(t, none.error().code(), (int)ENOMEM);
        }
        KEXPECT_EQ(t, buddy->stats().failed_calls, failed_before + PrivateBuddy::ORDER + 1);
        // Free in a shuffled order (Fisher-Yates); it must still coalesce back to one block.
        for (u64 i = count; i > 1; --i) {
            u64 j = rng.below(i);
            PhysAddr swap = g_blocks[i - 1];
            g_blocks[i - 1] = g_blocks[j];
            g_blocks[j] = swap;
        }
        for (u64 i = 0; i < count; ++i)
            buddy->free(g_blocks[i], order);
        KEXPECT_TRUE(t, buddy.is_one_block());
        KEXPECT_EQ(t, buddy->check_consistency(), PrivateBuddy::PAGES);
    }
}

void test_private_enomem_recovers(ktest::Test& t)
{
    PRIVATE_BUDDY(t, buddy);
    for (u64 i = 0; i < PrivateBuddy::PAGES; ++i) {
        auto page = buddy->allocate(0);
        KASSERT_TRUE(t, !page.is_error());
        g_blocks[i] = page.value();
    }
    KEXPECT_EQ(t, error_of(buddy->allocate(0)), (int)ENOMEM);
    // One page back: exactly that page comes out next; a pair is still impossible.
    PhysAddr lone = buddy.page(37);
    buddy->free(lone, 0);
    KEXPECT_EQ(t, error_of(buddy->allocate(1)), (int)ENOMEM);
    auto again = buddy->allocate(0);
    KASSERT_TRUE(t, !again.is_error());
    KEXPECT_EQ(t, again.value(), lone);
    // Free a page and its buddy: they merge, so an order-1 block appears.
    buddy->free(buddy.page(36), 0);
    buddy->free(buddy.page(37), 0);
    KEXPECT_EQ(t, buddy->stats().free_blocks_per_order[1], 1ull);
    KEXPECT_EQ(t, buddy->stats().free_blocks_per_order[0], 0ull);
    auto pair = buddy->allocate(1);
    KASSERT_TRUE(t, !pair.is_error());
    KEXPECT_EQ(t, pair.value(), buddy.page(36));
    buddy->free(pair.value(), 1);
    for (u64 i = 0; i < PrivateBuddy::PAGES; ++i)
        if (i != 36 && i != 37)
            buddy->free(buddy.page(i), 0);
    KEXPECT_TRUE(t, buddy.is_one_block());
}

void test_private_invalid_requests(ktest::Test& t)
{
    PRIVATE_BUDDY(t, buddy);
    // Larger than anything the span holds, but a valid order: ENOMEM. Beyond MAX_ORDER: EINVAL.
    KEXPECT_EQ(t, error_of(buddy->allocate(PrivateBuddy::ORDER + 1)), (int)ENOMEM);
    KEXPECT_EQ(t, error_of(buddy->allocate(MAX_ORDER)), (int)ENOMEM);
    KEXPECT_EQ(t, error_of(buddy->allocate(MAX_ORDER + 1)), (int)EINVAL);
    KEXPECT_EQ(t, error_of(buddy->allocate_pages(0)), (int)EINVAL);
    KEXPECT_EQ(t, error_of(buddy->allocate_pages(PrivateBuddy::PAGES + 1)), (int)ENOMEM);
    KEXPECT_EQ(t, error_of(buddy->allocate_pages((1ull << MAX_ORDER) + 1)), (int)ENOMEM);
    KEXPECT_EQ(t, error_of(buddy->allocate_pages(~0ull)), (int)ENOMEM);
    auto stats = buddy->stats();
    KEXPECT_EQ(t, stats.alloc_calls, 7ull);
    KEXPECT_EQ(t, stats.failed_calls, 7ull);
    KEXPECT_TRUE(t, buddy.is_one_block());
}

void test_private_allocate_pages_rounds_up(ktest::Test& t)
{
    PRIVATE_BUDDY(t, buddy);
    auto three = buddy->allocate_pages(3);
    KASSERT_TRUE(t, !three.is_error());
    KEXPECT_EQ(t, buddy->free_pages(), PrivateBuddy::PAGES - 4);
    KEXPECT_EQ(t, buddy->frame_for(three.value())->order, (u8)2);
    auto all_but = buddy->allocate_pages(PrivateBuddy::PAGES / 2);
    KASSERT_TRUE(t, !all_but.is_error());
    KEXPECT_TRUE(t, is_aligned(all_but.value(), PAGE_SIZE * PrivateBuddy::PAGES / 2));
    buddy->free_pages(three.value(), 3);
    buddy->free_pages(all_but.value(), PrivateBuddy::PAGES / 2);
    KEXPECT_TRUE(t, buddy.is_one_block());
    KEXPECT_EQ(t, buddy->stats().free_calls, 2ull);
}

void test_private_coalescing_in_every_free_order(ktest::Test& t)
{
    PRIVATE_BUDDY(t, buddy);
    constexpr u64 n = PrivateBuddy::PAGES;
    for (int pattern = 0; pattern < 4; ++pattern) {
        for (u64 i = 0; i < n; ++i) {
            auto page = buddy->allocate(0);
            KASSERT_TRUE(t, !page.is_error());
        }
        KEXPECT_EQ(t, buddy->free_pages(), 0ull);
        if (pattern == 0) {
            for (u64 i = 0; i < n; ++i)
                buddy->free(buddy.page(i), 0);
        } else if (pattern == 1) {
            for (u64 i = n; i > 0; --i)
                buddy->free(buddy.page(i - 1), 0);
        } else if (pattern == 2) {
            // Every other page first: no two free pages are buddies, so nothing merges yet.
            for (u64 i = 0; i < n; i += 2)
                buddy->free(buddy.page(i), 0);
            KEXPECT_EQ(t, buddy->stats().free_blocks_per_order[0], n / 2);
            KEXPECT_EQ(t, buddy->free_pages(), n / 2);
            for (u64 i = 1; i < n; i += 2)
                buddy->free(buddy.page(i), 0);
        } else {
            // Halves from the outside in: the merge completes only with the last page.
            for (u64 i = 0; i < n / 2; ++i) {
                buddy->free(buddy.page(i), 0);
                buddy->free(buddy.page(n - 1 - i), 0);
                if (i + 1 < n / 2)
                    KEXPECT_EQ(t, buddy->stats().free_blocks_per_order[PrivateBuddy::ORDER], 0ull);
            }
        }
        KEXPECT_TRUE(t, buddy.is_one_block());
        KEXPECT_EQ(t, buddy->check_consistency(), n);
    }
}

void test_private_random_workload_consistent(ktest::Test& t)
{
    PRIVATE_BUDDY(t, buddy);
    // owner[i] = 1 + index of the live block covering page i, or 0.
    static u16 owner[PrivateBuddy::PAGES];
    __builtin_memset(owner, 0, sizeof(owner));
    constexpr usize slots = 32;
    PhysAddr held[slots] = {};
    unsigned held_order[slots] = {};
    u64 pages_held = 0;
    Prng rng(0x5EED);
    for (int step = 0; step < 3000; ++step) {
        usize slot = rng.below(slots);
        if (!held[slot].is_null()) {
            buddy->free(held[slot], held_order[slot]);
            u64 first = (held[slot] - buddy.base()) / PAGE_SIZE;
            for (u64 i = 0; i < (1ull << held_order[slot]); ++i)
                owner[first + i] = 0;
            pages_held -= 1ull << held_order[slot];
            held[slot] = PhysAddr();
        } else {
            unsigned order = (unsigned)rng.below(4);
            auto block = buddy->allocate(order);
            if (block.is_error()) {
                KEXPECT_EQ(t, block.error().code(), (int)ENOMEM);
                continue;
            }
            PhysAddr phys = block.value();
            KASSERT_TRUE(t, is_aligned(phys, PAGE_SIZE << order));
            u64 first = (phys - buddy.base()) / PAGE_SIZE;
            for (u64 i = 0; i < (1ull << order); ++i) {
                if (owner[first + i])
                    t.fail(__FILE__, __LINE__, "step %d: page %llu handed out twice", step, (unsigned long long)(first + i));
                owner[first + i] = (u16)(slot + 1);
            }
            held[slot] = phys;
            held_order[slot] = order;
            pages_held += 1ull << order;
        }
        KASSERT_EQ(t, buddy->check_consistency(), PrivateBuddy::PAGES - pages_held);
        if (t.failed())
            return;
    }
    for (usize slot = 0; slot < slots; ++slot)
        if (!held[slot].is_null())
            buddy->free(held[slot], held_order[slot]);
    KEXPECT_TRUE(t, buddy.is_one_block());
}

void test_private_pages_are_distinct_memory(ktest::Test& t)
{
    PRIVATE_BUDDY(t, buddy);
    for (u64 i = 0; i < PrivateBuddy::PAGES; ++i) {
        auto page = buddy->allocate(0);
        KASSERT_TRUE(t, !page.is_error());
        g_blocks[i] = page.value();
        fill_bytes(mm::phys_to_virt(page.value()), PAGE_SIZE, (u8)(i + 1));
    }
    // Written all first, checked all after: an aliased page would show another page's byte.
    for (u64 i = 0; i < PrivateBuddy::PAGES; ++i)
        KEXPECT_TRUE(t, bytes_are(mm::phys_to_virt(g_blocks[i]), PAGE_SIZE, (u8)(i + 1)));
    for (u64 i = 0; i < PrivateBuddy::PAGES; ++i)
        buddy->free(g_blocks[i], 0);
    KEXPECT_TRUE(t, buddy.is_one_block());
}

void test_private_partial_range_carving(ktest::Test& t)
{
    PRIVATE_BUDDY(t, buddy);
    auto& fresh = buddy.rebuild();
    KEXPECT_EQ(t, fresh.stats().reserved_pages, PrivateBuddy::PAGES);
    // Pages 1..62: carved left to right into the largest aligned blocks that fit.
    fresh.add_free_range(buddy.page(1), buddy.page(63));
    auto stats = fresh.stats();
    KEXPECT_EQ(t, stats.total_pages, 62ull);
    KEXPECT_EQ(t, stats.reserved_pages, 2ull);
    for (unsigned order = 0; order <= 4; ++order)
        KEXPECT_EQ(t, stats.free_blocks_per_order[order], 2ull);
    KEXPECT_EQ(t, stats.free_blocks_per_order[5], 0ull);
    KEXPECT_EQ(t, stats.free_blocks_per_order[6], 0ull);
    KEXPECT_TRUE(t, fresh.frame_for(buddy.page(0))->has(PageFrame::Reserved));
    KEXPECT_TRUE(t, fresh.frame_for(buddy.page(63))->has(PageFrame::Reserved));
    KEXPECT_FALSE(t, fresh.is_free(buddy.page(0)));
    KEXPECT_FALSE(t, fresh.is_free(buddy.page(63)));
    KEXPECT_TRUE(t, fresh.is_free(buddy.page(1)));
    KEXPECT_TRUE(t, fresh.is_free(buddy.page(62)));
    KEXPECT_EQ(t, fresh.check_consistency(), 62ull);
    // The reserved pages are never handed out.
    for (u64 i = 0; i < 62; ++i) {
        auto page = fresh.allocate(0);
        KASSERT_TRUE(t, !page.is_error());
        KEXPECT_TRUE(t, page.value() != buddy.page(0) && page.value() != buddy.page(63));
    }
    KEXPECT_EQ(t, error_of(fresh.allocate(0)), (int)ENOMEM);
    // Adding the last two pages later merges everything into one block.
    for (u64 i = 1; i < 63; ++i)
        fresh.free(buddy.page(i), 0);
    fresh.add_free_range(buddy.page(0), buddy.page(1));
    fresh.add_free_range(buddy.page(63), buddy.end());
    KEXPECT_TRUE(t, buddy.is_one_block());
}

void test_private_ranges_rounded_and_clipped(ktest::Test& t)
{
    PRIVATE_BUDDY(t, buddy);
    auto& fresh = buddy.rebuild();
    // Unaligned byte bounds shrink inward to whole pages.
    fresh.add_free_range(buddy.base() + 100, buddy.page(10) + 4000);
    KEXPECT_EQ(t, fresh.stats().total_pages, 9ull);
    KEXPECT_FALSE(t, fresh.is_free(buddy.page(0)));
    KEXPECT_FALSE(t, fresh.is_free(buddy.page(10)));
    // Empty and inverted ranges are no-ops.
    fresh.add_free_range(buddy.page(20), buddy.page(20));
    fresh.add_free_range(buddy.page(30), buddy.page(20));
    fresh.add_free_range(buddy.page(20) + 1, buddy.page(20) + 4095);
    KEXPECT_EQ(t, fresh.stats().total_pages, 9ull);
    // A range reaching far past both ends is clipped to the span: the rest of the pages, in two
    // calls that merge with what is already there.
    fresh.add_free_range(PhysAddr(0), buddy.page(1));
    fresh.add_free_range(buddy.page(10), PhysAddr(~0ull - PAGE_SIZE));
    KEXPECT_EQ(t, fresh.stats().total_pages, PrivateBuddy::PAGES);
    KEXPECT_TRUE(t, buddy.is_one_block());
}

// ---------------------------------------------------------------------------------------------
// slab: SlabCache over real pages
// ---------------------------------------------------------------------------------------------

// Pages from the kernel's buddy allocator, owners in their PageFrames, as kmalloc's provider does;
// it also counts what it has out, and can be told to fail.
class TestPageProvider final : public PageProvider {
public:
    ErrorOr<void*> allocate_pages(unsigned order) override
    {
        if (m_refuse)
            return ENOMEM;
        PhysAddr phys = TRY(mm::allocate_pages(order));
        m_pages_out += 1ull << order;
        ++m_blocks_out;
        return mm::phys_to_virt(phys);
    }
    void free_pages(void* pages, unsigned order) override
    {
        mm::free_pages(mm::virt_to_phys(pages), order);
        m_pages_out -= 1ull << order;
        --m_blocks_out;
    }
    void set_page_owner(void* page, void* owner) override
    {
        InterruptsOff off;
        auto* frame = mm::buddy_for_tests().frame_for(mm::virt_to_phys(page));
        VERIFY(frame);
        frame->owner = owner;
    }
    void* page_owner(void* page) override
    {
        InterruptsOff off;
        auto* frame = mm::buddy_for_tests().frame_for(mm::virt_to_phys(page));
        return frame ? frame->owner : nullptr;
    }

    u64 pages_out() const { return m_pages_out; }
    u64 blocks_out() const { return m_blocks_out; }
    void refuse(bool refuse) { m_refuse = refuse; }

private:
    u64 m_pages_out { 0 };
    u64 m_blocks_out { 0 };
    bool m_refuse { false };
};

struct SlabShape {
    usize size;
    usize align;
};
// Odd sizes and alignments, from below a pointer to more than a page.
constexpr SlabShape s_shapes[] = { { 1, 1 }, { 3, 1 }, { 7, 2 }, { 13, 4 }, { 24, 8 }, { 33, 16 }, { 40, 8 },
    { 72, 64 }, { 100, 4 }, { 200, 32 }, { 333, 8 }, { 1000, 16 }, { 3000, 8 }, { 5000, 128 }, { 16000, 4096 } };

usize expected_align(const SlabShape& shape) { return shape.align < 8 ? 8 : shape.align; }
usize expected_size(const SlabShape& shape) { return align_up(shape.size < 8 ? 8 : shape.size, expected_align(shape)); }

void test_slab_geometry_for_odd_shapes(ktest::Test& t)
{
    TestPageProvider provider;
    for (auto& shape : s_shapes) {
        SlabCache cache("odd", shape.size, shape.align, provider);
        KEXPECT_EQ(t, cache.align(), expected_align(shape));
        KEXPECT_EQ(t, cache.object_size(), expected_size(shape));
        KEXPECT_TRUE(t, cache.slab_order() <= SlabCache::MAX_SLAB_ORDER);
        KEXPECT_TRUE(t, cache.objects_per_slab() >= 1);
        KEXPECT_TRUE(t, cache.objects_per_slab() * cache.object_size() <= (PAGE_SIZE << cache.slab_order()));
        // Enough objects per slab unless even the largest slab cannot hold that many.
        if (cache.objects_per_slab() < SlabCache::MIN_OBJECTS_PER_SLAB)
            KEXPECT_EQ(t, cache.slab_order(), SlabCache::MAX_SLAB_ORDER);
        // Constructing a cache takes no memory.
        KEXPECT_EQ(t, provider.pages_out(), 0ull);
    }
}

void test_slab_objects_aligned_distinct_writable(ktest::Test& t)
{
    u64 pages_before = kernel_free_pages();
    TestPageProvider provider;
    for (auto& shape : s_shapes) {
        SlabCache cache("odd", shape.size, shape.align, provider);
        usize size = cache.object_size();
        usize count = 2 * cache.objects_per_slab() + 3;
        if (count > SCRATCH)
            count = SCRATCH;
        for (usize i = 0; i < count; ++i) {
            auto object = cache.allocate();
            KASSERT_TRUE(t, !object.is_error());
            g_pointers[i] = object.value();
            if (!is_aligned((u64)g_pointers[i], cache.align()))
                t.fail(__FILE__, __LINE__, "%zu/%zu: object %p not aligned to %zu", shape.size, shape.align, g_pointers[i], cache.align());
            KEXPECT_TRUE(t, cache.owns(g_pointers[i]));
            fill_bytes(g_pointers[i], size, (u8)(i * 131 + 7));
        }
        // All written before any is checked: overlapping objects would clobber each other.
        for (usize i = 0; i < count; ++i)
            if (!bytes_are(g_pointers[i], size, (u8)(i * 131 + 7)))
                t.fail(__FILE__, __LINE__, "%zu/%zu: object %zu was overwritten", shape.size, shape.align, i);
        for (usize i = 0; i < count; ++i)
            cache.free(g_pointers[i]);
        KEXPECT_EQ(t, cache.stats().objects_in_use, (usize)0);
        if (t.failed())
            return;
    }
    KEXPECT_EQ(t, provider.pages_out(), 0ull);
    KEXPECT_EQ(t, kernel_free_pages(), pages_before);
}

void test_slab_stats_exact(ktest::Test& t)
{
    TestPageProvider provider;
    SlabCache cache("stats", 100, 4, provider);
    usize per_slab = cache.objects_per_slab();
    usize count = 3 * per_slab + 1;
    KASSERT_TRUE(t, count <= SCRATCH);
    for (usize i = 0; i < count; ++i) {
        auto object = cache.allocate();
        KASSERT_TRUE(t, !object.is_error());
        g_pointers[i] = object.value();
        auto stats = cache.stats();
        KASSERT_EQ(t, stats.objects_in_use, i + 1);
        KASSERT_EQ(t, stats.slabs, (i + per_slab) / per_slab);
    }
    auto stats = cache.stats();
    KEXPECT_EQ(t, stats.slabs, (usize)4);
    KEXPECT_EQ(t, stats.objects_total, 4 * per_slab);
    KEXPECT_EQ(t, stats.pages, (usize)4 << cache.slab_order());
    KEXPECT_EQ(t, stats.alloc_calls, (u64)count);
    KEXPECT_EQ(t, stats.free_calls, 0ull);
    KEXPECT_EQ(t, stats.empty_slabs, (usize)0);
    KEXPECT_EQ(t, provider.pages_out(), (u64)stats.pages);
    KEXPECT_EQ(t, stats.object_size, (usize)104);
    KEXPECT_EQ(t, stats.objects_per_slab, per_slab);
    for (usize i = 0; i < count; ++i) {
        cache.free(g_pointers[i]);
        KASSERT_EQ(t, cache.stats().objects_in_use, count - i - 1);
    }
    stats = cache.stats();
    KEXPECT_EQ(t, stats.free_calls, (u64)count);
    KEXPECT_EQ(t, stats.failed_calls, 0ull);
}

void test_slab_empty_slabs_released(ktest::Test& t)
{
    TestPageProvider provider;
    SlabCache cache("release", 200, 8, provider);
    usize per_slab = cache.objects_per_slab();
    usize count = 3 * per_slab;
    KASSERT_TRUE(t, count <= SCRATCH);
    for (usize i = 0; i < count; ++i) {
        auto object = cache.allocate();
        KASSERT_TRUE(t, !object.is_error());
        g_pointers[i] = object.value();
    }
    KEXPECT_EQ(t, cache.stats().slabs, (usize)3);
    for (usize i = 0; i < count; ++i)
        cache.free(g_pointers[i]);
    // One empty slab stays cached; the others went straight back to the page allocator.
    auto stats = cache.stats();
    KEXPECT_EQ(t, stats.slabs, (usize)1);
    KEXPECT_EQ(t, stats.empty_slabs, (usize)1);
    KEXPECT_EQ(t, provider.pages_out(), 1ull << cache.slab_order());
    // The cached slab serves the next allocation without a new page.
    auto object = cache.allocate();
    KASSERT_TRUE(t, !object.is_error());
    KEXPECT_EQ(t, provider.blocks_out(), 1ull);
    KEXPECT_EQ(t, cache.stats().empty_slabs, (usize)0);
    cache.free(object.value());
    cache.shrink();
    stats = cache.stats();
    KEXPECT_EQ(t, stats.slabs, (usize)0);
    KEXPECT_EQ(t, stats.empty_slabs, (usize)0);
    KEXPECT_EQ(t, provider.pages_out(), 0ull);
    // Shrinking an empty cache is a no-op.
    cache.shrink();
    KEXPECT_EQ(t, cache.stats().slabs, (usize)0);
}

void test_slab_destroy_returns_every_page(ktest::Test& t)
{
    u64 before = kernel_free_pages();
    TestPageProvider provider;
    {
        SlabCache cache("destroy", 5000, 128, provider);
        for (usize i = 0; i < 40; ++i) {
            auto object = cache.allocate();
            KASSERT_TRUE(t, !object.is_error());
            g_pointers[i] = object.value();
        }
        // Free some (leaving full, partial and empty slabs), keep the rest live.
        for (usize i = 0; i < 40; i += 3)
            cache.free(g_pointers[i]);
        KEXPECT_TRUE(t, kernel_free_pages() < before);
        KEXPECT_EQ(t, provider.pages_out(), (u64)cache.stats().pages);
    }
    KEXPECT_EQ(t, provider.pages_out(), 0ull);
    KEXPECT_EQ(t, provider.blocks_out(), 0ull);
    KEXPECT_EQ(t, kernel_free_pages(), before);
}

void test_slab_pages_tagged_with_cache(ktest::Test& t)
{
    TestPageProvider provider;
    SlabCache cache("tagged", 3000, 8, provider);
    SlabCache other("other", 3000, 8, provider);
    auto object = cache.allocate();
    auto foreign = other.allocate();
    KASSERT_TRUE(t, !object.is_error() && !foreign.is_error());
    // Every page of the slab names its cache, not just the one holding the object.
    u64 slab_bytes = PAGE_SIZE << cache.slab_order();
    u64 slab = align_down((u64)object.value(), slab_bytes);
    for (u64 offset = 0; offset < slab_bytes; offset += PAGE_SIZE) {
        InterruptsOff off;
        auto* frame = mm::buddy_for_tests().frame_for(mm::virt_to_phys((void*)(slab + offset)));
        KASSERT_TRUE(t, frame != nullptr);
        KEXPECT_TRUE(t, frame->owner == &cache);
        KEXPECT_TRUE(t, frame->has(PageFrame::Allocated) || offset != 0);
    }
    KEXPECT_TRUE(t, cache.owns(object.value()));
    KEXPECT_TRUE(t, cache.owns((u8*)object.value() + 17));
    KEXPECT_FALSE(t, cache.owns(foreign.value()));
    KEXPECT_FALSE(t, other.owns(object.value()));
    KEXPECT_FALSE(t, cache.owns(nullptr));
    // A kmalloc pointer belongs to the heap's caches, not this one.
    auto heap = try_kmalloc(64);
    KASSERT_TRUE(t, !heap.is_error());
    KEXPECT_FALSE(t, cache.owns(heap.value()));
    kfree(heap.value());
    cache.free(object.value());
    other.free(foreign.value());
    cache.shrink();
    InterruptsOff off;
    KEXPECT_TRUE(t, mm::buddy_for_tests().frame_for(mm::virt_to_phys((void*)slab))->owner == nullptr);
}

void test_slab_reuses_freed_objects(ktest::Test& t)
{
    TestPageProvider provider;
    SlabCache cache("reuse", 48, 16, provider);
    usize per_slab = cache.objects_per_slab();
    KASSERT_TRUE(t, 3 * per_slab <= SCRATCH);
    for (usize i = 0; i < per_slab; ++i)
        g_pointers[i] = cache.allocate().value();
    KEXPECT_EQ(t, cache.stats().slabs, (usize)1);
    void* middle = g_pointers[per_slab / 2];
    cache.free(middle);
    auto again = cache.allocate();
    KASSERT_TRUE(t, !again.is_error());
    KEXPECT_TRUE(t, again.value() == middle);
    g_pointers[per_slab / 2] = again.value();
    KEXPECT_EQ(t, cache.stats().slabs, (usize)1);
    // Three slabs, every other object freed: the holes fill before any new slab appears.
    for (usize i = per_slab; i < 3 * per_slab; ++i)
        g_pointers[i] = cache.allocate().value();
    KEXPECT_EQ(t, cache.stats().slabs, (usize)3);
    for (usize i = 0; i < 3 * per_slab; i += 2)
        cache.free(g_pointers[i]);
    usize holes = (3 * per_slab + 1) / 2;
    for (usize i = 0; i < holes; ++i) {
        auto object = cache.allocate();
        KASSERT_TRUE(t, !object.is_error());
        g_pointers[2 * i] = object.value();
    }
    KEXPECT_EQ(t, cache.stats().slabs, (usize)3);
    KEXPECT_EQ(t, cache.stats().objects_in_use, 3 * per_slab);
    for (usize i = 0; i < 3 * per_slab; ++i)
        cache.free(g_pointers[i]);
}

void test_slab_free_null_is_noop(ktest::Test& t)
{
    TestPageProvider provider;
    SlabCache cache("null", 64, 8, provider);
    cache.free(nullptr);
    auto stats = cache.stats();
    KEXPECT_EQ(t, stats.free_calls, 0ull);
    KEXPECT_EQ(t, stats.slabs, (usize)0);
    KEXPECT_EQ(t, provider.pages_out(), 0ull);
}

void test_slab_provider_failure_is_enomem(ktest::Test& t)
{
    TestPageProvider provider;
    SlabCache cache("refused", 64, 8, provider);
    provider.refuse(true);
    auto object = cache.allocate();
    KASSERT_TRUE(t, object.is_error());
    KEXPECT_EQ(t, object.error().code(), (int)ENOMEM);
    auto stats = cache.stats();
    KEXPECT_EQ(t, stats.failed_calls, 1ull);
    KEXPECT_EQ(t, stats.slabs, (usize)0);
    KEXPECT_EQ(t, stats.objects_in_use, (usize)0);
    // A full slab with the provider refusing: the slab's objects still come, the next one fails.
    provider.refuse(false);
    usize per_slab = cache.objects_per_slab();
    KASSERT_TRUE(t, per_slab <= SCRATCH);
    for (usize i = 0; i < per_slab; ++i)
        g_pointers[i] = cache.allocate().value();
    provider.refuse(true);
    KEXPECT_EQ(t, error_of(cache.allocate()), (int)ENOMEM);
    KEXPECT_EQ(t, cache.stats().objects_in_use, per_slab);
    // Freeing one makes room again without the provider.
    cache.free(g_pointers[0]);
    auto recovered = cache.allocate();
    KEXPECT_FALSE(t, recovered.is_error());
    g_pointers[0] = recovered.is_error() ? nullptr : recovered.value();
    provider.refuse(false);
    for (usize i = 0; i < per_slab; ++i)
        cache.free(g_pointers[i]);
    cache.shrink();
    KEXPECT_EQ(t, provider.pages_out(), 0ull);
}

void test_slab_many_small_objects_random_free(ktest::Test& t)
{
    TestPageProvider provider;
    SlabCache cache("tiny", 8, 8, provider);
    usize count = 2 * cache.objects_per_slab() + 10;
    if (count > SCRATCH)
        count = SCRATCH;
    // More than 64 objects per slab: the allocated bitmap spans several words.
    KEXPECT_TRUE(t, cache.objects_per_slab() > 128);
    for (usize i = 0; i < count; ++i) {
        auto object = cache.allocate();
        KASSERT_TRUE(t, !object.is_error());
        g_pointers[i] = object.value();
        *(volatile u64*)g_pointers[i] = i;
    }
    for (usize i = 0; i < count; ++i)
        KEXPECT_EQ(t, *(volatile u64*)g_pointers[i], (u64)i);
    Prng rng(0x7171);
    for (usize i = count; i > 1; --i) {
        usize j = rng.below(i);
        void* swap = g_pointers[i - 1];
        g_pointers[i - 1] = g_pointers[j];
        g_pointers[j] = swap;
    }
    for (usize i = 0; i < count; ++i)
        cache.free(g_pointers[i]);
    KEXPECT_EQ(t, cache.stats().objects_in_use, (usize)0);
    KEXPECT_EQ(t, cache.stats().slabs, (usize)1);
    // The recycled objects come back out, all distinct.
    for (usize i = 0; i < count; ++i) {
        auto object = cache.allocate();
        KASSERT_TRUE(t, !object.is_error());
        g_pointers[i] = object.value();
        *(volatile u64*)g_pointers[i] = ~(u64)i;
    }
    for (usize i = 0; i < count; ++i)
        KEXPECT_EQ(t, *(volatile u64*)g_pointers[i], ~(u64)i);
    for (usize i = 0; i < count; ++i)
        cache.free(g_pointers[i]);
}

void test_slab_large_objects(ktest::Test& t)
{
    u64 before = kernel_free_pages();
    TestPageProvider provider;
    {
        SlabCache cache("huge", 16000, 4096, provider);
        KEXPECT_EQ(t, cache.object_size(), (usize)16384);
        for (usize i = 0; i < 10; ++i) {
            auto object = cache.allocate();
            KASSERT_TRUE(t, !object.is_error());
            g_pointers[i] = object.value();
            KEXPECT_TRUE(t, is_aligned((u64)g_pointers[i], 4096));
            KEXPECT_TRUE(t, fill_and_verify(g_pointers[i], 16000 & ~7ull, i));
        }
        usize per_slab = cache.objects_per_slab();
        KEXPECT_EQ(t, cache.stats().slabs, (10 + per_slab - 1) / per_slab);
        for (usize i = 0; i < 10; ++i)
            cache.free(g_pointers[i]);
    }
    KEXPECT_EQ(t, kernel_free_pages(), before);
}

// ---------------------------------------------------------------------------------------------
// kmalloc
// ---------------------------------------------------------------------------------------------

constexpr usize s_class_sizes[] = { 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192 };
static_assert(sizeof(s_class_sizes) / sizeof(s_class_sizes[0]) == SlabHeap::class_count);

usize heap_allocation_size(void* pointer)
{
    InterruptsOff off;
    return kheap::heap_for_tests().allocation_size(pointer);
}

void test_kmalloc_zero_is_einval(ktest::Test& t)
{
    auto before = kheap::stats();
    auto result = try_kmalloc(0);
    KASSERT_TRUE(t, result.is_error());
    KEXPECT_EQ(t, result.error().code(), (int)EINVAL);
    KEXPECT_EQ(t, error_of(try_kzalloc(0)), (int)EINVAL);
    auto after = kheap::stats();
    KEXPECT_EQ(t, after.failed_calls, before.failed_calls + 2);
    KEXPECT_EQ(t, after.bytes_in_use, before.bytes_in_use);
}

void test_kmalloc_impossible_sizes_are_enomem(ktest::Test& t)
{
    auto heap_before = kheap::stats();
    u64 pages_before = kernel_free_pages();
    // 8 MiB is past the largest buddy block; 1 GiB is the heap's ceiling but still no block.
    const usize sizes[] = { 2 * GiB, ~(usize)0, ~(usize)0 - PAGE_SIZE, 1 * GiB + 1, 1 * GiB, 8 * MiB, 4 * MiB + 1 };
    for (usize size : sizes) {
        auto result = try_kmalloc(size);
        if (!result.is_error()) {
            t.fail(__FILE__, __LINE__, "try_kmalloc(%zu) succeeded", size);
            kfree(result.value());
            continue;
        }
        KEXPECT_EQ(t, result.error().code(), (int)ENOMEM);
    }
    KEXPECT_EQ(t, error_of(try_kzalloc(~(usize)0)), (int)ENOMEM);
    KEXPECT_EQ(t, error_of(try_kzalloc(2 * GiB)), (int)ENOMEM);
    auto heap_after = kheap::stats();
    KEXPECT_EQ(t, heap_after.bytes_in_use, heap_before.bytes_in_use);
    KEXPECT_EQ(t, heap_after.failed_calls, heap_before.failed_calls + 9);
    KEXPECT_EQ(t, kernel_free_pages(), pages_before);
}

void test_kmalloc_every_size_class(ktest::Test& t)
{
    auto before = kheap::stats();
    for (usize size : s_class_sizes) {
        for (usize request : { size - 1, size, size + 1 }) {
            auto result = try_kmalloc(request);
            KASSERT_TRUE(t, !result.is_error());
            void* p = result.value();
            if (!is_aligned((u64)p, SlabHeap::minimum_alignment))
                t.fail(__FILE__, __LINE__, "try_kmalloc(%zu) = %p is not 16-byte aligned", request, p);
            usize usable = heap_allocation_size(p);
            if (usable < request)
                t.fail(__FILE__, __LINE__, "try_kmalloc(%zu) gave only %zu usable bytes", request, usable);
            fill_bytes(p, request, (u8)request);
            KEXPECT_TRUE(t, bytes_are(p, request, (u8)request));
            kfree(p);
        }
    }
    KEXPECT_EQ(t, kheap::stats().bytes_in_use, before.bytes_in_use);
}

void test_kmalloc_power_of_two_classes_naturally_aligned(ktest::Test& t)
{
    for (usize size = 16; size <= 8192; size *= 2) {
        usize align = size < PAGE_SIZE ? size : PAGE_SIZE;
        for (usize i = 0; i < 8; ++i) {
            auto result = try_kmalloc(size);
            KASSERT_TRUE(t, !result.is_error());
            g_pointers[i] = result.value();
            if (!is_aligned((u64)g_pointers[i], align))
                t.fail(__FILE__, __LINE__, "try_kmalloc(%zu) = %p is not aligned to %zu", size, g_pointers[i], align);
        }
        for (usize i = 0; i < 8; ++i)
            kfree(g_pointers[i]);
    }
}

void test_kmalloc_class_boundaries(ktest::Test& t)
{
    struct Case {
        usize request;
        usize usable;
        usize align;
    };
    const Case cases[] = { { 256, 256, 256 }, { 257, 512, 512 }, { 8192, 8192, 4096 }, { 8193, 16384, 16384 },
        { 64 * KiB, 64 * KiB, 64 * KiB }, { 64 * KiB + 1, 128 * KiB, 128 * KiB }, { 1 * MiB, 1 * MiB, 1 * MiB },
        { 4 * MiB, 4 * MiB, 4 * MiB } };
    auto before = kheap::stats();
    u64 pages_before = kernel_free_pages();
    for (auto& c : cases) {
        auto result = try_kmalloc(c.request);
        KASSERT_TRUE(t, !result.is_error());
        void* p = result.value();
        KEXPECT_EQ(t, heap_allocation_size(p), c.usable);
        if (!is_aligned((u64)p, c.align))
            t.fail(__FILE__, __LINE__, "try_kmalloc(%zu) = %p is not aligned to %zu", c.request, p, c.align);
        KEXPECT_EQ(t, kheap::stats().bytes_in_use, before.bytes_in_use + c.usable);
        // The whole request is memory.
        KEXPECT_TRUE(t, fill_and_verify(p, c.request & ~7ull, c.request));
        ((volatile u8*)p)[c.request - 1] = 0xEE;
        KEXPECT_EQ(t, ((volatile u8*)p)[c.request - 1], (u8)0xEE);
        kfree(p);
    }
    KEXPECT_EQ(t, kheap::stats().bytes_in_use, before.bytes_in_use);
    shrink_heap();
    KEXPECT_TRUE(t, kernel_free_pages() >= pages_before);
}

void test_kmalloc_large_uses_pages_directly(ktest::Test& t)
{
    u64 pages_before = kernel_free_pages();
    auto before = kheap::stats();
    auto result = try_kmalloc(64 * KiB);
    KASSERT_TRUE(t, !result.is_error());
    auto during = kheap::stats();
    KEXPECT_EQ(t, kernel_free_pages(), pages_before - 16);
    KEXPECT_EQ(t, during.large_allocations_in_use, before.large_allocations_in_use + 1);
    KEXPECT_EQ(t, during.large_pages_in_use, before.large_pages_in_use + 16);
    KEXPECT_EQ(t, during.large_alloc_calls, before.large_alloc_calls + 1);
    {
        InterruptsOff off;
        auto* frame = mm::buddy_for_tests().frame_for(mm::virt_to_phys(result.value()));
        KEXPECT_TRUE(t, frame->has(PageFrame::Allocated));
        KEXPECT_EQ(t, frame->order, (u8)4);
    }
    kfree(result.value());
    auto after = kheap::stats();
    KEXPECT_EQ(t, kernel_free_pages(), pages_before);
    KEXPECT_EQ(t, after.large_allocations_in_use, before.large_allocations_in_use);
    KEXPECT_EQ(t, after.large_free_calls, before.large_free_calls + 1);
    KEXPECT_EQ(t, after.bytes_in_use, before.bytes_in_use);
}

void test_kzalloc_zeroes(ktest::Test& t)
{
    for (usize size : { (usize)24, (usize)100, (usize)4000, (usize)8192, (usize)20000 }) {
        // Dirty the object kzalloc is likely to get back (the free list is LIFO).
        auto dirty = try_kmalloc(size);
        KASSERT_TRUE(t, !dirty.is_error());
        fill_bytes(dirty.value(), size, 0xA5);
        kfree(dirty.value());
        auto clean = try_kzalloc(size);
        KASSERT_TRUE(t, !clean.is_error());
        if (!bytes_are(clean.value(), size, 0))
            t.fail(__FILE__, __LINE__, "try_kzalloc(%zu) returned non-zero bytes", size);
        kfree(clean.value());
    }
}

void test_kfree_null_is_noop(ktest::Test& t)
{
    auto before = kheap::stats();
    kfree(nullptr);
    auto after = kheap::stats();
    KEXPECT_EQ(t, after.free_calls, before.free_calls);
    KEXPECT_EQ(t, after.bytes_in_use, before.bytes_in_use);
}

void test_kmalloc_bytes_in_use_counts_class_size(ktest::Test& t)
{
    struct Case {
        usize request;
        usize charged;
    };
    const Case cases[] = { { 1, 16 }, { 17, 32 }, { 65, 96 }, { 97, 128 }, { 129, 192 }, { 200, 256 }, { 300, 512 },
        { 3000, 4096 }, { 5000, 8192 } };
    for (auto& c : cases) {
        auto before = kheap::stats();
        auto result = try_kmalloc(c.request);
        KASSERT_TRUE(t, !result.is_error());
        auto during = kheap::stats();
        KEXPECT_EQ(t, during.bytes_in_use - before.bytes_in_use, (u64)c.charged);
        KEXPECT_EQ(t, during.small_allocations_in_use, before.small_allocations_in_use + 1);
        KEXPECT_EQ(t, during.alloc_calls, before.alloc_calls + 1);
        KEXPECT_EQ(t, heap_allocation_size(result.value()), c.charged);
        kfree(result.value());
        KEXPECT_EQ(t, kheap::stats().bytes_in_use, before.bytes_in_use);
    }
    KEXPECT_EQ(t, SlabHeap::class_index_for(1), (usize)0);
    KEXPECT_EQ(t, SlabHeap::class_index_for(16), (usize)0);
    KEXPECT_EQ(t, SlabHeap::class_index_for(17), (usize)1);
    KEXPECT_EQ(t, SlabHeap::class_index_for(257), (usize)7);
    KEXPECT_EQ(t, SlabHeap::class_index_for(8192), (usize)11);
    KEXPECT_EQ(t, SlabHeap::class_index_for(8193), SlabHeap::class_count);
    for (usize i = 0; i < SlabHeap::class_count; ++i)
        KEXPECT_EQ(t, SlabHeap::class_size(i), s_class_sizes[i]);
}

usize random_size(Prng& rng)
{
    u64 pick = rng.below(100);
    if (pick < 60)
        return 1 + rng.below(256);
    if (pick < 85)
        return 257 + rng.below(2048 - 256);
    if (pick < 97)
        return 2049 + rng.below(8192 - 2048);
    return 8193 + rng.below(64 * KiB - 8192);
}

void test_kmalloc_random_loop_returns_to_baseline(ktest::Test& t)
{
    struct Slot {
        u8* pointer;
        usize size;
        u8 tag;
    };
    constexpr usize slot_count = 96;
    static Slot slots[slot_count];
    __builtin_memset(slots, 0, sizeof(slots));

    shrink_heap();
    auto heap_before = kheap::stats();
    u64 pages_before = kernel_free_pages();
    Prng rng(0xC0FFEE);
    u64 allocations = 0, frees = 0;
    for (int step = 0; step < 10000; ++step) {
        auto& slot = slots[rng.below(slot_count)];
        if (slot.pointer) {
            usize edge = slot.size < 32 ? slot.size : 32;
            if (!bytes_are(slot.pointer, edge, slot.tag) || !bytes_are(slot.pointer + slot.size - edge, edge, slot.tag))
                t.fail(__FILE__, __LINE__, "step %d: a %zu-byte block lost its contents", step, slot.size);
            kfree(slot.pointer);
            ++frees;
            slot.pointer = nullptr;
            continue;
        }
        usize size = random_size(rng);
        auto result = try_kmalloc(size);
        if (result.is_error()) {
            t.fail(__FILE__, __LINE__, "step %d: try_kmalloc(%zu) failed: %s", step, size, result.error().name());
            break;
        }
        ++allocations;
        slot.pointer = (u8*)result.value();
        slot.size = size;
        slot.tag = (u8)(step * 29 + 1);
        usize edge = size < 32 ? size : 32;
        fill_bytes(slot.pointer, edge, slot.tag);
        fill_bytes(slot.pointer + size - edge, edge, slot.tag);
    }
    for (auto& slot : slots) {
        if (slot.pointer) {
            kfree(slot.pointer);
            ++frees;
            slot.pointer = nullptr;
        }
    }
    shrink_heap();
    auto heap_after = kheap::stats();
    KEXPECT_EQ(t, heap_after.bytes_in_use, heap_before.bytes_in_use);
    KEXPECT_EQ(t, heap_after.small_allocations_in_use, heap_before.small_allocations_in_use);
    KEXPECT_EQ(t, heap_after.large_allocations_in_use, heap_before.large_allocations_in_use);
    KEXPECT_EQ(t, heap_after.alloc_calls, heap_before.alloc_calls + allocations);
    KEXPECT_EQ(t, heap_after.free_calls, heap_before.free_calls + frees);
    KEXPECT_EQ(t, heap_after.slab_pages, heap_before.slab_pages);
    KEXPECT_EQ(t, kernel_free_pages(), pages_before);
    KEXPECT_EQ(t, allocations, frees);
    // Roughly half the 10,000 steps allocate; the rest free.
    KEXPECT_TRUE(t, allocations > 4000);
}

void test_heap_shrink_releases_empty_slabs(ktest::Test& t)
{
    shrink_heap();
    u64 pages_before = kernel_free_pages();
    u64 slab_pages_before = kheap::stats().slab_pages;
    // Enough 2 KiB objects to need several fresh slabs.
    for (usize i = 0; i < 64; ++i) {
        auto result = try_kmalloc(2048);
        KASSERT_TRUE(t, !result.is_error());
        g_pointers[i] = result.value();
    }
    KEXPECT_TRUE(t, kheap::stats().slab_pages > slab_pages_before);
    KEXPECT_TRUE(t, kernel_free_pages() < pages_before);
    for (usize i = 0; i < 64; ++i)
        kfree(g_pointers[i]);
    // At most one empty slab per class is cached until shrink().
    shrink_heap();
    KEXPECT_EQ(t, kheap::stats().slab_pages, slab_pages_before);
    KEXPECT_EQ(t, kernel_free_pages(), pages_before);
}

[[gnu::noinline]] void* tracked_kmalloc(usize size)
{
    auto result = try_kmalloc(size);
    // Using the result here keeps kmalloc from being a tail call, so its return address lies in
    // this function.
    return result.is_error() ? nullptr : result.value();
}

void test_caller_table_counts_this_function(ktest::Test& t)
{
    auto& heap = kheap::heap_for_tests();
    if (!heap.caller_tracking()) {
        t.skip("caller tracking is off (NDEBUG build)");
        return;
    }
    void* first = tracked_kmalloc(40);
    KASSERT_TRUE(t, first != nullptr);
    // Find the table entry whose call site lies inside tracked_kmalloc.
    void* site = nullptr;
    u64 tracked = 0;
    {
        InterruptsOff off;
        for (auto& entry : heap.caller_table()) {
            tracked += entry.allocations;
            SymbolTable::Match match;
            if (entry.caller && symbols::kernel_table().lookup((u64)entry.caller, match)
                && match.address == (u64)&tracked_kmalloc)
                site = entry.caller;
        }
    }
    kfree(first);
    if (!site) {
        KEXPECT_TRUE(t, heap.untracked_allocations() > 0);
        t.skip("caller table full: tracked_kmalloc counted as untracked");
        return;
    }
    u64 before = heap.allocations_by(site);
    KEXPECT_TRUE(t, before >= 1);
    for (usize i = 0; i < 25; ++i) {
        g_pointers[i] = tracked_kmalloc(16 + i * 8);
        KASSERT_TRUE(t, g_pointers[i] != nullptr);
    }
    KEXPECT_EQ(t, heap.allocations_by(site), before + 25);
    // Freeing does not uncount: the table records allocations made.
    for (usize i = 0; i < 25; ++i)
        kfree(g_pointers[i]);
    KEXPECT_EQ(t, heap.allocations_by(site), before + 25);
    u64 tracked_after = 0;
    for (auto& entry : heap.caller_table())
        tracked_after += entry.allocations;
    KEXPECT_TRUE(t, tracked_after >= tracked + 25);
    // The busiest callers come back sorted.
    CallerStat top[8];
    usize count = heap.top_callers(Span<CallerStat>(top, 8));
    KEXPECT_TRUE(t, count > 0);
    for (usize i = 1; i < count; ++i)
        KEXPECT_TRUE(t, top[i - 1].allocations >= top[i].allocations);
    KEXPECT_EQ(t, heap.allocations_by(nullptr), 0ull);
}

struct Widget {
    u64 a;
    u32 b;
    u8 bytes[100];
};

void test_nothrow_new(ktest::Test& t)
{
    auto before = kheap::stats();
    auto* widget = new (std::nothrow) Widget { 7, 9, {} };
    KASSERT_TRUE(t, widget != nullptr);
    escape(widget);
    KEXPECT_TRUE(t, is_aligned((u64)widget, 16));
    KEXPECT_EQ(t, widget->a, 7ull);
    KEXPECT_EQ(t, widget->b, 9u);
    KEXPECT_EQ(t, kheap::stats().alloc_calls, before.alloc_calls + 1);
    KEXPECT_EQ(t, kheap::stats().bytes_in_use, before.bytes_in_use + 128);
    delete widget;
    auto* array = new (std::nothrow) u32[1000];
    KASSERT_TRUE(t, array != nullptr);
    escape(array);
    array[999] = 5;
    KEXPECT_EQ(t, heap_allocation_size(array), (usize)4096);
    delete[] array;
    KEXPECT_EQ(t, kheap::stats().bytes_in_use, before.bytes_in_use);
}

void test_nothrow_new_failure_is_null(ktest::Test& t)
{
    auto before = kheap::stats();
    volatile usize huge = 2 * GiB;
    auto* block = new (std::nothrow) u8[huge];
    escape(block);
    KEXPECT_TRUE(t, block == nullptr);
    delete[] block;
    KEXPECT_EQ(t, kheap::stats().failed_calls, before.failed_calls + 1);
    KEXPECT_EQ(t, kheap::stats().bytes_in_use, before.bytes_in_use);
}

void test_kmalloc_with_interrupts_disabled(ktest::Test& t)
{
    shrink_heap();
    u64 pages_before = kernel_free_pages();
    bool was_enabled = arch::interrupts_enabled();
    arch::disable_interrupts();
    auto small = try_kmalloc(100);
    bool off_after_small = !arch::interrupts_enabled();
    auto large = try_kmalloc(32 * KiB);
    bool off_after_large = !arch::interrupts_enabled();
    if (!small.is_error())
        kfree(small.value());
    if (!large.is_error())
        kfree(large.value());
    bool off_after_free = !arch::interrupts_enabled();
    if (was_enabled)
        arch::enable_interrupts();
    KEXPECT_FALSE(t, small.is_error());
    KEXPECT_FALSE(t, large.is_error());
    KEXPECT_TRUE(t, off_after_small);
    KEXPECT_TRUE(t, off_after_large);
    KEXPECT_TRUE(t, off_after_free);
    shrink_heap();
    KEXPECT_EQ(t, kernel_free_pages(), pages_before);
}

void test_kmalloc_restores_enabled_interrupts(ktest::Test& t)
{
    KASSERT_TRUE(t, arch::interrupts_enabled());
    auto result = try_kmalloc(48);
    KEXPECT_TRUE(t, arch::interrupts_enabled());
    KASSERT_TRUE(t, !result.is_error());
    kfree(result.value());
    KEXPECT_TRUE(t, arch::interrupts_enabled());
    auto failed = try_kmalloc(~(usize)0);
    KEXPECT_TRUE(t, failed.is_error());
    KEXPECT_TRUE(t, arch::interrupts_enabled());
    auto page = mm::allocate_pages(0);
    KEXPECT_TRUE(t, arch::interrupts_enabled());
    KASSERT_TRUE(t, !page.is_error());
    mm::free_pages(page.value(), 0);
    KEXPECT_TRUE(t, arch::interrupts_enabled());
}

void test_c_abi_kmalloc_null_on_failure(ktest::Test& t)
{
    // The module ABI's C functions: the same heap, NULL instead of an error.
    auto before = kheap::stats();
    KEXPECT_TRUE(t, kmalloc(0) == nullptr);
    KEXPECT_TRUE(t, kmalloc(~(usize)0) == nullptr);
    KEXPECT_TRUE(t, kmalloc(2 * GiB) == nullptr);
    KEXPECT_TRUE(t, kzalloc(0) == nullptr);
    KEXPECT_TRUE(t, kzalloc(~(usize)0) == nullptr);
    KEXPECT_EQ(t, kheap::stats().failed_calls, before.failed_calls + 5);
    void* p = kmalloc(300);
    KASSERT_TRUE(t, p != nullptr);
    KEXPECT_TRUE(t, is_aligned((u64)p, 16));
    KEXPECT_EQ(t, heap_allocation_size(p), (usize)512);
    fill_bytes(p, 300, 0x3C);
    kfree(p);
    void* z = kzalloc(300);
    KASSERT_TRUE(t, z != nullptr);
    KEXPECT_TRUE(t, bytes_are(z, 300, 0));
    kfree(z);
    KEXPECT_EQ(t, kheap::stats().bytes_in_use, before.bytes_in_use);
}

void test_kmalloc_distinct_blocks(ktest::Test& t)
{
    Prng rng(0xD15);
    constexpr usize count = 200;
    usize sizes[count];
    for (usize i = 0; i < count; ++i) {
        sizes[i] = 1 + rng.below(3000);
        auto result = try_kmalloc(sizes[i]);
        KASSERT_TRUE(t, !result.is_error());
        g_pointers[i] = result.value();
        fill_bytes(g_pointers[i], sizes[i], (u8)(i + 1));
    }
    for (usize i = 0; i < count; ++i) {
        if (!bytes_are(g_pointers[i], sizes[i], (u8)(i + 1)))
            t.fail(__FILE__, __LINE__, "block %zu (%zu bytes) was overwritten", i, sizes[i]);
        for (usize j = i + 1; j < count; ++j)
            if (ranges_overlap((u64)g_pointers[i], sizes[i], (u64)g_pointers[j], sizes[j]))
                t.fail(__FILE__, __LINE__, "blocks %zu and %zu overlap", i, j);
    }
    for (usize i = 0; i < count; ++i)
        kfree(g_pointers[i]);
}

// ---------------------------------------------------------------------------------------------
// bump: a BumpAllocator over a block borrowed from the buddy allocator
// ---------------------------------------------------------------------------------------------

class BumpRange {
public:
    static constexpr unsigned ORDER = 4;
    static constexpr u64 BYTES = PAGE_SIZE << ORDER;

    BumpRange()
    {
        auto block = mm::allocate_pages(ORDER);
        if (!block.is_error())
            m_start = block.value();
    }
    ~BumpRange()
    {
        if (!m_start.is_null())
            mm::free_pages(m_start, ORDER);
    }
    BumpRange(const BumpRange&) = delete;
    bool ok() const { return !m_start.is_null(); }
    PhysAddr start() const { return m_start; }
    PhysAddr end() const { return m_start + BYTES; }

private:
    PhysAddr m_start { 0 };
};

#define BUMP_RANGE(t, range, bump)                 \
    BumpRange range;                               \
    KASSERT_TRUE(t, (range).ok());                 \
    BumpAllocator bump((range).start(), (range).end())

void test_bump_starts_empty(ktest::Test& t)
{
    BUMP_RANGE(t, range, bump);
    KEXPECT_EQ(t, bump.start(), range.start());
    KEXPECT_EQ(t, bump.end(), range.end());
    KEXPECT_EQ(t, bump.current(), range.start());
    KEXPECT_EQ(t, bump.used(), 0ull);
    KEXPECT_EQ(t, bump.remaining(), BumpRange::BYTES);
    KEXPECT_EQ(t, bump.allocation_count(), 0ull);
    KEXPECT_FALSE(t, bump.is_frozen());
    auto first = bump.allocate(1, 1);
    KASSERT_TRUE(t, !first.is_error());
    KEXPECT_EQ(t, first.value(), range.start());
}

void test_bump_alignment_honoured(ktest::Test& t)
{
    BUMP_RANGE(t, range, bump);
    const u64 aligns[] = { 1, 2, 4, 8, 16, 64, 256, 4096, 2, 32, 8192 };
    u64 size = 3;
    for (u64 align : aligns) {
        PhysAddr before = bump.current();
        auto block = bump.allocate(size, align);
        KASSERT_TRUE(t, !block.is_error());
        if (!is_aligned(block.value(), align))
            t.fail(__FILE__, __LINE__, "allocate(%llu, %llu) = 0x%llx", (unsigned long long)size, (unsigned long long)align,
                block.value().ull());
        // The block is the first aligned address at or after the old position.
        KEXPECT_EQ(t, block.value(), align_up(before, align));
        KEXPECT_EQ(t, bump.current(), block.value() + size);
        size = size * 2 + 1;
    }
}

void test_bump_used_remaining_accounting(ktest::Test& t)
{
    BUMP_RANGE(t, range, bump);
    Prng rng(0xB0B);
    u64 count = 0;
    for (int i = 0; i < 40; ++i) {
        u64 size = 1 + rng.below(300);
        u64 align = 1ull << rng.below(7);
        auto block = bump.allocate(size, align);
        KASSERT_TRUE(t, !block.is_error());
        ++count;
        // Padding counts as used.
        KEXPECT_EQ(t, bump.used(), block.value() + size - range.start());
        KEXPECT_EQ(t, bump.used() + bump.remaining(), BumpRange::BYTES);
        KEXPECT_EQ(t, bump.current(), range.start() + bump.used());
        KEXPECT_EQ(t, bump.allocation_count(), count);
    }
}

void test_bump_exhaustion_is_enomem_and_changes_nothing(ktest::Test& t)
{
    BUMP_RANGE(t, range, bump);
    KASSERT_TRUE(t, !bump.allocate(100, 1).is_error());
    u64 used = bump.used();
    KEXPECT_EQ(t, error_of(bump.allocate(bump.remaining() + 1, 1)), (int)ENOMEM);
    KEXPECT_EQ(t, error_of(bump.allocate(BumpRange::BYTES, 1)), (int)ENOMEM);
    // Fits by size, but not once aligned.
    KEXPECT_EQ(t, error_of(bump.allocate(bump.remaining() - 10, 4096)), (int)ENOMEM);
    KEXPECT_EQ(t, bump.used(), used);
    KEXPECT_EQ(t, bump.allocation_count(), 1ull);
    // Exactly what is left still fits, and then nothing does.
    auto rest = bump.allocate(bump.remaining(), 1);
    KASSERT_TRUE(t, !rest.is_error());
    KEXPECT_EQ(t, bump.remaining(), 0ull);
    KEXPECT_EQ(t, bump.current(), range.end());
    KEXPECT_EQ(t, error_of(bump.allocate(1, 1)), (int)ENOMEM);
}

void test_bump_zero_size_and_bad_alignment_einval(ktest::Test& t)
{
    BUMP_RANGE(t, range, bump);
    KEXPECT_EQ(t, error_of(bump.allocate(0, 8)), (int)EINVAL);
    KEXPECT_EQ(t, error_of(bump.allocate(0, 1)), (int)EINVAL);
    for (u64 align : { 0ull, 3ull, 24ull, 4097ull, ~0ull })
        KEXPECT_EQ(t, error_of(bump.allocate(8, align)), (int)EINVAL);
    KEXPECT_EQ(t, bump.used(), 0ull);
    KEXPECT_EQ(t, bump.allocation_count(), 0ull);
}

void test_bump_freeze_is_eperm(ktest::Test& t)
{
    BUMP_RANGE(t, range, bump);
    KASSERT_TRUE(t, !bump.allocate(64, 8).is_error());
    PhysAddr current = bump.current();
    bump.freeze();
    KEXPECT_TRUE(t, bump.is_frozen());
    KEXPECT_EQ(t, error_of(bump.allocate(64, 8)), (int)EPERM);
    // Frozen wins over every other error.
    KEXPECT_EQ(t, error_of(bump.allocate(0, 8)), (int)EPERM);
    KEXPECT_EQ(t, error_of(bump.allocate(~0ull, 3)), (int)EPERM);
    bump.freeze();
    KEXPECT_TRUE(t, bump.is_frozen());
    KEXPECT_EQ(t, error_of(bump.allocate(1, 1)), (int)EPERM);
    KEXPECT_EQ(t, bump.current(), current);
    KEXPECT_EQ(t, bump.allocation_count(), 1ull);
}

void test_bump_overflow_rejected(ktest::Test& t)
{
    BUMP_RANGE(t, range, bump);
    KEXPECT_EQ(t, error_of(bump.allocate(~0ull, 1)), (int)ENOMEM);
    KEXPECT_EQ(t, error_of(bump.allocate(~0ull - range.start().value(), 1)), (int)ENOMEM);
    KEXPECT_EQ(t, error_of(bump.allocate(1, 1ull << 63)), (int)ENOMEM);
    KEXPECT_EQ(t, bump.used(), 0ull);
    // At the top of the address space the alignment arithmetic itself would wrap. The range starts
    // one byte past a page boundary, so a page-aligned page no longer fits below its end.
    BumpAllocator top(PhysAddr(~0ull - 2 * PAGE_SIZE + 2), PhysAddr(~0ull));
    KEXPECT_EQ(t, error_of(top.allocate(1, 1ull << 20)), (int)ENOMEM);
    KEXPECT_EQ(t, error_of(top.allocate(PAGE_SIZE, PAGE_SIZE)), (int)ENOMEM);
    auto last = top.allocate(1, 1);
    KEXPECT_FALSE(t, last.is_error());
}

void test_bump_memory_usable_and_disjoint(ktest::Test& t)
{
    BUMP_RANGE(t, range, bump);
    Prng rng(0xFEED);
    usize count = 0;
    for (; count < 60; ++count) {
        u64 size = 8 * (1 + rng.below(64));
        auto block = bump.allocate(size, 8);
        KASSERT_TRUE(t, !block.is_error());
        g_blocks[count] = block.value();
        g_orders[count] = (unsigned)size;
        KEXPECT_TRUE(t, bump.contains(block.value()) && bump.contains(block.value() + size - 1));
        fill_bytes(mm::phys_to_virt(block.value()), size, (u8)(count + 1));
    }
    for (usize i = 0; i < count; ++i) {
        KEXPECT_TRUE(t, bytes_are(mm::phys_to_virt(g_blocks[i]), g_orders[i], (u8)(i + 1)));
        if (i > 0)
            KEXPECT_TRUE(t, g_blocks[i] >= g_blocks[i - 1] + g_orders[i - 1]);
    }
}

void test_bump_contains_and_empty_range(ktest::Test& t)
{
    BUMP_RANGE(t, range, bump);
    KEXPECT_TRUE(t, bump.contains(range.start()));
    KEXPECT_TRUE(t, bump.contains(range.end() - 1));
    KEXPECT_FALSE(t, bump.contains(range.end()));
    KEXPECT_FALSE(t, bump.contains(range.start() - 1));
    BumpAllocator empty(range.start(), range.start());
    KEXPECT_EQ(t, empty.remaining(), 0ull);
    KEXPECT_EQ(t, error_of(empty.allocate(1, 1)), (int)ENOMEM);
    KEXPECT_FALSE(t, empty.contains(range.start()));
}

void test_kernel_bump_region_reserved(ktest::Test& t)
{
    // The boot-time bump allocator froze after use; what it handed out is reserved forever.
    auto& layout = mm::layout();
    KEXPECT_TRUE(t, layout.bump_start < layout.bump_used_end);
    KEXPECT_TRUE(t, layout.bump_used_end <= layout.bump_end);
    KEXPECT_TRUE(t, layout.bump_end.value() <= mm::EARLY_ALIAS_LIMIT);
    KEXPECT_TRUE(t, is_aligned(layout.bump_start, PAGE_SIZE));
    InterruptsOff off;
    auto& buddy = mm::buddy_for_tests();
    for (PhysAddr page = layout.bump_start; page < layout.bump_used_end; page += PAGE_SIZE)
        KEXPECT_FALSE(t, buddy.is_free(page));
}

// ---------------------------------------------------------------------------------------------
// spinlock: interrupt state and lock ranks
// ---------------------------------------------------------------------------------------------

u8 held_rank() { return PerCpu::current().held_lock_rank; }

void test_locker_disables_and_restores_interrupts(ktest::Test& t)
{
    KASSERT_TRUE(t, arch::interrupts_enabled());
    Spinlock lock;
    {
        SpinlockLocker locker(lock);
        KEXPECT_FALSE(t, arch::interrupts_enabled());
        KEXPECT_TRUE(t, lock.is_locked());
    }
    KEXPECT_TRUE(t, arch::interrupts_enabled());
    KEXPECT_FALSE(t, lock.is_locked());
}

void test_locker_keeps_interrupts_off_when_they_were_off(ktest::Test& t)
{
    Spinlock lock;
    arch::disable_interrupts();
    {
        SpinlockLocker locker(lock);
        (void)0;
    }
    bool still_off = !arch::interrupts_enabled();
    arch::enable_interrupts();
    KEXPECT_TRUE(t, still_off);
}

void test_lock_returns_previous_flags(ktest::Test& t)
{
    Spinlock lock { LockRank::Timer };
    u64 flags = lock.lock();
    bool held = lock.is_locked();
    bool off = !arch::interrupts_enabled();
    lock.unlock(flags);
    KEXPECT_TRUE(t, flags & (1 << 9));
    KEXPECT_TRUE(t, held);
    KEXPECT_TRUE(t, off);
    KEXPECT_TRUE(t, arch::interrupts_enabled());
    KEXPECT_FALSE(t, lock.is_locked());
}

void test_ranks_nest_in_allowed_order(ktest::Test& t)
{
    u8 base = held_rank();
    KEXPECT_EQ(t, base, (u8)0);
    Spinlock heap { LockRank::Heap };
    Spinlock pages { LockRank::PageAllocator };
    Spinlock log { LockRank::Log };
    u8 in_heap = 0, in_pages = 0, in_log = 0, back_in_pages = 0, back_in_heap = 0;
    {
        SpinlockLocker outer(heap);
        in_heap = held_rank();
        {
            SpinlockLocker inner(pages);
            in_pages = held_rank();
            {
                SpinlockLocker innermost(log);
                in_log = held_rank();
            }
            back_in_pages = held_rank();
        }
        back_in_heap = held_rank();
    }
    KEXPECT_EQ(t, in_heap, (u8)LockRank::Heap);
    KEXPECT_EQ(t, in_pages, (u8)LockRank::PageAllocator);
    KEXPECT_EQ(t, in_log, (u8)LockRank::Log);
    KEXPECT_EQ(t, back_in_pages, (u8)LockRank::PageAllocator);
    KEXPECT_EQ(t, back_in_heap, (u8)LockRank::Heap);
    KEXPECT_EQ(t, held_rank(), base);
}

void test_unranked_lock_leaves_rank_alone(ktest::Test& t)
{
    Spinlock plain;
    Spinlock heap { LockRank::Heap };
    KEXPECT_EQ(t, (u8)plain.rank(), (u8)LockRank::None);
    KEXPECT_EQ(t, (u8)heap.rank(), (u8)LockRank::Heap);
    u8 base = held_rank();
    u8 in_plain = 0, in_both = 0, after_plain = 0;
    {
        SpinlockLocker a(heap);
        {
            SpinlockLocker b(plain);
            in_both = held_rank();
        }
        after_plain = held_rank();
    }
    {
        SpinlockLocker b(plain);
        in_plain = held_rank();
    }
    KEXPECT_EQ(t, in_both, (u8)LockRank::Heap);
    KEXPECT_EQ(t, after_plain, (u8)LockRank::Heap);
    KEXPECT_EQ(t, in_plain, base);
    KEXPECT_EQ(t, held_rank(), base);
}

void test_allocators_under_lower_ranked_lock(ktest::Test& t)
{
    // kmalloc takes Heap then PageAllocator; both rank above Timer, so it may run under it.
    Spinlock timer { LockRank::Timer };
    u8 base = held_rank();
    bool small_ok, large_ok, page_ok;
    u8 after_kmalloc, after_pages;
    {
        SpinlockLocker locker(timer);
        auto small = try_kmalloc(64);
        auto large = try_kmalloc(16 * KiB);
        after_kmalloc = held_rank();
        auto page = mm::allocate_pages(1);
        after_pages = held_rank();
        small_ok = !small.is_error();
        large_ok = !large.is_error();
        page_ok = !page.is_error();
        if (small_ok)
            kfree(small.value());
        if (large_ok)
            kfree(large.value());
        if (page_ok)
            mm::free_pages(page.value(), 1);
    }
    KEXPECT_TRUE(t, small_ok);
    KEXPECT_TRUE(t, large_ok);
    KEXPECT_TRUE(t, page_ok);
    KEXPECT_EQ(t, after_kmalloc, (u8)LockRank::Timer);
    KEXPECT_EQ(t, after_pages, (u8)LockRank::Timer);
    KEXPECT_EQ(t, held_rank(), base);
}

void test_rank_restored_after_allocator_calls(ktest::Test& t)
{
    u8 base = held_rank();
    auto result = try_kmalloc(32);
    KEXPECT_EQ(t, held_rank(), base);
    KASSERT_TRUE(t, !result.is_error());
    kfree(result.value());
    KEXPECT_EQ(t, held_rank(), base);
    // The error paths release their locks too.
    KEXPECT_TRUE(t, try_kmalloc(0).is_error());
    KEXPECT_TRUE(t, mm::allocate_pages(MAX_ORDER + 1).is_error());
    (void)mm::page_stats();
    (void)kheap::stats();
    KEXPECT_EQ(t, held_rank(), base);
    KEXPECT_TRUE(t, arch::interrupts_enabled());
}

void test_ranks_are_ordered(ktest::Test& t)
{
    // The order the allocators nest in, as the header documents it.
    KEXPECT_TRUE(t, (u8)LockRank::Timer < (u8)LockRank::MemoryManager);
    KEXPECT_TRUE(t, (u8)LockRank::MemoryManager < (u8)LockRank::Heap);
    KEXPECT_TRUE(t, (u8)LockRank::Heap < (u8)LockRank::PageAllocator);
    KEXPECT_TRUE(t, (u8)LockRank::PageAllocator < (u8)LockRank::Log);
}

} // namespace

KTEST_SUITE(buddy,
    KTEST_CASE(test_every_order_naturally_aligned),
    KTEST_CASE(test_free_restores_page_count),
    KTEST_CASE(test_blocks_are_usable_memory),
    KTEST_CASE(test_allocations_never_overlap),
    KTEST_CASE(test_order_above_max_is_einval),
    KTEST_CASE(test_statistics_track_calls),
    KTEST_CASE(test_statistics_are_consistent),
    KTEST_CASE(test_kernel_image_frames_reserved),
    KTEST_CASE(test_free_page_frame_is_free),
    KTEST_CASE(test_frame_for_outside_span_is_null),
    KTEST_CASE(test_free_scrubs_page_tags),
    KTEST_CASE(test_helpers_order_for_pages),
    KTEST_CASE(test_private_starts_as_one_block),
    KTEST_CASE(test_private_split_leaves_one_block_per_order),
    KTEST_CASE(test_private_exhaust_every_order),
    KTEST_CASE(test_private_enomem_recovers),
    KTEST_CASE(test_private_invalid_requests),
    KTEST_CASE(test_private_allocate_pages_rounds_up),
    KTEST_CASE(test_private_coalescing_in_every_free_order),
    KTEST_CASE(test_private_random_workload_consistent),
    KTEST_CASE(test_private_pages_are_distinct_memory),
    KTEST_CASE(test_private_partial_range_carving),
    KTEST_CASE(test_private_ranges_rounded_and_clipped));

KTEST_SUITE(slab,
    KTEST_CASE(test_slab_geometry_for_odd_shapes),
    KTEST_CASE(test_slab_objects_aligned_distinct_writable),
    KTEST_CASE(test_slab_stats_exact),
    KTEST_CASE(test_slab_empty_slabs_released),
    KTEST_CASE(test_slab_destroy_returns_every_page),
    KTEST_CASE(test_slab_pages_tagged_with_cache),
    KTEST_CASE(test_slab_reuses_freed_objects),
    KTEST_CASE(test_slab_free_null_is_noop),
    KTEST_CASE(test_slab_provider_failure_is_enomem),
    KTEST_CASE(test_slab_many_small_objects_random_free),
    KTEST_CASE(test_slab_large_objects));

KTEST_SUITE(kmalloc,
    KTEST_CASE(test_kmalloc_zero_is_einval),
    KTEST_CASE(test_kmalloc_impossible_sizes_are_enomem),
    KTEST_CASE(test_kmalloc_every_size_class),
    KTEST_CASE(test_kmalloc_power_of_two_classes_naturally_aligned),
    KTEST_CASE(test_kmalloc_class_boundaries),
    KTEST_CASE(test_kmalloc_large_uses_pages_directly),
    KTEST_CASE(test_kzalloc_zeroes),
    KTEST_CASE(test_kfree_null_is_noop),
    KTEST_CASE(test_kmalloc_bytes_in_use_counts_class_size),
    KTEST_CASE(test_kmalloc_random_loop_returns_to_baseline),
    KTEST_CASE(test_heap_shrink_releases_empty_slabs),
    KTEST_CASE(test_caller_table_counts_this_function),
    KTEST_CASE(test_nothrow_new),
    KTEST_CASE(test_nothrow_new_failure_is_null),
    KTEST_CASE(test_kmalloc_with_interrupts_disabled),
    KTEST_CASE(test_kmalloc_restores_enabled_interrupts),
    KTEST_CASE(test_c_abi_kmalloc_null_on_failure),
    KTEST_CASE(test_kmalloc_distinct_blocks));

KTEST_SUITE(bump,
    KTEST_CASE(test_bump_starts_empty),
    KTEST_CASE(test_bump_alignment_honoured),
    KTEST_CASE(test_bump_used_remaining_accounting),
    KTEST_CASE(test_bump_exhaustion_is_enomem_and_changes_nothing),
    KTEST_CASE(test_bump_zero_size_and_bad_alignment_einval),
    KTEST_CASE(test_bump_freeze_is_eperm),
    KTEST_CASE(test_bump_overflow_rejected),
    KTEST_CASE(test_bump_memory_usable_and_disjoint),
    KTEST_CASE(test_bump_contains_and_empty_range),
    KTEST_CASE(test_kernel_bump_region_reserved));

KTEST_SUITE(spinlock,
    KTEST_CASE(test_locker_disables_and_restores_interrupts),
    KTEST_CASE(test_locker_keeps_interrupts_off_when_they_were_off),
    KTEST_CASE(test_lock_returns_previous_flags),
    KTEST_CASE(test_ranks_nest_in_allowed_order),
    KTEST_CASE(test_unranked_lock_leaves_rank_alone),
    KTEST_CASE(test_allocators_under_lower_ranked_lock),
    KTEST_CASE(test_rank_restored_after_allocator_calls),
    KTEST_CASE(test_ranks_are_ordered));
