// vmalloc on the live kernel: areas are mapped, writable and zero-cost to free, the address space
// and pages are reused, the counters return to their baseline, and every area is fenced by
// unmapped pages: one byte past its end and one byte before its start fault.
#include <arch/Exceptions.h>
#include <mm/MemoryManager.h>
#include <mm/Vmalloc.h>
#include <test/KTest.h>

namespace {

// Reads one byte at `address` with a page-fault catch armed; returns whether it faulted there.
bool read_faults(u64 address)
{
    ExceptionCatch c;
    if (ksetjmp(&c.jump) == 0) {
        exceptions::arm(c, VECTOR_PF);
        (void)*(volatile u8*)address;
        exceptions::disarm();
        return false;
    }
    return c.caught && c.caught_vector == VECTOR_PF && c.cr2 == address;
}

bool write_faults(u64 address)
{
    ExceptionCatch c;
    if (ksetjmp(&c.jump) == 0) {
        exceptions::arm(c, VECTOR_PF);
        *(volatile u8*)address = 0x5a;
        exceptions::disarm();
        return false;
    }
    return c.caught && c.caught_vector == VECTOR_PF && c.cr2 == address;
}

struct Baseline {
    u64 vmalloc_pages;
    u64 free_pages;
};

Baseline baseline() { return { vmalloc::pages_in_use(), mm::page_stats().free_pages }; }

void test_allocate_maps_writable_pages_in_range(ktest::Test& t)
{
    Baseline before = baseline();
    constexpr usize SIZE = 5 * PAGE_SIZE + 123;
    auto area = vmalloc::allocate(SIZE);
    KASSERT_TRUE(t, !area.is_error());
    u64 base = (u64)area.value();
    KEXPECT_TRUE(t, base >= vmalloc::RANGE_START && base + SIZE <= vmalloc::RANGE_END);
    KEXPECT_EQ(t, base % PAGE_SIZE, 0ull);
    KEXPECT_EQ(t, vmalloc::pages_in_use(), before.vmalloc_pages + 6);
    // Every byte is usable, and each page is its own frame (a pattern per page survives).
    auto* bytes = (volatile u8*)base;
    for (usize i = 0; i < SIZE; ++i)
        bytes[i] = (u8)(i / PAGE_SIZE + 1);
    bool intact = true;
    for (usize i = 0; i < SIZE; ++i)
        intact &= bytes[i] == (u8)(i / PAGE_SIZE + 1);
    KEXPECT_TRUE(t, intact);
    auto translation = mm::translate(VirtAddr(base));
    KEXPECT_TRUE(t, !translation.is_error());
    vmalloc::free(area.value());
    KEXPECT_EQ(t, vmalloc::pages_in_use(), before.vmalloc_pages);
}

void test_free_unmaps_and_returns_pages(ktest::Test& t)
{
    Baseline before = baseline();
    auto area = vmalloc::allocate(8 * PAGE_SIZE);
    KASSERT_TRUE(t, !area.is_error());
    u64 base = (u64)area.value();
    KEXPECT_TRUE(t, mm::page_stats().free_pages < before.free_pages);
    vmalloc::free(area.value());
    Baseline after = baseline();
    KEXPECT_EQ(t, after.vmalloc_pages, before.vmalloc_pages);
    KEXPECT_EQ(t, after.free_pages, before.free_pages);
    // A freed area is gone: touching it faults instead of reaching a recycled frame.
    KEXPECT_TRUE(t, read_faults(base));
    KEXPECT_TRUE(t, read_faults(base + 7 * PAGE_SIZE));
    KEXPECT_TRUE(t, mm::translate(VirtAddr(base)).is_error());
}

void test_freed_space_is_reused(ktest::Test& t)
{
    Baseline before = baseline();
    auto first = vmalloc::allocate(3 * PAGE_SIZE);
    KASSERT_TRUE(t, !first.is_error());
    void* address = first.value();
    vmalloc::free(address);
    // First fit: the same size lands at the same place again, so the range does not leak.
    auto again = vmalloc::allocate(3 * PAGE_SIZE);
    KASSERT_TRUE(t, !again.is_error());
    KEXPECT_EQ(t, (u64)again.value(), (u64)address);
    vmalloc::free(again.value());
    // Many rounds leave nothing behind.
    bool all_ok = true;
    for (int round = 0; round < 200; ++round) {
        auto area = vmalloc::allocate((usize)(round % 7 + 1) * PAGE_SIZE);
        all_ok &= !area.is_error();
        if (!area.is_error())
            vmalloc::free(area.value());
    }
    KEXPECT_TRUE(t, all_ok);
    Baseline after = baseline();
    KEXPECT_EQ(t, after.vmalloc_pages, before.vmalloc_pages);
    KEXPECT_EQ(t, after.free_pages, before.free_pages);
}

void test_byte_past_the_end_faults(ktest::Test& t)
{
    // Two neighbours: without the guard page, the second would start where the first ends and
    // the byte past the first would be the second's first byte.
    auto first = vmalloc::allocate(2 * PAGE_SIZE);
    auto second = vmalloc::allocate(2 * PAGE_SIZE);
    bool both = !first.is_error() && !second.is_error();
    u64 a = both ? (u64)first.value() : 0, b = both ? (u64)second.value() : 0;
    bool last_byte_ok = false, past_read = false, past_write = false, second_intact = false;
    if (both) {
        *(volatile u8*)(b) = 0x11;
        *(volatile u8*)(a + 2 * PAGE_SIZE - 1) = 0x22;
        last_byte_ok = *(volatile u8*)(a + 2 * PAGE_SIZE - 1) == 0x22;
        past_read = read_faults(a + 2 * PAGE_SIZE);
        past_write = write_faults(a + 2 * PAGE_SIZE);
        second_intact = *(volatile u8*)b == 0x11;
    }
    if (!first.is_error())
        vmalloc::free(first.value());
    if (!second.is_error())
        vmalloc::free(second.value());
    KASSERT_TRUE(t, both);
    KEXPECT_TRUE(t, last_byte_ok);
    KEXPECT_TRUE(t, past_read);
    KEXPECT_TRUE(t, past_write);
    KEXPECT_TRUE(t, second_intact);
}

void test_byte_before_the_start_faults(ktest::Test& t)
{
    auto first = vmalloc::allocate(PAGE_SIZE);
    auto second = vmalloc::allocate(PAGE_SIZE);
    bool both = !first.is_error() && !second.is_error();
    bool before_first = false, before_second = false;
    if (both) {
        before_first = read_faults((u64)first.value() - 1);
        before_second = write_faults((u64)second.value() - 1);
    }
    if (!first.is_error())
        vmalloc::free(first.value());
    if (!second.is_error())
        vmalloc::free(second.value());
    KASSERT_TRUE(t, both);
    KEXPECT_TRUE(t, before_first);
    KEXPECT_TRUE(t, before_second);
}

void test_bad_sizes_are_refused(ktest::Test& t)
{
    Baseline before = baseline();
    auto zero = vmalloc::allocate(0);
    KASSERT_TRUE(t, zero.is_error());
    KEXPECT_EQ(t, zero.error().code(), (int)EINVAL);
    auto huge = vmalloc::allocate(2 * GiB);
    KASSERT_TRUE(t, huge.is_error());
    KEXPECT_EQ(t, huge.error().code(), (int)ENOMEM);
    auto enormous = vmalloc::allocate(~(usize)0);
    KASSERT_TRUE(t, enormous.is_error());
    KEXPECT_EQ(t, enormous.error().code(), (int)ENOMEM);
    KEXPECT_EQ(t, vmalloc::pages_in_use(), before.vmalloc_pages);
    vmalloc::free(nullptr); // A no-op, as vfree(NULL) is.
    KEXPECT_EQ(t, mm::page_stats().free_pages, before.free_pages);
}

void test_out_of_records_is_enomem_and_recovers(ktest::Test& t)
{
    // The allocation table is finite: running out is ENOMEM, not a crash, and freeing recovers.
    Baseline before = baseline();
    static void* areas[128];
    usize count = 0;
    int last_error = 0;
    while (count < 128) {
        auto area = vmalloc::allocate(PAGE_SIZE);
        if (area.is_error()) {
            last_error = area.error().code();
            break;
        }
        areas[count++] = area.value();
    }
    for (usize i = 0; i < count; ++i)
        vmalloc::free(areas[i]);
    KEXPECT_TRUE(t, count > 0 && count < 128);
    KEXPECT_EQ(t, last_error, (int)ENOMEM);
    auto after = vmalloc::allocate(PAGE_SIZE);
    KASSERT_TRUE(t, !after.is_error());
    vmalloc::free(after.value());
    KEXPECT_EQ(t, vmalloc::pages_in_use(), before.vmalloc_pages);
    KEXPECT_EQ(t, mm::page_stats().free_pages, before.free_pages);
}

} // namespace

KTEST_SUITE(vmalloc,
    KTEST_CASE(test_allocate_maps_writable_pages_in_range),
    KTEST_CASE(test_free_unmaps_and_returns_pages),
    KTEST_CASE(test_freed_space_is_reused),
    KTEST_CASE(test_byte_past_the_end_faults),
    KTEST_CASE(test_byte_before_the_start_faults),
    KTEST_CASE(test_bad_sizes_are_refused),
    KTEST_CASE(test_out_of_records_is_enomem_and_recovers));
