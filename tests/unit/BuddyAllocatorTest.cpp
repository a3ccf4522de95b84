// Host tests for kernel/lib/mm/BuddyAllocator. Addresses are made up: nothing is dereferenced.
#include <lib/mm/BuddyAllocator.h>
#include <support/Addresses.h>
#include <algorithm>
#include <gtest/gtest.h>
#include <map>
#include <memory>
#include <random>
#include <vector>

namespace {

constexpr u64 kMaxBlock = PAGE_SIZE << BuddyAllocator::MAX_ORDER; // 4 MiB
constexpr u64 kMaxPages = 1ull << BuddyAllocator::MAX_ORDER;

// Owns a frame array and a buddy allocator over [base, base + pages * PAGE_SIZE).
struct Arena {
    Arena(PhysAddr base, u64 pages)
        : frames(pages)
        , buddy(std::make_unique<BuddyAllocator>(base, Span<PageFrame>(frames.data(), frames.size())))
    {
    }
    std::vector<PageFrame> frames;
    std::unique_ptr<BuddyAllocator> buddy;
};

int error_of(const ErrorOr<PhysAddr>& result) { return result.is_error() ? result.error().code() : 0; }

void expect_only_block(const BuddyAllocator& buddy, unsigned order, u64 count)
{
    auto stats = buddy.stats();
    for (unsigned o = 0; o <= BuddyAllocator::MAX_ORDER; ++o)
        EXPECT_EQ(stats.free_blocks_per_order[o], o == order ? count : 0u) << "order " << o;
}

}

TEST(BuddyAllocator, AllPagesStartReserved)
{
    Arena arena(PhysAddr(16 * MiB), 1024);
    auto stats = arena.buddy->stats();
    EXPECT_EQ(stats.total_pages, 0u);
    EXPECT_EQ(stats.free_pages, 0u);
    EXPECT_EQ(stats.reserved_pages, 1024u);
    EXPECT_TRUE(arena.buddy->frame_for(PhysAddr(16 * MiB))->has(PageFrame::Reserved));
    EXPECT_EQ(error_of(arena.buddy->allocate(0)), ENOMEM);
    EXPECT_FALSE(arena.buddy->is_free(PhysAddr(16 * MiB)));
}

TEST(BuddyAllocator, AlignedRangeBecomesOneMaxOrderBlock)
{
    Arena arena(PhysAddr(16 * MiB), kMaxPages);
    arena.buddy->add_free_range(PhysAddr(16 * MiB), PhysAddr(16 * MiB + kMaxBlock));
    expect_only_block(*arena.buddy, BuddyAllocator::MAX_ORDER, 1);
    EXPECT_EQ(arena.buddy->stats().free_pages, kMaxPages);
    EXPECT_EQ(arena.buddy->stats().total_pages, kMaxPages);
    EXPECT_EQ(arena.buddy->stats().reserved_pages, 0u);
}

TEST(BuddyAllocator, LargeRangeBecomesManyMaxOrderBlocks)
{
    Arena arena(0_pa, 16 * kMaxPages);
    arena.buddy->add_free_range(0_pa, PhysAddr(64 * MiB));
    expect_only_block(*arena.buddy, BuddyAllocator::MAX_ORDER, 16);
    for (int i = 0; i < 16; ++i)
        EXPECT_TRUE(is_aligned(MUST(arena.buddy->allocate(BuddyAllocator::MAX_ORDER)), kMaxBlock));
    EXPECT_EQ(error_of(arena.buddy->allocate(0)), ENOMEM);
}

TEST(BuddyAllocator, UnalignedStartIsCarvedIntoAscendingBlocks)
{
    Arena arena(PhysAddr(16 * MiB), kMaxPages);
    arena.buddy->add_free_range(PhysAddr(16 * MiB + PAGE_SIZE), PhysAddr(16 * MiB + kMaxBlock));
    auto stats = arena.buddy->stats();
    // 1 + 2 + 4 + ... + 512 = 1023 pages, one block of each order below the maximum.
    for (unsigned o = 0; o < BuddyAllocator::MAX_ORDER; ++o)
        EXPECT_EQ(stats.free_blocks_per_order[o], 1u) << o;
    EXPECT_EQ(stats.free_blocks_per_order[BuddyAllocator::MAX_ORDER], 0u);
    EXPECT_EQ(stats.free_pages, kMaxPages - 1);
    EXPECT_EQ(arena.buddy->check_consistency(), kMaxPages - 1);
}

