#include <Panic.h>
#include <lib/mm/RegionSet.h>
#include <mm/MemoryManager.h>
#include <mm/Vmalloc.h>
#include <sync/Spinlock.h>

namespace vmalloc {

namespace {
// One record per live allocation; a small table is enough for boot-time users.
struct Allocation {
    u64 base;
    u64 pages;
};
constexpr usize MAX_ALLOCATIONS = 64;

Spinlock g_lock { LockRank::MemoryManager };
RegionSet g_free GUARDED_BY(g_lock);
bool g_ready GUARDED_BY(g_lock) = false;
Allocation g_allocations[MAX_ALLOCATIONS] GUARDED_BY(g_lock);
u64 g_pages_in_use = 0;

void unmap_and_free(u64 base, u64 pages)
{
    for (u64 i = 0; i < pages; ++i) {
        auto phys = mm::unmap(base + i * PAGE_SIZE);
        if (!phys.is_error())
            mm::free_pages(phys.value(), 0);
    }
}
}

ErrorOr<void*> allocate(usize size)
{
    if (size == 0)
        return EINVAL;
    if (size > 1 * GiB)
        return ENOMEM;
    u64 pages = align_up(size, PAGE_SIZE) / PAGE_SIZE;
    u64 base;
    usize slot;
    {
        SpinlockLocker locker(g_lock);
        if (!g_ready) {
            MUST(g_free.add(RANGE_START, RANGE_END));
            g_ready = true;
        }
        for (slot = 0; slot < MAX_ALLOCATIONS && g_allocations[slot].base; ++slot) { }
        if (slot == MAX_ALLOCATIONS)
            return ENOMEM;
        base = TRY(g_free.find_fit((pages + 1) * PAGE_SIZE, PAGE_SIZE));
        TRY(g_free.subtract(base, base + (pages + 1) * PAGE_SIZE));
        g_allocations[slot] = { base, pages };
    }
    // Map outside the vmalloc lock: mm::map takes the page-table lock, and allocation takes pages.
    for (u64 i = 0; i < pages; ++i) {
        auto phys = mm::allocate_pages(0);
        ErrorOr<void> mapped = ENOMEM;
        if (!phys.is_error()) {
            mapped = mm::map(base + i * PAGE_SIZE, phys.value(), PageFlags::Writable | PageFlags::NoExecute);
            if (mapped.is_error())
                mm::free_pages(phys.value(), 0);
        }
        if (mapped.is_error()) {
            unmap_and_free(base, i);
            SpinlockLocker locker(g_lock);
            g_allocations[slot] = {};
            MUST(g_free.add(base, base + (pages + 1) * PAGE_SIZE));
            return ENOMEM;
        }
    }
    __atomic_add_fetch(&g_pages_in_use, pages, __ATOMIC_RELAXED);
    return (void*)base;
}

void free(void* pointer)
{
    if (!pointer)
        return;
    u64 base = (u64)pointer;
    Allocation allocation {};
    {
        SpinlockLocker locker(g_lock);
        for (auto& a : g_allocations) {
            if (a.base == base) {
                allocation = a;
                a = {};
                break;
            }
        }
    }
    if (!allocation.base)
        panic("vfree: 0x%llx was not returned by vmalloc", (unsigned long long)base);
    unmap_and_free(allocation.base, allocation.pages);
    __atomic_sub_fetch(&g_pages_in_use, allocation.pages, __ATOMIC_RELAXED);
    SpinlockLocker locker(g_lock);
    MUST(g_free.add(allocation.base, allocation.base + (allocation.pages + 1) * PAGE_SIZE));
}

u64 pages_in_use() { return __atomic_load_n(&g_pages_in_use, __ATOMIC_RELAXED); }

} // namespace vmalloc
