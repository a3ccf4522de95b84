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
        // Test hook: fail a chosen allocation to drive the unwind paths on real tables.
        u32 countdown = __atomic_load_n(&g_fail_table_countdown, __ATOMIC_RELAXED);
        if (countdown && __atomic_sub_fetch(&g_fail_table_countdown, 1, __ATOMIC_RELAXED) == 0)
            return Error::with_message(ENOMEM, "injected page-table allocation failure");
        PhysAddr table = TRY(allocate_pages(0));
        __builtin_memset(phys_to_virt(table), 0, PAGE_SIZE);
        return table;
    }
    void free_table(PhysAddr table) override { free_pages(table, 0); }
    static inline u32 g_fail_table_countdown = 0;
    u64* table(PhysAddr phys) override { return (u64*)phys_to_virt(phys); }
    void invalidate(VirtAddr address) override { arch::flush_tlb_page(address.value()); }
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
        auto result = table.map(VirtAddr(virt), PhysAddr(virt - KERNEL_VMA), flags | PageFlags::Global);
        if (result.is_error())
            fail("mapping the kernel image", result.error());
    }
}
}

void* early_phys_to_virt(PhysAddr phys)
{
    if (g_initialized)
        return phys_to_virt(phys);
    if (phys.value() >= EARLY_ALIAS_LIMIT)
        panic("mm: physical address 0x%llx is beyond the boot mapping of the first GiB", phys.ull());
    return VirtAddr(phys.value() + KERNEL_VMA).as_ptr();
}

PhysAddr virt_to_phys(const void* pointer)
{
    u64 virt = (u64)pointer;
    // The two linear ranges first: the direct map and the kernel image.
    if (virt >= DIRECT_MAP_BASE && virt < DIRECT_MAP_BASE + (1ull << 46))
        return PhysAddr(virt - DIRECT_MAP_BASE);
    if (virt >= KERNEL_VMA && virt < (u64)__kernel_end)
        return PhysAddr(virt - KERNEL_VMA);
    // Anything else (modules, vmalloc) is page-mapped: ask the page tables.
    auto translation = translate(VirtAddr(virt));
    if (translation.is_error())
        panic("mm: virt_to_phys(0x%llx): address is not mapped", (unsigned long long)virt);
    return translation.value().phys;
}