TEST(BuddyAllocator, AddFreeRangeAlignsInwardToPages)
{
    Arena arena(0_pa, 16);
    arena.buddy->add_free_range(100_pa, PhysAddr(3 * PAGE_SIZE + 5));
    EXPECT_EQ(arena.buddy->stats().free_pages, 2u);
    EXPECT_FALSE(arena.buddy->is_free(0_pa));
    EXPECT_TRUE(arena.buddy->is_free(PhysAddr(PAGE_SIZE)));
    EXPECT_TRUE(arena.buddy->is_free(PhysAddr(2 * PAGE_SIZE + 123)));
    EXPECT_FALSE(arena.buddy->is_free(PhysAddr(3 * PAGE_SIZE)));
}

TEST(BuddyAllocator, AddFreeRangeSmallerThanAPageIsIgnored)
{
    Arena arena(0_pa, 16);
    arena.buddy->add_free_range(PhysAddr(PAGE_SIZE + 1), PhysAddr(2 * PAGE_SIZE + 100));
    arena.buddy->add_free_range(PhysAddr(5 * PAGE_SIZE), PhysAddr(5 * PAGE_SIZE));
    arena.buddy->add_free_range(PhysAddr(7 * PAGE_SIZE), PhysAddr(6 * PAGE_SIZE));
    EXPECT_EQ(arena.buddy->stats().free_pages, 0u);
}

TEST(BuddyAllocator, AddFreeRangeIsClippedToTheFrameSpan)
{
    Arena arena(PhysAddr(1 * MiB), 64);
    arena.buddy->add_free_range(0_pa, PhysAddr(100 * MiB));
    EXPECT_EQ(arena.buddy->stats().free_pages, 64u);
    EXPECT_EQ(arena.buddy->stats().total_pages, 64u);
    arena.buddy->check_consistency();
}

TEST(BuddyAllocator, AdjacentRangesCoalesceAcrossCalls)
{
    Arena arena(0_pa, kMaxPages);
    arena.buddy->add_free_range(PhysAddr(kMaxBlock / 2), PhysAddr(kMaxBlock));
    arena.buddy->add_free_range(0_pa, PhysAddr(kMaxBlock / 2));
    expect_only_block(*arena.buddy, BuddyAllocator::MAX_ORDER, 1);
}

TEST(BuddyAllocator, ManySmallRangesCoalesceIntoOneBlock)
{
    Arena arena(0_pa, kMaxPages);
    // Odd pages first, then even pages: every even page completes a pair and merging cascades.
    for (u64 page = 1; page < kMaxPages; page += 2)
        arena.buddy->add_free_range(PhysAddr(page * PAGE_SIZE), PhysAddr((page + 1) * PAGE_SIZE));
    EXPECT_EQ(arena.buddy->stats().free_blocks_per_order[0], kMaxPages / 2);
    for (u64 page = 0; page < kMaxPages; page += 2)
        arena.buddy->add_free_range(PhysAddr(page * PAGE_SIZE), PhysAddr((page + 1) * PAGE_SIZE));
    expect_only_block(*arena.buddy, BuddyAllocator::MAX_ORDER, 1);
}

TEST(BuddyAllocator, ReservedHoleStopsCoalescing)
{
    Arena arena(0_pa, kMaxPages);
    arena.buddy->add_free_range(0_pa, PhysAddr(kMaxBlock));
    PhysAddr hole = MUST(arena.buddy->allocate(0));
    // While the hole is held, no order-10 block can exist.
    EXPECT_EQ(arena.buddy->stats().free_blocks_per_order[BuddyAllocator::MAX_ORDER], 0u);
    EXPECT_EQ(error_of(arena.buddy->allocate(BuddyAllocator::MAX_ORDER)), ENOMEM);
    arena.buddy->free(hole, 0);
    expect_only_block(*arena.buddy, BuddyAllocator::MAX_ORDER, 1);
}

