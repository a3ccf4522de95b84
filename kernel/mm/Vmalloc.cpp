#include <Panic.h>
#include <lib/mm/RegionSet.h>
#include <mm/MemoryManager.h>
#include <mm/Vmalloc.h>
#include <sync/Spinlock.h>

namespace vmalloc {

namespace {
// One record per live allocation; a small table is enough for boot-time users.
struct Allocation {
    VirtAddr base; // null for a free record
    u64 pages;
    // The allocation and the guard page after it.
    VirtAddr end() const { return base + (pages + 1) * PAGE_SIZE; }
};
constexpr usize MAX_ALLOCATIONS = 64;

Spinlock g_lock { LockRank::MemoryManager };
VirtRegionSet g_free GUARDED_BY(g_lock);
bool g_ready GUARDED_BY(g_lock) = false;
Allocation g_allocations[MAX_ALLOCATIONS] GUARDED_BY(g_lock);
u64 g_pages_in_use = 0;

void unmap_and_free(VirtAddr base, u64 pages)
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
    VirtAddr base;
    usize slot;
    {
        SpinlockLocker locker(g_lock);
        if (!g_ready) {
            MUST(g_free.add(VirtAddr(RANGE_START), VirtAddr(RANGE_END)));
            g_ready = true;
        }
        for (slot = 0; slot < MAX_ALLOCATIONS && !g_allocations[slot].base.is_null(); ++slot) { }
        if (slot == MAX_ALLOCATIONS)
            return ENOMEM;
        base = TRY(g_free.find_fit((pages + 1) * PAGE_SIZE, PAGE_SIZE));
        Allocation allocation { base, pages };
        TRY(g_free.subtract(allocation.base, allocation.end()));
        g_allocations[slot] = allocation;
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
            MUST(g_free.add(base, g_allocations[slot].end()));
            g_allocations[slot] = {};
            return ENOMEM;
        }
    }
    __atomic_add_fetch(&g_pages_in_use, pages, __ATOMIC_RELAXED);
    return base.as_ptr();
}

void free(void* pointer)
{
    if (!pointer)
        return;
    VirtAddr base = VirtAddr::from_ptr(pointer);
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
    if (allocation.base.is_null())
        panic("vfree: 0x%llx was not returned by vmalloc", base.ull());
    unmap_and_free(allocation.base, allocation.pages);
    __atomic_sub_fetch(&g_pages_in_use, allocation.pages, __ATOMIC_RELAXED);
    SpinlockLocker locker(g_lock);
    MUST(g_free.add(allocation.base, allocation.end()));
}

u64 pages_in_use() { return __atomic_load_n(&g_pages_in_use, __ATOMIC_RELAXED); }

} // namespace vmalloc
