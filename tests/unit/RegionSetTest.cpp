// Host tests for kernel/lib/mm/RegionSet. Most run on the physical instantiation; the code is the
// same template for both kinds, and the last tests check the virtual one and that they do not mix.
#include <lib/mm/RegionSet.h>
#include <gtest/gtest.h>
#include <random>
#include <support/Addresses.h>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

// The expected ranges are written as integer pairs, which keeps the tables below readable.
std::vector<std::pair<u64, u64>> ranges_of(const PhysRegionSet& set)
{
    std::vector<std::pair<u64, u64>> out;
    for (auto& range : set)
        out.push_back({ range.start.value(), range.end.value() });
    return out;
}

using R = std::vector<std::pair<u64, u64>>;

void expect_well_formed(const PhysRegionSet& set)
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
    PhysRegionSet set;
    EXPECT_TRUE(set.is_empty());
    EXPECT_EQ(set.count(), 0u);
    EXPECT_EQ(set.total_bytes(), 0u);
    EXPECT_FALSE(set.contains(0_pa));
    EXPECT_EQ(set.begin(), set.end());
}

TEST(RegionSet, AddSingleRange)
{
    PhysRegionSet set;
    MUST(set.add(0x1000_pa, 0x5000_pa));
    EXPECT_EQ(ranges_of(set), (R { { 0x1000, 0x5000 } }));
    EXPECT_EQ(set.total_bytes(), 0x4000u);
}

TEST(RegionSet, AddEmptyRangeIsNoOp)
{
    PhysRegionSet set;
    MUST(set.add(0x1000_pa, 0x1000_pa));
    EXPECT_TRUE(set.is_empty());
}

TEST(RegionSet, AddInvertedRangeIsInvalid)
{
    PhysRegionSet set;
    auto result = set.add(0x2000_pa, 0x1000_pa);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), EINVAL);
    EXPECT_TRUE(set.is_empty());
}

TEST(RegionSet, AddKeepsRangesSorted)
{
    PhysRegionSet set;
    MUST(set.add(0x9000_pa, 0xa000_pa));
    MUST(set.add(0x1000_pa, 0x2000_pa));
    MUST(set.add(0x5000_pa, 0x6000_pa));
    EXPECT_EQ(ranges_of(set), (R { { 0x1000, 0x2000 }, { 0x5000, 0x6000 }, { 0x9000, 0xa000 } }));
}

TEST(RegionSet, AddMergesAdjacentRanges)
{
    PhysRegionSet set;
    MUST(set.add(0x1000_pa, 0x2000_pa));
    MUST(set.add(0x3000_pa, 0x4000_pa));
    MUST(set.add(0x2000_pa, 0x3000_pa));
    EXPECT_EQ(ranges_of(set), (R { { 0x1000, 0x4000 } }));
}

TEST(RegionSet, AddMergesOverlappingRanges)
{
    PhysRegionSet set;
    MUST(set.add(0x1000_pa, 0x3000_pa));
    MUST(set.add(0x2000_pa, 0x5000_pa));
    EXPECT_EQ(ranges_of(set), (R { { 0x1000, 0x5000 } }));
    MUST(set.add(0x0_pa, 0x1800_pa));
    EXPECT_EQ(ranges_of(set), (R { { 0x0, 0x5000 } }));
}

TEST(RegionSet, AddSwallowsManyRanges)
{
    PhysRegionSet set;
    for (u64 i = 0; i < 10; ++i)
        MUST(set.add(PhysAddr(i * 0x10000), PhysAddr(i * 0x10000 + 0x1000)));
    EXPECT_EQ(set.count(), 10u);
    MUST(set.add(0x18000_pa, 0x75000_pa));
    EXPECT_EQ(ranges_of(set), (R { { 0x0, 0x1000 }, { 0x10000, 0x11000 }, { 0x18000, 0x75000 }, { 0x80000, 0x81000 }, { 0x90000, 0x91000 } }));
    expect_well_formed(set);
}