TEST(BuddyAllocator, BuddyOutsideTheSpanIsNotMerged)
{
    // The span's first page is the upper buddy of a page below the base.
    Arena arena(PhysAddr(PAGE_SIZE), 3);
    arena.buddy->add_free_range(PhysAddr(PAGE_SIZE), PhysAddr(4 * PAGE_SIZE));
    auto stats = arena.buddy->stats();
    EXPECT_EQ(stats.free_blocks_per_order[0], 1u);
    EXPECT_EQ(stats.free_blocks_per_order[1], 1u);
    arena.buddy->check_consistency();
}

TEST(BuddyAllocatorRangeDeathTest, AddingAPageTwiceIsABug)
{
    Arena arena(0_pa, 16);
    arena.buddy->add_free_range(0_pa, PhysAddr(8 * PAGE_SIZE));
    EXPECT_DEATH(arena.buddy->add_free_range(PhysAddr(4 * PAGE_SIZE), PhysAddr(12 * PAGE_SIZE)), "VERIFY");
}

TEST(BuddyAllocator, AllocateSplitsDownToTheRequestedOrder)
{
    Arena arena(0_pa, kMaxPages);
    arena.buddy->add_free_range(0_pa, PhysAddr(kMaxBlock));
    EXPECT_EQ(MUST(arena.buddy->allocate(0)), 0_pa);
    auto stats = arena.buddy->stats();
    for (unsigned o = 0; o < BuddyAllocator::MAX_ORDER; ++o)
        EXPECT_EQ(stats.free_blocks_per_order[o], 1u) << o;
    EXPECT_EQ(stats.free_pages, kMaxPages - 1);
    EXPECT_EQ(stats.used_pages, 1u);
    arena.buddy->check_consistency();
}

TEST(BuddyAllocator, EveryOrderIsNaturallyAligned)
{
    Arena arena(0_pa, 4 * kMaxPages);
    arena.buddy->add_free_range(PhysAddr(PAGE_SIZE * 3), PhysAddr(16 * MiB));
    for (unsigned order = 0; order <= BuddyAllocator::MAX_ORDER; ++order) {
        PhysAddr block = MUST(arena.buddy->allocate(order));
        EXPECT_TRUE(is_aligned(block, PAGE_SIZE << order)) << "order " << order;
        EXPECT_GE(block, PhysAddr(PAGE_SIZE * 3));
        EXPECT_LE(block + (PAGE_SIZE << order), PhysAddr(16 * MiB));
    }
    arena.buddy->check_consistency();
}

TEST(BuddyAllocator, AllocateRejectsOrdersAboveMax)
{
    Arena arena(0_pa, kMaxPages);
    arena.buddy->add_free_range(0_pa, PhysAddr(kMaxBlock));
    EXPECT_EQ(error_of(arena.buddy->allocate(BuddyAllocator::MAX_ORDER + 1)), EINVAL);
    EXPECT_EQ(error_of(arena.buddy->allocate(100)), EINVAL);
    EXPECT_EQ(arena.buddy->stats().failed_calls, 2u);
    EXPECT_EQ(arena.buddy->stats().free_pages, kMaxPages);
}

TEST(BuddyAllocator, ExhaustOrderZeroThenEnomem)
{
    Arena arena(0_pa, 256);
    arena.buddy->add_free_range(0_pa, PhysAddr(256 * PAGE_SIZE));
    std::vector<PhysAddr> pages;
    for (int i = 0; i < 256; ++i)
        pages.push_back(MUST(arena.buddy->allocate(0)));
    std::sort(pages.begin(), pages.end());
    EXPECT_EQ(std::unique(pages.begin(), pages.end()), pages.end());
    EXPECT_EQ(error_of(arena.buddy->allocate(0)), ENOMEM);
    EXPECT_EQ(arena.buddy->stats().free_pages, 0u);
    EXPECT_EQ(arena.buddy->stats().used_pages, 256u);
}

TEST(BuddyAllocator, ExhaustionFailureCountsAndRecovers)
{
    Arena arena(0_pa, 4);
    arena.buddy->add_free_range(0_pa, PhysAddr(4 * PAGE_SIZE));
    PhysAddr block = MUST(arena.buddy->allocate(2));
    EXPECT_EQ(error_of(arena.buddy->allocate(0)), ENOMEM);
    EXPECT_EQ(arena.buddy->stats().failed_calls, 1u);
    arena.buddy->free(block, 2);
    EXPECT_EQ(MUST(arena.buddy->allocate(0)), 0_pa);
}

