// Host tests for kernel/lib/SlabCache and kernel/lib/SlabHeap, over the real BuddyAllocator through
// HostPageProvider.
#include "support/HostPageProvider.h"
#include <lib/mm/SlabCache.h>
#include <lib/mm/SlabHeap.h>
#include <algorithm>
#include <cstring>
#include <gtest/gtest.h>
#include <map>
#include <random>
#include <vector>

namespace {

constexpr usize kArena = 16 * MiB;

bool aligned_ptr(const void* ptr, usize align) { return is_aligned(reinterpret_cast<uptr>(ptr), align); }

int error_of(const ErrorOr<void*>& result) { return result.is_error() ? result.error().code() : 0; }

}

// ---------------------------------------------------------------------------------------------
// SlabCache
// ---------------------------------------------------------------------------------------------

class SlabCacheTest : public ::testing::Test {
protected:
    HostPageProvider provider { kArena };
};

TEST_F(SlabCacheTest, SmallObjectsUseSinglePageSlabs)
{
    SlabCache cache("small", 16, 16, provider);
    EXPECT_EQ(cache.slab_order(), 0u);
    EXPECT_GE(cache.objects_per_slab(), 240u);
    EXPECT_LE(cache.objects_per_slab(), 256u);
    EXPECT_STREQ(cache.name(), "small");
}

TEST_F(SlabCacheTest, GeometryKeepsEnoughObjectsPerSlab)
{
    for (usize size = 8; size <= 8192; size += 8) {
        SlabCache cache("g", size, 8, provider);
        EXPECT_GE(cache.objects_per_slab(), SlabCache::MIN_OBJECTS_PER_SLAB) << size;
        usize slab = PAGE_SIZE << cache.slab_order();
        EXPECT_LE(cache.objects_per_slab() * cache.object_size(), slab) << size;
        // Waste stays under a quarter even in the worst case, and the slab stays modest.
        EXPECT_LE(slab - cache.objects_per_slab() * cache.object_size(), slab / 4) << size;
        EXPECT_LE(cache.slab_order(), SlabCache::MAX_SLAB_ORDER);
    }
}

TEST_F(SlabCacheTest, ObjectSizeRoundsUpToAlignmentAndPointerSize)
{
    SlabCache a("a", 12, 8, provider);
    EXPECT_EQ(a.object_size(), 16u);
    SlabCache b("b", 1, 1, provider);
    EXPECT_EQ(b.object_size(), 8u);
    EXPECT_EQ(b.align(), 8u);
    SlabCache c("c", 24, 64, provider);
    EXPECT_EQ(c.object_size(), 64u);
    SlabCache d("d", 100, 4, provider);
    EXPECT_EQ(d.object_size(), 104u);
}

TEST_F(SlabCacheTest, AllocationsAreAlignedDistinctAndHoldData)
{
    SlabCache cache("obj", 48, 16, provider);
    std::vector<u8*> objects;
    for (int i = 0; i < 1000; ++i) {
        auto* object = static_cast<u8*>(MUST(cache.allocate()));
        EXPECT_TRUE(aligned_ptr(object, 16));
        memset(object, i & 0xff, 48);
        objects.push_back(object);
    }
    auto sorted = objects;
    std::sort(sorted.begin(), sorted.end());
    for (usize i = 1; i < sorted.size(); ++i)
        EXPECT_GE(sorted[i] - sorted[i - 1], 48);
    for (int i = 0; i < 1000; ++i)
        for (int b = 0; b < 48; ++b)
            ASSERT_EQ(objects[i][b], i & 0xff);
    for (auto* object : objects)
        cache.free(object);
}

TEST_F(SlabCacheTest, LargeAlignmentIsHonoured)
{
    SlabCache cache("page", 4096, 4096, provider);
    for (int i = 0; i < 40; ++i)
        EXPECT_TRUE(aligned_ptr(MUST(cache.allocate()), 4096));
}

TEST_F(SlabCacheTest, FirstAllocationCreatesOneSlab)
{
    SlabCache cache("obj", 64, 64, provider);
    EXPECT_EQ(cache.stats().slabs, 0u);
    EXPECT_EQ(provider.pages_in_use(), 0u);
    void* object = MUST(cache.allocate());
    auto stats = cache.stats();
    EXPECT_EQ(stats.slabs, 1u);
    EXPECT_EQ(stats.pages, 1u << cache.slab_order());
    EXPECT_EQ(stats.objects_in_use, 1u);
    EXPECT_EQ(stats.objects_total, cache.objects_per_slab());
    EXPECT_EQ(provider.pages_in_use(), stats.pages);
    cache.free(object);
}

TEST_F(SlabCacheTest, FullSlabTriggersANewOne)
{
    SlabCache cache("obj", 256, 256, provider);
    usize per_slab = cache.objects_per_slab();
    std::vector<void*> objects;
    for (usize i = 0; i < per_slab; ++i)
        objects.push_back(MUST(cache.allocate()));
    EXPECT_EQ(cache.stats().slabs, 1u);
    objects.push_back(MUST(cache.allocate()));
    EXPECT_EQ(cache.stats().slabs, 2u);
    EXPECT_EQ(cache.stats().objects_total, 2 * per_slab);
    for (auto* object : objects)
        cache.free(object);
}

