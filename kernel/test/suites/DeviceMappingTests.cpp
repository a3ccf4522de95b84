// Device mappings (map_mmio, unmap_device, release_device_range) on the live kernel page tables.
// They use a physical window far above any RAM or device (nothing is ever read or written there:
// the cases only look at the page tables), and leave no mapping and no page table behind.
#include <mm/MemoryManager.h>
#include <test/KTest.h>

namespace {

// 960 GiB: 1 GiB-aligned, so the 2 MiB regions below share one page directory.
constexpr PhysAddr WINDOW { 0xF000000000ull };
constexpr u64 REGION = 2 * MiB;

bool is_mapped(PhysAddr phys) { return !mm::translate(mm::direct_map(phys)).is_error(); }
bool is_uncached_4k(PhysAddr phys)
{
    auto t = mm::translate(mm::direct_map(phys));
    return !t.is_error() && t.value().size == PageSize::Size4K && has_flag(t.value().flags, PageFlags::CacheDisable);
}

u64 free_pages() { return mm::page_stats().free_pages; }

void test_failed_map_keeps_pages_mapped_before(ktest::Test& t)
{
    u64 before = free_pages();
    // X is the last page of one 2 MiB region; the page after it needs a new page table.
    PhysAddr x = WINDOW + REGION - PAGE_SIZE;
    auto earlier = mm::map_mmio(x, PAGE_SIZE);
    KASSERT_TRUE(t, !earlier.is_error());
    // [X - 1 page, X + 1 page]: the first page is new, X exists, the last one's table fails.
    mm::fail_table_allocation_for_tests(1);
    auto failed = mm::map_mmio(x - PAGE_SIZE, 3 * PAGE_SIZE);
    mm::fail_table_allocation_for_tests(0);
    bool x_kept = is_uncached_4k(x);
    bool new_page_undone = !is_mapped(x - PAGE_SIZE);
    bool last_absent = !is_mapped(x + PAGE_SIZE);
    u32 failed_refs = mm::device_mapping_refs_for_tests(x - PAGE_SIZE, 3 * PAGE_SIZE);
    auto unmapped = mm::unmap_device(earlier.is_error() ? nullptr : earlier.value(), PAGE_SIZE);
    KASSERT_TRUE(t, failed.is_error());
    KEXPECT_EQ(t, failed.error().code(), (int)ENOMEM);
    KEXPECT_TRUE(t, x_kept);
    KEXPECT_TRUE(t, new_page_undone);
    KEXPECT_TRUE(t, last_absent);
    KEXPECT_EQ(t, failed_refs, 0u);
    KEXPECT_TRUE(t, !unmapped.is_error());
    KEXPECT_FALSE(t, is_mapped(x));
    KEXPECT_EQ(t, free_pages(), before);
}

void test_unmap_device_removes_pages_and_tables(ktest::Test& t)
{
    u64 before = free_pages();
    PhysAddr base = WINDOW + 3 * REGION;
    auto mapped = mm::map_mmio(base + 0x10, 3 * PAGE_SIZE);
    KASSERT_TRUE(t, !mapped.is_error());
    KEXPECT_EQ(t, (u64)mapped.value(), mm::direct_map(base + 0x10).value());
    bool all_mapped = is_uncached_4k(base) && is_uncached_4k(base + PAGE_SIZE) && is_uncached_4k(base + 3 * PAGE_SIZE);
    KEXPECT_TRUE(t, all_mapped);
    KEXPECT_TRUE(t, free_pages() < before);
    KASSERT_TRUE(t, !mm::unmap_device(mapped.value(), 3 * PAGE_SIZE).is_error());
    for (u64 page = 0; page < 4; ++page)
        KEXPECT_FALSE(t, is_mapped(base + page * PAGE_SIZE));
    KEXPECT_EQ(t, free_pages(), before);
}

void test_unmap_device_counts_callers(ktest::Test& t)
{
    u64 before = free_pages();
    PhysAddr base = WINDOW + 5 * REGION;
    auto first = mm::map_mmio(base, 2 * PAGE_SIZE);
    auto second = mm::map_mmio(base, 2 * PAGE_SIZE);
    KASSERT_TRUE(t, !first.is_error() && !second.is_error());
    KEXPECT_EQ(t, mm::device_mapping_refs_for_tests(base, 2 * PAGE_SIZE), 2u);
    KEXPECT_TRUE(t, !mm::unmap_device(first.value(), 2 * PAGE_SIZE).is_error());
    // The other caller still uses it.
    KEXPECT_TRUE(t, is_uncached_4k(base) && is_uncached_4k(base + PAGE_SIZE));
    KEXPECT_TRUE(t, !mm::unmap_device(second.value(), 2 * PAGE_SIZE).is_error());
    KEXPECT_FALSE(t, is_mapped(base));
    KEXPECT_FALSE(t, is_mapped(base + PAGE_SIZE));
    // A third unmap has nothing to undo.
    auto third = mm::unmap_device(second.value(), 2 * PAGE_SIZE);
    KASSERT_TRUE(t, third.is_error());
    KEXPECT_EQ(t, third.error().code(), (int)EINVAL);
    KEXPECT_EQ(t, free_pages(), before);
}

void test_overlapping_mappings_keep_shared_pages(ktest::Test& t)
{
    u64 before = free_pages();
    PhysAddr base = WINDOW + 7 * REGION;
    auto a = mm::map_mmio(base, 2 * PAGE_SIZE);               // pages 0-1
    auto b = mm::map_mmio(base + PAGE_SIZE, 2 * PAGE_SIZE);   // pages 1-2
    KASSERT_TRUE(t, !a.is_error() && !b.is_error());
    KEXPECT_TRUE(t, !mm::unmap_device(a.value(), 2 * PAGE_SIZE).is_error());
    KEXPECT_FALSE(t, is_mapped(base));
    KEXPECT_TRUE(t, is_uncached_4k(base + PAGE_SIZE));
    KEXPECT_TRUE(t, is_uncached_4k(base + 2 * PAGE_SIZE));
    KEXPECT_TRUE(t, !mm::unmap_device(b.value(), 2 * PAGE_SIZE).is_error());
    KEXPECT_FALSE(t, is_mapped(base + PAGE_SIZE));
    KEXPECT_FALSE(t, is_mapped(base + 2 * PAGE_SIZE));
    KEXPECT_EQ(t, free_pages(), before);
}

void test_unmap_device_leaves_ram_mapped(ktest::Test& t)
{
    // map_mmio() of RAM hands out the (cached) direct map; giving it back must not unmap RAM.
    auto page = mm::allocate_pages(0);
    KASSERT_TRUE(t, !page.is_error());
    auto before = mm::translate(mm::direct_map(page.value()));
    auto mapped = mm::map_mmio(page.value(), PAGE_SIZE);
    auto unmapped = mm::unmap_device(mapped.is_error() ? nullptr : mapped.value(), PAGE_SIZE);
    auto after = mm::translate(mm::direct_map(page.value()));
    mm::free_pages(page.value(), 0);
    KASSERT_TRUE(t, !mapped.is_error() && !before.is_error());
    KEXPECT_TRUE(t, !unmapped.is_error());
    KASSERT_TRUE(t, !after.is_error());
    KEXPECT_EQ(t, after.value().flags, before.value().flags);
    KEXPECT_EQ(t, after.value().size, before.value().size);
}

void test_unmap_device_rejects_bad_ranges(ktest::Test& t)
{
    auto null = mm::unmap_device(nullptr, PAGE_SIZE);
    KASSERT_TRUE(t, null.is_error());
    KEXPECT_EQ(t, null.error().code(), (int)EINVAL);
    auto empty = mm::unmap_device(mm::phys_to_virt(WINDOW), 0);
    KASSERT_TRUE(t, empty.is_error());
    KEXPECT_EQ(t, empty.error().code(), (int)EINVAL);
    auto never = mm::unmap_device(mm::phys_to_virt(WINDOW + 9 * REGION), PAGE_SIZE);
    KASSERT_TRUE(t, never.is_error());
    KEXPECT_EQ(t, never.error().code(), (int)EINVAL);
    KEXPECT_TRUE(t, never.error().has_message());
}

void test_release_device_range_drops_every_caller(ktest::Test& t)
{
    // A device being released (its driver unbound) loses every mapping of its BAR.
    u64 before = free_pages();
    PhysAddr bar = WINDOW + 11 * REGION;
    auto one = mm::map_mmio(bar, 4 * PAGE_SIZE);
    auto two = mm::map_mmio(bar, 4 * PAGE_SIZE);
    auto part = mm::map_mmio(bar + PAGE_SIZE, PAGE_SIZE);
    KASSERT_TRUE(t, !one.is_error() && !two.is_error() && !part.is_error());
    KEXPECT_EQ(t, mm::release_device_range(bar, 4 * PAGE_SIZE), 2ul);
    for (u64 page = 0; page < 4; ++page)
        KEXPECT_FALSE(t, is_mapped(bar + page * PAGE_SIZE));
    KEXPECT_EQ(t, mm::device_mapping_refs_for_tests(bar, 4 * PAGE_SIZE), 0u);
    KEXPECT_EQ(t, free_pages(), before);
}

} // namespace

KTEST_SUITE(device_mappings,
    KTEST_CASE(test_failed_map_keeps_pages_mapped_before),
    KTEST_CASE(test_unmap_device_removes_pages_and_tables),
    KTEST_CASE(test_unmap_device_counts_callers),
    KTEST_CASE(test_overlapping_mappings_keep_shared_pages),
    KTEST_CASE(test_unmap_device_leaves_ram_mapped),
    KTEST_CASE(test_unmap_device_rejects_bad_ranges),
    KTEST_CASE(test_release_device_range_drops_every_caller));