TEST(BuddyAllocator, FreeInRandomOrderCoalescesBackToOneBlock)
{
    Arena arena(0_pa, kMaxPages);
    arena.buddy->add_free_range(0_pa, PhysAddr(kMaxBlock));
    std::vector<PhysAddr> pages;
    for (u64 i = 0; i < kMaxPages; ++i)
        pages.push_back(MUST(arena.buddy->allocate(0)));
    std::mt19937 rng(42);
    std::shuffle(pages.begin(), pages.end(), rng);
    for (auto page : pages)
        arena.buddy->free(page, 0);
    expect_only_block(*arena.buddy, BuddyAllocator::MAX_ORDER, 1);
    arena.buddy->check_consistency();
}

TEST(BuddyAllocator, FreeInReverseOrderCoalescesBackToOneBlock)
{
    Arena arena(0_pa, kMaxPages);
    arena.buddy->add_free_range(0_pa, PhysAddr(kMaxBlock));
    std::vector<PhysAddr> blocks;
    for (int i = 0; i < 64; ++i)
        blocks.push_back(MUST(arena.buddy->allocate(4)));
    for (auto it = blocks.rbegin(); it != blocks.rend(); ++it)
        arena.buddy->free(PhysAddr(*it), 4);
    expect_only_block(*arena.buddy, BuddyAllocator::MAX_ORDER, 1);
}

TEST(BuddyAllocator, MixedOrdersCoalesceBackToOneBlock)
{
    Arena arena(0_pa, kMaxPages);
    arena.buddy->add_free_range(0_pa, PhysAddr(kMaxBlock));
    std::vector<std::pair<PhysAddr, unsigned>> blocks;
    unsigned orders[] = { 0, 3, 1, 5, 0, 2, 7, 4 };
    for (int round = 0; round < 2; ++round)
        for (unsigned order : orders)
            blocks.push_back({ MUST(arena.buddy->allocate(order)), order });
    std::mt19937 rng(7);
    std::shuffle(blocks.begin(), blocks.end(), rng);
    for (auto [address, order] : blocks)
        arena.buddy->free(address, order);
    expect_only_block(*arena.buddy, BuddyAllocator::MAX_ORDER, 1);
}

TEST(BuddyAllocator, CheckerboardFragmentationBlocksLargerOrders)
{
    Arena arena(0_pa, 64);
    arena.buddy->add_free_range(0_pa, PhysAddr(64 * PAGE_SIZE));
    std::vector<PhysAddr> pages;
    for (int i = 0; i < 64; ++i)
        pages.push_back(MUST(arena.buddy->allocate(0)));
    std::sort(pages.begin(), pages.end());
    for (usize i = 0; i < pages.size(); i += 2)
        arena.buddy->free(PhysAddr(pages[i]), 0);
    // Half of memory is free, but no two free pages are buddies.
    EXPECT_EQ(arena.buddy->stats().free_pages, 32u);
    EXPECT_EQ(arena.buddy->stats().free_blocks_per_order[0], 32u);
    EXPECT_EQ(error_of(arena.buddy->allocate(1)), ENOMEM);
    // Freeing the odd pages heals it completely.
    for (usize i = 1; i < pages.size(); i += 2)
        arena.buddy->free(PhysAddr(pages[i]), 0);
    expect_only_block(*arena.buddy, 6, 1);
}

TEST(BuddyAllocator, LargestFreeBlockLimitsAllocationNotTotal)
{
    Arena arena(0_pa, 32);
    arena.buddy->add_free_range(0_pa, PhysAddr(32 * PAGE_SIZE));
    PhysAddr a = MUST(arena.buddy->allocate(3)); // pages 0..7
    PhysAddr b = MUST(arena.buddy->allocate(3)); // 8..15
    PhysAddr c = MUST(arena.buddy->allocate(3)); // 16..23
    PhysAddr d = MUST(arena.buddy->allocate(3)); // 24..31
    arena.buddy->free(a, 3);
    arena.buddy->free(c, 3);
    EXPECT_EQ(arena.buddy->stats().free_pages, 16u);
    EXPECT_EQ(error_of(arena.buddy->allocate(4)), ENOMEM);
    arena.buddy->free(b, 3);
    EXPECT_EQ(MUST(arena.buddy->allocate(4)), 0_pa);
    (void)d;
}

