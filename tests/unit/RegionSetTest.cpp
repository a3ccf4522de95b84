// Host tests for kernel/lib/RegionSet.
#include <lib/mm/RegionSet.h>
#include <gtest/gtest.h>
#include <random>
#include <vector>

namespace {

std::vector<PhysRange> ranges_of(const RegionSet& set)
{
    std::vector<PhysRange> out;
    for (auto& range : set)
        out.push_back(range);
    return out;
}

using R = std::vector<PhysRange>;

void expect_well_formed(const RegionSet& set)
{
    for (usize i = 0; i < set.count(); ++i) {
        EXPECT_LT(set[i].start, set[i].end);
        if (i > 0) {
            // Sorted, disjoint and never touching: touching ranges would have been merged.
            EXPECT_LT(set[i - 1].end, set[i].start);
        }
    }
}

}

TEST(RegionSet, StartsEmpty)
{
    RegionSet set;
    EXPECT_TRUE(set.is_empty());
    EXPECT_EQ(set.count(), 0u);
    EXPECT_EQ(set.total_bytes(), 0u);
    EXPECT_FALSE(set.contains(0));
    EXPECT_EQ(set.begin(), set.end());
}

TEST(RegionSet, AddSingleRange)
{
    RegionSet set;
    MUST(set.add(0x1000, 0x5000));
    EXPECT_EQ(ranges_of(set), (R { { 0x1000, 0x5000 } }));
    EXPECT_EQ(set.total_bytes(), 0x4000u);
}

TEST(RegionSet, AddEmptyRangeIsNoOp)
{
    RegionSet set;
    MUST(set.add(0x1000, 0x1000));
    EXPECT_TRUE(set.is_empty());
}

TEST(RegionSet, AddInvertedRangeIsInvalid)
{
    RegionSet set;
    auto result = set.add(0x2000, 0x1000);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), EINVAL);
    EXPECT_TRUE(set.is_empty());
}

TEST(RegionSet, AddKeepsRangesSorted)
{
    RegionSet set;
    MUST(set.add(0x9000, 0xa000));
    MUST(set.add(0x1000, 0x2000));
    MUST(set.add(0x5000, 0x6000));
    EXPECT_EQ(ranges_of(set), (R { { 0x1000, 0x2000 }, { 0x5000, 0x6000 }, { 0x9000, 0xa000 } }));
}

TEST(RegionSet, AddMergesAdjacentRanges)
{
    RegionSet set;
    MUST(set.add(0x1000, 0x2000));
    MUST(set.add(0x3000, 0x4000));
    MUST(set.add(0x2000, 0x3000));
    EXPECT_EQ(ranges_of(set), (R { { 0x1000, 0x4000 } }));
}

TEST(RegionSet, AddMergesOverlappingRanges)
{
    RegionSet set;
    MUST(set.add(0x1000, 0x3000));
    MUST(set.add(0x2000, 0x5000));
    EXPECT_EQ(ranges_of(set), (R { { 0x1000, 0x5000 } }));
    MUST(set.add(0x0, 0x1800));
    EXPECT_EQ(ranges_of(set), (R { { 0x0, 0x5000 } }));
}

TEST(RegionSet, AddSwallowsManyRanges)
{
    RegionSet set;
    for (u64 i = 0; i < 10; ++i)
        MUST(set.add(i * 0x10000, i * 0x10000 + 0x1000));
    EXPECT_EQ(set.count(), 10u);
    MUST(set.add(0x18000, 0x75000));
    EXPECT_EQ(ranges_of(set), (R { { 0x0, 0x1000 }, { 0x10000, 0x11000 }, { 0x18000, 0x75000 }, { 0x80000, 0x81000 }, { 0x90000, 0x91000 } }));
    expect_well_formed(set);
}

TEST(RegionSet, AddContainedRangeChangesNothing)
{
    RegionSet set;
    MUST(set.add(0x1000, 0x9000));
    MUST(set.add(0x2000, 0x3000));
    EXPECT_EQ(ranges_of(set), (R { { 0x1000, 0x9000 } }));
}

TEST(RegionSet, AddFailsWithEnospcWhenFull)
{
    RegionSet set;
    for (u64 i = 0; i < RegionSet::capacity; ++i)
        MUST(set.add(i * 0x2000, i * 0x2000 + 0x1000));
    EXPECT_EQ(set.count(), RegionSet::capacity);
    auto result = set.add(0x10000000, 0x10001000);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ENOSPC);
    EXPECT_EQ(set.count(), RegionSet::capacity);
    // Merging into existing ranges still works when full: it needs no new slot.
    MUST(set.add(0x1000, 0x2000));
    EXPECT_EQ(set.count(), RegionSet::capacity - 1);
}

