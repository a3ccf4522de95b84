#pragma once
// SlabHeap: kmalloc/kfree. Small sizes come from one SlabCache per size class; anything above
// 8 KiB goes straight to the page provider as a 2^order block.
//
// Interface:
//   SlabHeap heap(provider);
//   void* p = TRY(heap.allocate(size));                                 // or allocate(size, caller)
//   heap.free(p);                                                        // nullptr is a no-op
//
// free() needs no size and no header: the provider's per-page owner word says what a page is.
//
//   owner == SlabCache* (low bit 0)       -> a slab page of that size class
//   owner == (order << 1) | 1             -> the head page of a large allocation of 2^order pages
//   owner == nullptr                      -> not ours: VERIFY failure
//
// Alignment: every block is 16-byte aligned; power-of-two classes are naturally aligned (up to
// 4 KiB), and large blocks are aligned to their size. Not thread-safe: the kernel wraps it in a lock.
#include <ktl/ErrorOr.h>
#include <ktl/Span.h>
#include <ktl/Types.h>
#include <lib/mm/PageProvider.h>
#include <lib/mm/SlabCache.h>

struct SlabHeapStats {
    // Usable bytes handed out and not yet freed (size-class or block size, not the request).
    u64 bytes_in_use { 0 };
    u64 small_allocations_in_use { 0 };
    u64 large_allocations_in_use { 0 };
    u64 large_pages_in_use { 0 };
    u64 slab_pages { 0 };
    u64 alloc_calls { 0 };
    u64 free_calls { 0 };
    u64 failed_calls { 0 };
    u64 large_alloc_calls { 0 };
    u64 large_free_calls { 0 };
};

// One row of the "who allocates" debug table.
struct CallerStat {
    void* caller { nullptr };
    u64 allocations { 0 };
    u64 bytes { 0 };
};

class SlabHeap {
public:
    static constexpr usize class_count = 12;
    static constexpr usize max_small_size = 8192;
    static constexpr usize max_allocation_size = 1 * GiB;
    static constexpr usize minimum_alignment = 16;
    static constexpr usize caller_table_size = 64;

    explicit SlabHeap(PageProvider&);
    // Returns every slab to the provider. Large blocks still allocated are the caller's leak.
    ~SlabHeap();
    SlabHeap(const SlabHeap&) = delete;
    SlabHeap& operator=(const SlabHeap&) = delete;

    // EINVAL for size 0, ENOMEM above max_allocation_size or when memory runs out.
    ErrorOr<void*> allocate(usize size);
    // As above, and counts the allocation against `caller` while caller tracking is on.
    ErrorOr<void*> allocate(usize size, void* caller);
    // nullptr is a no-op. VERIFYs that ptr is a live allocation from this heap.
    void free(void* ptr);
    // The usable size of a live allocation (its class size or block size); 0 for nullptr.
    usize allocation_size(void* ptr);
    // Releases every cached empty slab.
    void shrink();

    // Size classes: index 0..class_count-1, or class_count for sizes served by whole pages.
    static usize class_size(usize index);
    static usize class_index_for(usize size);
    SlabCacheStats class_stats(usize index) const;
    SlabHeapStats stats() const;

    // Debug accounting: which call sites allocate. Off by default; the table is fixed so it works
    // in any context, and callers past its capacity are only counted in untracked_allocations().
    void set_caller_tracking(bool enabled) { m_caller_tracking = enabled; }
    bool caller_tracking() const { return m_caller_tracking; }
    u64 allocations_by(void* caller) const;
    // The raw open-addressed table; empty slots have caller == nullptr.
    Span<const CallerStat> caller_table() const { return Span<const CallerStat>(m_callers, caller_table_size); }
    // Copies the busiest callers into `out`, most allocations first. Returns how many were written.
    usize top_callers(Span<CallerStat> out) const;
    u64 untracked_allocations() const { return m_untracked_allocations; }
    void reset_caller_stats();

private:
    static usize slot_for(void* caller);
    void record_caller(void* caller, usize bytes);
    bool is_our_cache(const void* owner) const;
    static void* large_tag(unsigned order) { return reinterpret_cast<void*>((static_cast<uptr>(order) << 1) | 1); }

    PageProvider& m_provider;
    SlabCache* m_caches[class_count];
    alignas(SlabCache) u8 m_cache_storage[class_count][sizeof(SlabCache)];

    u64 m_bytes_in_use { 0 };
    u64 m_small_in_use { 0 };
    u64 m_large_in_use { 0 };
    u64 m_large_pages_in_use { 0 };
    u64 m_alloc_calls { 0 };
    u64 m_free_calls { 0 };
    u64 m_failed_calls { 0 };
    u64 m_large_alloc_calls { 0 };
    u64 m_large_free_calls { 0 };

    bool m_caller_tracking { false };
    CallerStat m_callers[caller_table_size];
    u64 m_untracked_allocations { 0 };
};