TEST(BuddyAllocator, FreedBlockIsReusedFirst)
{
    Arena arena(0_pa, kMaxPages);
    arena.buddy->add_free_range(0_pa, PhysAddr(kMaxBlock));
    MUST(arena.buddy->allocate(0));
    PhysAddr b = MUST(arena.buddy->allocate(0));
    MUST(arena.buddy->allocate(0));
    arena.buddy->free(b, 0);
    EXPECT_EQ(MUST(arena.buddy->allocate(0)), b);
}

TEST(BuddyAllocator, BaseNotAlignedToTheMaxBlock)
{
    // A span starting at 12 KiB: blocks still align to absolute physical addresses.
    Arena arena(PhysAddr(3 * PAGE_SIZE), kMaxPages);
    arena.buddy->add_free_range(PhysAddr(3 * PAGE_SIZE), PhysAddr(3 * PAGE_SIZE + kMaxBlock));
    EXPECT_EQ(arena.buddy->stats().free_pages, kMaxPages);
    EXPECT_EQ(arena.buddy->stats().free_blocks_per_order[BuddyAllocator::MAX_ORDER], 0u);
    std::vector<std::pair<PhysAddr, unsigned>> blocks;
    for (unsigned order = 0; order <= 9; ++order) {
        auto result = arena.buddy->allocate(order);
        ASSERT_FALSE(result.is_error()) << order;
        EXPECT_TRUE(is_aligned(result.value(), PAGE_SIZE << order));
        blocks.push_back({ result.value(), order });
    }
    for (auto [address, order] : blocks)
        arena.buddy->free(address, order);
    EXPECT_EQ(arena.buddy->check_consistency(), kMaxPages);
}

TEST(BuddyAllocator, AllocatedFrameMetadata)
{
    Arena arena(0_pa, 64);
    arena.buddy->add_free_range(0_pa, PhysAddr(64 * PAGE_SIZE));
    PhysAddr block = MUST(arena.buddy->allocate(2));
    auto* frame = arena.buddy->frame_for(block);
    ASSERT_NE(frame, nullptr);
    EXPECT_TRUE(frame->has(PageFrame::Allocated));
    EXPECT_FALSE(frame->has(PageFrame::Free));
    EXPECT_EQ(frame->order, 2);
    EXPECT_EQ(frame->refcount, 1u);
    EXPECT_EQ(arena.buddy->address_of(*frame), block);
    arena.buddy->free(block, 2);
    EXPECT_FALSE(frame->has(PageFrame::Allocated));
    EXPECT_EQ(frame->refcount, 0u);
}

TEST(BuddyAllocator, FreeScrubsOwnerTagsOnEveryPage)
{
    Arena arena(0_pa, 64);
    arena.buddy->add_free_range(0_pa, PhysAddr(64 * PAGE_SIZE));
    PhysAddr block = MUST(arena.buddy->allocate(3));
    int cookie;
    for (u64 i = 0; i < 8; ++i) {
        auto* frame = arena.buddy->frame_for(PhysAddr(block + i * PAGE_SIZE));
        frame->owner = &cookie;
        frame->set(PageFrame::Slab);
    }
    arena.buddy->free(block, 3);
    for (u64 i = 0; i < 8; ++i) {
        auto* frame = arena.buddy->frame_for(PhysAddr(block + i * PAGE_SIZE));
        EXPECT_EQ(frame->owner, nullptr);
        EXPECT_FALSE(frame->has(PageFrame::Slab));
    }
    arena.buddy->check_consistency();
}

TEST(BuddyAllocator, IsFreeTracksEveryPageOfABlock)
{
    Arena arena(0_pa, 16);
    arena.buddy->add_free_range(0_pa, PhysAddr(16 * PAGE_SIZE));
    PhysAddr block = MUST(arena.buddy->allocate(2)); // pages 0..3
    for (u64 page = 0; page < 16; ++page)
        EXPECT_EQ(arena.buddy->is_free(PhysAddr(page * PAGE_SIZE)), page >= 4) << page;
    arena.buddy->free(block, 2);
    for (u64 page = 0; page < 16; ++page)
        EXPECT_TRUE(arena.buddy->is_free(PhysAddr(page * PAGE_SIZE + 17))) << page;
    EXPECT_FALSE(arena.buddy->is_free(PhysAddr(16 * PAGE_SIZE)));
}

