// Host tests for kernel/lib/BumpAllocator.
#include <lib/mm/BumpAllocator.h>
#include <support/Addresses.h>
#include <gtest/gtest.h>

namespace {

constexpr PhysAddr kStart(0x200000);
constexpr PhysAddr kEnd(0x400000);

int error_of(const ErrorOr<PhysAddr>& result) { return result.is_error() ? result.error().code() : 0; }

}

TEST(BumpAllocator, StartsEmpty)
{
    BumpAllocator bump(kStart, kEnd);
    EXPECT_EQ(bump.start(), kStart);
    EXPECT_EQ(bump.end(), kEnd);
    EXPECT_EQ(bump.current(), kStart);
    EXPECT_EQ(bump.used(), 0u);
    EXPECT_EQ(bump.remaining(), kEnd - kStart);
    EXPECT_EQ(bump.allocation_count(), 0u);
    EXPECT_FALSE(bump.is_frozen());
}

TEST(BumpAllocator, SequentialAllocationsAreContiguous)
{
    BumpAllocator bump(kStart, kEnd);
    EXPECT_EQ(MUST(bump.allocate(PAGE_SIZE, PAGE_SIZE)), kStart);
    EXPECT_EQ(MUST(bump.allocate(PAGE_SIZE, PAGE_SIZE)), kStart + PAGE_SIZE);
    EXPECT_EQ(MUST(bump.allocate(2 * PAGE_SIZE, PAGE_SIZE)), kStart + 2 * PAGE_SIZE);
    EXPECT_EQ(bump.used(), 4 * PAGE_SIZE);
    EXPECT_EQ(bump.allocation_count(), 3u);
}

TEST(BumpAllocator, AlignmentPaddingIsCountedAsUsed)
{
    BumpAllocator bump(kStart, kEnd);
    EXPECT_EQ(MUST(bump.allocate(8, 8)), kStart);
    PhysAddr page = MUST(bump.allocate(PAGE_SIZE, PAGE_SIZE));
    EXPECT_EQ(page, kStart + PAGE_SIZE);
    EXPECT_EQ(bump.used(), 2 * PAGE_SIZE);
    EXPECT_EQ(bump.used() + bump.remaining(), kEnd - kStart);
}

TEST(BumpAllocator, LargeAlignmentFromUnalignedStart)
{
    BumpAllocator bump(0x1234_pa, 0x1000000_pa);
    PhysAddr block = MUST(bump.allocate(1, 2 * MiB));
    EXPECT_EQ(block, PhysAddr(2 * MiB));
    EXPECT_EQ(bump.current(), PhysAddr(2 * MiB + 1));
}

TEST(BumpAllocator, EveryReturnedBlockIsAlignedAndDisjoint)
{
    BumpAllocator bump(kStart + 3, kEnd);
    PhysAddr previous_end;
    for (u64 i = 0; i < 200; ++i) {
        u64 align = 1ull << (i % 13);
        u64 size = 1 + (i * 37) % 1000;
        PhysAddr block = MUST(bump.allocate(size, align));
        EXPECT_TRUE(is_aligned(block, align));
        EXPECT_GE(block, previous_end);
        EXPECT_GE(block, kStart + 3);
        EXPECT_LE(block + size, kEnd);
        previous_end = block + size;
    }
    EXPECT_EQ(bump.current(), previous_end);
    EXPECT_EQ(bump.allocation_count(), 200u);
}

TEST(BumpAllocator, ZeroSizeIsInvalid)
{
    BumpAllocator bump(kStart, kEnd);
    EXPECT_EQ(error_of(bump.allocate(0, PAGE_SIZE)), EINVAL);
    EXPECT_EQ(bump.allocation_count(), 0u);
}

TEST(BumpAllocator, NonPowerOfTwoAlignmentIsInvalid)
{
    BumpAllocator bump(kStart, kEnd);
    EXPECT_EQ(error_of(bump.allocate(16, 0)), EINVAL);
    EXPECT_EQ(error_of(bump.allocate(16, 3)), EINVAL);
    EXPECT_EQ(error_of(bump.allocate(16, 4097)), EINVAL);
    EXPECT_EQ(bump.used(), 0u);
}