TEST(RegionSet, AddContainedRangeChangesNothing)
{
    PhysRegionSet set;
    MUST(set.add(0x1000_pa, 0x9000_pa));
    MUST(set.add(0x2000_pa, 0x3000_pa));
    EXPECT_EQ(ranges_of(set), (R { { 0x1000, 0x9000 } }));
}

TEST(RegionSet, AddFailsWithEnospcWhenFull)
{
    PhysRegionSet set;
    for (u64 i = 0; i < PhysRegionSet::capacity; ++i)
        MUST(set.add(PhysAddr(i * 0x2000), PhysAddr(i * 0x2000 + 0x1000)));
    EXPECT_EQ(set.count(), PhysRegionSet::capacity);
    auto result = set.add(0x10000000_pa, 0x10001000_pa);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ENOSPC);
    EXPECT_EQ(set.count(), PhysRegionSet::capacity);
    // Merging into existing ranges still works when full: it needs no new slot.
    MUST(set.add(0x1000_pa, 0x2000_pa));
    EXPECT_EQ(set.count(), PhysRegionSet::capacity - 1);
}

TEST(RegionSet, SubtractSplitsARange)
{
    PhysRegionSet set;
    MUST(set.add(0x0_pa, 0x10000_pa));
    MUST(set.subtract(0x4000_pa, 0x6000_pa));
    EXPECT_EQ(ranges_of(set), (R { { 0x0, 0x4000 }, { 0x6000, 0x10000 } }));
    EXPECT_EQ(set.total_bytes(), 0xe000u);
}

TEST(RegionSet, SubtractTrimsEdges)
{
    PhysRegionSet set;
    MUST(set.add(0x1000_pa, 0x9000_pa));
    MUST(set.subtract(0x0_pa, 0x2000_pa));
    MUST(set.subtract(0x8000_pa, 0xa000_pa));
    EXPECT_EQ(ranges_of(set), (R { { 0x2000, 0x8000 } }));
}

TEST(RegionSet, SubtractRemovesCoveredRanges)
{
    PhysRegionSet set;
    MUST(set.add(0x1000_pa, 0x2000_pa));
    MUST(set.add(0x3000_pa, 0x4000_pa));
    MUST(set.add(0x5000_pa, 0x6000_pa));
    MUST(set.subtract(0x800_pa, 0x5800_pa));
    EXPECT_EQ(ranges_of(set), (R { { 0x5800, 0x6000 } }));
}

TEST(RegionSet, SubtractAcrossSeveralRangesTrimsBothEnds)
{
    PhysRegionSet set;
    MUST(set.add(0x0_pa, 0x3000_pa));
    MUST(set.add(0x4000_pa, 0x5000_pa));
    MUST(set.add(0x6000_pa, 0x9000_pa));
    MUST(set.subtract(0x2000_pa, 0x7000_pa));
    EXPECT_EQ(ranges_of(set), (R { { 0x0, 0x2000 }, { 0x7000, 0x9000 } }));
}

TEST(RegionSet, SubtractExactRangeRemovesIt)
{
    PhysRegionSet set;
    MUST(set.add(0x1000_pa, 0x2000_pa));
    MUST(set.subtract(0x1000_pa, 0x2000_pa));
    EXPECT_TRUE(set.is_empty());
}

TEST(RegionSet, SubtractOutsideIsNoOp)
{
    PhysRegionSet set;
    MUST(set.add(0x4000_pa, 0x5000_pa));
    MUST(set.subtract(0x0_pa, 0x4000_pa));
    MUST(set.subtract(0x5000_pa, 0x9000_pa));
    MUST(set.subtract(0x4800_pa, 0x4800_pa));
    EXPECT_EQ(ranges_of(set), (R { { 0x4000, 0x5000 } }));
}

TEST(RegionSet, SubtractInvertedIsInvalid)
{
    PhysRegionSet set;
    MUST(set.add(0x0_pa, 0x10000_pa));
    auto result = set.subtract(0x5000_pa, 0x4000_pa);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), EINVAL);
    EXPECT_EQ(set.total_bytes(), 0x10000u);
}

