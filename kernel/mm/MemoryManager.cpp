#include <Panic.h>
#include <arch/Cpu.h>
#include <arch/KernelStacks.h>
#include <arch/Mmu.h>
#include <lib/mm/BumpAllocator.h>
#include <lib/boot/Multiboot2.h>
#include <lib/mm/RegionSet.h>
#include <log/Log.h>
#include <mm/MemoryManager.h>
#include <sync/Spinlock.h>
#include <new>

extern "C" u8 __kernel_phys_start[];
extern "C" u8 __kernel_phys_end[];
extern "C" u8 __text_start[], __text_end[];
extern "C" u8 __rodata_start[], __rodata_end[];
extern "C" u8 __data_start[], __kernel_end[];

namespace mm {

namespace {
// Page tables built at boot. The 256 upper-half PDPTs take 1 MiB. The PML4 and the PDs and PTs of
// the kernel image and the direct map fit in 4 MiB: one PD per GiB of RAM with 2 MiB pages, plus a
// PT per unaligned range end, covers more RAM than a page-frame array below 1 GiB can describe.
// Whatever the tables leave unused goes to the buddy allocator.
constexpr u64 EARLY_TABLE_RESERVE = 256 * PAGE_SIZE + 4 * MiB;

// Page tables built before the switch: pages from the bump allocator, reached through the boot
// alias of the first GiB.
class EarlyTableMemory final : public PageTableMemory {
public:
    explicit EarlyTableMemory(BumpAllocator& bump) : m_bump(bump) { }
    ErrorOr<PhysAddr> allocate_table() override
    {
        PhysAddr table = TRY(m_bump.allocate(PAGE_SIZE, PAGE_SIZE));
        __builtin_memset(early_phys_to_virt(table), 0, PAGE_SIZE);
        m_tables++;
        return table;
    }
    void free_table(PhysAddr) override { } // The bump allocator never frees; boot only builds.
    u64* table(PhysAddr phys) override { return (u64*)early_phys_to_virt(phys); }
    u64 tables() const { return m_tables; }

private:
    BumpAllocator& m_bump;
    u64 m_tables { 0 };
};

// Page tables after the switch: pages from the buddy allocator, reached through the direct map.
class KernelTableMemory final : public PageTableMemory {
public:
    ErrorOr<PhysAddr> allocate_table() override
    {
        PhysAddr table = TRY(allocate_pages(0));
        __builtin_memset(phys_to_virt(table), 0, PAGE_SIZE);
        return table;
    }
    void free_table(PhysAddr table) override { free_pages(table, 0); }
    u64* table(PhysAddr phys) override { return (u64*)phys_to_virt(phys); }
    void invalidate(VirtAddr address) override { arch::flush_tlb_page(address); }
};

Layout g_layout;
bool g_initialized = false;

Spinlock g_page_lock { LockRank::PageAllocator };
alignas(BuddyAllocator) u8 g_buddy_storage[sizeof(BuddyAllocator)];
BuddyAllocator* g_buddy GUARDED_BY(g_page_lock) = nullptr;

Spinlock g_table_lock { LockRank::MemoryManager };
KernelTableMemory g_kernel_table_memory;
alignas(PageTable) u8 g_kernel_table_storage[sizeof(PageTable)];
PageTable* g_kernel_table GUARDED_BY(g_table_lock) = nullptr;

[[noreturn]] void fail(const char* what, Error error) { panic("mm: %s: %s", what, error.name()); }

void map_image_range(PageTable& table, u8* start, u8* end, PageFlags flags)
{
    for (u64 virt = align_down((u64)start, PAGE_SIZE); virt < align_up((u64)end, PAGE_SIZE); virt += PAGE_SIZE) {
        // Guard pages stay unmapped: an overflow faults on them instead of corrupting .bss.
        if (kernel_stacks::guard_hit(virt))
            continue;
        auto result = table.map(virt, virt - KERNEL_VMA, flags | PageFlags::Global);
        if (result.is_error())
            fail("mapping the kernel image", result.error());
    }
}
}

void* early_phys_to_virt(PhysAddr phys)
{
    if (g_initialized)
        return phys_to_virt(phys);
    if (phys >= EARLY_ALIAS_LIMIT)
        panic("mm: physical address 0x%llx is beyond the boot mapping of the first GiB", (unsigned long long)phys);
    return (void*)(phys + KERNEL_VMA);
}

PhysAddr virt_to_phys(const void* pointer)
{
    u64 virt = (u64)pointer;
    // The two linear ranges first: the direct map and the kernel image.
    if (virt >= DIRECT_MAP_BASE && virt < DIRECT_MAP_BASE + (1ull << 46))
        return virt - DIRECT_MAP_BASE;
    if (virt >= KERNEL_VMA && virt < (u64)__kernel_end)
        return virt - KERNEL_VMA;
    // Anything else (modules, vmalloc) is page-mapped: ask the page tables.
    auto translation = translate(virt);
    if (translation.is_error())
        panic("mm: virt_to_phys(0x%llx): address is not mapped", (unsigned long long)virt);
    return translation.value().phys;
}

void init(const BootInfo& info, PhysAddr boot_info_start, PhysAddr boot_info_end)
{
    g_layout.kernel_phys_start = (PhysAddr)__kernel_phys_start;
    g_layout.kernel_phys_end = (PhysAddr)__kernel_phys_end;

    // Usable RAM, minus everything that is already in use.
    RegionSet usable;
    RegionSet mapped;
    PhysAddr highest = 0;
    for (auto& entry : info.memory_map()) {
        u64 end = entry.base + entry.length;
        if (entry.type == Multiboot2::MemoryAvailable) {
            if (usable.add(entry.base, end).is_error())
                panic("mm: too many memory map regions");
        }
        // The direct map covers RAM of every kind, so ACPI tables are reachable through it.
        if (entry.type == Multiboot2::MemoryAvailable || entry.type == Multiboot2::MemoryAcpiReclaimable
            || entry.type == Multiboot2::MemoryAcpiNvs) {
            if (mapped.add(align_down(entry.base, PAGE_SIZE), align_up(end, PAGE_SIZE)).is_error())
                panic("mm: too many memory map regions");
            if (end > highest)
                highest = end;
        }
    }
    usable.page_align_inward();
    if (usable.is_empty())
        panic("mm: the memory map has no whole page of usable RAM");
    // The page-frame array starts at the lowest RAM page, before anything is reserved, so frames
    // exist (as Reserved) for the kernel image and boot data too.
    PhysAddr lowest = usable[0].start;
    g_layout.usable_bytes = usable.total_bytes();

    auto reserve = [&](PhysAddr start, PhysAddr end, const char* what) {
        if (usable.subtract(align_down(start, PAGE_SIZE), align_up(end, PAGE_SIZE)).is_error())
            panic("mm: cannot reserve %s", what);
    };
    // The first MiB holds the BIOS data area, the EBDA and option ROMs; stay out of it.
    reserve(0, 1 * MiB, "low memory");
    reserve(g_layout.kernel_phys_start, g_layout.kernel_phys_end, "the kernel image");
    reserve(boot_info_start, boot_info_end, "the multiboot information");
    for (auto& module : info.boot_modules())
        reserve(module.start, module.end, "a boot module");
    if (usable.is_empty())
        panic("mm: no usable RAM left after reserving the kernel and boot data");

    // The bump allocator: the page-frame array plus the new page tables, below the boot alias limit.
    u64 page_count = (align_up(highest, PAGE_SIZE) - lowest) / PAGE_SIZE;
    u64 bump_size = align_up(BuddyAllocator::metadata_bytes(page_count), PAGE_SIZE) + EARLY_TABLE_RESERVE;
    auto bump_start = usable.find_fit(bump_size, PAGE_SIZE, 1 * MiB);
    if (bump_start.is_error() || bump_start.value() + bump_size > EARLY_ALIAS_LIMIT)
        panic("mm: no %llu KiB of RAM below 1 GiB for the early allocator", (unsigned long long)(bump_size / KiB));
    BumpAllocator bump(bump_start.value(), bump_start.value() + bump_size);
    g_layout.bump_start = bump.start();
    g_layout.bump_end = bump.end();

    // New page tables: the kernel image with per-section permissions, then the direct map.
    EarlyTableMemory early(bump);
    auto created = PageTable::create(early);
    if (created.is_error())
        fail("allocating the kernel PML4", created.error());
    PageTable table = created.release_value();
    // 1 GiB pages only where the CPU has them (qemu64 does not).
    PageSize largest = arch::has_1g_pages() ? PageSize::Size1G : PageSize::Size2M;
    table.set_largest_page_size(largest);
    // Every address space will copy PML4 entries 256-511 from this table, once, when it is
    // created. So all 256 PDPTs exist from the start and are pinned: unmapping the last page of a
    // slot must never free a PDPT that other PML4s still point to.
    table.set_upper_half_pdpts_pinned(true);
    auto populated = table.populate_upper_half_pdpts();
    if (populated.is_error())
        fail("allocating the kernel's upper-half PDPTs", populated.error());
    map_image_range(table, __text_start, __text_end, PageFlags::None);
    map_image_range(table, __rodata_start, __rodata_end, PageFlags::NoExecute);
    map_image_range(table, __data_start, __kernel_end, PageFlags::Writable | PageFlags::NoExecute);
    u64 direct = 0;
    for (auto& range : mapped) {
        auto result = table.map_range(DIRECT_MAP_BASE + range.start, range.start, range.size(),
            PageFlags::Writable | PageFlags::NoExecute | PageFlags::Global, true);
        if (result.is_error())
            fail("building the direct map", result.error());
        direct += range.size();
    }
    g_layout.direct_mapped_bytes = direct;
    g_layout.page_tables_at_boot = early.tables();

    arch::activate_kernel_page_table(table.root());
    g_initialized = true;

    // Now the page-frame array, through the direct map, then hand the rest to the buddy allocator.
    u64 frames_bytes = BuddyAllocator::metadata_bytes(page_count);
    auto frames_phys = bump.allocate(frames_bytes, 64);
    if (frames_phys.is_error())
        fail("allocating the page-frame array", frames_phys.error());
    auto* frames = (PageFrame*)phys_to_virt(frames_phys.value());
    for (u64 i = 0; i < page_count; ++i)
        new (&frames[i]) PageFrame();
    bump.freeze();
    g_layout.bump_used_end = bump.current();
    reserve(bump.start(), align_up(bump.current(), PAGE_SIZE), "the early allocator");

    {
        SpinlockLocker locker(g_page_lock);
        g_buddy = new (g_buddy_storage) BuddyAllocator(lowest, Span<PageFrame>(frames, page_count));
        for (auto& range : usable)
            g_buddy->add_free_range(range.start, range.end);
    }
    {
        SpinlockLocker locker(g_table_lock);
        g_kernel_table = new (g_kernel_table_storage) PageTable(g_kernel_table_memory, table.root());
        g_kernel_table->set_largest_page_size(largest);
        // The same PML4, so the same pinned PDPTs (see above). They came from the bump allocator,
        // too: freeing one to the buddy allocator would be a bug in itself.
        g_kernel_table->set_upper_half_pdpts_pinned(true);
    }
}

bool is_initialized() { return g_initialized; }
const Layout& layout() { return g_layout; }

ErrorOr<PhysAddr> allocate_pages(unsigned order)
{
    SpinlockLocker locker(g_page_lock);
    if (!g_buddy)
        return ENOMEM;
    return g_buddy->allocate(order);
}

void free_pages(PhysAddr phys, unsigned order)
{
    SpinlockLocker locker(g_page_lock);
    g_buddy->free(phys, order);
}

BuddyStats page_stats()
{
    SpinlockLocker locker(g_page_lock);
    return g_buddy ? g_buddy->stats() : BuddyStats {};
}

BuddyAllocator& buddy_for_tests() NO_THREAD_SAFETY_ANALYSIS { return *g_buddy; }

PageTable& kernel_page_table() NO_THREAD_SAFETY_ANALYSIS { return *g_kernel_table; }

ErrorOr<void> map(VirtAddr virt, PhysAddr phys, PageFlags flags)
{
    SpinlockLocker locker(g_table_lock);
    return g_kernel_table->map(virt, phys, flags);
}

ErrorOr<PhysAddr> unmap(VirtAddr virt)
{
    SpinlockLocker locker(g_table_lock);
    return g_kernel_table->unmap(virt);
}

ErrorOr<void> protect(VirtAddr virt, PageFlags flags)
{
    SpinlockLocker locker(g_table_lock);
    return g_kernel_table->protect(virt, flags);
}

ErrorOr<Translation> translate(VirtAddr virt)
{
    SpinlockLocker locker(g_table_lock);
    return g_kernel_table->translate(virt);
}

static ErrorOr<void*> map_device(PhysAddr phys, u64 size, PageFlags cache)
{
    u64 last;
    if (!size || add_overflows(phys, size - 1, &last) || last >= PageTableEntry::MaxPhysicalAddress)
        return EINVAL;
    u64 start = align_down(phys, PAGE_SIZE);
    u64 end = align_up(last + 1, PAGE_SIZE);
    SpinlockLocker locker(g_table_lock);
    for (u64 page = start; page < end; page += PAGE_SIZE) {
        auto result = g_kernel_table->map(DIRECT_MAP_BASE + page, page, PageFlags::Writable | PageFlags::NoExecute | cache);
        if (!result.is_error())
            continue;
        // Already mapped: by an earlier driver (fine) or as RAM in the direct map (then the
        // caller gets the cached mapping; device memory never overlaps RAM on sane firmware).
        if (result.error().code() == EEXIST)
            continue;
        // Undo this call's pages, so a failure leaves no half-mapped device behind.
        for (u64 undo = start; undo < page; undo += PAGE_SIZE) {
            auto t = g_kernel_table->translate(DIRECT_MAP_BASE + undo);
            if (!t.is_error() && has_flag(t.value().flags, PageFlags::CacheDisable | PageFlags::WriteThrough) == has_flag(cache, PageFlags::CacheDisable | PageFlags::WriteThrough))
                (void)g_kernel_table->unmap(DIRECT_MAP_BASE + undo);
        }
        return result.release_error();
    }
    return (void*)(DIRECT_MAP_BASE + phys);
}

ErrorOr<void*> map_mmio(PhysAddr phys, u64 size) { return map_device(phys, size, PageFlags::CacheDisable | PageFlags::WriteThrough); }
// Write-through: writes reach the screen promptly, reads (scrolling) still hit the cache.
ErrorOr<void*> map_framebuffer(PhysAddr phys, u64 size) { return map_device(phys, size, PageFlags::WriteThrough); }

} // namespace mm