TEST(RegionSet, SubtractSplitsARange)
{
    RegionSet set;
    MUST(set.add(0x0, 0x10000));
    MUST(set.subtract(0x4000, 0x6000));
    EXPECT_EQ(ranges_of(set), (R { { 0x0, 0x4000 }, { 0x6000, 0x10000 } }));
    EXPECT_EQ(set.total_bytes(), 0xe000u);
}

TEST(RegionSet, SubtractTrimsEdges)
{
    RegionSet set;
    MUST(set.add(0x1000, 0x9000));
    MUST(set.subtract(0x0, 0x2000));
    MUST(set.subtract(0x8000, 0xa000));
    EXPECT_EQ(ranges_of(set), (R { { 0x2000, 0x8000 } }));
}

TEST(RegionSet, SubtractRemovesCoveredRanges)
{
    RegionSet set;
    MUST(set.add(0x1000, 0x2000));
    MUST(set.add(0x3000, 0x4000));
    MUST(set.add(0x5000, 0x6000));
    MUST(set.subtract(0x800, 0x5800));
    EXPECT_EQ(ranges_of(set), (R { { 0x5800, 0x6000 } }));
}

TEST(RegionSet, SubtractAcrossSeveralRangesTrimsBothEnds)
{
    RegionSet set;
    MUST(set.add(0x0, 0x3000));
    MUST(set.add(0x4000, 0x5000));
    MUST(set.add(0x6000, 0x9000));
    MUST(set.subtract(0x2000, 0x7000));
    EXPECT_EQ(ranges_of(set), (R { { 0x0, 0x2000 }, { 0x7000, 0x9000 } }));
}

TEST(RegionSet, SubtractExactRangeRemovesIt)
{
    RegionSet set;
    MUST(set.add(0x1000, 0x2000));
    MUST(set.subtract(0x1000, 0x2000));
    EXPECT_TRUE(set.is_empty());
}

TEST(RegionSet, SubtractOutsideIsNoOp)
{
    RegionSet set;
    MUST(set.add(0x4000, 0x5000));
    MUST(set.subtract(0x0, 0x4000));
    MUST(set.subtract(0x5000, 0x9000));
    MUST(set.subtract(0x4800, 0x4800));
    EXPECT_EQ(ranges_of(set), (R { { 0x4000, 0x5000 } }));
}

TEST(RegionSet, SubtractInvertedIsInvalid)
{
    RegionSet set;
    MUST(set.add(0x0, 0x10000));
    auto result = set.subtract(0x5000, 0x4000);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), EINVAL);
    EXPECT_EQ(set.total_bytes(), 0x10000u);
}

TEST(RegionSet, SubtractSplitFailsWithEnospcWhenFullAndChangesNothing)
{
    RegionSet set;
    for (u64 i = 0; i < RegionSet::capacity; ++i)
        MUST(set.add(i * 0x10000, i * 0x10000 + 0x8000));
    u64 before = set.total_bytes();
    auto result = set.subtract(0x2000, 0x3000);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ENOSPC);
    EXPECT_EQ(set.total_bytes(), before);
    // Trimming needs no slot and still works.
    MUST(set.subtract(0x0, 0x1000));
    EXPECT_EQ(set.total_bytes(), before - 0x1000);
}

TEST(RegionSet, PageAlignInwardShrinksAndDrops)
{
    RegionSet set;
    MUST(set.add(0x1001, 0x3fff));
    MUST(set.add(0x5010, 0x5ff0));
    MUST(set.add(0x8000, 0xa000));
    set.page_align_inward();
    EXPECT_EQ(ranges_of(set), (R { { 0x2000, 0x3000 }, { 0x8000, 0xa000 } }));
}

TEST(RegionSet, PageAlignInwardAtTopOfAddressSpace)
{
    RegionSet set;
    MUST(set.add(~0ull - 0x800, ~0ull));
    set.page_align_inward();
    EXPECT_TRUE(set.is_empty());
}

TEST(RegionSet, ContainsAndIntersects)
{
    RegionSet set;
    MUST(set.add(0x1000, 0x2000));
    MUST(set.add(0x4000, 0x6000));
    EXPECT_TRUE(set.contains(0x1000));
    EXPECT_TRUE(set.contains(0x1fff));
    EXPECT_FALSE(set.contains(0x2000));
    EXPECT_FALSE(set.contains(0x3000));
    EXPECT_TRUE(set.contains_range(0x4000, 0x6000));
    EXPECT_FALSE(set.contains_range(0x1000, 0x5000));
    EXPECT_FALSE(set.contains_range(0x1000, 0x1000));
    EXPECT_TRUE(set.intersects(0x1800, 0x4800));
    EXPECT_TRUE(set.intersects(0x0, 0x1001));
    EXPECT_FALSE(set.intersects(0x2000, 0x4000));
    EXPECT_FALSE(set.intersects(0x0, 0x1000));
}