TEST_F(SlabCacheTest, FreedObjectIsReusedFirst)
{
    SlabCache cache("obj", 32, 8, provider);
    MUST(cache.allocate());
    void* b = MUST(cache.allocate());
    MUST(cache.allocate());
    cache.free(b);
    EXPECT_EQ(MUST(cache.allocate()), b);
}

TEST_F(SlabCacheTest, PartialSlabIsPreferredOverANewSlab)
{
    SlabCache cache("obj", 512, 8, provider);
    usize per_slab = cache.objects_per_slab();
    std::vector<void*> objects;
    for (usize i = 0; i < 2 * per_slab; ++i)
        objects.push_back(MUST(cache.allocate()));
    // Free one object in the first slab; the next allocation must go there, not to a third slab.
    cache.free(objects[3]);
    void* again = MUST(cache.allocate());
    EXPECT_EQ(again, objects[3]);
    EXPECT_EQ(cache.stats().slabs, 2u);
}

TEST_F(SlabCacheTest, PartialSlabsAreDrainedBeforeTheCachedEmptySlab)
{
    SlabCache cache("obj", 1024, 1024, provider);
    usize per_slab = cache.objects_per_slab();
    std::vector<void*> objects;
    for (usize i = 0; i < 3 * per_slab; ++i)
        objects.push_back(MUST(cache.allocate()));
    // Slab 0 becomes the cached empty slab; slab 1 gets a single hole.
    for (usize i = 0; i < per_slab; ++i)
        cache.free(objects[i]);
    cache.free(objects[per_slab + 5]);
    EXPECT_EQ(cache.stats().empty_slabs, 1u);
    EXPECT_EQ(MUST(cache.allocate()), objects[per_slab + 5]);
    EXPECT_EQ(cache.stats().empty_slabs, 1u);
    // Only now does allocation fall back to the empty slab.
    void* from_empty = MUST(cache.allocate());
    EXPECT_EQ(cache.stats().empty_slabs, 0u);
    EXPECT_EQ(align_down(reinterpret_cast<uptr>(from_empty), PAGE_SIZE << cache.slab_order()),
        align_down(reinterpret_cast<uptr>(objects[0]), PAGE_SIZE << cache.slab_order()));
    EXPECT_EQ(cache.stats().slabs, 3u);
}

TEST_F(SlabCacheTest, HugeObjectsGetOneSlabEach)
{
    SlabCache cache("huge", 100 * KiB, 8, provider);
    EXPECT_EQ(cache.slab_order(), SlabCache::MAX_SLAB_ORDER);
    EXPECT_EQ(cache.objects_per_slab(), 1u);
    void* a = MUST(cache.allocate());
    void* b = MUST(cache.allocate());
    EXPECT_EQ(cache.stats().slabs, 2u);
    memset(a, 1, 100 * KiB);
    // A full slab that becomes empty goes straight to the cache, then straight back to the pages.
    cache.free(a);
    EXPECT_EQ(cache.stats().slabs, 2u);
    EXPECT_EQ(cache.stats().empty_slabs, 1u);
    cache.free(b);
    EXPECT_EQ(cache.stats().slabs, 1u);
    EXPECT_EQ(MUST(cache.allocate()), a);
}

TEST_F(SlabCacheTest, OneEmptySlabIsCached)
{
    SlabCache cache("obj", 64, 8, provider);
    void* object = MUST(cache.allocate());
    cache.free(object);
    auto stats = cache.stats();
    EXPECT_EQ(stats.slabs, 1u);
    EXPECT_EQ(stats.empty_slabs, 1u);
    EXPECT_EQ(stats.objects_in_use, 0u);
    EXPECT_GT(provider.pages_in_use(), 0u);
    // Ping-pong at the boundary does not touch the page allocator.
    u64 calls = provider.allocate_calls();
    for (int i = 0; i < 100; ++i)
        cache.free(MUST(cache.allocate()));
    EXPECT_EQ(provider.allocate_calls(), calls);
}

TEST_F(SlabCacheTest, EmptySlabsBeyondOneAreReleased)
{
    SlabCache cache("obj", 1024, 8, provider);
    std::vector<void*> objects;
    for (usize i = 0; i < 3 * cache.objects_per_slab(); ++i)
        objects.push_back(MUST(cache.allocate()));
    EXPECT_EQ(cache.stats().slabs, 3u);
    for (auto* object : objects)
        cache.free(object);
    EXPECT_EQ(cache.stats().slabs, 1u);
    EXPECT_EQ(cache.stats().empty_slabs, 1u);
    EXPECT_EQ(provider.pages_in_use(), 1u << cache.slab_order());
}

TEST_F(SlabCacheTest, ShrinkReleasesTheCachedSlab)
{
    SlabCache cache("obj", 64, 8, provider);
    cache.free(MUST(cache.allocate()));
    cache.shrink();
    EXPECT_EQ(cache.stats().slabs, 0u);
    EXPECT_EQ(provider.pages_in_use(), 0u);
    // And the cache still works afterwards.
    void* object = MUST(cache.allocate());
    EXPECT_NE(object, nullptr);
    cache.free(object);
}

TEST_F(SlabCacheTest, ShrinkKeepsSlabsInUse)
{
    SlabCache cache("obj", 64, 8, provider);
    void* object = MUST(cache.allocate());
    cache.shrink();
    EXPECT_EQ(cache.stats().slabs, 1u);
    cache.free(object);
}