TEST(BuddyAllocator, FrameForOutsideTheSpanIsNull)
{
    Arena arena(PhysAddr(1 * MiB), 8);
    EXPECT_EQ(arena.buddy->frame_for(0_pa), nullptr);
    EXPECT_EQ(arena.buddy->frame_for(PhysAddr(1 * MiB - 1)), nullptr);
    EXPECT_NE(arena.buddy->frame_for(PhysAddr(1 * MiB)), nullptr);
    EXPECT_EQ(arena.buddy->frame_for(PhysAddr(1 * MiB + 8 * PAGE_SIZE - 1)), &arena.frames[7]);
    EXPECT_EQ(arena.buddy->frame_for(PhysAddr(1 * MiB + 8 * PAGE_SIZE)), nullptr);
    EXPECT_EQ(arena.buddy->frame_for(PhysAddr(~0ull)), nullptr);
    EXPECT_EQ(arena.buddy->base(), PhysAddr(1 * MiB));
    EXPECT_EQ(arena.buddy->limit(), PhysAddr(1 * MiB + 8 * PAGE_SIZE));
    EXPECT_EQ(arena.buddy->page_count(), 8u);
}

TEST(BuddyAllocator, EmptyFrameSpan)
{
    Arena arena(0_pa, 0);
    arena.buddy->add_free_range(0_pa, PhysAddr(1 * MiB));
    EXPECT_EQ(arena.buddy->stats().total_pages, 0u);
    EXPECT_EQ(error_of(arena.buddy->allocate(0)), ENOMEM);
    EXPECT_EQ(arena.buddy->frame_for(0_pa), nullptr);
}

TEST(BuddyAllocator, AllocatePagesRoundsUpToAnOrder)
{
    Arena arena(0_pa, 4 * kMaxPages);
    arena.buddy->add_free_range(0_pa, PhysAddr(16 * MiB));
    PhysAddr three = MUST(arena.buddy->allocate_pages(3));
    EXPECT_TRUE(is_aligned(three, 4 * PAGE_SIZE));
    EXPECT_EQ(arena.buddy->frame_for(three)->order, 2);
    PhysAddr one = MUST(arena.buddy->allocate_pages(1));
    EXPECT_EQ(arena.buddy->frame_for(one)->order, 0);
    PhysAddr full = MUST(arena.buddy->allocate_pages(kMaxPages));
    EXPECT_EQ(arena.buddy->frame_for(full)->order, BuddyAllocator::MAX_ORDER);
    EXPECT_EQ(arena.buddy->stats().used_pages, 4u + 1 + kMaxPages);
    arena.buddy->free_pages(three, 3);
    arena.buddy->free_pages(one, 1);
    arena.buddy->free_pages(full, kMaxPages);
    expect_only_block(*arena.buddy, BuddyAllocator::MAX_ORDER, 4);
}

TEST(BuddyAllocator, AllocatePagesRejectsZeroAndTooMany)
{
    Arena arena(0_pa, 4 * kMaxPages);
    arena.buddy->add_free_range(0_pa, PhysAddr(16 * MiB));
    EXPECT_EQ(error_of(arena.buddy->allocate_pages(0)), EINVAL);
    EXPECT_EQ(error_of(arena.buddy->allocate_pages(kMaxPages + 1)), ENOMEM);
    EXPECT_EQ(arena.buddy->stats().failed_calls, 2u);
    EXPECT_EQ(arena.buddy->stats().alloc_calls, 2u);
}

TEST(BuddyAllocator, OrderForPages)
{
    EXPECT_EQ(BuddyAllocator::order_for_pages(1), 0u);
    EXPECT_EQ(BuddyAllocator::order_for_pages(2), 1u);
    EXPECT_EQ(BuddyAllocator::order_for_pages(3), 2u);
    EXPECT_EQ(BuddyAllocator::order_for_pages(4), 2u);
    EXPECT_EQ(BuddyAllocator::order_for_pages(5), 3u);
    EXPECT_EQ(BuddyAllocator::order_for_pages(1024), 10u);
    EXPECT_EQ(BuddyAllocator::order_for_pages(1025), 11u);
    EXPECT_EQ(BuddyAllocator::order_for_pages(1ull << 40), 40u);
}

