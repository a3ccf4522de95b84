#include <Panic.h>
#include <debug/Symbols.h>
#include <lib/mm/PageFrame.h>
#include <log/Log.h>
#include <mm/Kmalloc.h>
#include <mm/MemoryManager.h>
#include <sync/Spinlock.h>
#include <new>

namespace kheap {

namespace {
// Slab pages come from the buddy allocator through the direct map; a page's owner (its slab
// cache, or the order of a large allocation) lives in its PageFrame, as Linux keeps it in struct page.
class BuddyPageProvider final : public PageProvider {
public:
    ErrorOr<void*> allocate_pages(unsigned order) override
    {
        PhysAddr phys = TRY(mm::allocate_pages(order));
        return mm::phys_to_virt(phys);
    }
    void free_pages(void* pages, unsigned order) override { mm::free_pages(mm::virt_to_phys(pages), order); }
    void set_page_owner(void* page, void* owner) override
    {
        auto* frame = mm::buddy_for_tests().frame_for(mm::virt_to_phys(page));
        VERIFY(frame);
        frame->owner = owner;
    }
    void* page_owner(void* page) override
    {
        auto* frame = mm::buddy_for_tests().frame_for(mm::virt_to_phys(page));
        return frame ? frame->owner : nullptr;
    }
};

BuddyPageProvider g_provider;
Spinlock g_lock { LockRank::Heap };
alignas(SlabHeap) u8 g_heap_storage[sizeof(SlabHeap)];
SlabHeap* g_heap GUARDED_BY(g_lock) = nullptr;

bool is_heap_pointer(const void* pointer)
{
    return (u64)pointer >= mm::DIRECT_MAP_BASE && (u64)pointer < mm::DIRECT_MAP_BASE + (1ull << 46);
}
}

void init()
{
    SpinlockLocker locker(g_lock);
    g_heap = new (g_heap_storage) SlabHeap(g_provider);
#ifndef NDEBUG
    g_heap->set_caller_tracking(true);
#endif
}

SlabHeapStats stats()
{
    SpinlockLocker locker(g_lock);
    return g_heap->stats();
}

SlabHeap& heap_for_tests() NO_THREAD_SAFETY_ANALYSIS { return *g_heap; }

void set_caller_tracking(bool enabled)
{
    SpinlockLocker locker(g_lock);
    g_heap->set_caller_tracking(enabled);
}

void dump_stats()
{
    SlabHeapStats heap;
    SlabCacheStats classes[SlabHeap::class_count];
    {
        SpinlockLocker locker(g_lock);
        heap = g_heap->stats();
        for (usize i = 0; i < SlabHeap::class_count; ++i)
            classes[i] = g_heap->class_stats(i);
    }
    auto pages = mm::page_stats();
    log_info("pages: %llu total, %llu free, %llu used (%llu MiB free)", (unsigned long long)pages.total_pages,
        (unsigned long long)pages.free_pages, (unsigned long long)pages.used_pages,
        (unsigned long long)(pages.free_pages * PAGE_SIZE / MiB));
    log_info("kmalloc: %llu bytes in use, %llu small + %llu large allocations, %llu slab pages, %llu calls",
        (unsigned long long)heap.bytes_in_use, (unsigned long long)heap.small_allocations_in_use,
        (unsigned long long)heap.large_allocations_in_use, (unsigned long long)heap.slab_pages, (unsigned long long)heap.alloc_calls);
    for (usize i = 0; i < SlabHeap::class_count; ++i)
        log_info("  kmalloc-%-5zu %6llu/%-6llu objects in %llu slabs", SlabHeap::class_size(i),
            (unsigned long long)classes[i].objects_in_use, (unsigned long long)classes[i].objects_total,
            (unsigned long long)classes[i].slabs);
}

void dump_callers()
{
    CallerStat top[16];
    usize count;
    {
        SpinlockLocker locker(g_lock);
        count = g_heap->top_callers(Span<CallerStat>(top, 16));
    }
    char symbol[160];
    for (usize i = 0; i < count; ++i) {
        symbols::describe((u64)top[i].caller, symbol, sizeof(symbol));
        log_info("  %8llu allocations %10llu bytes  %s", (unsigned long long)top[i].allocations, (unsigned long long)top[i].bytes, symbol);
    }
}

} // namespace kheap

static ErrorOr<void*> allocate_for(usize size, void* caller)
{
    SpinlockLocker locker(kheap::g_lock);
    if (!kheap::g_heap)
        return ENOMEM;
    return kheap::g_heap->allocate(size, caller);
}

ErrorOr<void*> try_kmalloc(usize size) { return allocate_for(size, __builtin_return_address(0)); }

ErrorOr<void*> try_kzalloc(usize size)
{
    void* pointer = TRY(allocate_for(size, __builtin_return_address(0)));
    __builtin_memset(pointer, 0, size);
    return pointer;
}

extern "C" void* kmalloc(size_t size)
{
    auto result = allocate_for(size, __builtin_return_address(0));
    return result.is_error() ? nullptr : result.value();
}

extern "C" void* kzalloc(size_t size)
{
    auto result = allocate_for(size, __builtin_return_address(0));
    if (result.is_error())
        return nullptr;
    __builtin_memset(result.value(), 0, size);
    return result.value();
}

extern "C" void kfree(void* pointer)
{
    if (!pointer)
        return;
    if (!kheap::is_heap_pointer(pointer))
        panic("kfree: 0x%llx is not a heap pointer", (unsigned long long)pointer);
    SpinlockLocker locker(kheap::g_lock);
    kheap::g_heap->free(pointer);
}

// C++ allocation: the kernel only uses the nothrow forms; a plain `new` that fails panics.
void* operator new(size_t size, const std::nothrow_t&) noexcept
{
    auto result = allocate_for(size, __builtin_return_address(0));
    return result.is_error() ? nullptr : result.value();
}
void* operator new[](size_t size, const std::nothrow_t&) noexcept
{
    auto result = allocate_for(size, __builtin_return_address(0));
    return result.is_error() ? nullptr : result.value();
}
void* operator new(size_t size)
{
    auto result = allocate_for(size, __builtin_return_address(0));
    if (result.is_error())
        panic("operator new(%zu): %s", size, result.error().name());
    return result.value();
}
void* operator new[](size_t size) { return operator new(size); }
void operator delete(void* pointer) noexcept { kfree(pointer); }
void operator delete(void* pointer, size_t) noexcept { kfree(pointer); }
void operator delete[](void* pointer) noexcept { kfree(pointer); }
void operator delete[](void* pointer, size_t) noexcept { kfree(pointer); }