TEST_F(SlabCacheTest, DestructorReturnsEveryPage)
{
    {
        SlabCache cache("obj", 200, 8, provider);
        for (int i = 0; i < 500; ++i)
            MUST(cache.allocate());
        EXPECT_GT(provider.pages_in_use(), 0u);
    }
    EXPECT_EQ(provider.pages_in_use(), 0u);
    EXPECT_EQ(provider.buddy().check_consistency(), kArena / PAGE_SIZE);
}

TEST_F(SlabCacheTest, EverySlabPageIsTaggedWithTheCache)
{
    SlabCache cache("big", 2048, 8, provider);
    ASSERT_GT(cache.slab_order(), 0u);
    void* object = MUST(cache.allocate());
    auto* slab = reinterpret_cast<u8*>(align_down(reinterpret_cast<uptr>(object), PAGE_SIZE << cache.slab_order()));
    for (usize i = 0; i < (1u << cache.slab_order()); ++i)
        EXPECT_EQ(provider.page_owner(slab + i * PAGE_SIZE), &cache) << i;
    cache.free(object);
    cache.shrink();
    for (usize i = 0; i < (1u << cache.slab_order()); ++i)
        EXPECT_EQ(provider.page_owner(slab + i * PAGE_SIZE), nullptr) << i;
}

TEST_F(SlabCacheTest, OwnsDistinguishesCaches)
{
    SlabCache a("a", 64, 8, provider);
    SlabCache b("b", 64, 8, provider);
    void* from_a = MUST(a.allocate());
    void* from_b = MUST(b.allocate());
    EXPECT_TRUE(a.owns(from_a));
    EXPECT_FALSE(a.owns(from_b));
    EXPECT_TRUE(b.owns(from_b));
    EXPECT_FALSE(a.owns(nullptr));
    int local;
    EXPECT_FALSE(a.owns(&local));
    a.free(from_a);
    b.free(from_b);
}

TEST_F(SlabCacheTest, FreeOfNullIsANoOp)
{
    SlabCache cache("obj", 64, 8, provider);
    cache.free(nullptr);
    EXPECT_EQ(cache.stats().free_calls, 0u);
}

TEST_F(SlabCacheTest, ProviderFailureIsReportedAndRecoverable)
{
    SlabCache cache("obj", 64, 8, provider);
    provider.fail_next(1);
    auto result = cache.allocate();
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ENOMEM);
    EXPECT_EQ(cache.stats().failed_calls, 1u);
    EXPECT_EQ(cache.stats().slabs, 0u);
    void* object = MUST(cache.allocate());
    cache.free(object);
}

TEST_F(SlabCacheTest, ExhaustTheArenaThenRecoverEverything)
{
    HostPageProvider small(4 * MiB);
    SlabCache cache("obj", 128, 8, small);
    std::vector<void*> objects;
    while (true) {
        auto result = cache.allocate();
        if (result.is_error()) {
            EXPECT_EQ(result.error().code(), ENOMEM);
            break;
        }
        objects.push_back(result.value());
    }
    EXPECT_EQ(small.pages_in_use(), 4 * MiB / PAGE_SIZE);
    EXPECT_EQ(objects.size(), (4 * MiB / (PAGE_SIZE << cache.slab_order())) * cache.objects_per_slab());
    EXPECT_EQ(cache.stats().objects_in_use, objects.size());
    for (auto* object : objects)
        cache.free(object);
    cache.shrink();
    EXPECT_EQ(small.pages_in_use(), 0u);
    EXPECT_EQ(small.buddy().stats().free_blocks_per_order[BuddyAllocator::MAX_ORDER], 1u);
}

TEST_F(SlabCacheTest, StatsAfterLoops)
{
    SlabCache cache("obj", 96, 32, provider);
    std::vector<void*> objects;
    for (int round = 0; round < 20; ++round) {
        for (int i = 0; i < 100; ++i)
            objects.push_back(MUST(cache.allocate()));
        for (int i = 0; i < 60; ++i) {
            cache.free(objects.back());
            objects.pop_back();
        }
    }
    auto stats = cache.stats();
    EXPECT_EQ(stats.alloc_calls, 2000u);
    EXPECT_EQ(stats.free_calls, 1200u);
    EXPECT_EQ(stats.objects_in_use, 800u);
    EXPECT_EQ(stats.objects_in_use, objects.size());
    EXPECT_GE(stats.objects_total, stats.objects_in_use);
    EXPECT_EQ(stats.objects_total, stats.slabs * stats.objects_per_slab);
    EXPECT_EQ(stats.pages, stats.slabs << stats.slab_order);
    EXPECT_EQ(provider.pages_in_use(), stats.pages);
    for (auto* object : objects)
        cache.free(object);
}

TEST_F(SlabCacheTest, RandomizedAgainstReferenceModel)
{
    SlabCache cache("rand", 40, 8, provider);
    std::mt19937 rng(99);
    std::vector<std::pair<u8*, u8>> live;
    for (int step = 0; step < 50000; ++step) {
        if (live.empty() || rng() % 100 < 52) {
            auto* object = static_cast<u8*>(MUST(cache.allocate()));
            u8 tag = static_cast<u8>(rng());
            memset(object, tag, 40);
            live.push_back({ object, tag });
        } else {
            usize index = rng() % live.size();
            auto [object, tag] = live[index];
            for (int b = 0; b < 40; ++b)
                ASSERT_EQ(object[b], tag) << "object corrupted at step " << step;
            cache.free(object);
            live[index] = live.back();
            live.pop_back();
        }
        if (step % 5000 == 0) {
            ASSERT_EQ(cache.stats().objects_in_use, live.size());
            ASSERT_LE(cache.stats().empty_slabs, 1u);
        }
    }
    for (auto [object, tag] : live)
        cache.free(object);
    EXPECT_EQ(cache.stats().objects_in_use, 0u);
    EXPECT_EQ(cache.stats().slabs, 1u);
}