TEST(RegionSet, SubtractSplitFailsWithEnospcWhenFullAndChangesNothing)
{
    PhysRegionSet set;
    for (u64 i = 0; i < PhysRegionSet::capacity; ++i)
        MUST(set.add(PhysAddr(i * 0x10000), PhysAddr(i * 0x10000 + 0x8000)));
    u64 before = set.total_bytes();
    auto result = set.subtract(0x2000_pa, 0x3000_pa);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ENOSPC);
    EXPECT_EQ(set.total_bytes(), before);
    // Trimming needs no slot and still works.
    MUST(set.subtract(0x0_pa, 0x1000_pa));
    EXPECT_EQ(set.total_bytes(), before - 0x1000);
}

TEST(RegionSet, PageAlignInwardShrinksAndDrops)
{
    PhysRegionSet set;
    MUST(set.add(0x1001_pa, 0x3fff_pa));
    MUST(set.add(0x5010_pa, 0x5ff0_pa));
    MUST(set.add(0x8000_pa, 0xa000_pa));
    set.page_align_inward();
    EXPECT_EQ(ranges_of(set), (R { { 0x2000, 0x3000 }, { 0x8000, 0xa000 } }));
}

TEST(RegionSet, PageAlignInwardAtTopOfAddressSpace)
{
    PhysRegionSet set;
    MUST(set.add(PhysAddr(~0ull - 0x800), PhysAddr(~0ull)));
    set.page_align_inward();
    EXPECT_TRUE(set.is_empty());
}

TEST(RegionSet, ContainsAndIntersects)
{
    PhysRegionSet set;
    MUST(set.add(0x1000_pa, 0x2000_pa));
    MUST(set.add(0x4000_pa, 0x6000_pa));
    EXPECT_TRUE(set.contains(0x1000_pa));
    EXPECT_TRUE(set.contains(0x1fff_pa));
    EXPECT_FALSE(set.contains(0x2000_pa));
    EXPECT_FALSE(set.contains(0x3000_pa));
    EXPECT_TRUE(set.contains_range(0x4000_pa, 0x6000_pa));
    EXPECT_FALSE(set.contains_range(0x1000_pa, 0x5000_pa));
    EXPECT_FALSE(set.contains_range(0x1000_pa, 0x1000_pa));
    EXPECT_TRUE(set.intersects(0x1800_pa, 0x4800_pa));
    EXPECT_TRUE(set.intersects(0x0_pa, 0x1001_pa));
    EXPECT_FALSE(set.intersects(0x2000_pa, 0x4000_pa));
    EXPECT_FALSE(set.intersects(0x0_pa, 0x1000_pa));
}

TEST(RegionSet, FindFitHonoursAlignmentAndMinimum)
{
    PhysRegionSet set;
    MUST(set.add(0x1000_pa, 0x3000_pa));
    MUST(set.add(0x100000_pa, 0x800000_pa));
    EXPECT_EQ(MUST(set.find_fit(0x1000, PAGE_SIZE)), 0x1000_pa);
    EXPECT_EQ(MUST(set.find_fit(0x3000, PAGE_SIZE)), 0x100000_pa);
    EXPECT_EQ(MUST(set.find_fit(2 * MiB, 2 * MiB)), PhysAddr(2 * MiB));
    EXPECT_EQ(MUST(set.find_fit(0x1000, PAGE_SIZE, 0x200000_pa)), 0x200000_pa);
    EXPECT_EQ(MUST(set.find_fit(0x1000, PAGE_SIZE, 0x2800_pa)), 0x100000_pa);
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
    PhysRegionSet usable;
    MUST(usable.add(0x0_pa, 0x9fc00_pa));
    MUST(usable.add(0x100000_pa, 0x7fe0000_pa));
    MUST(usable.add(0x100000000_pa, 0x180000000_pa));
    MUST(usable.subtract(0x0_pa, 0x1000_pa));                // the null page stays unmapped
    MUST(usable.subtract(0x100000_pa, 0x400000_pa));         // kernel image
    MUST(usable.subtract(0x600000_pa, 0x640000_pa));         // initrd module
    MUST(usable.subtract(0x7fd0000_pa, 0x7fe0000_pa));       // ACPI tables
    PhysAddr bump = MUST(usable.find_fit(4 * MiB, 2 * MiB, 0x100000_pa));
    EXPECT_EQ(bump, 0x800000_pa);
    MUST(usable.subtract(bump, bump + 4 * MiB));
    usable.page_align_inward();
    expect_well_formed(usable);
    EXPECT_EQ(ranges_of(usable), (R { { 0x1000, 0x9f000 }, { 0x400000, 0x600000 }, { 0x640000, 0x800000 }, { 0xc00000, 0x7fd0000 }, { 0x100000000, 0x180000000 } }));
    for (auto& range : usable) {
        EXPECT_TRUE(is_aligned(range.start, PAGE_SIZE));
        EXPECT_TRUE(is_aligned(range.end, PAGE_SIZE));
    }
    EXPECT_FALSE(usable.intersects(0x100000_pa, 0x400000_pa));
}

