// Allocator microbenchmarks: SlabHeap next to glibc malloc for the same sizes, and the buddy
// allocator. Names pair up (BM_Alloc/slab/64 beside BM_Alloc/malloc/64) and are registered in that
// order so the report reads as a comparison.
#include "support/HostPageProvider.h"
#include <lib/mm/BuddyAllocator.h>
#include <lib/mm/SlabHeap.h>
#include <benchmark/benchmark.h>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

constexpr usize kArena = 64 * MiB;
constexpr int kBatch = 1000;

void alloc_free_slab(benchmark::State& state)
{
    HostPageProvider provider(kArena);
    SlabHeap heap(provider);
    usize size = state.range(0);
    for (auto _ : state) {
        void* ptr = MUST(heap.allocate(size));
        benchmark::DoNotOptimize(ptr);
        heap.free(ptr);
    }
    state.SetItemsProcessed(state.iterations());
}

void alloc_free_malloc(benchmark::State& state)
{
    usize size = state.range(0);
    for (auto _ : state) {
        void* ptr = malloc(size);
        benchmark::DoNotOptimize(ptr);
        free(ptr);
    }
    state.SetItemsProcessed(state.iterations());
}

void batch_slab(benchmark::State& state)
{
    HostPageProvider provider(kArena);
    SlabHeap heap(provider);
    usize size = state.range(0);
    std::vector<void*> ptrs(kBatch);
    for (auto _ : state) {
        for (auto& ptr : ptrs)
            ptr = MUST(heap.allocate(size));
        benchmark::DoNotOptimize(ptrs.data());
        for (auto* ptr : ptrs)
            heap.free(ptr);
    }
    state.SetItemsProcessed(state.iterations() * kBatch);
}

void batch_malloc(benchmark::State& state)
{
    usize size = state.range(0);
    std::vector<void*> ptrs(kBatch);
    for (auto _ : state) {
        for (auto& ptr : ptrs) {
            ptr = malloc(size);
            benchmark::DoNotOptimize(ptr);
        }
        benchmark::ClobberMemory();
        for (auto* ptr : ptrs)
            free(ptr);
    }
    state.SetItemsProcessed(state.iterations() * kBatch);
}

// The buddy allocator only does address arithmetic, so any page-aligned base will do.
struct BuddyFixture {
    explicit BuddyFixture(u64 pages)
        : frames(pages)
        , buddy(PhysAddr(64 * MiB), Span<PageFrame>(frames.data(), frames.size()))
    {
        buddy.add_free_range(PhysAddr(64 * MiB), PhysAddr(64 * MiB + pages * PAGE_SIZE));
    }
    std::vector<PageFrame> frames;
    BuddyAllocator buddy;
};

void buddy_alloc_free(benchmark::State& state)
{
    BuddyFixture fixture(64 * MiB / PAGE_SIZE);
    unsigned order = state.range(0);
    // Hold one page so every iteration splits and re-merges a whole max-order block, not just
    // the cheap case of an already split block.
    PhysAddr hold = MUST(fixture.buddy.allocate(0));
    for (auto _ : state) {
        PhysAddr block = MUST(fixture.buddy.allocate(order));
        benchmark::DoNotOptimize(block);
        fixture.buddy.free(block, order);
    }
    fixture.buddy.free(hold, 0);
    state.SetItemsProcessed(state.iterations());
}

void buddy_batch(benchmark::State& state)
{
    BuddyFixture fixture(64 * MiB / PAGE_SIZE);
    unsigned order = state.range(0);
    std::vector<PhysAddr> blocks(kBatch);
    for (auto _ : state) {
        for (auto& block : blocks)
            block = MUST(fixture.buddy.allocate(order));
        benchmark::DoNotOptimize(blocks.data());
        for (auto block : blocks)
            fixture.buddy.free(block, order);
    }
    state.SetItemsProcessed(state.iterations() * kBatch);
}

int register_benchmarks()
{
    for (long size : { 16, 64, 256, 1024, 4096 }) {
        benchmark::RegisterBenchmark("BM_Alloc/slab", alloc_free_slab)->Arg(size);
        benchmark::RegisterBenchmark("BM_Alloc/malloc", alloc_free_malloc)->Arg(size);
    }
    for (long order : { 0, 4 })
        benchmark::RegisterBenchmark("BM_Buddy/alloc_free", buddy_alloc_free)->Arg(order);
    for (long size : { 64, 1024 }) {
        benchmark::RegisterBenchmark("BM_Batch1000/slab", batch_slab)->Arg(size);
        benchmark::RegisterBenchmark("BM_Batch1000/malloc", batch_malloc)->Arg(size);
    }
    for (long order : { 0, 4 })
        benchmark::RegisterBenchmark("BM_Batch1000/buddy", buddy_batch)->Arg(order);
    return 0;
}

[[maybe_unused]] int s_registered = register_benchmarks();

}