class SlabCacheDeathTest : public SlabCacheTest { };

TEST_F(SlabCacheDeathTest, DoubleFree)
{
    SlabCache cache("obj", 64, 8, provider);
    void* keep = MUST(cache.allocate());
    void* object = MUST(cache.allocate());
    cache.free(object);
    EXPECT_DEATH(cache.free(object), "is_double_free");
    cache.free(keep);
}

TEST_F(SlabCacheDeathTest, FreeOfNeverAllocatedObject)
{
    SlabCache cache("obj", 64, 64, provider);
    auto* object = static_cast<u8*>(MUST(cache.allocate()));
    // The next object slot in the same slab has never been handed out.
    EXPECT_DEATH(cache.free(object + 64), "is_double_free");
}

TEST_F(SlabCacheDeathTest, InteriorPointer)
{
    SlabCache cache("obj", 64, 8, provider);
    auto* object = static_cast<u8*>(MUST(cache.allocate()));
    EXPECT_DEATH(cache.free(object + 8), "is_object_start");
}

TEST_F(SlabCacheDeathTest, PointerIntoTheSlabHeader)
{
    SlabCache cache("obj", 64, 64, provider);
    auto* object = static_cast<u8*>(MUST(cache.allocate()));
    void* header = reinterpret_cast<void*>(align_down(reinterpret_cast<uptr>(object), PAGE_SIZE << cache.slab_order()));
    EXPECT_DEATH(cache.free(header), "VERIFY");
}

TEST_F(SlabCacheDeathTest, ForeignHeapPointer)
{
    SlabCache cache("obj", 64, 8, provider);
    void* foreign = malloc(64);
    EXPECT_DEATH(cache.free(foreign), "owned_by_this_cache");
    ::free(foreign);
}

TEST_F(SlabCacheDeathTest, PointerFromAnotherCache)
{
    SlabCache a("a", 64, 8, provider);
    SlabCache b("b", 64, 8, provider);
    void* from_b = MUST(b.allocate());
    EXPECT_DEATH(a.free(from_b), "owned_by_this_cache");
}

TEST_F(SlabCacheDeathTest, CorruptedFreeListIsCaught)
{
    SlabCache cache("obj", 64, 8, provider);
    void* keep = MUST(cache.allocate());
    void* victim = MUST(cache.allocate());
    cache.free(victim);
    // A use after free overwrites the free-list link; the next allocations must not follow it.
    *static_cast<void**>(victim) = reinterpret_cast<u8*>(keep) + 3;
    EXPECT_DEATH({
        (void)MUST(cache.allocate());
        (void)MUST(cache.allocate());
    }, "freelist_intact");
}

TEST_F(SlabCacheDeathTest, BadGeometryIsABug)
{
    EXPECT_DEATH({ SlabCache cache("zero", 0, 8, provider); }, "VERIFY");
    EXPECT_DEATH({ SlabCache cache("align", 64, 24, provider); }, "VERIFY");
    EXPECT_DEATH({ SlabCache cache("huge", 1 * MiB, 8, provider); }, "VERIFY");
}

// ---------------------------------------------------------------------------------------------
// SlabHeap
// ---------------------------------------------------------------------------------------------

class SlabHeapTest : public ::testing::Test {
protected:
    HostPageProvider provider { kArena };
    SlabHeap heap { provider };
};

TEST(SlabHeapClasses, ClassSizes)
{
    usize expected[] = { 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192 };
    ASSERT_EQ(SlabHeap::class_count, std::size(expected));
    for (usize i = 0; i < SlabHeap::class_count; ++i)
        EXPECT_EQ(SlabHeap::class_size(i), expected[i]);
}

TEST(SlabHeapClasses, ClassIndexIsTheSmallestFittingClass)
{
    for (usize size = 1; size <= 8192; ++size) {
        usize index = SlabHeap::class_index_for(size);
        ASSERT_LT(index, SlabHeap::class_count) << size;
        ASSERT_GE(SlabHeap::class_size(index), size) << size;
        if (index > 0)
            ASSERT_LT(SlabHeap::class_size(index - 1), size) << size;
    }
    EXPECT_EQ(SlabHeap::class_index_for(8193), SlabHeap::class_count);
    EXPECT_EQ(SlabHeap::class_index_for(1 * MiB), SlabHeap::class_count);
}

TEST(SlabHeapClasses, ClassBoundaries)
{
    EXPECT_EQ(SlabHeap::class_index_for(16), 0u);
    EXPECT_EQ(SlabHeap::class_index_for(17), 1u);
    EXPECT_EQ(SlabHeap::class_index_for(64), 2u);
    EXPECT_EQ(SlabHeap::class_index_for(65), 3u);
    EXPECT_EQ(SlabHeap::class_index_for(96), 3u);
    EXPECT_EQ(SlabHeap::class_index_for(97), 4u);
    EXPECT_EQ(SlabHeap::class_index_for(192), 5u);
    EXPECT_EQ(SlabHeap::class_index_for(193), 6u);
    EXPECT_EQ(SlabHeap::class_index_for(256), 6u);
    EXPECT_EQ(SlabHeap::class_index_for(257), 7u);
    EXPECT_EQ(SlabHeap::class_index_for(4096), 10u);
    EXPECT_EQ(SlabHeap::class_index_for(4097), 11u);
    EXPECT_EQ(SlabHeap::class_index_for(8192), 11u);
}