TEST(RegionSet, RandomizedAgainstPageBitmapModel)
{
    // A model over 512 pages: add/subtract are set union/difference on page bits.
    std::mt19937 rng(1234);
    constexpr u64 pages = 512;
    std::vector<bool> model(pages, false);
    PhysRegionSet set;
    for (int step = 0; step < 3000; ++step) {
        u64 a = rng() % pages, b = rng() % pages;
        if (a > b)
            std::swap(a, b);
        u64 len = (b - a) % 24;
        b = a + len;
        if (rng() % 3 == 0) {
            MUST(set.subtract(PhysAddr(a * PAGE_SIZE), PhysAddr(b * PAGE_SIZE)));
            for (u64 i = a; i < b; ++i)
                model[i] = false;
        } else {
            auto result = set.add(PhysAddr(a * PAGE_SIZE), PhysAddr(b * PAGE_SIZE));
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
                ASSERT_EQ(set.contains(PhysAddr(i * PAGE_SIZE)), model[i]) << "page " << i << " step " << step;
                expected += model[i];
            }
            ASSERT_EQ(set.total_bytes(), expected * PAGE_SIZE);
            expect_well_formed(set);
        }
    }
}

TEST(RegionSet, ClearEmptiesTheSet)
{
    PhysRegionSet set;
    MUST(set.add(0x1000_pa, 0x2000_pa));
    set.clear();
    EXPECT_TRUE(set.is_empty());
    EXPECT_EQ(set.total_bytes(), 0u);
}

TEST(RegionSetDeathTest, IndexOutOfRangeIsABug)
{
    PhysRegionSet set;
    MUST(set.add(0x1000_pa, 0x2000_pa));
    EXPECT_DEATH({ (void)set[1]; }, "VERIFY");
}

TEST(RegionSet, VirtualInstantiationBehavesTheSame)
{
    VirtRegionSet set;
    MUST(set.add(0xffffc90000000000_va, 0xffffc90000100000_va));
    MUST(set.subtract(0xffffc90000001000_va, 0xffffc90000002000_va));
    EXPECT_EQ(set.count(), 2u);
    EXPECT_EQ(MUST(set.find_fit(0x2000, PAGE_SIZE)), 0xffffc90000002000_va);
    EXPECT_TRUE(set.contains(0xffffc90000000000_va));
    EXPECT_FALSE(set.contains(0xffffc90000001000_va));
}

// A physical set takes physical addresses only, and the other way round.
template<typename Set, typename Addr>
concept CanAdd = requires(Set set, Addr a) { set.add(a, a); };
static_assert(CanAdd<PhysRegionSet, PhysAddr> && CanAdd<VirtRegionSet, VirtAddr>);
static_assert(!CanAdd<PhysRegionSet, VirtAddr> && !CanAdd<VirtRegionSet, PhysAddr>);
static_assert(!CanAdd<PhysRegionSet, u64>);