void init(const BootInfo& info, PhysAddr boot_info_start, PhysAddr boot_info_end)
{
    // The linker places these symbols at physical addresses (their values, not their contents).
    g_layout.kernel_phys_start = PhysAddr((u64)__kernel_phys_start);
    g_layout.kernel_phys_end = PhysAddr((u64)__kernel_phys_end);

    // Usable RAM, minus everything that is already in use.
    PhysRegionSet usable;
    PhysRegionSet mapped;
    PhysAddr highest;
    for (auto& entry : info.memory_map()) {
        PhysAddr base(entry.base);
        PhysAddr end(entry.base + entry.length);
        if (entry.type == Multiboot2::MemoryAvailable) {
            if (usable.add(base, end).is_error())
                panic("mm: too many memory map regions");
        }
        // The direct map covers RAM of every kind, so ACPI tables are reachable through it.
        if (entry.type == Multiboot2::MemoryAvailable || entry.type == Multiboot2::MemoryAcpiReclaimable
            || entry.type == Multiboot2::MemoryAcpiNvs) {
            if (mapped.add(align_down(base, PAGE_SIZE), align_up(end, PAGE_SIZE)).is_error())
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
    reserve(PhysAddr(0), PhysAddr(1 * MiB), "low memory");
    reserve(g_layout.kernel_phys_start, g_layout.kernel_phys_end, "the kernel image");
    reserve(boot_info_start, boot_info_end, "the multiboot information");
    for (auto& module : info.boot_modules())
        reserve(PhysAddr(module.start), PhysAddr(module.end), "a boot module");
    if (usable.is_empty())
        panic("mm: no usable RAM left after reserving the kernel and boot data");

    // The bump allocator: the page-frame array plus the new page tables, below the boot alias limit.
    u64 page_count = (align_up(highest, PAGE_SIZE) - lowest) / PAGE_SIZE;
    u64 bump_size = align_up(BuddyAllocator::metadata_bytes(page_count), PAGE_SIZE) + EARLY_TABLE_RESERVE;
    auto bump_start = usable.find_fit(bump_size, PAGE_SIZE, PhysAddr(1 * MiB));
    if (bump_start.is_error() || (bump_start.value() + bump_size).value() > EARLY_ALIAS_LIMIT)
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
        auto result = table.map_range(direct_map(range.start), range.start, range.size(),
            PageFlags::Writable | PageFlags::NoExecute | PageFlags::Global, true);
        if (result.is_error())
            fail("building the direct map", result.error());
        direct += range.size();
    }
    g_layout.direct_mapped_bytes = direct;
    g_layout.page_tables_at_boot = early.tables();

    arch::activate_kernel_page_table(table.root().value());
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

// Device mappings live in the direct map, so two callers may map the same pages. Each distinct
// page range mapped by map_device() is one record with a count of its callers; unmap_device()
// removes a page only when no live record covers it any more, and only if it is a 4 KiB device
// page (RAM reached through map_mmio() stays in the direct map).
namespace {
struct DeviceMapping {
    PhysAddr start, end; // Page-aligned; a null end marks a free record.
    u32 refs;
    bool is_live() const { return !end.is_null(); }
};
constexpr usize MAX_DEVICE_MAPPINGS = 128;
DeviceMapping g_device_mappings[MAX_DEVICE_MAPPINGS] GUARDED_BY(g_table_lock);

constexpr PageFlags DEVICE_CACHE_FLAGS = PageFlags::CacheDisable | PageFlags::WriteThrough;

DeviceMapping* find_device_mapping_locked(PhysAddr start, PhysAddr end) REQUIRES(g_table_lock)
{
    for (auto& record : g_device_mappings)
        if (record.is_live() && record.start == start && record.end == end)
            return &record;
    return nullptr;
}

DeviceMapping* free_device_mapping_locked() REQUIRES(g_table_lock)
{
    for (auto& record : g_device_mappings)
        if (!record.is_live())
            return &record;
    return nullptr;
}

bool covered_by_device_mapping_locked(PhysAddr page) REQUIRES(g_table_lock)
{
    for (auto& record : g_device_mappings)
        if (record.is_live() && page >= record.start && page < record.end)
            return true;
    return false;
}

// Whether `page` may be unmapped on behalf of device mappings: no live record covers it, and it is
// a 4 KiB uncached or write-through page (RAM keeps its cached direct map).
bool is_unowned_device_page_locked(PhysAddr page) REQUIRES(g_table_lock)
{
    if (covered_by_device_mapping_locked(page))
        return false;
    auto translation = g_kernel_table->translate(direct_map(page));
    return !translation.is_error() && translation.value().size == PageSize::Size4K
        && has_flag(translation.value().flags, DEVICE_CACHE_FLAGS);
}

// Drops `record` and unmaps the pages no other record covers.
void release_device_mapping_locked(DeviceMapping& record) REQUIRES(g_table_lock)
{
    PhysAddr start = record.start, end = record.end;
    record = {};
    for (PhysAddr page = start; page < end; page += PAGE_SIZE) {
        if (is_unowned_device_page_locked(page))
            (void)g_kernel_table->unmap(direct_map(page));
    }
}

// The page-aligned physical range [start, end) that covers [phys, phys + size).
bool device_range(PhysAddr phys, u64 size, PhysAddr& start, PhysAddr& end)
{
    PhysAddr last;
    if (!size || add_overflows(phys, size - 1, &last) || last.value() >= PageTableEntry::MaxPhysicalAddress)
        return false;
    start = align_down(phys, PAGE_SIZE);
    end = align_up(last + 1, PAGE_SIZE);
    return true;
}
}

static ErrorOr<void*> map_device(PhysAddr phys, u64 size, PageFlags cache)
{
    PhysAddr start, end;
    if (!device_range(phys, size, start, end))
        return Error::with_message(EINVAL, "empty or impossible device range");
    SpinlockLocker locker(g_table_lock);
    // NOTE: the pages are (re)mapped even when the range has a record: mm::unmap() may have taken
    // some away behind the record's back.
    DeviceMapping* record = find_device_mapping_locked(start, end);
    bool new_record = !record;
    if (new_record)
        record = free_device_mapping_locked();
    if (!record)
        return Error::with_message(ENOMEM, "device mapping table full");
    for (PhysAddr page = start; page < end; page += PAGE_SIZE) {
        auto result = g_kernel_table->map(direct_map(page), page, PageFlags::Writable | PageFlags::NoExecute | cache);
        if (!result.is_error())
            continue;
        // Already mapped: by an earlier driver (fine) or as RAM in the direct map (then the
        // caller gets the cached mapping; device memory never overlaps RAM on sane firmware).
        if (result.error().code() == EEXIST)
            continue;
        // Undo what this call mapped, and only that: a page mapped before is covered by an earlier
        // caller's record (or is RAM), so it stays. Works before kmalloc exists (no bookkeeping).
        for (PhysAddr undo = start; undo < page; undo += PAGE_SIZE)
            if (is_unowned_device_page_locked(undo))
                (void)g_kernel_table->unmap(direct_map(undo));
        return result.release_error();
    }
    if (new_record)
        *record = { start, end, 1 };
    else
        record->refs++;
    return phys_to_virt(phys);
}

ErrorOr<void> unmap_device(const void* address, u64 size)
{
    u64 virt = (u64)address;
    PhysAddr start, end;
    if (virt < DIRECT_MAP_BASE || !device_range(PhysAddr(virt - DIRECT_MAP_BASE), size, start, end))
        return Error::with_message(EINVAL, "not a device mapping in the direct map");
    SpinlockLocker locker(g_table_lock);
    DeviceMapping* record = find_device_mapping_locked(start, end);
    if (!record)
        return Error::with_message(EINVAL, "no device mapping of that range");
    if (--record->refs == 0)
        release_device_mapping_locked(*record);
    return {};
}

usize release_device_range(PhysAddr phys, u64 size)
{
    PhysAddr start, end;
    if (!device_range(phys, size, start, end))
        return 0;
    usize released = 0;
    SpinlockLocker locker(g_table_lock);
    for (auto& record : g_device_mappings) {
        if (record.is_live() && record.start >= start && record.end <= end) {
            release_device_mapping_locked(record);
            ++released;
        }
    }
    return released;
}

u32 device_mapping_refs_for_tests(PhysAddr phys, u64 size)
{
    PhysAddr start, end;
    if (!device_range(phys, size, start, end))
        return 0;
    SpinlockLocker locker(g_table_lock);
    auto* record = find_device_mapping_locked(start, end);
    return record ? record->refs : 0;
}

void fail_table_allocation_for_tests(u32 nth) { __atomic_store_n(&KernelTableMemory::g_fail_table_countdown, nth, __ATOMIC_RELAXED); }

ErrorOr<void*> map_mmio(PhysAddr phys, u64 size) { return map_device(phys, size, PageFlags::CacheDisable | PageFlags::WriteThrough); }
// Write-through: writes reach the screen promptly, reads (scrolling) still hit the cache.
ErrorOr<void*> map_framebuffer(PhysAddr phys, u64 size) { return map_device(phys, size, PageFlags::WriteThrough); }

} // namespace mm