TEST_F(SlabHeapTest, EverySizeClassServesItsSize)
{
    for (usize i = 0; i < SlabHeap::class_count; ++i) {
        usize size = SlabHeap::class_size(i);
        void* ptr = MUST(heap.allocate(size));
        EXPECT_EQ(heap.allocation_size(ptr), size);
        EXPECT_EQ(heap.class_stats(i).objects_in_use, 1u) << size;
        memset(ptr, 0xab, size);
        heap.free(ptr);
        EXPECT_EQ(heap.class_stats(i).objects_in_use, 0u) << size;
    }
}

TEST_F(SlabHeapTest, EveryByteSizeUpToTheLargestClass)
{
    for (usize size = 1; size <= SlabHeap::max_small_size; ++size) {
        auto* ptr = static_cast<u8*>(MUST(heap.allocate(size)));
        usize usable = heap.allocation_size(ptr);
        ASSERT_EQ(usable, SlabHeap::class_size(SlabHeap::class_index_for(size))) << size;
        ptr[0] = 1;
        ptr[usable - 1] = 2;
        heap.free(ptr);
    }
    EXPECT_EQ(heap.stats().bytes_in_use, 0u);
}

TEST_F(SlabHeapTest, AllocationsAreSixteenByteAligned)
{
    std::vector<void*> ptrs;
    for (usize size = 1; size <= 300; size += 7)
        ptrs.push_back(MUST(heap.allocate(size)));
    for (auto* ptr : ptrs) {
        EXPECT_TRUE(aligned_ptr(ptr, SlabHeap::minimum_alignment));
        heap.free(ptr);
    }
}

TEST_F(SlabHeapTest, PowerOfTwoClassesAreNaturallyAligned)
{
    for (usize size : { 16, 32, 64, 128, 256, 512, 1024, 2048, 4096 }) {
        for (int i = 0; i < 20; ++i)
            EXPECT_TRUE(aligned_ptr(MUST(heap.allocate(size)), size)) << size;
    }
    for (int i = 0; i < 20; ++i)
        EXPECT_TRUE(aligned_ptr(MUST(heap.allocate(8192)), 4096));
    for (int i = 0; i < 20; ++i)
        EXPECT_TRUE(aligned_ptr(MUST(heap.allocate(96)), 32));
}

TEST_F(SlabHeapTest, ZeroSizeIsInvalid)
{
    EXPECT_EQ(error_of(heap.allocate(0)), EINVAL);
    EXPECT_EQ(heap.stats().failed_calls, 1u);
}

TEST_F(SlabHeapTest, HugeSizesAreEnomem)
{
    EXPECT_EQ(error_of(heap.allocate(1 * GiB + 1)), ENOMEM);
    EXPECT_EQ(error_of(heap.allocate(~usize(0))), ENOMEM);
    EXPECT_EQ(error_of(heap.allocate(~usize(0) - PAGE_SIZE)), ENOMEM);
    // Within the limit, but more than the page allocator's largest block.
    EXPECT_EQ(error_of(heap.allocate(1 * GiB)), ENOMEM);
    EXPECT_EQ(error_of(heap.allocate(4 * MiB + 1)), ENOMEM);
    EXPECT_EQ(heap.stats().failed_calls, 5u);
    EXPECT_EQ(provider.pages_in_use(), 0u);
}

TEST_F(SlabHeapTest, BoundaryBetweenSlabAndPages)
{
    void* small = MUST(heap.allocate(8192));
    void* large = MUST(heap.allocate(8193));
    EXPECT_EQ(heap.allocation_size(small), 8192u);
    EXPECT_EQ(heap.allocation_size(large), 16384u);
    EXPECT_EQ(heap.class_stats(SlabHeap::class_count - 1).objects_in_use, 1u);
    auto stats = heap.stats();
    EXPECT_EQ(stats.small_allocations_in_use, 1u);
    EXPECT_EQ(stats.large_allocations_in_use, 1u);
    EXPECT_EQ(stats.large_pages_in_use, 4u);
    EXPECT_EQ(stats.bytes_in_use, 8192u + 16384u);
    heap.free(small);
    heap.free(large);
    EXPECT_EQ(heap.stats().bytes_in_use, 0u);
    EXPECT_EQ(heap.stats().large_pages_in_use, 0u);
}

TEST_F(SlabHeapTest, LargeAllocationsRoundToAnOrderAndAlignToIt)
{
    struct Case {
        usize size;
        usize block;
    } cases[] = { { 8193, 16 * KiB }, { 16 * KiB, 16 * KiB }, { 16 * KiB + 1, 32 * KiB }, { 100 * KiB, 128 * KiB },
        { 1 * MiB, 1 * MiB }, { 4 * MiB, 4 * MiB } };
    for (auto [size, block] : cases) {
        auto* ptr = static_cast<u8*>(MUST(heap.allocate(size)));
        EXPECT_EQ(heap.allocation_size(ptr), block) << size;
        EXPECT_TRUE(aligned_ptr(ptr, block)) << size;
        ptr[0] = 1;
        ptr[size - 1] = 2;
        heap.free(ptr);
    }
    EXPECT_EQ(provider.pages_in_use(), 0u);
    EXPECT_EQ(heap.stats().large_alloc_calls, std::size(cases));
    EXPECT_EQ(heap.stats().large_free_calls, std::size(cases));
}