TEST(BuddyAllocator, MetadataBytesIsWholePages)
{
    EXPECT_EQ(BuddyAllocator::metadata_bytes(0), 0u);
    EXPECT_EQ(BuddyAllocator::metadata_bytes(1), PAGE_SIZE);
    EXPECT_EQ(BuddyAllocator::metadata_bytes(PAGE_SIZE / sizeof(PageFrame)), PAGE_SIZE);
    EXPECT_EQ(BuddyAllocator::metadata_bytes(PAGE_SIZE / sizeof(PageFrame) + 1), 2 * PAGE_SIZE);
    // 4 GiB of RAM is a million pages; the frame array must stay around 1% of it.
    u64 pages = 4 * GiB / PAGE_SIZE;
    EXPECT_EQ(BuddyAllocator::metadata_bytes(pages), align_up(pages * sizeof(PageFrame), PAGE_SIZE));
    EXPECT_LE(BuddyAllocator::metadata_bytes(pages), 4 * GiB / 80);
}

TEST(BuddyAllocator, PageFrameIsSmall)
{
    EXPECT_LE(sizeof(PageFrame), 48u);
    PageFrame frame;
    EXPECT_TRUE(frame.has(PageFrame::Reserved));
    EXPECT_EQ(frame.refcount, 0u);
    EXPECT_EQ(frame.owner, nullptr);
    EXPECT_FALSE(frame.list_node.is_linked());
}

TEST(BuddyAllocator, StatsAccountingAfterLoops)
{
    Arena arena(0_pa, kMaxPages);
    arena.buddy->add_free_range(0_pa, PhysAddr(kMaxBlock));
    std::vector<PhysAddr> blocks;
    for (int round = 0; round < 10; ++round) {
        for (int i = 0; i < 50; ++i)
            blocks.push_back(MUST(arena.buddy->allocate(1)));
        for (int i = 0; i < 25; ++i) {
            arena.buddy->free(PhysAddr(blocks.back()), 1);
            blocks.pop_back();
        }
    }
    auto stats = arena.buddy->stats();
    EXPECT_EQ(stats.alloc_calls, 500u);
    EXPECT_EQ(stats.free_calls, 250u);
    EXPECT_EQ(stats.failed_calls, 0u);
    EXPECT_EQ(stats.used_pages, 250u * 2);
    EXPECT_EQ(stats.free_pages + stats.used_pages, stats.total_pages);
    u64 from_blocks = 0;
    for (unsigned o = 0; o <= BuddyAllocator::MAX_ORDER; ++o)
        from_blocks += stats.free_blocks_per_order[o] << o;
    EXPECT_EQ(from_blocks, stats.free_pages);
    EXPECT_EQ(arena.buddy->check_consistency(), stats.free_pages);
}

TEST(BuddyAllocator, RandomizedAgainstReferenceModel)
{
    // The model: which block owns each page. Every allocation must land on pages nobody owns, and
    // the allocator's free count must match the model after every step.
    constexpr u64 pages = 2 * kMaxPages;
    Arena arena(0_pa, pages);
    arena.buddy->add_free_range(PhysAddr(PAGE_SIZE), PhysAddr(pages * PAGE_SIZE - 5 * PAGE_SIZE));
    u64 usable = pages - 6;
    std::vector<int> owner(pages, -1);
    std::map<int, std::pair<PhysAddr, unsigned>> live;
    std::mt19937 rng(20240601);
    int next_id = 0;
    u64 used = 0;
    for (int step = 0; step < 20000; ++step) {
        bool do_alloc = live.empty() || rng() % 100 < 55;
        if (do_alloc) {
            // Small orders dominate, as in a kernel.
            unsigned order = rng() % 100 < 70 ? rng() % 3 : rng() % (BuddyAllocator::MAX_ORDER + 1);
            auto result = arena.buddy->allocate(order);
            if (result.is_error()) {
                ASSERT_EQ(result.error().code(), ENOMEM);
                continue;
            }
            PhysAddr block = result.value();
            ASSERT_TRUE(is_aligned(block, PAGE_SIZE << order));
            for (u64 i = 0; i < (1ull << order); ++i) {
                u64 page = block.value() / PAGE_SIZE + i;
                ASSERT_TRUE(page >= 1 && page < pages - 5);
                ASSERT_EQ(owner[page], -1) << "page " << page << " handed out twice";
                owner[page] = next_id;
            }
            live[next_id++] = { block, order };
            used += 1ull << order;
        } else {
            auto it = live.begin();
            std::advance(it, rng() % live.size());
            auto [block, order] = it->second;
            for (u64 i = 0; i < (1ull << order); ++i)
                owner[block.value() / PAGE_SIZE + i] = -1;
            arena.buddy->free(block, order);
            used -= 1ull << order;
            live.erase(it);
        }
        ASSERT_EQ(arena.buddy->stats().used_pages, used);
        if (step % 1000 == 0)
            ASSERT_EQ(arena.buddy->check_consistency(), usable - used);
    }
    for (auto& [id, block] : live)
        arena.buddy->free(PhysAddr(block.first), block.second);
    EXPECT_EQ(arena.buddy->check_consistency(), usable);
    // Everything merged back: the same blocks as right after add_free_range().
    Arena fresh(0_pa, pages);
    fresh.buddy->add_free_range(PhysAddr(PAGE_SIZE), PhysAddr(pages * PAGE_SIZE - 5 * PAGE_SIZE));
    for (unsigned o = 0; o <= BuddyAllocator::MAX_ORDER; ++o)
        EXPECT_EQ(arena.buddy->stats().free_blocks_per_order[o], fresh.buddy->stats().free_blocks_per_order[o]) << o;
}

class BuddyAllocatorDeathTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        // Pages 0..3 stay reserved; 4..63 are usable.
        arena.buddy->add_free_range(PhysAddr(4 * PAGE_SIZE), PhysAddr(64 * PAGE_SIZE));
    }
    Arena arena { 0_pa, 64 };
};

TEST_F(BuddyAllocatorDeathTest, DoubleFree)
{
    PhysAddr page = MUST(arena.buddy->allocate(0));
    arena.buddy->free(page, 0);
    EXPECT_DEATH(arena.buddy->free(page, 0), "VERIFY");
}

TEST_F(BuddyAllocatorDeathTest, DoubleFreeAfterCoalescing)
{
    PhysAddr a = MUST(arena.buddy->allocate(2));
    arena.buddy->free(a, 2);
    // a's head is now interior to a larger free block.
    EXPECT_DEATH(arena.buddy->free(a, 2), "VERIFY");
}

TEST_F(BuddyAllocatorDeathTest, MisalignedFree)
{
    PhysAddr block = MUST(arena.buddy->allocate(2));
    EXPECT_DEATH(arena.buddy->free(PhysAddr(block + PAGE_SIZE), 2), "VERIFY");
    EXPECT_DEATH(arena.buddy->free(PhysAddr(block + 16), 0), "VERIFY");
}

TEST_F(BuddyAllocatorDeathTest, OutOfRangeFree)
{
    EXPECT_DEATH(arena.buddy->free(PhysAddr(64 * PAGE_SIZE), 0), "VERIFY");
    EXPECT_DEATH(arena.buddy->free(PhysAddr(1 * GiB), 0), "VERIFY");
    // In range at the start, but the block would run past the end.
    EXPECT_DEATH(arena.buddy->free(0_pa, 7), "VERIFY");
}

TEST_F(BuddyAllocatorDeathTest, WrongOrderFree)
{
    PhysAddr block = MUST(arena.buddy->allocate(2));
    EXPECT_DEATH(arena.buddy->free(block, 1), "VERIFY");
    EXPECT_DEATH(arena.buddy->free(block, 3), "VERIFY");
}

TEST_F(BuddyAllocatorDeathTest, FreeOfReservedPage)
{
    EXPECT_DEATH(arena.buddy->free(0_pa, 0), "VERIFY");
}

TEST_F(BuddyAllocatorDeathTest, FreeOfInteriorPage)
{
    PhysAddr block = MUST(arena.buddy->allocate(3));
    EXPECT_DEATH(arena.buddy->free(PhysAddr(block + PAGE_SIZE), 0), "VERIFY");
}

TEST_F(BuddyAllocatorDeathTest, FreeOfOrderAboveMax)
{
    EXPECT_DEATH(arena.buddy->free(0_pa, BuddyAllocator::MAX_ORDER + 1), "VERIFY");
}

TEST_F(BuddyAllocatorDeathTest, UnalignedBase)
{
    std::vector<PageFrame> frames(4);
    EXPECT_DEATH({ BuddyAllocator bad(123_pa, Span<PageFrame>(frames.data(), frames.size())); }, "VERIFY");
}