TEST(RegionSet, FindFitHonoursAlignmentAndMinimum)
{
    RegionSet set;
    MUST(set.add(0x1000, 0x3000));
    MUST(set.add(0x100000, 0x800000));
    EXPECT_EQ(MUST(set.find_fit(0x1000, PAGE_SIZE)), 0x1000u);
    EXPECT_EQ(MUST(set.find_fit(0x3000, PAGE_SIZE)), 0x100000u);
    EXPECT_EQ(MUST(set.find_fit(2 * MiB, 2 * MiB)), 2 * MiB);
    EXPECT_EQ(MUST(set.find_fit(0x1000, PAGE_SIZE, 0x200000)), 0x200000u);
    EXPECT_EQ(MUST(set.find_fit(0x1000, PAGE_SIZE, 0x2800)), 0x100000u);
    auto too_big = set.find_fit(8 * MiB, PAGE_SIZE);
    ASSERT_TRUE(too_big.is_error());
    EXPECT_EQ(too_big.error().code(), ENOMEM);
    EXPECT_TRUE(set.find_fit(0, PAGE_SIZE).is_error());
    EXPECT_TRUE(set.find_fit(16, 3).is_error());
}

TEST(RegionSet, BootMemoryMapScenario)
{
    // A typical PC map: low memory below the EBDA, a hole for the VGA/BIOS area, then RAM above
    // 1 MiB with an ACPI reclaim area carved out near the top.
    RegionSet usable;
    MUST(usable.add(0x0, 0x9fc00));
    MUST(usable.add(0x100000, 0x7fe0000));
    MUST(usable.add(0x100000000, 0x180000000));
    MUST(usable.subtract(0x0, 0x1000));                // the null page stays unmapped
    MUST(usable.subtract(0x100000, 0x400000));         // kernel image
    MUST(usable.subtract(0x600000, 0x640000));         // initrd module
    MUST(usable.subtract(0x7fd0000, 0x7fe0000));       // ACPI tables
    PhysAddr bump = MUST(usable.find_fit(4 * MiB, 2 * MiB, 0x100000));
    EXPECT_EQ(bump, 0x800000u);
    MUST(usable.subtract(bump, bump + 4 * MiB));
    usable.page_align_inward();
    expect_well_formed(usable);
    EXPECT_EQ(ranges_of(usable), (R { { 0x1000, 0x9f000 }, { 0x400000, 0x600000 }, { 0x640000, 0x800000 }, { 0xc00000, 0x7fd0000 }, { 0x100000000, 0x180000000 } }));
    for (auto& range : usable) {
        EXPECT_TRUE(is_aligned(range.start, PAGE_SIZE));
        EXPECT_TRUE(is_aligned(range.end, PAGE_SIZE));
    }
    EXPECT_FALSE(usable.intersects(0x100000, 0x400000));
}

TEST(RegionSet, RandomizedAgainstPageBitmapModel)
{
    // A model over 512 pages: add/subtract are set union/difference on page bits.
    std::mt19937 rng(1234);
    constexpr u64 pages = 512;
    std::vector<bool> model(pages, false);
    RegionSet set;
    for (int step = 0; step < 3000; ++step) {
        u64 a = rng() % pages, b = rng() % pages;
        if (a > b)
            std::swap(a, b);
        u64 len = (b - a) % 24;
        b = a + len;
        if (rng() % 3 == 0) {
            MUST(set.subtract(a * PAGE_SIZE, b * PAGE_SIZE));
            for (u64 i = a; i < b; ++i)
                model[i] = false;
        } else {
            auto result = set.add(a * PAGE_SIZE, b * PAGE_SIZE);
            if (result.is_error()) {
                EXPECT_EQ(result.error().code(), ENOSPC);
                continue;
            }
            for (u64 i = a; i < b; ++i)
                model[i] = true;
        }
        if (step % 100 == 0) {
            u64 expected = 0;
            for (u64 i = 0; i < pages; ++i) {
                ASSERT_EQ(set.contains(i * PAGE_SIZE), model[i]) << "page " << i << " step " << step;
                expected += model[i];
            }
            ASSERT_EQ(set.total_bytes(), expected * PAGE_SIZE);
            expect_well_formed(set);
        }
    }
}

TEST(RegionSet, ClearEmptiesTheSet)
{
    RegionSet set;
    MUST(set.add(0x1000, 0x2000));
    set.clear();
    EXPECT_TRUE(set.is_empty());
    EXPECT_EQ(set.total_bytes(), 0u);
}

TEST(RegionSetDeathTest, IndexOutOfRangeIsABug)
{
    RegionSet set;
    MUST(set.add(0x1000, 0x2000));
    EXPECT_DEATH({ (void)set[1]; }, "VERIFY");
}