TEST_F(SlabHeapTest, LargeAllocationTagsOnlyItsHeadPage)
{
    auto* ptr = static_cast<u8*>(MUST(heap.allocate(64 * KiB)));
    auto tag = reinterpret_cast<uptr>(provider.page_owner(ptr));
    EXPECT_EQ(tag & 1, 1u);
    EXPECT_EQ(tag >> 1, 4u);
    EXPECT_EQ(provider.page_owner(ptr + PAGE_SIZE), nullptr);
    heap.free(ptr);
    EXPECT_EQ(provider.page_owner(ptr), nullptr);
}

TEST_F(SlabHeapTest, FreeOfNullIsANoOp)
{
    heap.free(nullptr);
    EXPECT_EQ(heap.stats().free_calls, 0u);
    EXPECT_EQ(heap.allocation_size(nullptr), 0u);
}

TEST_F(SlabHeapTest, ClassStatsCarryNames)
{
    EXPECT_STREQ(heap.class_stats(0).name, "kmalloc-16");
    EXPECT_STREQ(heap.class_stats(3).name, "kmalloc-96");
    EXPECT_STREQ(heap.class_stats(8).name, "kmalloc-1k");
    EXPECT_STREQ(heap.class_stats(11).name, "kmalloc-8k");
    for (usize i = 0; i < SlabHeap::class_count; ++i)
        EXPECT_EQ(heap.class_stats(i).object_size, SlabHeap::class_size(i));
}

TEST_F(SlabHeapTest, ProviderFailureBecomesEnomem)
{
    provider.fail_next(2);
    EXPECT_EQ(error_of(heap.allocate(64)), ENOMEM);
    EXPECT_EQ(error_of(heap.allocate(64 * KiB)), ENOMEM);
    EXPECT_EQ(heap.stats().failed_calls, 2u);
    void* ptr = MUST(heap.allocate(64));
    heap.free(ptr);
}

TEST_F(SlabHeapTest, ExhaustionAndRecovery)
{
    HostPageProvider small(4 * MiB);
    SlabHeap tiny_heap(small);
    std::vector<void*> ptrs;
    while (true) {
        auto result = tiny_heap.allocate(64 * KiB);
        if (result.is_error()) {
            EXPECT_EQ(result.error().code(), ENOMEM);
            break;
        }
        ptrs.push_back(result.value());
    }
    EXPECT_EQ(ptrs.size(), 4 * MiB / (64 * KiB));
    EXPECT_EQ(error_of(tiny_heap.allocate(16)), ENOMEM);
    tiny_heap.free(ptrs.back());
    ptrs.pop_back();
    // A freed block is enough for a whole slab of small objects again.
    void* ptr = MUST(tiny_heap.allocate(16));
    tiny_heap.free(ptr);
    for (auto* p : ptrs)
        tiny_heap.free(p);
    tiny_heap.shrink();
    EXPECT_EQ(small.pages_in_use(), 0u);
}

TEST_F(SlabHeapTest, BytesInUseAccounting)
{
    void* a = MUST(heap.allocate(10));
    void* b = MUST(heap.allocate(100));
    void* c = MUST(heap.allocate(5000));
    void* d = MUST(heap.allocate(20000));
    EXPECT_EQ(heap.stats().bytes_in_use, 16u + 128 + 8192 + 32 * KiB);
    EXPECT_EQ(heap.stats().small_allocations_in_use, 3u);
    heap.free(b);
    heap.free(d);
    EXPECT_EQ(heap.stats().bytes_in_use, 16u + 8192);
    heap.free(a);
    heap.free(c);
    EXPECT_EQ(heap.stats().bytes_in_use, 0u);
    EXPECT_EQ(heap.stats().small_allocations_in_use, 0u);
}

TEST_F(SlabHeapTest, StatsAfterLoops)
{
    std::vector<void*> ptrs;
    for (int round = 0; round < 10; ++round) {
        for (int i = 0; i < 100; ++i)
            ptrs.push_back(MUST(heap.allocate(1 + (i * 97) % 10000)));
        for (int i = 0; i < 70; ++i) {
            heap.free(ptrs.back());
            ptrs.pop_back();
        }
    }
    auto stats = heap.stats();
    EXPECT_EQ(stats.alloc_calls, 1000u);
    EXPECT_EQ(stats.free_calls, 700u);
    EXPECT_EQ(stats.small_allocations_in_use + stats.large_allocations_in_use, ptrs.size());
    u64 bytes = 0;
    for (auto* ptr : ptrs)
        bytes += heap.allocation_size(ptr);
    EXPECT_EQ(stats.bytes_in_use, bytes);
    u64 class_objects = 0;
    for (usize i = 0; i < SlabHeap::class_count; ++i)
        class_objects += heap.class_stats(i).objects_in_use;
    EXPECT_EQ(class_objects, stats.small_allocations_in_use);
    EXPECT_EQ(provider.pages_in_use(), stats.slab_pages + stats.large_pages_in_use);
    for (auto* ptr : ptrs)
        heap.free(ptr);
}