TEST(BumpAllocator, ExactFitThenExhausted)
{
    BumpAllocator bump(kStart, kStart + 4 * PAGE_SIZE);
    EXPECT_EQ(MUST(bump.allocate(4 * PAGE_SIZE, PAGE_SIZE)), kStart);
    EXPECT_EQ(bump.remaining(), 0u);
    EXPECT_EQ(error_of(bump.allocate(1, 1)), ENOMEM);
}

TEST(BumpAllocator, FailedAllocationChangesNothing)
{
    BumpAllocator bump(kStart, kStart + 3 * PAGE_SIZE);
    MUST(bump.allocate(PAGE_SIZE, PAGE_SIZE));
    EXPECT_EQ(error_of(bump.allocate(3 * PAGE_SIZE, PAGE_SIZE)), ENOMEM);
    EXPECT_EQ(bump.used(), PAGE_SIZE);
    EXPECT_EQ(bump.allocation_count(), 1u);
    EXPECT_EQ(MUST(bump.allocate(2 * PAGE_SIZE, PAGE_SIZE)), kStart + PAGE_SIZE);
}

TEST(BumpAllocator, PaddingThatOverrunsTheEndFails)
{
    BumpAllocator bump(kStart + 8, kStart + PAGE_SIZE + 8);
    EXPECT_EQ(error_of(bump.allocate(PAGE_SIZE, PAGE_SIZE)), ENOMEM);
    EXPECT_EQ(bump.used(), 0u);
}

TEST(BumpAllocator, AlignmentPastTheEndFails)
{
    BumpAllocator bump(0x1000_pa, 0x2000_pa);
    EXPECT_EQ(error_of(bump.allocate(1, 0x4000)), ENOMEM);
}

TEST(BumpAllocator, HugeSizesDoNotWrap)
{
    BumpAllocator bump(kStart, kEnd);
    EXPECT_EQ(error_of(bump.allocate(~0ull, 1)), ENOMEM);
    EXPECT_EQ(error_of(bump.allocate(~0ull - kStart.value() + 1, 1)), ENOMEM);
    EXPECT_EQ(bump.used(), 0u);
}

TEST(BumpAllocator, TopOfAddressSpaceDoesNotWrap)
{
    BumpAllocator bump(PhysAddr(~0ull - 0x1000), PhysAddr(~0ull));
    EXPECT_EQ(error_of(bump.allocate(1, 1ull << 63)), ENOMEM);
    EXPECT_EQ(MUST(bump.allocate(0x800, 1)), PhysAddr(~0ull - 0x1000));
}

TEST(BumpAllocator, EmptyRangeAlwaysFails)
{
    BumpAllocator bump(kStart, kStart);
    EXPECT_EQ(bump.remaining(), 0u);
    EXPECT_EQ(error_of(bump.allocate(1, 1)), ENOMEM);
}

TEST(BumpAllocator, FreezeMakesAllocationFailWithEperm)
{
    BumpAllocator bump(kStart, kEnd);
    MUST(bump.allocate(PAGE_SIZE, PAGE_SIZE));
    bump.freeze();
    EXPECT_TRUE(bump.is_frozen());
    EXPECT_EQ(error_of(bump.allocate(PAGE_SIZE, PAGE_SIZE)), EPERM);
    // Frozen takes precedence over argument checks: nothing may come out of it any more.
    EXPECT_EQ(error_of(bump.allocate(0, 3)), EPERM);
    EXPECT_EQ(bump.used(), PAGE_SIZE);
    EXPECT_EQ(bump.allocation_count(), 1u);
    bump.freeze();
    EXPECT_TRUE(bump.is_frozen());
}

TEST(BumpAllocator, ReservedRangeAfterFreezeCoversAllocations)
{
    BumpAllocator bump(kStart, kEnd);
    PhysAddr a = MUST(bump.allocate(100, 16));
    PhysAddr b = MUST(bump.allocate(PAGE_SIZE * 3, PAGE_SIZE));
    bump.freeze();
    EXPECT_GE(a, bump.start());
    EXPECT_LE(b + PAGE_SIZE * 3, bump.current());
    EXPECT_TRUE(bump.contains(a));
    EXPECT_TRUE(bump.contains(b));
    EXPECT_FALSE(bump.contains(kEnd));
    EXPECT_FALSE(bump.contains(kStart - 1));
}

TEST(BumpAllocatorDeathTest, InvertedRangeIsABug)
{
    EXPECT_DEATH({ BumpAllocator bump(kEnd, kStart); }, "VERIFY");
}