TEST_F(SlabHeapTest, InterleavedClassesDoNotDisturbEachOther)
{
    std::vector<std::pair<u8*, usize>> ptrs;
    for (int i = 0; i < 300; ++i) {
        usize size = SlabHeap::class_size(i % SlabHeap::class_count);
        auto* ptr = static_cast<u8*>(MUST(heap.allocate(size)));
        memset(ptr, i & 0xff, size);
        ptrs.push_back({ ptr, size });
    }
    for (usize i = 0; i < ptrs.size(); ++i) {
        auto [ptr, size] = ptrs[i];
        for (usize b = 0; b < size; b += 61)
            ASSERT_EQ(ptr[b], i & 0xff);
    }
    for (usize i = 0; i < ptrs.size(); i += 2)
        heap.free(ptrs[i].first);
    for (usize i = 1; i < ptrs.size(); i += 2)
        heap.free(ptrs[i].first);
    EXPECT_EQ(heap.stats().bytes_in_use, 0u);
}

TEST_F(SlabHeapTest, RandomizedAgainstReferenceModel)
{
    std::mt19937 rng(31337);
    struct Live {
        u8* ptr;
        usize size;
        u8 tag;
    };
    std::vector<Live> live;
    u64 expected_bytes = 0;
    for (int step = 0; step < 30000; ++step) {
        // Bounded so the 16 MiB arena never runs dry: every failure here would be a real bug.
        if (live.empty() || (live.size() < 600 && rng() % 100 < 53)) {
            usize size;
            unsigned pick = rng() % 100;
            if (pick < 70)
                size = 1 + rng() % 256;
            else if (pick < 95)
                size = 1 + rng() % 8192;
            else
                size = 8193 + rng() % (256 * KiB);
            auto result = heap.allocate(size);
            ASSERT_FALSE(result.is_error()) << "size " << size;
            auto* ptr = static_cast<u8*>(result.value());
            u8 tag = static_cast<u8>(rng());
            ptr[0] = tag;
            ptr[size - 1] = tag;
            ptr[size / 2] = tag;
            expected_bytes += heap.allocation_size(ptr);
            live.push_back({ ptr, size, tag });
        } else {
            usize index = rng() % live.size();
            auto entry = live[index];
            ASSERT_EQ(entry.ptr[0], entry.tag);
            ASSERT_EQ(entry.ptr[entry.size - 1], entry.tag);
            ASSERT_EQ(entry.ptr[entry.size / 2], entry.tag);
            expected_bytes -= heap.allocation_size(entry.ptr);
            heap.free(entry.ptr);
            live[index] = live.back();
            live.pop_back();
        }
        if (step % 3000 == 0)
            ASSERT_EQ(heap.stats().bytes_in_use, expected_bytes);
    }
    for (auto& entry : live)
        heap.free(entry.ptr);
    heap.shrink();
    EXPECT_EQ(heap.stats().bytes_in_use, 0u);
    EXPECT_EQ(provider.pages_in_use(), 0u);
    EXPECT_EQ(provider.buddy().check_consistency(), kArena / PAGE_SIZE);
}

TEST_F(SlabHeapTest, ShrinkReturnsEmptySlabs)
{
    for (usize i = 0; i < SlabHeap::class_count; ++i)
        heap.free(MUST(heap.allocate(SlabHeap::class_size(i))));
    EXPECT_GT(provider.pages_in_use(), 0u);
    heap.shrink();
    EXPECT_EQ(provider.pages_in_use(), 0u);
    EXPECT_EQ(heap.stats().slab_pages, 0u);
}

TEST(SlabHeapLifetime, DestructorReturnsSlabPages)
{
    HostPageProvider provider(kArena);
    {
        SlabHeap heap(provider);
        for (int i = 0; i < 1000; ++i)
            MUST(heap.allocate(1 + i % 3000));
    }
    EXPECT_EQ(provider.pages_in_use(), 0u);
}

TEST_F(SlabHeapTest, CallerTrackingIsOffByDefault)
{
    int here;
    EXPECT_FALSE(heap.caller_tracking());
    heap.free(MUST(heap.allocate(32, &here)));
    EXPECT_EQ(heap.allocations_by(&here), 0u);
}

TEST_F(SlabHeapTest, CallerTrackingCountsPerCaller)
{
    int site_a, site_b;
    heap.set_caller_tracking(true);
    std::vector<void*> ptrs;
    for (int i = 0; i < 5; ++i)
        ptrs.push_back(MUST(heap.allocate(100, &site_a)));
    for (int i = 0; i < 3; ++i)
        ptrs.push_back(MUST(heap.allocate(20000, &site_b)));
    ptrs.push_back(MUST(heap.allocate(100)));
    EXPECT_EQ(heap.allocations_by(&site_a), 5u);
    EXPECT_EQ(heap.allocations_by(&site_b), 3u);
    int unknown;
    EXPECT_EQ(heap.allocations_by(&unknown), 0u);
    EXPECT_EQ(heap.allocations_by(nullptr), 0u);
    u64 bytes_a = 0, bytes_b = 0;
    for (auto& entry : heap.caller_table()) {
        if (entry.caller == &site_a)
            bytes_a = entry.bytes;
        if (entry.caller == &site_b)
            bytes_b = entry.bytes;
    }
    // Usable sizes: a 100-byte request is a 128-byte object, 20000 bytes is a 32 KiB block.
    EXPECT_EQ(bytes_a, 5u * 128);
    EXPECT_EQ(bytes_b, 3u * 32 * KiB);
    for (auto* ptr : ptrs)
        heap.free(ptr);
}

TEST_F(SlabHeapTest, CallerTableOverflowIsCountedInBulk)
{
    heap.set_caller_tracking(true);
    std::vector<char> sites(100);
    for (auto& site : sites)
        heap.free(MUST(heap.allocate(16, &site)));
    usize tracked = 0;
    for (auto& entry : heap.caller_table())
        tracked += entry.caller != nullptr;
    EXPECT_EQ(tracked, SlabHeap::caller_table_size);
    EXPECT_EQ(heap.untracked_allocations(), 100u - SlabHeap::caller_table_size);
    usize found = 0;
    for (auto& site : sites)
        found += heap.allocations_by(&site);
    EXPECT_EQ(found, SlabHeap::caller_table_size);
}

TEST_F(SlabHeapTest, TopCallersAreSortedByCount)
{
    heap.set_caller_tracking(true);
    char sites[6];
    for (int s = 0; s < 6; ++s)
        for (int i = 0; i < (s * 7) % 6 + 1; ++i)
            heap.free(MUST(heap.allocate(16, &sites[s])));
    CallerStat top[3];
    usize count = heap.top_callers(Span<CallerStat>(top));
    ASSERT_EQ(count, 3u);
    // Counts per site: s*7%6+1 = 1, 2, 3, 4, 5, 6.
    EXPECT_EQ(top[0].caller, &sites[5]);
    EXPECT_EQ(top[0].allocations, 6u);
    EXPECT_EQ(top[1].caller, &sites[4]);
    EXPECT_EQ(top[2].caller, &sites[3]);
    CallerStat all[10];
    EXPECT_EQ(heap.top_callers(Span<CallerStat>(all)), 6u);
    for (int i = 1; i < 6; ++i)
        EXPECT_GE(all[i - 1].allocations, all[i].allocations);
}

TEST_F(SlabHeapTest, ResetAndNullCaller)
{
    heap.set_caller_tracking(true);
    int site;
    heap.free(MUST(heap.allocate(16, &site)));
    heap.free(MUST(heap.allocate(16, nullptr)));
    EXPECT_EQ(heap.allocations_by(&site), 1u);
    EXPECT_EQ(heap.untracked_allocations(), 1u);
    heap.reset_caller_stats();
    EXPECT_EQ(heap.allocations_by(&site), 0u);
    EXPECT_EQ(heap.untracked_allocations(), 0u);
}

TEST_F(SlabHeapTest, FailedAllocationsAreNotAttributed)
{
    heap.set_caller_tracking(true);
    int site;
    EXPECT_TRUE(heap.allocate(0, &site).is_error());
    EXPECT_TRUE(heap.allocate(2 * GiB, &site).is_error());
    EXPECT_EQ(heap.allocations_by(&site), 0u);
    heap.set_caller_tracking(false);
    heap.free(MUST(heap.allocate(16, &site)));
    EXPECT_EQ(heap.allocations_by(&site), 0u);
}

class SlabHeapDeathTest : public SlabHeapTest { };

TEST_F(SlabHeapDeathTest, DoubleFreeOfSmallObject)
{
    void* keep = MUST(heap.allocate(64));
    void* ptr = MUST(heap.allocate(64));
    heap.free(ptr);
    EXPECT_DEATH(heap.free(ptr), "is_double_free");
    heap.free(keep);
}

TEST_F(SlabHeapDeathTest, DoubleFreeOfLargeBlock)
{
    void* ptr = MUST(heap.allocate(100 * KiB));
    heap.free(ptr);
    EXPECT_DEATH(heap.free(ptr), "is_heap_pointer");
}

TEST_F(SlabHeapDeathTest, StackPointer)
{
    int local;
    EXPECT_DEATH(heap.free(&local), "is_heap_pointer");
}

TEST_F(SlabHeapDeathTest, UntaggedProviderPage)
{
    void* page = MUST(provider.allocate_pages(0));
    EXPECT_DEATH(heap.free(page), "is_heap_pointer");
    provider.free_pages(page, 0);
}

TEST_F(SlabHeapDeathTest, InteriorPointerOfSmallObject)
{
    auto* ptr = static_cast<u8*>(MUST(heap.allocate(256)));
    EXPECT_DEATH(heap.free(ptr + 16), "is_object_start");
}

TEST_F(SlabHeapDeathTest, InteriorPointerOfLargeBlock)
{
    auto* ptr = static_cast<u8*>(MUST(heap.allocate(64 * KiB)));
    EXPECT_DEATH(heap.free(ptr + 16), "VERIFY");
    EXPECT_DEATH(heap.free(ptr + PAGE_SIZE), "is_heap_pointer");
}

TEST_F(SlabHeapDeathTest, ObjectOfAStandaloneCache)
{
    SlabCache other("other", 64, 8, provider);
    void* ptr = MUST(other.allocate());
    EXPECT_DEATH(heap.free(ptr), "is_our_cache");
    other.free(ptr);
}

TEST_F(SlabHeapDeathTest, AllocationSizeOfForeignPointer)
{
    int local;
    EXPECT_DEATH((void)heap.allocation_size(&local), "VERIFY");
}
