// Page tables on the running kernel: the live kernel table through mm::map/unmap/protect/translate,
// and private PageTable objects whose tables come from the page allocator.
//
// A mapping is believed only when the CPU agrees with it. The tests read and write through both
// the new mapping and the direct map, provoke the page faults a wrong mapping must raise and
// check their error codes, and load a private table into CR3 to walk it with the MMU.
//
// Everything a case maps lives in a scratch region that nothing else uses:
//
//   0xffffd00000000000  SCRATCH  (PML4 slot 416; its PDPT is empty before and after every case)
//
// The kernel's upper-half PDPTs are created at boot and pinned (every address space shares them),
// so the scratch slot of the kernel PML4 is present and the same for the kernel's whole life; only
// the PDs and PTs below it come and go.
//
// Each case opens a CaseScope. It frees the pages the case allocated, unmaps what the case left
// mapped after an early failure, and fails the case if the free page count or the scratch slot
// of the kernel PML4 differ from before, or the scratch PDPT is not empty: a leaked page or table
// is a failure of that case.
#include <arch/x86_64/Cpu.h>
#include <arch/x86_64/CpuFeatures.h>
#include <arch/x86_64/Exceptions.h>
#include <arch/x86_64/KernelStacks.h>
#include <arch/x86_64/lib/PageTable.h>
#include <mm/MemoryManager.h>
#include <test/KTest.h>

extern "C" u8 boot_stack_guard[];
extern "C" u8 boot_stack_bottom[];
extern "C" u8 __text_start[], __text_end[];
extern "C" u8 __rodata_start[], __rodata_end[];
extern "C" u8 __data_start[], __bss_start[], __kernel_end[];

namespace {

using Scope = PageTable::DestroyScope;

constexpr VirtAddr SCRATCH { 0xffffd00000000000ull };
constexpr usize SCRATCH_PML4_INDEX = (SCRATCH.value() >> 39) & 511;
constexpr VirtAddr scratch(u64 n) { return SCRATCH + n * PAGE_SIZE; }

constexpr PageFlags RW = PageFlags::Writable | PageFlags::NoExecute;
constexpr PageFlags RO = PageFlags::NoExecute;
constexpr PageFlags RWX = PageFlags::Writable;
constexpr PageFlags RX = PageFlags::None;

// Page-fault error code bits (SDM 4.7).
constexpr u64 PF_P = 1 << 0;
constexpr u64 PF_W = 1 << 1;
constexpr u64 PF_U = 1 << 2;
constexpr u64 PF_RSVD = 1 << 3;
constexpr u64 PF_I = 1 << 4;
constexpr u64 PF_MASK = PF_P | PF_W | PF_U | PF_RSVD | PF_I;

constexpr u64 WORDS_PER_PAGE = PAGE_SIZE / sizeof(u64);

// ---------------------------------------------------------------------------------------------
// Expectations on ErrorOr results.
// ---------------------------------------------------------------------------------------------

#define KASSERT_OK(t, expr)                                                                         \
    do {                                                                                            \
        auto&& _kr = (expr);                                                                        \
        if (_kr.is_error()) {                                                                       \
            (t).fail(__FILE__, __LINE__, "%s failed with %s", #expr, _kr.error().name());           \
            return;                                                                                 \
        }                                                                                           \
    } while (0)
#define KEXPECT_OK(t, expr)                                                                         \
    do {                                                                                            \
        auto&& _kr = (expr);                                                                        \
        if (_kr.is_error())                                                                         \
            (t).fail(__FILE__, __LINE__, "%s failed with %s", #expr, _kr.error().name());           \
    } while (0)
#define KEXPECT_ERRNO(t, expr, expected)                                                                \
    do {                                                                                            \
        auto&& _kr = (expr);                                                                        \
        if (!_kr.is_error())                                                                        \
            (t).fail(__FILE__, __LINE__, "%s succeeded; expected %s", #expr, errno_name(expected));     \
        else if (_kr.error().code() != (int)(expected))                                                 \
            (t).fail(__FILE__, __LINE__, "%s failed with %s; expected %s", #expr, _kr.error().name(), \
                errno_name(expected));                                                                  \
    } while (0)

// ---------------------------------------------------------------------------------------------
// Patterns: every word of a page differs from every word of every other page.
// ---------------------------------------------------------------------------------------------

u64 pattern(u64 seed, u64 word) { return (seed * 0x9E3779B97F4A7C15ull) ^ (word * 0xD1B54A32D192ED03ull) ^ 0xA5A5A5A5A5A5A5A5ull; }

void fill(VirtAddr page, u64 seed)
{
    auto* words = page.as_ptr<volatile u64>();
    for (u64 i = 0; i < WORDS_PER_PAGE; ++i)
        words[i] = pattern(seed, i);
}

// Index of the first word that differs, or -1.
i64 first_mismatch(VirtAddr page, u64 seed)
{
    auto* words = page.as_ptr<const volatile u64>();
    for (u64 i = 0; i < WORDS_PER_PAGE; ++i)
        if (words[i] != pattern(seed, i))
            return (i64)i;
    return -1;
}

#define KEXPECT_PATTERN(t, page, seed)                                                              \
    do {                                                                                            \
        i64 _km = first_mismatch((page), (seed));                                                   \
        if (_km >= 0)                                                                               \
            (t).fail(__FILE__, __LINE__, "page 0x%llx word %lld: 0x%llx, expected 0x%llx (seed %llu)", \
                (page).ull(), (long long)_km,                                                       \
                (unsigned long long)(page).as_ptr<const volatile u64>()[_km],                       \
                (unsigned long long)pattern((seed), (u64)_km), (unsigned long long)(seed));         \
    } while (0)

VirtAddr direct(PhysAddr phys) { return mm::direct_map(phys); }
u64 peek(VirtAddr address) { return *address.as_ptr<const volatile u64>(); }
void poke(VirtAddr address, u64 value) { *address.as_ptr<volatile u64>() = value; }

// ---------------------------------------------------------------------------------------------
// Faults: one access under an armed ExceptionCatch.
// ---------------------------------------------------------------------------------------------

enum class Access { Read, Write, Execute };

ExceptionCatch g_catch;
volatile u64 g_access_address;
volatile u64 g_access_value;

[[gnu::noinline]] void access_read() { g_access_value = *(const volatile u64*)g_access_address; }
[[gnu::noinline]] void access_write() { *(volatile u64*)g_access_address = g_access_value; }
[[gnu::noinline]] void access_execute() { ((void (*)())g_access_address)(); }

// Performs the access; returns whether it raised #PF (details in g_catch). A write stores `value`.
[[gnu::noinline]] bool faults(Access access, VirtAddr address, u64 value = 0)
{
    g_access_address = address.value();
    g_access_value = value;
    void (*run)() = access == Access::Read ? access_read : access == Access::Write ? access_write : access_execute;
    if (ksetjmp(&g_catch.jump) == 0) {
        exceptions::arm(g_catch, VECTOR_PF);
        run();
        exceptions::disarm();
        return false;
    }
    return g_catch.caught && g_catch.caught_vector == VECTOR_PF;
}

#define KEXPECT_FAULT(t, access, address, bits)                                                     \
    do {                                                                                            \
        VirtAddr _kaddr = (address);                                                                \
        if (!faults((access), _kaddr)) {                                                            \
            (t).fail(__FILE__, __LINE__, "%s of 0x%llx did not fault", #access, _kaddr.ull());      \
        } else {                                                                                    \
            if (g_catch.cr2 != _kaddr.value())                                                      \
                (t).fail(__FILE__, __LINE__, "CR2 0x%llx, expected 0x%llx", (unsigned long long)g_catch.cr2, \
                    _kaddr.ull());                                                                  \
            if ((g_catch.frame.error_code & PF_MASK) != (bits))                                     \
                (t).fail(__FILE__, __LINE__, "%s of 0x%llx: error code 0x%llx, expected 0x%llx", #access, \
                    _kaddr.ull(), (unsigned long long)g_catch.frame.error_code,                     \
                    (unsigned long long)(bits));                                                    \
        }                                                                                           \
    } while (0)

#define KEXPECT_NO_FAULT(t, access, address, value)                                                 \
    do {                                                                                            \
        VirtAddr _kaddr = (address);                                                                \
        if (faults((access), _kaddr, (value)))                                                      \
            (t).fail(__FILE__, __LINE__, "%s of 0x%llx faulted, error code 0x%llx", #access,         \
                _kaddr.ull(), (unsigned long long)g_catch.frame.error_code);                        \
    } while (0)

// ---------------------------------------------------------------------------------------------
// Per-case bookkeeping.
// ---------------------------------------------------------------------------------------------

u64* kernel_pml4() { return (u64*)mm::phys_to_virt(mm::kernel_page_table().root()); }

// The kernel's PDPT for the scratch slot: pinned, so it never moves.
PhysAddr scratch_pdpt() { return PhysAddr(kernel_pml4()[SCRATCH_PML4_INDEX] & PageTableEntry::AddressMask); }

// Entries in use in the scratch PDPT: each is a PD (or a 1 GiB page) some case left behind.
u64 scratch_pdpt_entries_in_use()
{
    if (!(kernel_pml4()[SCRATCH_PML4_INDEX] & PageTableEntry::Present))
        return ~0ull;
    u64* entries = (u64*)mm::phys_to_virt(scratch_pdpt());
    u64 used = 0;
    for (int i = 0; i < 512; ++i)
        used += entries[i] != 0;
    return used;
}

class CaseScope {
public:
    explicit CaseScope(ktest::Test& t) : m_test(t)
    {
        s_block_count = 0;
        s_range_count = 0;
        m_scratch_slot = kernel_pml4()[SCRATCH_PML4_INDEX];
        m_free_before = mm::page_stats().free_pages;
    }

    ~CaseScope()
    {
        // Unmap what an early return left in the kernel table, then free every page.
        for (usize i = 0; i < s_range_count; ++i) {
            for (u64 page = 0; page < s_ranges[i].pages; ++page) {
                VirtAddr va = s_ranges[i].virt + page * PAGE_SIZE;
                if (!mm::translate(va).is_error())
                    (void)mm::unmap(va);
            }
        }
        for (usize i = 0; i < s_block_count; ++i)
            mm::free_pages(s_blocks[i].phys, s_blocks[i].order);
        u64 free_after = mm::page_stats().free_pages;
        if (free_after != m_free_before)
            m_test.fail(__FILE__, __LINE__, "free pages %llu before the case, %llu after: %lld leaked",
                (unsigned long long)m_free_before, (unsigned long long)free_after,
                (long long)(m_free_before - free_after));
        // The CPU may set Accessed in the entry when it walks through it; nothing else may change.
        u64 slot = kernel_pml4()[SCRATCH_PML4_INDEX];
        if ((slot | PageTableEntry::Accessed) != (m_scratch_slot | PageTableEntry::Accessed))
            m_test.fail(__FILE__, __LINE__, "kernel PML4[%llu] was 0x%llx before the case, 0x%llx after",
                (unsigned long long)SCRATCH_PML4_INDEX, (unsigned long long)m_scratch_slot, (unsigned long long)slot);
        else if (u64 used = scratch_pdpt_entries_in_use(); used != 0)
            m_test.fail(__FILE__, __LINE__, "the scratch PDPT has %llu entries in use after the case", (unsigned long long)used);
    }

    // A block of 2^order pages, freed when the case ends. Null (and a failed case) if none is left.
    PhysAddr allocate(unsigned order = 0)
    {
        if (s_block_count == MAX_BLOCKS) {
            m_test.fail(__FILE__, __LINE__, "more than %llu blocks in one case", (unsigned long long)MAX_BLOCKS);
            return PhysAddr();
        }
        auto block = mm::allocate_pages(order);
        if (block.is_error()) {
            m_test.fail(__FILE__, __LINE__, "allocate_pages(%u) failed with %s", order, block.error().name());
            return PhysAddr();
        }
        s_blocks[s_block_count++] = { block.value(), order };
        return block.value();
    }

    // Remembers that [virt, virt + pages * PAGE_SIZE) may be mapped in the kernel table.
    void track(VirtAddr virt, u64 pages)
    {
        if (s_range_count < MAX_RANGES)
            s_ranges[s_range_count++] = { virt, pages };
    }

    // mm::map, tracked.
    ErrorOr<void> map(VirtAddr virt, PhysAddr phys, PageFlags flags)
    {
        track(virt, 1);
        return mm::map(virt, phys, flags);
    }

private:
    struct Block {
        PhysAddr phys;
        unsigned order;
    };
    struct Range {
        VirtAddr virt;
        u64 pages;
    };
    static constexpr usize MAX_BLOCKS = 320;
    static constexpr usize MAX_RANGES = 320;
    // Static: a case's stack should not carry ten kilobytes of bookkeeping. Cases run one at a time.
    static inline Block s_blocks[MAX_BLOCKS];
    static inline usize s_block_count = 0;
    static inline Range s_ranges[MAX_RANGES];
    static inline usize s_range_count = 0;

    ktest::Test& m_test;
    u64 m_free_before;
    u64 m_scratch_slot;
};

// Tables for private PageTables, from the page allocator. Counts what the builder does with them,
// and can be told to run out.
class TestTableMemory final : public PageTableMemory {
public:
    ErrorOr<PhysAddr> allocate_table() override
    {
        if (m_budget == 0)
            return ENOMEM;
        if (m_budget > 0)
            m_budget--;
        PhysAddr table = TRY(mm::allocate_pages(0));
        __builtin_memset(mm::phys_to_virt(table), 0, PAGE_SIZE);
        m_live++;
        m_allocated++;
        return table;
    }
    void free_table(PhysAddr table) override
    {
        // Poison it: a table still reachable after being freed then walks into garbage loudly.
        __builtin_memset(mm::phys_to_virt(table), 0xCC, PAGE_SIZE);
        mm::free_pages(table, 0);
        m_live--;
        m_freed++;
    }
    u64* table(PhysAddr phys) override { return (u64*)mm::phys_to_virt(phys); }
    void invalidate(VirtAddr address) override
    {
        m_invalidations++;
        m_last_invalidated = address;
        x86::invlpg(address.value());
    }

    // Allocations left before ENOMEM; -1 for no limit.
    void set_budget(i64 budget) { m_budget = budget; }
    i64 live() const { return m_live; }
    u64 allocated() const { return m_allocated; }
    u64 freed() const { return m_freed; }
    u64 invalidations() const { return m_invalidations; }
    VirtAddr last_invalidated() const { return m_last_invalidated; }

private:
    i64 m_budget { -1 };
    i64 m_live { 0 };
    u64 m_allocated { 0 };
    u64 m_freed { 0 };
    u64 m_invalidations { 0 };
    VirtAddr m_last_invalidated;
};

// A private PageTable, destroyed (every table freed) when the case ends.
class PrivateTable {
public:
    explicit PrivateTable(ktest::Test& t) : m_test(t)
    {
        auto created = PageTable::create(m_memory);
        if (created.is_error())
            t.fail(__FILE__, __LINE__, "PageTable::create failed with %s", created.error().name());
        else
            m_table = created.release_value();
    }
    ~PrivateTable()
    {
        if (!m_table.root().is_null())
            m_table.destroy(Scope::Everything);
        if (m_memory.live() != 0)
            m_test.fail(__FILE__, __LINE__, "%lld page tables still allocated after destroy", (long long)m_memory.live());
    }
    bool ok() const { return !m_table.root().is_null(); }
    PageTable* operator->() { return &m_table; }
    PageTable& table() { return m_table; }
    TestTableMemory& memory() { return m_memory; }
    u64* entries(PhysAddr table) { return m_memory.table(table); }
    u64* pml4() { return m_memory.table(m_table.root()); }

private:
    ktest::Test& m_test;
    TestTableMemory m_memory;
    PageTable m_table { m_memory, PhysAddr() };
};

#define KASSERT_PRIVATE(t, table) KASSERT_TRUE(t, (table).ok())

// The entry for `virt` at `level` (4 = PML4) of a private table, reached by walking present
// intermediate entries; 0 if the walk stops early.
u64 raw_entry(PrivateTable& table, VirtAddr virt, int level)
{
    PhysAddr current = table->root();
    for (int l = 4;; --l) {
        u64 entry = table.entries(current)[(virt.value() >> (12 + 9 * (l - 1))) & 511];
        if (l == level)
            return entry;
        if (!(entry & PageTableEntry::Present) || (entry & PageTableEntry::HugePage))
            return 0;
        current = PhysAddr(entry & PageTableEntry::AddressMask);
    }
}

bool nx_supported() { return cpu::features().nx; }

// ---------------------------------------------------------------------------------------------
// The kernel table: 4 KiB map, translate, unmap.
// ---------------------------------------------------------------------------------------------

void test_map_translate_unmap_4k(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    KASSERT_OK(t, scope.map(scratch(0), page, RW));
    auto translation = mm::translate(scratch(0));
    KASSERT_OK(t, translation);
    KEXPECT_EQ(t, translation.value().phys, page);
    KEXPECT_EQ(t, translation.value().size, PageSize::Size4K);
    KEXPECT_EQ(t, translation.value().flags, RW);
    auto unmapped = mm::unmap(scratch(0));
    KASSERT_OK(t, unmapped);
    KEXPECT_EQ(t, unmapped.value(), page);
    KEXPECT_ERRNO(t, mm::translate(scratch(0)), ENOENT);
}

void test_translate_keeps_page_offset(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    KASSERT_OK(t, scope.map(scratch(3), page, RW));
    for (u64 offset : { 0ull, 1ull, 0x123ull, 0x800ull, 0xfffull }) {
        auto translation = mm::translate(scratch(3) + offset);
        KEXPECT_TRUE(t, !translation.is_error() && translation.value().phys == page + offset);
    }
    KEXPECT_ERRNO(t, mm::translate(scratch(4)), ENOENT);
    KEXPECT_ERRNO(t, mm::translate(scratch(2) + 0xfff), ENOENT);
    KEXPECT_OK(t, mm::unmap(scratch(3)));
}

void test_read_through_new_mapping(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    fill(direct(page), 1);
    KASSERT_OK(t, scope.map(scratch(0), page, RW));
    KEXPECT_PATTERN(t, scratch(0), 1);
    KEXPECT_OK(t, mm::unmap(scratch(0)));
}

void test_write_through_new_mapping_shows_in_direct_map(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    fill(direct(page), 1);
    KASSERT_OK(t, scope.map(scratch(0), page, RW));
    fill(scratch(0), 2);
    KEXPECT_PATTERN(t, direct(page), 2);
    KEXPECT_OK(t, mm::unmap(scratch(0)));
    // The page itself outlives its mapping.
    KEXPECT_PATTERN(t, direct(page), 2);
}

void test_two_aliases_of_one_page(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    KASSERT_OK(t, scope.map(scratch(10), page, RW));
    KASSERT_OK(t, scope.map(scratch(20), page, RW));
    fill(scratch(10), 3);
    KEXPECT_PATTERN(t, scratch(20), 3);
    KEXPECT_PATTERN(t, direct(page), 3);
    poke(scratch(20) + 64, 0x1122334455667788ull);
    KEXPECT_EQ(t, peek(scratch(10) + 64), 0x1122334455667788ull);
    KEXPECT_OK(t, mm::unmap(scratch(10)));
    KEXPECT_EQ(t, peek(scratch(20) + 64), 0x1122334455667788ull);
    KEXPECT_OK(t, mm::unmap(scratch(20)));
}

void test_neighbouring_pages_are_independent(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr pages[3];
    for (u64 i = 0; i < 3; ++i) {
        pages[i] = scope.allocate();
        KASSERT_TRUE(t, !pages[i].is_null());
        fill(direct(pages[i]), 100 + i);
        KASSERT_OK(t, scope.map(scratch(i), pages[i], RW));
    }
    for (u64 i = 0; i < 3; ++i)
        KEXPECT_PATTERN(t, scratch(i), 100 + i);
    KEXPECT_OK(t, mm::unmap(scratch(1)));
    KEXPECT_PATTERN(t, scratch(0), 100);
    KEXPECT_PATTERN(t, scratch(2), 102);
    KEXPECT_FAULT(t, Access::Read, scratch(1), 0);
    KEXPECT_OK(t, mm::unmap(scratch(0)));
    KEXPECT_OK(t, mm::unmap(scratch(2)));
}

void test_mappings_across_table_boundaries(ktest::Test& t)
{
    // Either side of a page-table (2 MiB) and a page-directory (1 GiB) boundary.
    constexpr VirtAddr addresses[] = { SCRATCH + 2 * MiB - PAGE_SIZE, SCRATCH + 2 * MiB, SCRATCH + 1 * GiB - PAGE_SIZE,
        SCRATCH + 1 * GiB, SCRATCH + 511 * GiB + 510 * MiB };
    constexpr usize count = sizeof(addresses) / sizeof(addresses[0]);
    CaseScope scope(t);
    for (usize i = 0; i < count; ++i) {
        PhysAddr page = scope.allocate();
        KASSERT_TRUE(t, !page.is_null());
        fill(direct(page), 200 + i);
        KASSERT_OK(t, scope.map(addresses[i], page, RW));
    }
    for (usize i = 0; i < count; ++i) {
        KEXPECT_PATTERN(t, addresses[i], 200 + i);
        fill(addresses[i], 300 + i);
    }
    for (usize i = 0; i < count; ++i) {
        auto phys = mm::unmap(addresses[i]);
        KASSERT_OK(t, phys);
        KEXPECT_PATTERN(t, direct(phys.value()), 300 + i);
        KEXPECT_FAULT(t, Access::Read, addresses[i], 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Faults on unmapped addresses.
// ---------------------------------------------------------------------------------------------

void test_read_after_unmap_faults_not_present(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    KASSERT_OK(t, scope.map(scratch(0), page, RW));
    (void)peek(scratch(0) + 0x100); // the translation is now in the TLB
    KASSERT_OK(t, mm::unmap(scratch(0)));
    KEXPECT_FAULT(t, Access::Read, scratch(0) + 0x100, 0);
}

void test_write_after_unmap_faults_with_w(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    fill(direct(page), 7);
    KASSERT_OK(t, scope.map(scratch(0), page, RW));
    poke(scratch(0) + 8, pattern(7, 1));
    KASSERT_OK(t, mm::unmap(scratch(0)));
    KEXPECT_FAULT(t, Access::Write, scratch(0) + 8, PF_W);
    KEXPECT_PATTERN(t, direct(page), 7);
}

void test_execute_unmapped_faults_with_i(ktest::Test& t)
{
    if (!nx_supported()) {
        t.skip("no NX: the error code has no I bit");
        return;
    }
    CaseScope scope(t);
    KEXPECT_FAULT(t, Access::Execute, scratch(5), PF_I);
}

void test_null_dereference_faults(ktest::Test& t)
{
    KEXPECT_ERRNO(t, mm::translate(VirtAddr(0)), ENOENT);
    KEXPECT_FAULT(t, Access::Read, VirtAddr(0), 0);
    KEXPECT_FAULT(t, Access::Write, VirtAddr(8), PF_W);
}

// ---------------------------------------------------------------------------------------------
// Remapping: a stale TLB entry must never show the old page (every change does invlpg).
// ---------------------------------------------------------------------------------------------

void test_remap_to_other_page_is_not_stale(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr a = scope.allocate(), b = scope.allocate();
    KASSERT_TRUE(t, !a.is_null() && !b.is_null());
    fill(direct(a), 11);
    fill(direct(b), 12);
    KASSERT_OK(t, scope.map(scratch(0), a, RW));
    KEXPECT_PATTERN(t, scratch(0), 11); // caches scratch(0) -> a
    KASSERT_OK(t, mm::unmap(scratch(0)));
    KASSERT_OK(t, scope.map(scratch(0), b, RW));
    KEXPECT_PATTERN(t, scratch(0), 12);
    poke(scratch(0), 0xB0B0);
    KEXPECT_EQ(t, peek(direct(b)), 0xB0B0ull);
    KEXPECT_PATTERN(t, direct(a), 11);
    KEXPECT_OK(t, mm::unmap(scratch(0)));
}

void test_remap_loop_keeps_tables(ktest::Test& t)
{
    // An anchor page keeps the tables alive, so each round rewrites the same PTE in place.
    CaseScope scope(t);
    PhysAddr anchor = scope.allocate();
    PhysAddr pages[4];
    KASSERT_TRUE(t, !anchor.is_null());
    KASSERT_OK(t, scope.map(scratch(1), anchor, RW));
    for (u64 i = 0; i < 4; ++i) {
        pages[i] = scope.allocate();
        KASSERT_TRUE(t, !pages[i].is_null());
        poke(direct(pages[i]), 0x1000 + i);
    }
    for (u64 round = 0; round < 64; ++round) {
        u64 i = round % 4;
        KASSERT_OK(t, scope.map(scratch(0), pages[i], RW));
        u64 seen = peek(scratch(0));
        if (seen != 0x1000 + i) {
            t.fail(__FILE__, __LINE__, "round %llu: read 0x%llx, expected 0x%llx", (unsigned long long)round,
                (unsigned long long)seen, (unsigned long long)(0x1000 + i));
            break;
        }
        KASSERT_OK(t, mm::unmap(scratch(0)));
    }
    (void)mm::unmap(scratch(0));
    KEXPECT_OK(t, mm::unmap(scratch(1)));
}

void test_remap_loop_with_table_pruning(ktest::Test& t)
{
    // Without an anchor every unmap frees the PT and PD and every map builds new ones. The pinned
    // PDPT above them stays, and so does the PML4 entry every address space copies.
    CaseScope scope(t);
    PhysAddr pages[2];
    for (u64 i = 0; i < 2; ++i) {
        pages[i] = scope.allocate();
        KASSERT_TRUE(t, !pages[i].is_null());
        poke(direct(pages[i]), 0x2000 + i);
    }
    PhysAddr pdpt = scratch_pdpt();
    u64 before = mm::page_stats().free_pages;
    for (u64 round = 0; round < 32; ++round) {
        u64 i = round % 2;
        KASSERT_OK(t, scope.map(scratch(0), pages[i], RW));
        KEXPECT_EQ(t, before - mm::page_stats().free_pages, 2ull);
        KEXPECT_EQ(t, peek(scratch(0)), 0x2000 + i);
        KASSERT_OK(t, mm::unmap(scratch(0)));
        KEXPECT_EQ(t, mm::page_stats().free_pages, before);
        KEXPECT_EQ(t, scratch_pdpt_entries_in_use(), 0ull);
        KEXPECT_EQ(t, scratch_pdpt(), pdpt);
    }
}

void test_remap_global_page_is_not_stale(ktest::Test& t)
{
    // Global entries survive CR3 reloads; only invlpg removes them.
    CaseScope scope(t);
    PhysAddr a = scope.allocate(), b = scope.allocate();
    KASSERT_TRUE(t, !a.is_null() && !b.is_null());
    poke(direct(a), 0xAAAA);
    poke(direct(b), 0xBBBB);
    KASSERT_OK(t, scope.map(scratch(0), a, RW | PageFlags::Global));
    KEXPECT_EQ(t, peek(scratch(0)), 0xAAAAull);
    x86::write_cr3(x86::read_cr3()); // flushes non-global entries only
    KEXPECT_EQ(t, peek(scratch(0)), 0xAAAAull);
    KASSERT_OK(t, mm::unmap(scratch(0)));
    KASSERT_OK(t, scope.map(scratch(0), b, RW | PageFlags::Global));
    KEXPECT_EQ(t, peek(scratch(0)), 0xBBBBull);
    KEXPECT_OK(t, mm::unmap(scratch(0)));
}

// ---------------------------------------------------------------------------------------------
// protect(): read-only, writable again, NX.
// ---------------------------------------------------------------------------------------------

void test_protect_read_only_write_faults(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    fill(direct(page), 21);
    KASSERT_OK(t, scope.map(scratch(0), page, RW));
    KEXPECT_NO_FAULT(t, Access::Write, scratch(0) + 16, pattern(21, 2)); // a writable TLB entry now
    KASSERT_OK(t, mm::protect(scratch(0), RO));
    KEXPECT_FAULT(t, Access::Write, scratch(0) + 16, PF_P | PF_W);
    KEXPECT_PATTERN(t, direct(page), 21);
    KEXPECT_OK(t, mm::unmap(scratch(0)));
}

void test_protect_read_only_still_readable(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    fill(direct(page), 22);
    KASSERT_OK(t, scope.map(scratch(0), page, RW));
    KASSERT_OK(t, mm::protect(scratch(0), RO));
    KEXPECT_PATTERN(t, scratch(0), 22);
    // Writes through the direct map still land and show through the read-only alias.
    poke(direct(page) + 24, 0x5151);
    KEXPECT_EQ(t, peek(scratch(0) + 24), 0x5151ull);
    KEXPECT_OK(t, mm::unmap(scratch(0)));
}

void test_protect_back_to_writable(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    fill(direct(page), 23);
    KASSERT_OK(t, scope.map(scratch(0), page, RW));
    KASSERT_OK(t, mm::protect(scratch(0), RO));
    KEXPECT_FAULT(t, Access::Write, scratch(0), PF_P | PF_W); // a read-only TLB entry now
    KASSERT_OK(t, mm::protect(scratch(0), RW));
    KEXPECT_NO_FAULT(t, Access::Write, scratch(0), 0xC0FFEE);
    KEXPECT_EQ(t, peek(direct(page)), 0xC0FFEEull);
    fill(scratch(0), 24);
    KEXPECT_PATTERN(t, direct(page), 24);
    KEXPECT_OK(t, mm::unmap(scratch(0)));
}

void test_protect_keeps_physical_address(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    KASSERT_OK(t, scope.map(scratch(0), page, RW));
    for (PageFlags flags : { RO, RWX, RX, RW | PageFlags::Global, RW }) {
        KASSERT_OK(t, mm::protect(scratch(0), flags));
        auto translation = mm::translate(scratch(0) + 0x40);
        KASSERT_OK(t, translation);
        KEXPECT_EQ(t, translation.value().phys, page + 0x40);
        KEXPECT_EQ(t, translation.value().flags, flags);
        KEXPECT_EQ(t, translation.value().size, PageSize::Size4K);
    }
    KEXPECT_OK(t, mm::unmap(scratch(0)));
}

void test_map_flags_round_trip(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    const PageFlags cases[] = { RO, RW, RX, RWX, RW | PageFlags::Global, RW | PageFlags::WriteThrough,
        RW | PageFlags::CacheDisable | PageFlags::WriteThrough };
    for (PageFlags flags : cases) {
        KASSERT_OK(t, scope.map(scratch(0), page, flags));
        auto translation = mm::translate(scratch(0));
        KEXPECT_TRUE(t, !translation.is_error() && translation.value().flags == flags);
        KASSERT_OK(t, mm::unmap(scratch(0)));
    }
}

void test_nx_page_execute_faults(ktest::Test& t)
{
    if (!nx_supported()) {
        t.skip("CPU has no NX");
        return;
    }
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    *direct(page).as_ptr<volatile u8>() = 0xC3; // ret
    KASSERT_OK(t, scope.map(scratch(0), page, RW));
    KEXPECT_FAULT(t, Access::Execute, scratch(0), PF_P | PF_I);
    KEXPECT_EQ(t, g_catch.frame.rip, scratch(0).value());
    KEXPECT_OK(t, mm::unmap(scratch(0)));
}

void test_executable_page_runs(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    *(direct(page) + 0x10).as_ptr<volatile u8>() = 0xC3;
    KASSERT_OK(t, scope.map(scratch(0), page, RX));
    KEXPECT_NO_FAULT(t, Access::Execute, scratch(0) + 0x10, 0);
    KEXPECT_OK(t, mm::unmap(scratch(0)));
}

void test_protect_to_nx_stops_execution(ktest::Test& t)
{
    if (!nx_supported()) {
        t.skip("CPU has no NX");
        return;
    }
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    *direct(page).as_ptr<volatile u8>() = 0xC3;
    KASSERT_OK(t, scope.map(scratch(0), page, RX));
    KEXPECT_NO_FAULT(t, Access::Execute, scratch(0), 0); // an executable TLB entry now
    KASSERT_OK(t, mm::protect(scratch(0), RO));
    KEXPECT_FAULT(t, Access::Execute, scratch(0), PF_P | PF_I);
    KASSERT_OK(t, mm::protect(scratch(0), RX));
    KEXPECT_NO_FAULT(t, Access::Execute, scratch(0), 0);
    KEXPECT_OK(t, mm::unmap(scratch(0)));
}

// ---------------------------------------------------------------------------------------------
// Errors: EEXIST, ENOENT, EINVAL, and a failed call changes nothing.
// ---------------------------------------------------------------------------------------------

void test_double_map_is_eexist(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr a = scope.allocate(), b = scope.allocate();
    KASSERT_TRUE(t, !a.is_null() && !b.is_null());
    fill(direct(a), 31);
    KASSERT_OK(t, scope.map(scratch(0), a, RW));
    KEXPECT_ERRNO(t, mm::map(scratch(0), b, RW), EEXIST);
    KEXPECT_ERRNO(t, mm::map(scratch(0), a, RO), EEXIST);
    auto translation = mm::translate(scratch(0));
    KASSERT_OK(t, translation);
    KEXPECT_EQ(t, translation.value().phys, a);
    KEXPECT_EQ(t, translation.value().flags, RW);
    KEXPECT_PATTERN(t, scratch(0), 31);
    KEXPECT_OK(t, mm::unmap(scratch(0)));
}

void test_unmap_unmapped_is_enoent(ktest::Test& t)
{
    CaseScope scope(t);
    KEXPECT_ERRNO(t, mm::unmap(scratch(0)), ENOENT);
    // With tables present but the PTE empty, too.
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    KASSERT_OK(t, scope.map(scratch(0), page, RW));
    KEXPECT_ERRNO(t, mm::unmap(scratch(1)), ENOENT);
    KEXPECT_OK(t, mm::unmap(scratch(0)));
    KEXPECT_ERRNO(t, mm::unmap(scratch(0)), ENOENT);
}

void test_protect_unmapped_is_enoent(ktest::Test& t)
{
    CaseScope scope(t);
    KEXPECT_ERRNO(t, mm::protect(scratch(0), RO), ENOENT);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    KASSERT_OK(t, scope.map(scratch(0), page, RW));
    KEXPECT_ERRNO(t, mm::protect(scratch(1), RO), ENOENT);
    KEXPECT_ERRNO(t, mm::translate(scratch(1)), ENOENT); // protect() did not create it
    KEXPECT_OK(t, mm::unmap(scratch(0)));
}

void test_translate_unmapped_is_enoent(ktest::Test& t)
{
    CaseScope scope(t);
    KEXPECT_ERRNO(t, mm::translate(scratch(0)), ENOENT);
    KEXPECT_ERRNO(t, mm::translate(SCRATCH + 100 * GiB), ENOENT);
    KEXPECT_ERRNO(t, mm::translate(VirtAddr(0xffffc00000001000)), ENOENT);
}

void test_map_misaligned_virtual_is_einval(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    for (u64 offset : { 1ull, 8ull, 0x800ull, 0xfffull }) {
        scope.track(scratch(0), 1);
        KEXPECT_ERRNO(t, mm::map(scratch(0) + offset, page, RW), EINVAL);
    }
    KEXPECT_ERRNO(t, mm::translate(scratch(0)), ENOENT);
}

void test_map_misaligned_physical_is_einval(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    scope.track(scratch(0), 1);
    KEXPECT_ERRNO(t, mm::map(scratch(0), PhysAddr(page + 1), RW), EINVAL);
    KEXPECT_ERRNO(t, mm::map(scratch(0), PhysAddr(page + 0x800), RW), EINVAL);
    KEXPECT_ERRNO(t, mm::translate(scratch(0)), ENOENT);
}

void test_map_non_canonical_is_einval(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    for (u64 raw : { 0x0000800000000000ull, 0x0000fffffffff000ull, 0xffff7ffffffff000ull, 0x8000000000000000ull,
             0x1234567800000000ull })
        KEXPECT_ERRNO(t, mm::map(VirtAddr(raw), page, RW), EINVAL);
    KEXPECT_FALSE(t, PageTable::is_canonical(VirtAddr(0x0000800000000000)));
    KEXPECT_TRUE(t, PageTable::is_canonical(VirtAddr(0x00007ffffffff000)));
    KEXPECT_TRUE(t, PageTable::is_canonical(VirtAddr(0xffff800000000000)));
}

void test_unmap_and_protect_reject_bad_addresses(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    KASSERT_OK(t, scope.map(scratch(0), page, RW));
    KEXPECT_ERRNO(t, mm::unmap(scratch(0) + 8), EINVAL);
    KEXPECT_ERRNO(t, mm::protect(scratch(0) + 8, RO), EINVAL);
    KEXPECT_ERRNO(t, mm::unmap(VirtAddr(0x0000800000000000)), EINVAL);
    KEXPECT_ERRNO(t, mm::protect(VirtAddr(0xffff7ffffffff000), RO), EINVAL);
    // None of the rejected calls touched the mapping.
    auto translation = mm::translate(scratch(0));
    KEXPECT_TRUE(t, !translation.is_error() && translation.value().flags == RW);
    KEXPECT_OK(t, mm::unmap(scratch(0)));
}

void test_translate_non_canonical_is_einval(ktest::Test& t)
{
    KEXPECT_ERRNO(t, mm::translate(VirtAddr(0x0000800000000000)), EINVAL);
    KEXPECT_ERRNO(t, mm::translate(VirtAddr(0xffff7fffffffffff)), EINVAL);
    KEXPECT_ERRNO(t, mm::translate(VirtAddr(0x8000000000000000)), EINVAL);
}

void test_map_rejects_unknown_flags(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    using namespace PageTableEntry;
    scope.track(scratch(0), 1);
    const u64 bits[] = { Present, Accessed, Dirty, HugePage, u64(1) << 9, u64(1) << 11, u64(1) << 52, u64(1) << 62 };
    for (u64 bit : bits)
        KEXPECT_ERRNO(t, mm::map(scratch(0), page, RW | PageFlags(bit)), EINVAL);
    KEXPECT_ERRNO(t, mm::translate(scratch(0)), ENOENT);
    KASSERT_OK(t, scope.map(scratch(0), page, RW));
    KEXPECT_ERRNO(t, mm::protect(scratch(0), RO | PageFlags(HugePage)), EINVAL);
    KEXPECT_OK(t, mm::unmap(scratch(0)));
}

void test_map_rejects_physical_beyond_52_bits(ktest::Test& t)
{
    CaseScope scope(t);
    scope.track(scratch(0), 1);
    KEXPECT_ERRNO(t, mm::map(scratch(0), PhysAddr(PageTableEntry::MaxPhysicalAddress), RW), EINVAL);
    KEXPECT_ERRNO(t, mm::map(scratch(0), PhysAddr(0xfff0000000000000), RW), EINVAL);
    KEXPECT_ERRNO(t, mm::translate(scratch(0)), ENOENT);
}

void test_failed_map_leaves_nothing_behind(ktest::Test& t)
{
    // An invalid request allocates no table; the CaseScope checks the page count and PML4 slot.
    CaseScope scope(t);
    u64 free_before = mm::page_stats().free_pages;
    scope.track(scratch(0), 1);
    KEXPECT_ERRNO(t, mm::map(scratch(0), PhysAddr(0x1001), RW), EINVAL);
    KEXPECT_ERRNO(t, mm::map(scratch(0) + 4, PhysAddr(0x1000), RW), EINVAL);
    KEXPECT_EQ(t, mm::page_stats().free_pages, free_before);
    KEXPECT_EQ(t, scratch_pdpt_entries_in_use(), 0ull);
}

// ---------------------------------------------------------------------------------------------
// Many pages, ranges and table reclamation on the kernel table.
// ---------------------------------------------------------------------------------------------

void test_map_256_pages_both_ways(ktest::Test& t)
{
    constexpr u64 count = 256;
    CaseScope scope(t);
    static PhysAddr pages[count];
    scope.track(scratch(0), count);
    for (u64 i = 0; i < count; ++i) {
        pages[i] = scope.allocate();
        KASSERT_TRUE(t, !pages[i].is_null());
        fill(direct(pages[i]), 1000 + i);
        KASSERT_OK(t, mm::map(scratch(i), pages[i], RW));
    }
    for (u64 i = 0; i < count; ++i) {
        auto translation = mm::translate(scratch(i));
        KASSERT_TRUE(t, !translation.is_error() && translation.value().phys == pages[i]);
        KEXPECT_PATTERN(t, scratch(i), 1000 + i);
        fill(scratch(i), 2000 + i);
    }
    for (u64 i = 0; i < count; ++i)
        KEXPECT_PATTERN(t, direct(pages[i]), 2000 + i);
    for (u64 i = 0; i < count; ++i) {
        auto phys = mm::unmap(scratch(i));
        KASSERT_OK(t, phys);
        KEXPECT_EQ(t, phys.value(), pages[i]);
    }
    for (u64 i = 0; i < count; ++i) {
        KEXPECT_ERRNO(t, mm::translate(scratch(i)), ENOENT);
        KEXPECT_FAULT(t, Access::Read, scratch(i) + (i % WORDS_PER_PAGE) * 8, 0);
    }
}

void test_map_range_and_unmap_range_on_kernel_table(ktest::Test& t)
{
    constexpr u64 order = 6, count = 1 << order;
    CaseScope scope(t);
    PhysAddr block = scope.allocate(order);
    KASSERT_TRUE(t, !block.is_null());
    for (u64 i = 0; i < count; ++i)
        fill(direct(block + i * PAGE_SIZE), 3000 + i);
    PageTable& kernel = mm::kernel_page_table();
    scope.track(scratch(0), count);
    KASSERT_OK(t, kernel.map_range(scratch(0), block, count * PAGE_SIZE, RW, true));
    for (u64 i = 0; i < count; ++i) {
        auto translation = mm::translate(scratch(i));
        KASSERT_TRUE(t, !translation.is_error());
        KEXPECT_EQ(t, translation.value().phys, block + i * PAGE_SIZE);
        KEXPECT_EQ(t, translation.value().size, PageSize::Size4K); // 256 KiB is too short for a 2 MiB page
        KEXPECT_PATTERN(t, scratch(i), 3000 + i);
        poke(scratch(i), i);
    }
    for (u64 i = 0; i < count; ++i)
        KEXPECT_EQ(t, peek(direct(block + i * PAGE_SIZE)), i);
    // Another range over any page of it is refused as a whole.
    KEXPECT_ERRNO(t, kernel.map_range(scratch(count - 1), block, 2 * PAGE_SIZE, RW, false), EEXIST);
    KEXPECT_ERRNO(t, mm::translate(scratch(count)), ENOENT);
    KASSERT_OK(t, kernel.unmap_range(scratch(0), count * PAGE_SIZE));
    for (u64 i = 0; i < count; i += 7) {
        KEXPECT_ERRNO(t, mm::translate(scratch(i)), ENOENT);
        KEXPECT_FAULT(t, Access::Read, scratch(i), 0);
    }
}

void test_kernel_table_frees_intermediate_tables(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    KASSERT_TRUE(t, kernel_pml4()[SCRATCH_PML4_INDEX] & PageTableEntry::Present);
    PhysAddr pdpt = scratch_pdpt();
    KASSERT_EQ(t, scratch_pdpt_entries_in_use(), 0ull);
    u64 before = mm::page_stats().free_pages;
    KASSERT_OK(t, scope.map(scratch(0), page, RW));
    // A PD and a PT, linked into the PDPT that was already there.
    KEXPECT_EQ(t, before - mm::page_stats().free_pages, 2ull);
    KEXPECT_EQ(t, scratch_pdpt(), pdpt);
    KEXPECT_EQ(t, scratch_pdpt_entries_in_use(), 1ull);
    KASSERT_OK(t, mm::unmap(scratch(0)));
    // Both freed; the PDPT stays, empty, at the same address.
    KEXPECT_EQ(t, mm::page_stats().free_pages, before);
    KEXPECT_EQ(t, scratch_pdpt(), pdpt);
    KEXPECT_EQ(t, scratch_pdpt_entries_in_use(), 0ull);
}

void test_kernel_upper_half_pdpts_all_present(ktest::Test& t)
{
    // mm::init links a PDPT into every upper-half PML4 entry, so a new address space can copy all
    // 256 entries at creation and never has to be told about a later change.
    using namespace PageTableEntry;
    u64* pml4 = kernel_pml4();
    u64 missing = 0, bad_flags = 0, duplicates = 0, not_reserved = 0;
    auto& buddy = mm::buddy_for_tests();
    for (int i = 256; i < 512; ++i) {
        u64 entry = pml4[i];
        if (!(entry & Present)) {
            if (missing++ < 4)
                t.fail(__FILE__, __LINE__, "kernel PML4[%d] is not present: 0x%llx", i, (unsigned long long)entry);
            continue;
        }
        // Supervisor-only and never NX or Global: a copy must not grant more than the leaves do.
        if ((entry & ~AddressMask & ~Accessed) != (Present | Writable))
            bad_flags++;
        for (int j = 256; j < i; ++j)
            duplicates += (pml4[j] & AddressMask) == (entry & AddressMask);
        // Every PDPT is a page the kernel owns, never one the buddy allocator could hand out.
        const PageFrame* frame = buddy.frame_for(PhysAddr(entry & AddressMask));
        not_reserved += !frame || !frame->has(PageFrame::Reserved);
    }
    KEXPECT_EQ(t, missing, 0ull);
    KEXPECT_EQ(t, bad_flags, 0ull);
    KEXPECT_EQ(t, duplicates, 0ull);
    KEXPECT_EQ(t, not_reserved, 0ull);
    KEXPECT_TRUE(t, mm::kernel_page_table().upper_half_pdpts_pinned());
    KEXPECT_TRUE(t, mm::layout().page_tables_at_boot >= 1 + 256);
}

void test_kernel_pdpt_survives_map_unmap_cycles(ktest::Test& t)
{
    // 4 KiB pages, a 2 MiB page (a PD but no PT), and unmap_range across two PDs: whichever path
    // empties the scratch PDPT, it stays where it is, and the tables below it are freed.
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    PhysAddr block = scope.allocate(9);
    KASSERT_TRUE(t, !page.is_null() && !block.is_null());
    poke(direct(page), 0x5A5A);
    poke(direct(block + 3 * PAGE_SIZE), 0xB10C);
    u64 upper[256];
    for (int i = 0; i < 256; ++i)
        upper[i] = kernel_pml4()[256 + i];
    PhysAddr pdpt = scratch_pdpt();
    u64 before = mm::page_stats().free_pages;
    PageTable& kernel = mm::kernel_page_table();
    // A 4 KiB page at the end of one GiB, then a 2 MiB and a 4 KiB page at the start of the next.
    VirtAddr first = SCRATCH + 1 * GiB - PAGE_SIZE;
    scope.track(SCRATCH + 2 * MiB, 512);
    scope.track(first, 1 + 512 + 1);
    for (u64 round = 0; round < 8; ++round) {
        VirtAddr va = SCRATCH + round * 2 * GiB + (round + 1) * 4 * MiB + round * PAGE_SIZE;
        KASSERT_OK(t, scope.map(va, page, RW));
        KEXPECT_EQ(t, peek(va), 0x5A5Aull);
        KASSERT_OK(t, mm::unmap(va));
        KEXPECT_EQ(t, mm::page_stats().free_pages, before);

        KASSERT_OK(t, kernel.map(SCRATCH + 2 * MiB, block, RW, PageSize::Size2M));
        KEXPECT_EQ(t, before - mm::page_stats().free_pages, 1ull); // just the PD
        KEXPECT_EQ(t, peek(SCRATCH + 2 * MiB + 3 * PAGE_SIZE), 0xB10Cull);
        KASSERT_OK(t, kernel.unmap_range(SCRATCH + 2 * MiB, 2 * MiB));
        KEXPECT_EQ(t, mm::page_stats().free_pages, before);

        KASSERT_OK(t, kernel.map(first, page, RW));
        KASSERT_OK(t, kernel.map_range(SCRATCH + 1 * GiB, block, 2 * MiB, RW, true));
        KASSERT_OK(t, kernel.map(SCRATCH + 1 * GiB + 2 * MiB, page, RW));
        KEXPECT_EQ(t, before - mm::page_stats().free_pages, 4ull); // two PDs, two PTs
        KEXPECT_EQ(t, scratch_pdpt_entries_in_use(), 2ull);
        KEXPECT_EQ(t, peek(first), 0x5A5Aull);
        KEXPECT_EQ(t, peek(SCRATCH + 1 * GiB + 3 * PAGE_SIZE), 0xB10Cull);
        KASSERT_OK(t, kernel.unmap_range(first, PAGE_SIZE + 2 * MiB + PAGE_SIZE));
        KEXPECT_EQ(t, mm::page_stats().free_pages, before);

        KEXPECT_EQ(t, scratch_pdpt(), pdpt);
        KEXPECT_EQ(t, scratch_pdpt_entries_in_use(), 0ull);
    }
    KEXPECT_FAULT(t, Access::Read, first, 0);
    // No upper-half entry changed, the scratch slot or any other (the CPU may set Accessed).
    u64 changed = 0;
    for (int i = 0; i < 256; ++i)
        changed += (kernel_pml4()[256 + i] | PageTableEntry::Accessed) != (upper[i] | PageTableEntry::Accessed);
    KEXPECT_EQ(t, changed, 0ull);
}

// A 2 MiB page in the scratch region of the live kernel table. Null if no 2 MiB block is free.
PhysAddr map_live_2m(ktest::Test& t, CaseScope& scope, VirtAddr virt, u64 seed)
{
    PhysAddr block = scope.allocate(9);
    if (block.is_null())
        return PhysAddr();
    for (u64 i = 0; i < 512; ++i)
        poke(direct(block + i * PAGE_SIZE), pattern(seed, i));
    scope.track(virt, 512);
    auto mapped = mm::kernel_page_table().map(virt, block, RW, PageSize::Size2M);
    if (mapped.is_error()) {
        t.fail(__FILE__, __LINE__, "mapping a 2 MiB page failed with %s", mapped.error().name());
        return PhysAddr();
    }
    return block;
}

void test_live_2m_page_split_by_protect(ktest::Test& t)
{
    CaseScope scope(t);
    VirtAddr va = SCRATCH + 4 * MiB;
    PhysAddr block = map_live_2m(t, scope, va, 41);
    KASSERT_TRUE(t, !block.is_null());
    auto large = mm::translate(va + 5 * PAGE_SIZE + 0x18);
    KASSERT_OK(t, large);
    KEXPECT_EQ(t, large.value().size, PageSize::Size2M);
    KEXPECT_EQ(t, large.value().phys, block + 5 * PAGE_SIZE + 0x18);
    for (u64 i = 0; i < 512; ++i)
        KEXPECT_EQ(t, peek(va + i * PAGE_SIZE), pattern(41, i)); // the 2 MiB entry is in the TLB
    KASSERT_OK(t, mm::protect(va + 5 * PAGE_SIZE, RO));
    KEXPECT_FAULT(t, Access::Write, va + 5 * PAGE_SIZE, PF_P | PF_W);
    KEXPECT_NO_FAULT(t, Access::Write, va + 4 * PAGE_SIZE, 0x44);
    KEXPECT_NO_FAULT(t, Access::Write, va + 6 * PAGE_SIZE, 0x66);
    KEXPECT_EQ(t, peek(direct(block + 4 * PAGE_SIZE)), 0x44ull);
    KEXPECT_EQ(t, peek(direct(block + 6 * PAGE_SIZE)), 0x66ull);
    for (u64 i = 7; i < 512; ++i)
        KEXPECT_EQ(t, peek(va + i * PAGE_SIZE), pattern(41, i));
    auto split = mm::translate(va + 300 * PAGE_SIZE);
    KASSERT_OK(t, split);
    KEXPECT_EQ(t, split.value().size, PageSize::Size4K);
    KEXPECT_EQ(t, split.value().phys, block + 300 * PAGE_SIZE);
    KEXPECT_EQ(t, split.value().flags, RW);
    KEXPECT_OK(t, mm::kernel_page_table().unmap_range(va, 2 * MiB));
    KEXPECT_FAULT(t, Access::Read, va + 300 * PAGE_SIZE, 0);
}

void test_live_2m_page_split_by_unmap(ktest::Test& t)
{
    CaseScope scope(t);
    VirtAddr va = SCRATCH + 8 * MiB;
    PhysAddr block = map_live_2m(t, scope, va, 42);
    KASSERT_TRUE(t, !block.is_null());
    KEXPECT_EQ(t, peek(va + 7 * PAGE_SIZE), pattern(42, 7));
    auto phys = mm::unmap(va + 7 * PAGE_SIZE);
    KASSERT_OK(t, phys);
    KEXPECT_EQ(t, phys.value(), block + 7 * PAGE_SIZE);
    KEXPECT_FAULT(t, Access::Read, va + 7 * PAGE_SIZE, 0);
    for (u64 i = 0; i < 512; ++i)
        if (i != 7)
            KEXPECT_EQ(t, peek(va + i * PAGE_SIZE), pattern(42, i));
    // The hole makes unmap_range of the whole 2 MiB refuse; the two sides go separately.
    KEXPECT_ERRNO(t, mm::kernel_page_table().unmap_range(va, 2 * MiB), ENOENT);
    KEXPECT_OK(t, mm::kernel_page_table().unmap_range(va, 7 * PAGE_SIZE));
    KEXPECT_OK(t, mm::kernel_page_table().unmap_range(va + 8 * PAGE_SIZE, 2 * MiB - 8 * PAGE_SIZE));
    KEXPECT_FAULT(t, Access::Read, va + 100 * PAGE_SIZE, 0);
}

// ---------------------------------------------------------------------------------------------
// The direct map.
// ---------------------------------------------------------------------------------------------

bool is_ram_page(const BuddyAllocator& buddy, PhysAddr page)
{
    const PageFrame* frame = buddy.frame_for(page);
    return frame && !frame->has(PageFrame::Reserved);
}

void test_direct_map_uses_large_pages(ktest::Test& t)
{
    // The direct map uses the largest page that fits: 1 GiB where the CPU has them (-cpu max) and a
    // whole aligned GiB is mapped, otherwise 2 MiB. So every 2 MiB chunk that is wholly RAM given to
    // the allocator is one 2 MiB page or lies in a 1 GiB page, and every GiB that is wholly such
    // RAM must be one 1 GiB page when the CPU has them.
    auto& buddy = mm::buddy_for_tests();
    const bool gbpages = cpu::features().gbpages;
    u64 chunks = 0, gib_chunks = 0, in_gib_pages = 0, failures = 0;
    auto report = [&](PhysAddr at, const char* what) {
        if (failures++ < 4)
            t.fail(__FILE__, __LINE__, "direct map of 0x%llx: %s", at.ull(), what);
    };
    for (PhysAddr gib = align_down(buddy.base(), 1 * GiB); gib < buddy.limit(); gib += 1 * GiB) {
        bool whole_gib = gib >= buddy.base() && gib + 1 * GiB <= buddy.limit();
        for (PhysAddr chunk = gib; chunk < gib + 1 * GiB; chunk += 2 * MiB) {
            bool all_ram = chunk >= buddy.base() && chunk + 2 * MiB <= buddy.limit();
            for (PhysAddr page = chunk; page < chunk + 2 * MiB && all_ram; page += PAGE_SIZE)
                all_ram = is_ram_page(buddy, page);
            whole_gib &= all_ram;
            if (!all_ram)
                continue;
            chunks++;
            auto translation = mm::translate(direct(chunk) + 0x1238);
            if (translation.is_error()) {
                report(chunk, translation.error().name());
                continue;
            }
            PageSize size = translation.value().size;
            if (translation.value().phys != chunk + 0x1238)
                report(chunk, "translates to the wrong frame");
            else if (size == PageSize::Size1G)
                in_gib_pages++;
            if (size != PageSize::Size2M && !(gbpages && size == PageSize::Size1G))
                report(chunk, gbpages ? "neither a 2 MiB nor a 1 GiB page" : "not a 2 MiB page (the CPU has no 1 GiB pages)");
        }
        if (!gbpages || !whole_gib)
            continue;
        gib_chunks++;
        auto translation = mm::translate(direct(gib) + 0x123458);
        if (translation.is_error() || translation.value().size != PageSize::Size1G
            || translation.value().phys != gib + 0x123458)
            report(gib, "a whole GiB of RAM is not one 1 GiB page");
    }
    t.log("%llu fully usable 2 MiB chunks checked, %llu in 1 GiB pages; %llu whole GiB%s", (unsigned long long)chunks,
        (unsigned long long)in_gib_pages, (unsigned long long)gib_chunks, gbpages ? "" : " (no 1 GiB pages on this CPU)");
    KEXPECT_TRUE(t, chunks > 0);
    KEXPECT_EQ(t, failures, 0ull);
}

void test_direct_map_translates_exactly(ktest::Test& t)
{
    CaseScope scope(t);
    for (unsigned order : { 0u, 0u, 3u, 9u }) {
        PhysAddr block = scope.allocate(order);
        KASSERT_TRUE(t, !block.is_null());
        const u64 offsets[] = { 0, 0x8, 0xfff, (PAGE_SIZE << order) - 1 };
        for (u64 offset : offsets) {
            auto translation = mm::translate(direct(block) + offset);
            KASSERT_OK(t, translation);
            KEXPECT_EQ(t, translation.value().phys, block + offset);
        }
    }
}

void test_direct_map_is_writable_nx_global_supervisor(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    auto translation = mm::translate(direct(page));
    KASSERT_OK(t, translation);
    PageFlags flags = translation.value().flags;
    KEXPECT_TRUE(t, has_flag(flags, PageFlags::Writable));
    KEXPECT_TRUE(t, has_flag(flags, PageFlags::Global));
    KEXPECT_FALSE(t, has_flag(flags, PageFlags::User));
    KEXPECT_FALSE(t, has_flag(flags, PageFlags::CacheDisable));
    if (nx_supported()) {
        KEXPECT_TRUE(t, has_flag(flags, PageFlags::NoExecute));
        *direct(page).as_ptr<volatile u8>() = 0xC3;
        KEXPECT_FAULT(t, Access::Execute, direct(page), PF_P | PF_I);
    }
}

void test_direct_map_covers_all_available_ram(ktest::Test& t)
{
    // Every page the allocator was given (available RAM minus what boot reserved) is in the direct map.
    auto& buddy = mm::buddy_for_tests();
    u64 ram_pages = 0, failures = 0;
    for (PhysAddr chunk = align_down(buddy.base(), 2 * MiB); chunk < buddy.limit(); chunk += 2 * MiB) {
        auto large = mm::translate(direct(chunk));
        bool whole = !large.is_error() && large.value().size != PageSize::Size4K && large.value().phys == chunk;
        for (PhysAddr page = chunk; page < chunk + 2 * MiB; page += PAGE_SIZE) {
            if (!is_ram_page(buddy, page))
                continue;
            ram_pages++;
            if (whole)
                continue;
            auto translation = mm::translate(direct(page));
            if ((translation.is_error() || translation.value().phys != page) && failures++ < 4)
                t.fail(__FILE__, __LINE__, "RAM page 0x%llx is not in the direct map", page.ull());
        }
    }
    KEXPECT_EQ(t, failures, 0ull);
    KEXPECT_EQ(t, ram_pages, mm::page_stats().total_pages);
    KEXPECT_TRUE(t, mm::layout().direct_mapped_bytes >= mm::layout().usable_bytes);
    t.log("%llu allocator pages, %llu MiB direct-mapped", (unsigned long long)ram_pages,
        (unsigned long long)(mm::layout().direct_mapped_bytes / MiB));
}

void test_direct_map_covers_kernel_and_boot_allocations(ktest::Test& t)
{
    // RAM the allocator never got is still RAM: the kernel image and the early allocator's pages.
    const auto& layout = mm::layout();
    struct {
        PhysAddr start, end;
    } ranges[] = { { layout.kernel_phys_start, layout.kernel_phys_end }, { layout.bump_start, layout.bump_used_end } };
    for (auto& range : ranges) {
        KEXPECT_TRUE(t, range.start < range.end);
        for (PhysAddr page = align_down(range.start, PAGE_SIZE); page < range.end; page += PAGE_SIZE) {
            auto translation = mm::translate(direct(page));
            if (translation.is_error() || translation.value().phys != page) {
                t.fail(__FILE__, __LINE__, "0x%llx is not in the direct map", page.ull());
                break;
            }
        }
    }
    // Reading the kernel's text through the direct map shows the same bytes as through the image.
    u64 text = (u64)__text_start;
    KEXPECT_EQ(t, peek(direct(PhysAddr(text - mm::KERNEL_VMA))), peek(VirtAddr(text)));
}

// ---------------------------------------------------------------------------------------------
// The kernel image: per-section permissions, guard pages, nothing left from boot.
// ---------------------------------------------------------------------------------------------

u64 g_data_word = 0x0123456789abcdefull; // .data
u64 g_bss_word;                          // .bss
u8 g_data_ret[64] = { 0xC3 };            // .data, holding a ret
const u64 k_rodata_words[4] = { 0x11, 0x22, 0x33, 0x44 };

void expect_image_page(ktest::Test& t, const char* what, u64 address, bool writable, bool nx)
{
    auto translation = mm::translate(VirtAddr(address));
    if (translation.is_error()) {
        t.fail(__FILE__, __LINE__, "%s (0x%llx) is not mapped", what, (unsigned long long)address);
        return;
    }
    PageFlags flags = translation.value().flags;
    if (has_flag(flags, PageFlags::Writable) != writable || (nx_supported() && has_flag(flags, PageFlags::NoExecute) != nx)
        || !has_flag(flags, PageFlags::Global) || has_flag(flags, PageFlags::User))
        t.fail(__FILE__, __LINE__, "%s (0x%llx): flags 0x%llx, expected %s%s, global, supervisor", what,
            (unsigned long long)address, (unsigned long long)flags, writable ? "writable" : "read-only", nx ? ", NX" : ", executable");
    if (translation.value().phys != PhysAddr(address - mm::KERNEL_VMA))
        t.fail(__FILE__, __LINE__, "%s (0x%llx) maps 0x%llx, expected 0x%llx", what, (unsigned long long)address,
            translation.value().phys.ull(), (unsigned long long)(address - mm::KERNEL_VMA));
}

void test_text_is_read_execute(ktest::Test& t)
{
    expect_image_page(t, "__text_start", (u64)__text_start, false, false);
    expect_image_page(t, "this test", (u64)&test_text_is_read_execute, false, false);
    expect_image_page(t, "faults()", (u64)&faults, false, false);
    expect_image_page(t, "the last text byte", (u64)__text_end - 1, false, false);
}

void test_rodata_is_read_only_nx(ktest::Test& t)
{
    u64 word = (u64)&k_rodata_words[1];
    KASSERT_TRUE(t, word >= (u64)__rodata_start && word < (u64)__rodata_end);
    expect_image_page(t, "__rodata_start", (u64)__rodata_start, false, true);
    expect_image_page(t, "a const array", word, false, true);
    expect_image_page(t, "the last rodata byte (.ksyms)", (u64)__rodata_end - 1, false, true);
}

void test_data_and_bss_are_writable_nx(ktest::Test& t)
{
    KASSERT_TRUE(t, (u64)&g_data_word >= (u64)__data_start && (u64)&g_data_word < (u64)__bss_start);
    KASSERT_TRUE(t, (u64)&g_bss_word >= (u64)__bss_start && (u64)&g_bss_word < (u64)__kernel_end);
    expect_image_page(t, "__data_start", (u64)__data_start, true, true);
    expect_image_page(t, "a .data word", (u64)&g_data_word, true, true);
    expect_image_page(t, "a .bss word", (u64)&g_bss_word, true, true);
    expect_image_page(t, "the boot stack", (u64)boot_stack_bottom, true, true);
    expect_image_page(t, "the last .bss byte", (u64)__kernel_end - 1, true, true);
    KEXPECT_NO_FAULT(t, Access::Write, VirtAddr((u64)&g_bss_word), 0x77);
    KEXPECT_EQ(t, g_bss_word, 0x77ull);
}

void test_text_write_faults(ktest::Test& t)
{
    // The write stores the bytes already there, so a missing protection corrupts nothing.
    u64 target = align_up((u64)&access_read, 8);
    KEXPECT_TRUE(t, faults(Access::Write, VirtAddr(target), peek(VirtAddr(target))));
    KEXPECT_EQ(t, g_catch.cr2, target);
    KEXPECT_EQ(t, g_catch.frame.error_code & PF_MASK, PF_P | PF_W);
}

void test_rodata_write_faults(ktest::Test& t)
{
    u64 target = (u64)&k_rodata_words[2];
    KEXPECT_TRUE(t, faults(Access::Write, VirtAddr(target), peek(VirtAddr(target))));
    KEXPECT_EQ(t, g_catch.cr2, target);
    KEXPECT_EQ(t, g_catch.frame.error_code & PF_MASK, PF_P | PF_W);
    KEXPECT_EQ(t, k_rodata_words[2], 0x33ull);
}

void test_data_execute_faults(ktest::Test& t)
{
    if (!nx_supported()) {
        t.skip("CPU has no NX");
        return;
    }
    KEXPECT_FAULT(t, Access::Execute, VirtAddr((u64)g_data_ret), PF_P | PF_I);
    KEXPECT_EQ(t, g_data_word, 0x0123456789abcdefull);
}

void test_boot_stack_guard_unmapped(ktest::Test& t)
{
    u64 guard = (u64)boot_stack_guard;
    KEXPECT_TRUE(t, is_aligned(guard, PAGE_SIZE));
    KEXPECT_ERRNO(t, mm::translate(VirtAddr(guard)), ENOENT);
    KEXPECT_ERRNO(t, mm::translate(VirtAddr(guard + PAGE_SIZE - 1)), ENOENT);
    KEXPECT_FAULT(t, Access::Read, VirtAddr(guard + 0x800), 0);
    // The stack right above it is mapped.
    KEXPECT_OK(t, mm::translate(VirtAddr(guard + PAGE_SIZE)));
}

void test_all_stack_guards_unmapped(ktest::Test& t)
{
    KASSERT_TRUE(t, kernel_stacks::count() >= 1);
    for (usize i = 0; i < kernel_stacks::count(); ++i) {
        const auto& stack = kernel_stacks::at(i);
        if (!mm::translate(VirtAddr(stack.guard)).is_error())
            t.fail(__FILE__, __LINE__, "the guard page of the %s stack (0x%llx) is mapped", stack.name, (unsigned long long)stack.guard);
        for (u64 page = stack.bottom; page < stack.top; page += PAGE_SIZE) {
            auto translation = mm::translate(VirtAddr(page));
            if (translation.is_error() || !has_flag(translation.value().flags, PageFlags::Writable)) {
                t.fail(__FILE__, __LINE__, "the %s stack page 0x%llx is not writable", stack.name, (unsigned long long)page);
                break;
            }
        }
    }
}

void test_boot_mappings_are_gone(ktest::Test& t)
{
    // The boot tables identity-mapped low memory and aliased the first GiB at KERNEL_VMA; the
    // kernel table keeps only the image itself.
    KEXPECT_ERRNO(t, mm::translate(VirtAddr(0x100000)), ENOENT);
    KEXPECT_ERRNO(t, mm::translate(VirtAddr(0x200000)), ENOENT);
    KEXPECT_ERRNO(t, mm::translate(VirtAddr(mm::KERNEL_VMA)), ENOENT);
    KEXPECT_ERRNO(t, mm::translate(VirtAddr(mm::KERNEL_VMA + 0x100000)), ENOENT); // .boot
    KEXPECT_ERRNO(t, mm::translate(VirtAddr(align_up((u64)__kernel_end, PAGE_SIZE))), ENOENT);
    KEXPECT_ERRNO(t, mm::translate(VirtAddr(mm::KERNEL_VMA + 512 * MiB)), ENOENT);
    KEXPECT_FAULT(t, Access::Read, VirtAddr(0x100000), 0);
}

// ---------------------------------------------------------------------------------------------
// Device memory.
// ---------------------------------------------------------------------------------------------

constexpr PageFlags MMIO_FLAGS = PageFlags::Writable | PageFlags::NoExecute | PageFlags::CacheDisable | PageFlags::WriteThrough;

// A physical page outside RAM that nothing has mapped: device address space nobody decodes.
PhysAddr unused_device_page()
{
    for (u64 candidate : { 0xe0000000ull, 0xd0000000ull, 0xc8000000ull, 0x3f00000000ull })
        if (mm::translate(direct(PhysAddr(candidate))).is_error() && mm::translate(direct(PhysAddr(candidate + PAGE_SIZE))).is_error())
            return PhysAddr(candidate);
    return PhysAddr();
}

void test_map_mmio_is_uncached(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr phys = unused_device_page();
    if (phys.is_null()) {
        t.skip("no unused device address");
        return;
    }
    scope.track(direct(phys), 1);
    auto mapped = mm::map_mmio(PhysAddr(phys + 0x20), 0x10);
    KASSERT_OK(t, mapped);
    KEXPECT_EQ(t, VirtAddr::from_ptr(mapped.value()), direct(phys) + 0x20);
    auto translation = mm::translate(VirtAddr::from_ptr(mapped.value()));
    KASSERT_OK(t, translation);
    KEXPECT_EQ(t, translation.value().flags, MMIO_FLAGS);
    KEXPECT_EQ(t, translation.value().phys, phys + 0x20);
    KEXPECT_EQ(t, translation.value().size, PageSize::Size4K);
    KEXPECT_OK(t, mm::unmap(direct(phys)));
}

void test_map_mmio_local_apic(ktest::Test& t)
{
    // The local APIC is mapped already (its driver did it); mapping it again gives the same
    // uncached page, and its version register reads through it.
    PhysAddr base(x86::rdmsr(x86::MSR_APIC_BASE) & 0x000ffffffffff000ull);
    auto mapped = mm::map_mmio(base, PAGE_SIZE);
    KASSERT_OK(t, mapped);
    KEXPECT_EQ(t, VirtAddr::from_ptr(mapped.value()), direct(base));
    auto translation = mm::translate(direct(base));
    KASSERT_OK(t, translation);
    KEXPECT_TRUE(t, has_flag(translation.value().flags, PageFlags::CacheDisable));
    u32 version = *(direct(base) + 0x30).as_ptr<volatile u32>();
    KEXPECT_TRUE(t, (version & 0xff) >= 0x10 && (version & 0xff) < 0x20); // an integrated APIC
    KEXPECT_TRUE(t, ((version >> 16) & 0xff) >= 2);                       // max LVT entry
}

void test_map_mmio_spans_pages(ktest::Test& t)
{
    CaseScope scope(t);
    PhysAddr phys = unused_device_page();
    if (phys.is_null()) {
        t.skip("no unused device address");
        return;
    }
    scope.track(direct(phys), 2);
    auto mapped = mm::map_mmio(PhysAddr(phys + PAGE_SIZE - 8), 16);
    KASSERT_OK(t, mapped);
    for (u64 page = 0; page < 2; ++page) {
        auto translation = mm::translate(direct(phys) + page * PAGE_SIZE);
        KEXPECT_TRUE(t, !translation.is_error() && translation.value().flags == MMIO_FLAGS);
    }
    KEXPECT_ERRNO(t, mm::translate(direct(phys) + 2 * PAGE_SIZE), ENOENT);
    // A second mapping of an overlapping range is not an error.
    KEXPECT_OK(t, mm::map_mmio(phys, PAGE_SIZE));
    KEXPECT_OK(t, mm::unmap(direct(phys)));
    KEXPECT_OK(t, mm::unmap(direct(phys) + PAGE_SIZE));
}

void test_map_mmio_zero_size_is_einval(ktest::Test& t)
{
    CaseScope scope(t);
    KEXPECT_ERRNO(t, mm::map_mmio(PhysAddr(0xe0000000), 0), EINVAL);
}

void test_map_mmio_of_ram_returns_direct_map(ktest::Test& t)
{
    // RAM is in the direct map already; map_mmio returns that address and keeps its (cached) type.
    CaseScope scope(t);
    PhysAddr page = scope.allocate();
    KASSERT_TRUE(t, !page.is_null());
    auto before = mm::translate(direct(page));
    KASSERT_OK(t, before);
    auto mapped = mm::map_mmio(page, PAGE_SIZE);
    KASSERT_OK(t, mapped);
    KEXPECT_EQ(t, VirtAddr::from_ptr(mapped.value()), direct(page));
    auto after = mm::translate(direct(page));
    KASSERT_OK(t, after);
    KEXPECT_EQ(t, after.value().flags, before.value().flags);
    KEXPECT_EQ(t, after.value().size, before.value().size);
}

// ---------------------------------------------------------------------------------------------
// Private page tables.
// ---------------------------------------------------------------------------------------------

constexpr VirtAddr LOW { 0x0000000040000000ull }; // 1 GiB, in the lower half
constexpr PhysAddr FAKE_PHYS { 0x0000004000000000ull }; // never touched: these tables are not loaded

void test_private_create_destroy_frees_root(ktest::Test& t)
{
    CaseScope scope(t);
    u64 before = mm::page_stats().free_pages;
    {
        PrivateTable table(t);
        KASSERT_PRIVATE(t, table);
        KEXPECT_EQ(t, table.memory().live(), 1ll);
        KEXPECT_EQ(t, before - mm::page_stats().free_pages, 1ull);
        for (int i = 0; i < 512; ++i)
            KASSERT_EQ(t, table.pml4()[i], 0ull);
    }
    KEXPECT_EQ(t, mm::page_stats().free_pages, before);
}

void test_private_map_translate_unmap(ktest::Test& t)
{
    CaseScope scope(t);
    PrivateTable table(t);
    KASSERT_PRIVATE(t, table);
    KASSERT_OK(t, table->map(LOW + 0x5000, FAKE_PHYS + 0x9000, RW | PageFlags::User));
    KEXPECT_EQ(t, table.memory().live(), 4ll); // PML4, PDPT, PD, PT
    auto translation = table->translate(LOW + 0x5abc);
    KASSERT_OK(t, translation);
    KEXPECT_EQ(t, translation.value().phys, FAKE_PHYS + 0x9abc);
    KEXPECT_EQ(t, translation.value().flags, RW | PageFlags::User);
    KEXPECT_EQ(t, translation.value().size, PageSize::Size4K);
    auto unmapped = table->unmap(LOW + 0x5000);
    KASSERT_OK(t, unmapped);
    KEXPECT_EQ(t, unmapped.value(), FAKE_PHYS + 0x9000);
    KEXPECT_ERRNO(t, table->translate(LOW + 0x5000), ENOENT);
    // Tables are not loaded anywhere, yet the builder still reports the change.
    KEXPECT_EQ(t, table.memory().last_invalidated(), LOW + 0x5000);
}

void test_private_intermediate_tables_freed(ktest::Test& t)
{
    CaseScope scope(t);
    u64 before = mm::page_stats().free_pages;
    {
        PrivateTable table(t);
        KASSERT_PRIVATE(t, table);
        for (int round = 0; round < 3; ++round) {
            KASSERT_OK(t, table->map(LOW, FAKE_PHYS, RW));
            KASSERT_OK(t, table->map(LOW + 1 * GiB, FAKE_PHYS, RW));
            KASSERT_OK(t, table->map(SCRATCH, FAKE_PHYS, RW));
            KEXPECT_EQ(t, table.memory().live(), 1ll + 3 + 2 + 3);
            KASSERT_OK(t, table->unmap(LOW + 1 * GiB));
            KEXPECT_EQ(t, table.memory().live(), 1ll + 3 + 3);
            KASSERT_OK(t, table->unmap(LOW));
            KASSERT_OK(t, table->unmap(SCRATCH));
            KEXPECT_EQ(t, table.memory().live(), 1ll);
            KEXPECT_EQ(t, table.pml4()[0], 0ull);
            KEXPECT_EQ(t, table.pml4()[SCRATCH_PML4_INDEX], 0ull);
        }
        KEXPECT_EQ(t, table.memory().allocated(), table.memory().freed() + 1);
    }
    KEXPECT_EQ(t, mm::page_stats().free_pages, before);
}

void test_private_destroy_everything_frees_all(ktest::Test& t)
{
    CaseScope scope(t);
    u64 before = mm::page_stats().free_pages;
    {
        PrivateTable table(t);
        KASSERT_PRIVATE(t, table);
        // Mappings scattered over both halves and every page size, left for destroy() to find.
        for (u64 i = 0; i < 16; ++i)
            KASSERT_OK(t, table->map(VirtAddr(i * 37 * GiB + i * 3 * MiB), FAKE_PHYS, RW));
        for (u64 i = 0; i < 16; ++i)
            KASSERT_OK(t, table->map(SCRATCH + i * 5 * GiB + i * PAGE_SIZE, FAKE_PHYS, RW));
        KASSERT_OK(t, table->map(LOW + 2 * MiB, FAKE_PHYS, RW, PageSize::Size2M));
        KASSERT_OK(t, table->map(VirtAddr(0x0000700000000000), FAKE_PHYS, RW, PageSize::Size1G));
        KASSERT_OK(t, table->map_range(SCRATCH + 300 * GiB, FAKE_PHYS, 6 * MiB, RW, true));
        KEXPECT_TRUE(t, table.memory().live() > 40);
        KEXPECT_EQ(t, (i64)(before - mm::page_stats().free_pages), table.memory().live());
    }
    KEXPECT_EQ(t, mm::page_stats().free_pages, before);
}

void test_private_destroy_user_half_keeps_kernel_half(ktest::Test& t)
{
    CaseScope scope(t);
    PrivateTable table(t);
    KASSERT_PRIVATE(t, table);
    KASSERT_OK(t, table->map(LOW, FAKE_PHYS, RW | PageFlags::User));
    KASSERT_OK(t, table->map(SCRATCH, FAKE_PHYS + PAGE_SIZE, RW));
    KASSERT_EQ(t, table.memory().live(), 7ll);
    // A second address space sharing the kernel half, as every process will.
    auto other_root = table.memory().allocate_table();
    KASSERT_OK(t, other_root);
    u64* other = table.memory().table(other_root.value());
    for (int i = 256; i < 512; ++i)
        other[i] = table.pml4()[i];
    table->destroy(Scope::UserHalf);
    // The lower half's PDPT, PD and PT and the PML4 are gone; the shared upper half is not.
    KEXPECT_EQ(t, table.memory().live(), 4ll);
    PageTable survivor(table.memory(), other_root.value());
    auto translation = survivor.translate(SCRATCH);
    KEXPECT_TRUE(t, !translation.is_error() && translation.value().phys == FAKE_PHYS + PAGE_SIZE);
    KEXPECT_ERRNO(t, survivor.translate(LOW), ENOENT);
    survivor.destroy(Scope::Everything);
    KEXPECT_EQ(t, table.memory().live(), 0ll);
}

void test_private_populate_and_pin_upper_half(ktest::Test& t)
{
    // What mm::init does to the kernel table, on a private one: populate all 256 upper-half
    // PDPTs (all or nothing), then pin them against pruning while the lower half still prunes.
    CaseScope scope(t);
    u64 before = mm::page_stats().free_pages;
    {
        PrivateTable table(t);
        KASSERT_PRIVATE(t, table);
        table.memory().set_budget(100);
        KEXPECT_ERRNO(t, table->populate_upper_half_pdpts(), ENOMEM);
        KEXPECT_EQ(t, table.memory().live(), 1ll);
        KEXPECT_EQ(t, table.memory().allocated(), 1ull + 100);
        for (int i = 0; i < 512; ++i)
            KASSERT_EQ(t, table.pml4()[i], 0ull);
        table.memory().set_budget(-1);
        KASSERT_OK(t, table->populate_upper_half_pdpts());
        KEXPECT_EQ(t, table.memory().live(), 257ll);
        KASSERT_OK(t, table->populate_upper_half_pdpts()); // idempotent
        KEXPECT_EQ(t, table.memory().live(), 257ll);
        for (int i = 256; i < 512; ++i)
            KASSERT_TRUE(t, table.pml4()[i] & PageTableEntry::Present);

        table->set_upper_half_pdpts_pinned(true);
        u64 slot = table.pml4()[SCRATCH_PML4_INDEX];
        for (int round = 0; round < 3; ++round) {
            KASSERT_OK(t, table->map(SCRATCH + round * GiB, FAKE_PHYS, RW));
            KASSERT_OK(t, table->map(LOW, FAKE_PHYS, RW));
            KEXPECT_EQ(t, table.memory().live(), 257ll + 2 + 3);
            KASSERT_OK(t, table->unmap(SCRATCH + round * GiB));
            KASSERT_OK(t, table->unmap(LOW));
            KEXPECT_EQ(t, table.memory().live(), 257ll);
            KEXPECT_EQ(t, table.pml4()[SCRATCH_PML4_INDEX], slot);
            KEXPECT_EQ(t, table.pml4()[0], 0ull);
        }
        // destroy(Everything) in ~PrivateTable frees the pinned PDPTs too.
    }
    KEXPECT_EQ(t, mm::page_stats().free_pages, before);
}

void test_private_2m_page_translates(ktest::Test& t)
{
    CaseScope scope(t);
    PrivateTable table(t);
    KASSERT_PRIVATE(t, table);
    KASSERT_OK(t, table->map(LOW, FAKE_PHYS, RW, PageSize::Size2M));
    KEXPECT_EQ(t, table.memory().live(), 3ll); // no PT
    for (u64 offset : { 0ull, 0x1234ull, 0x1fffffull }) {
        auto translation = table->translate(LOW + offset);
        KASSERT_OK(t, translation);
        KEXPECT_EQ(t, translation.value().phys, FAKE_PHYS + offset);
        KEXPECT_EQ(t, translation.value().size, PageSize::Size2M);
        KEXPECT_EQ(t, translation.value().flags, RW);
    }
    u64 pde = raw_entry(table, LOW, 2);
    KEXPECT_TRUE(t, pde & PageTableEntry::HugePage);
    KEXPECT_ERRNO(t, table->translate(LOW + 2 * MiB), ENOENT);
    KEXPECT_ERRNO(t, table->map(LOW + 4 * MiB + PAGE_SIZE, FAKE_PHYS, RW, PageSize::Size2M), EINVAL);
    KEXPECT_ERRNO(t, table->map(LOW + 4 * MiB, FAKE_PHYS + PAGE_SIZE, RW, PageSize::Size2M), EINVAL);
}

void test_private_2m_split_by_protect(ktest::Test& t)
{
    CaseScope scope(t);
    PrivateTable table(t);
    KASSERT_PRIVATE(t, table);
    KASSERT_OK(t, table->map(LOW, FAKE_PHYS, RW | PageFlags::Global, PageSize::Size2M));
    u64 invalidations = table.memory().invalidations();
    KASSERT_OK(t, table->protect(LOW + 9 * PAGE_SIZE, RO));
    KEXPECT_EQ(t, table.memory().live(), 4ll); // the split added a PT
    KEXPECT_TRUE(t, table.memory().invalidations() > invalidations);
    for (u64 i = 0; i < 512; ++i) {
        auto translation = table->translate(LOW + i * PAGE_SIZE + 0x10);
        KASSERT_OK(t, translation);
        KASSERT_EQ(t, translation.value().size, PageSize::Size4K);
        KASSERT_EQ(t, translation.value().phys, FAKE_PHYS + i * PAGE_SIZE + 0x10);
        KASSERT_EQ(t, translation.value().flags, i == 9 ? RO : RW | PageFlags::Global);
    }
    // The new PT's entries are plain 4 KiB entries: PS (PAT here) clear.
    u64 pte = raw_entry(table, LOW + 10 * PAGE_SIZE, 1);
    KEXPECT_FALSE(t, pte & PageTableEntry::HugePage);
    KEXPECT_FALSE(t, raw_entry(table, LOW, 2) & PageTableEntry::HugePage);
}

void test_private_protect_same_flags_does_not_split(ktest::Test& t)
{
    CaseScope scope(t);
    PrivateTable table(t);
    KASSERT_PRIVATE(t, table);
    KASSERT_OK(t, table->map(LOW, FAKE_PHYS, RW, PageSize::Size2M));
    u64 invalidations = table.memory().invalidations();
    KASSERT_OK(t, table->protect(LOW + 3 * PAGE_SIZE, RW));
    KEXPECT_EQ(t, table.memory().live(), 3ll);
    KEXPECT_EQ(t, table.memory().invalidations(), invalidations);
    auto translation = table->translate(LOW + 3 * PAGE_SIZE);
    KEXPECT_TRUE(t, !translation.is_error() && translation.value().size == PageSize::Size2M);
}

void test_private_2m_split_by_unmap(ktest::Test& t)
{
    CaseScope scope(t);
    PrivateTable table(t);
    KASSERT_PRIVATE(t, table);
    KASSERT_OK(t, table->map(LOW, FAKE_PHYS, RW, PageSize::Size2M));
    auto unmapped = table->unmap(LOW + 100 * PAGE_SIZE);
    KASSERT_OK(t, unmapped);
    KEXPECT_EQ(t, unmapped.value(), FAKE_PHYS + 100 * PAGE_SIZE);
    KEXPECT_ERRNO(t, table->translate(LOW + 100 * PAGE_SIZE), ENOENT);
    for (u64 i : { 0ull, 99ull, 101ull, 511ull }) {
        auto translation = table->translate(LOW + i * PAGE_SIZE);
        KASSERT_OK(t, translation);
        KEXPECT_EQ(t, translation.value().phys, FAKE_PHYS + i * PAGE_SIZE);
        KEXPECT_EQ(t, translation.value().size, PageSize::Size4K);
        KEXPECT_EQ(t, translation.value().flags, RW);
    }
    KEXPECT_EQ(t, table.memory().live(), 4ll);
    // Unmapping the remaining 511 pages frees the PT, PD and PDPT.
    KASSERT_OK(t, table->unmap_range(LOW, 100 * PAGE_SIZE));
    KASSERT_OK(t, table->unmap_range(LOW + 101 * PAGE_SIZE, 411 * PAGE_SIZE));
    KEXPECT_EQ(t, table.memory().live(), 1ll);
}

void test_private_unmap_range_whole_large_page(ktest::Test& t)
{
    CaseScope scope(t);
    PrivateTable table(t);
    KASSERT_PRIVATE(t, table);
    KASSERT_OK(t, table->map(LOW, FAKE_PHYS, RW, PageSize::Size2M));
    KASSERT_OK(t, table->map(LOW + 2 * MiB, FAKE_PHYS + 2 * MiB, RW, PageSize::Size2M));
    u64 allocated = table.memory().allocated();
    KASSERT_OK(t, table->unmap_range(LOW, 2 * MiB));
    KEXPECT_EQ(t, table.memory().allocated(), allocated); // removed whole: no split, no new table
    KEXPECT_ERRNO(t, table->translate(LOW + 2 * MiB - 1), ENOENT);
    auto translation = table->translate(LOW + 2 * MiB);
    KEXPECT_TRUE(t, !translation.is_error() && translation.value().size == PageSize::Size2M);
    KASSERT_OK(t, table->unmap_range(LOW + 2 * MiB, 2 * MiB));
    KEXPECT_EQ(t, table.memory().live(), 1ll);
}

void test_private_unmap_range_straddling_large_pages(ktest::Test& t)
{
    // [LOW + 1 MiB, LOW + 3 MiB) cuts the second half of one 2 MiB page and the first of the next.
    CaseScope scope(t);
    PrivateTable table(t);
    KASSERT_PRIVATE(t, table);
    KASSERT_OK(t, table->map_range(LOW, FAKE_PHYS, 4 * MiB, RW, true));
    KASSERT_OK(t, table->unmap_range(LOW + 1 * MiB, 2 * MiB));
    KEXPECT_EQ(t, table.memory().live(), 5ll); // two PTs from the splits
    for (u64 offset = 0; offset < 4 * MiB; offset += 256 * KiB) {
        auto translation = table->translate(LOW + offset);
        bool inside = offset >= 1 * MiB && offset < 3 * MiB;
        if (inside) {
            KEXPECT_TRUE(t, translation.is_error());
        } else {
            KEXPECT_TRUE(t, !translation.is_error() && translation.value().phys == FAKE_PHYS + offset
                    && translation.value().size == PageSize::Size4K);
        }
    }
    KASSERT_OK(t, table->unmap_range(LOW, 1 * MiB));
    KASSERT_OK(t, table->unmap_range(LOW + 3 * MiB, 1 * MiB));
    KEXPECT_EQ(t, table.memory().live(), 1ll);
}

void test_private_1g_pages_cap_and_split(ktest::Test& t)
{
    CaseScope scope(t);
    PrivateTable table(t);
    KASSERT_PRIVATE(t, table);
    KASSERT_OK(t, table->map(LOW, FAKE_PHYS, RW, PageSize::Size1G));
    KEXPECT_EQ(t, table.memory().live(), 2ll);
    auto large = table->translate(LOW + 0x12345678);
    KASSERT_OK(t, large);
    KEXPECT_EQ(t, large.value().size, PageSize::Size1G);
    KEXPECT_EQ(t, large.value().phys, FAKE_PHYS + 0x12345678);
    // Splitting a 1 GiB page: a PD of 2 MiB pages, and a PT only where the change is.
    VirtAddr target = LOW + 3 * 2 * MiB + 5 * PAGE_SIZE;
    KASSERT_OK(t, table->protect(VirtAddr(target), RO));
    KEXPECT_EQ(t, table.memory().live(), 4ll);
    auto changed = table->translate(VirtAddr(target));
    KEXPECT_TRUE(t, !changed.is_error() && changed.value().flags == RO && changed.value().size == PageSize::Size4K);
    auto neighbour = table->translate(VirtAddr(target + PAGE_SIZE));
    KEXPECT_TRUE(t, !neighbour.is_error() && neighbour.value().flags == RW && neighbour.value().size == PageSize::Size4K
            && neighbour.value().phys == FAKE_PHYS + 3 * 2 * MiB + 6 * PAGE_SIZE);
    auto far = table->translate(LOW + 700 * MiB + 0x10);
    KEXPECT_TRUE(t, !far.is_error() && far.value().flags == RW && far.value().size == PageSize::Size2M
            && far.value().phys == FAKE_PHYS + 700 * MiB + 0x10);
    // With the cap at 2 MiB, 1 GiB pages are refused and map_range falls back to 2 MiB pages.
    table->set_largest_page_size(PageSize::Size2M);
    KEXPECT_ERRNO(t, table->map(LOW + 4 * GiB, FAKE_PHYS, RW, PageSize::Size1G), EINVAL);
    KASSERT_OK(t, table->map_range(LOW + 4 * GiB, FAKE_PHYS, 1 * GiB, RW, true));
    auto capped = table->translate(LOW + 4 * GiB);
    KEXPECT_TRUE(t, !capped.is_error() && capped.value().size == PageSize::Size2M);
    KASSERT_OK(t, table->unmap_range(LOW + 4 * GiB, 1 * GiB));
    KASSERT_OK(t, table->unmap_range(LOW, 1 * GiB));
    KEXPECT_EQ(t, table.memory().live(), 1ll);
}

void test_private_map_range_picks_large_pages(ktest::Test& t)
{
    // Two 4 KiB pages, two 2 MiB pages, three 4 KiB pages.
    CaseScope scope(t);
    PrivateTable table(t);
    KASSERT_PRIVATE(t, table);
    VirtAddr va = LOW + 64 * MiB - 2 * PAGE_SIZE;
    PhysAddr pa = FAKE_PHYS + 32 * MiB - 2 * PAGE_SIZE;
    u64 length = 2 * PAGE_SIZE + 4 * MiB + 3 * PAGE_SIZE;
    KASSERT_OK(t, table->map_range(va, pa, length, RW, true));
    struct {
        u64 offset;
        PageSize size;
    } expected[] = { { 0, PageSize::Size4K }, { PAGE_SIZE, PageSize::Size4K }, { 2 * PAGE_SIZE, PageSize::Size2M },
        { 2 * PAGE_SIZE + 2 * MiB + 0x777, PageSize::Size2M }, { 2 * PAGE_SIZE + 4 * MiB, PageSize::Size4K },
        { length - 1, PageSize::Size4K } };
    for (auto& e : expected) {
        auto translation = table->translate(va + e.offset);
        KASSERT_OK(t, translation);
        KEXPECT_EQ(t, translation.value().size, e.size);
        KEXPECT_EQ(t, translation.value().phys, pa + e.offset);
    }
    KEXPECT_ERRNO(t, table->translate(va + length), ENOENT);
    KEXPECT_ERRNO(t, table->translate(va - 1), ENOENT);
    KASSERT_OK(t, table->unmap_range(va, length));
    KEXPECT_EQ(t, table.memory().live(), 1ll);
}

void test_private_map_range_without_large_pages(ktest::Test& t)
{
    CaseScope scope(t);
    PrivateTable table(t);
    KASSERT_PRIVATE(t, table);
    KASSERT_OK(t, table->map_range(LOW, FAKE_PHYS, 4 * MiB, RW, false));
    for (u64 offset = 0; offset < 4 * MiB; offset += 128 * KiB) {
        auto translation = table->translate(LOW + offset);
        KASSERT_OK(t, translation);
        KEXPECT_EQ(t, translation.value().size, PageSize::Size4K);
        KEXPECT_EQ(t, translation.value().phys, FAKE_PHYS + offset);
    }
    KEXPECT_EQ(t, table.memory().live(), 5ll); // PML4, PDPT, PD, two PTs
    KASSERT_OK(t, table->unmap_range(LOW, 4 * MiB));
    KEXPECT_EQ(t, table.memory().live(), 1ll);
}

void test_private_map_range_unaligned_phys_uses_4k(ktest::Test& t)
{
    CaseScope scope(t);
    PrivateTable table(t);
    KASSERT_PRIVATE(t, table);
    KASSERT_OK(t, table->map_range(LOW, FAKE_PHYS + PAGE_SIZE, 4 * MiB, RW, true));
    auto translation = table->translate(LOW + 2 * MiB);
    KASSERT_OK(t, translation);
    KEXPECT_EQ(t, translation.value().size, PageSize::Size4K);
    KEXPECT_EQ(t, translation.value().phys, FAKE_PHYS + PAGE_SIZE + 2 * MiB);
    KASSERT_OK(t, table->unmap_range(LOW, 4 * MiB));
}

void test_private_map_range_rolls_back_on_eexist(ktest::Test& t)
{
    CaseScope scope(t);
    PrivateTable table(t);
    KASSERT_PRIVATE(t, table);
    // The blocker sits in the second PT of the range, so the call gets 512 pages in before failing.
    VirtAddr blocker = LOW + 2 * MiB + 5 * PAGE_SIZE;
    KASSERT_OK(t, table->map(blocker, FAKE_PHYS + 0x123000, RO));
    i64 live = table.memory().live();
    KEXPECT_ERRNO(t, table->map_range(LOW, FAKE_PHYS, 4 * MiB, RW, false), EEXIST);
    KEXPECT_EQ(t, table.memory().live(), live);
    const u64 untouched[] = { 0, 1 * MiB, 2 * MiB, 2 * MiB + 4 * PAGE_SIZE, 2 * MiB + 6 * PAGE_SIZE, 3 * MiB };
    for (u64 offset : untouched)
        KEXPECT_ERRNO(t, table->translate(LOW + offset), ENOENT);
    auto kept = table->translate(blocker);
    KEXPECT_TRUE(t, !kept.is_error() && kept.value().phys == FAKE_PHYS + 0x123000 && kept.value().flags == RO);
    KASSERT_OK(t, table->unmap(blocker));
    KEXPECT_EQ(t, table.memory().live(), 1ll);
}

void test_private_unmap_range_with_hole_changes_nothing(ktest::Test& t)
{
    CaseScope scope(t);
    PrivateTable table(t);
    KASSERT_PRIVATE(t, table);
    for (u64 i : { 0ull, 1ull, 3ull })
        KASSERT_OK(t, table->map(LOW + i * PAGE_SIZE, FAKE_PHYS + i * PAGE_SIZE, RW));
    KEXPECT_ERRNO(t, table->unmap_range(LOW, 4 * PAGE_SIZE), ENOENT);
    for (u64 i : { 0ull, 1ull, 3ull })
        KEXPECT_OK(t, table->translate(LOW + i * PAGE_SIZE));
    // Unmapping one page of a 2 MiB page splits it, and the hole then refuses a range over it.
    KASSERT_OK(t, table->map(LOW + 2 * MiB, FAKE_PHYS, RW, PageSize::Size2M));
    KEXPECT_OK(t, table->unmap_range(LOW + 2 * MiB + PAGE_SIZE, PAGE_SIZE));
    KEXPECT_ERRNO(t, table->unmap_range(LOW + 2 * MiB, 2 * PAGE_SIZE), ENOENT);
    KEXPECT_OK(t, table->translate(LOW + 2 * MiB));
}

void test_private_map_over_large_page_is_eexist(ktest::Test& t)
{
    CaseScope scope(t);
    PrivateTable table(t);
    KASSERT_PRIVATE(t, table);
    KASSERT_OK(t, table->map(LOW, FAKE_PHYS, RW, PageSize::Size2M));
    KEXPECT_ERRNO(t, table->map(LOW + PAGE_SIZE, FAKE_PHYS, RW), EEXIST);
    KEXPECT_ERRNO(t, table->map(LOW, FAKE_PHYS, RW, PageSize::Size2M), EEXIST);
    KEXPECT_ERRNO(t, table->map(LOW, FAKE_PHYS, RW, PageSize::Size1G), EEXIST);
    // A 2 MiB page over a PT holding any 4 KiB page is refused too.
    KASSERT_OK(t, table->map(LOW + 2 * MiB + 17 * PAGE_SIZE, FAKE_PHYS, RW));
    KEXPECT_ERRNO(t, table->map(LOW + 2 * MiB, FAKE_PHYS, RW, PageSize::Size2M), EEXIST);
    i64 live = table.memory().live();
    KEXPECT_ERRNO(t, table->map_range(LOW, FAKE_PHYS, 4 * MiB, RW, true), EEXIST);
    KEXPECT_EQ(t, table.memory().live(), live);
    auto translation = table->translate(LOW + 0x1000);
    KEXPECT_TRUE(t, !translation.is_error() && translation.value().size == PageSize::Size2M);
}

void test_private_enomem_leaves_nothing_linked(ktest::Test& t)
{
    CaseScope scope(t);
    PrivateTable table(t);
    KASSERT_PRIVATE(t, table);
    // A first mapping needs three tables; with two, nothing is linked and both are returned.
    table.memory().set_budget(2);
    KEXPECT_ERRNO(t, table->map(LOW, FAKE_PHYS, RW), ENOMEM);
    KEXPECT_EQ(t, table.memory().live(), 1ll);
    KEXPECT_EQ(t, table.pml4()[0], 0ull);
    KEXPECT_ERRNO(t, table->translate(LOW), ENOENT);
    // map_range gets its first PT's pages in, then runs out for the second PT, and rolls back.
    table.memory().set_budget(3);
    KEXPECT_ERRNO(t, table->map_range(LOW + 2 * MiB - 2 * PAGE_SIZE, FAKE_PHYS, 4 * PAGE_SIZE, RW, false), ENOMEM);
    KEXPECT_EQ(t, table.memory().live(), 1ll);
    KEXPECT_ERRNO(t, table->translate(LOW + 2 * MiB - 2 * PAGE_SIZE), ENOENT);
    table.memory().set_budget(-1);
    KASSERT_OK(t, table->map(LOW, FAKE_PHYS, RW));
    KASSERT_OK(t, table->unmap(LOW));
}

void test_private_split_enomem_keeps_translation(ktest::Test& t)
{
    CaseScope scope(t);
    PrivateTable table(t);
    KASSERT_PRIVATE(t, table);
    KASSERT_OK(t, table->map(LOW, FAKE_PHYS, RW, PageSize::Size2M));
    table.memory().set_budget(0);
    KEXPECT_ERRNO(t, table->protect(LOW + PAGE_SIZE, RO), ENOMEM);
    KEXPECT_ERRNO(t, table->unmap(LOW + PAGE_SIZE), ENOMEM);
    KEXPECT_ERRNO(t, table->unmap_range(LOW + PAGE_SIZE, PAGE_SIZE), ENOMEM);
    auto translation = table->translate(LOW + PAGE_SIZE);
    KASSERT_OK(t, translation);
    KEXPECT_EQ(t, translation.value().size, PageSize::Size2M);
    KEXPECT_EQ(t, translation.value().flags, RW);
    KEXPECT_EQ(t, table.memory().live(), 3ll);
    // Removing the large page whole needs no table.
    KEXPECT_OK(t, table->unmap_range(LOW, 2 * MiB));
    table.memory().set_budget(-1);
    KEXPECT_EQ(t, table.memory().live(), 1ll);
}

void test_private_user_bit_on_intermediates(ktest::Test& t)
{
    using namespace PageTableEntry;
    CaseScope scope(t);
    PrivateTable table(t);
    KASSERT_PRIVATE(t, table);
    KASSERT_OK(t, table->map(LOW, FAKE_PHYS, RW | PageFlags::User));
    KASSERT_OK(t, table->map(LOW + PAGE_SIZE, FAKE_PHYS, RW)); // supervisor, same tables
    KASSERT_OK(t, table->map(SCRATCH, FAKE_PHYS, RW));         // supervisor, own tables
    for (int level = 4; level >= 2; --level) {
        u64 entry = raw_entry(table, LOW, level);
        KEXPECT_TRUE(t, (entry & (Present | Writable | User)) == (Present | Writable | User));
        KEXPECT_FALSE(t, entry & (NoExecute | Global));
        KEXPECT_FALSE(t, raw_entry(table, SCRATCH, level) & User);
    }
    KEXPECT_TRUE(t, raw_entry(table, LOW, 1) & User);
    KEXPECT_FALSE(t, raw_entry(table, LOW + PAGE_SIZE, 1) & User);
    // Intermediate entries never carry NX: the leaf alone decides.
    KEXPECT_TRUE(t, raw_entry(table, LOW + PAGE_SIZE, 1) & NoExecute);
}

void test_private_protect_to_user_updates_path(ktest::Test& t)
{
    using namespace PageTableEntry;
    CaseScope scope(t);
    PrivateTable table(t);
    KASSERT_PRIVATE(t, table);
    KASSERT_OK(t, table->map(LOW, FAKE_PHYS, RW));
    KEXPECT_FALSE(t, raw_entry(table, LOW, 4) & User);
    u64 invalidations = table.memory().invalidations();
    KASSERT_OK(t, table->protect(LOW, RW | PageFlags::User));
    KEXPECT_TRUE(t, table.memory().invalidations() > invalidations);
    for (int level = 4; level >= 1; --level)
        KEXPECT_TRUE(t, raw_entry(table, LOW, level) & User);
    // A new user page under an existing supervisor path upgrades the path as well.
    KASSERT_OK(t, table->map(SCRATCH, FAKE_PHYS, RW));
    KASSERT_OK(t, table->map(SCRATCH + PAGE_SIZE, FAKE_PHYS, RW | PageFlags::User));
    KEXPECT_TRUE(t, raw_entry(table, SCRATCH, 4) & User);
    KEXPECT_TRUE(t, raw_entry(table, SCRATCH, 2) & User);
}

void test_private_invalidate_only_on_change(ktest::Test& t)
{
    CaseScope scope(t);
    PrivateTable table(t);
    KASSERT_PRIVATE(t, table);
    auto& memory = table.memory();
    KASSERT_OK(t, table->map(LOW, FAKE_PHYS, RW));
    KEXPECT_EQ(t, memory.invalidations(), 0ull); // a new translation cannot be cached
    KASSERT_OK(t, table->protect(LOW, RW));
    KEXPECT_EQ(t, memory.invalidations(), 0ull); // nothing changed
    KASSERT_OK(t, table->protect(LOW, RO));
    KEXPECT_EQ(t, memory.invalidations(), 1ull);
    KEXPECT_EQ(t, memory.last_invalidated(), LOW);
    KASSERT_OK(t, table->unmap(LOW));
    KEXPECT_EQ(t, memory.invalidations(), 2ull);
    KEXPECT_EQ(t, memory.last_invalidated(), LOW);
    KEXPECT_ERRNO(t, table->unmap(LOW), ENOENT);
    KEXPECT_ERRNO(t, table->protect(LOW, RW), ENOENT);
    KEXPECT_EQ(t, memory.invalidations(), 2ull); // failures change nothing
}

void test_private_ranges_reject_bad_arguments(ktest::Test& t)
{
    CaseScope scope(t);
    PrivateTable table(t);
    KASSERT_PRIVATE(t, table);
    KEXPECT_ERRNO(t, table->map_range(VirtAddr(0x00007ffffffff000), PhysAddr(0), 2 * PAGE_SIZE, RW, true), EINVAL); // into the hole
    KEXPECT_ERRNO(t, table->map_range(VirtAddr(0xfffffffffffff000), PhysAddr(0), 2 * PAGE_SIZE, RW, true), EINVAL); // wraps
    KEXPECT_ERRNO(t, table->map_range(LOW, PhysAddr(0), 100, RW, true), EINVAL);
    KEXPECT_ERRNO(t, table->map_range(LOW + 8, PhysAddr(0), PAGE_SIZE, RW, true), EINVAL);
    KEXPECT_ERRNO(t, table->map_range(LOW, PhysAddr(8), PAGE_SIZE, RW, true), EINVAL);
    KEXPECT_ERRNO(t, table->map_range(LOW, PhysAddr(PageTableEntry::MaxPhysicalAddress - PAGE_SIZE), 2 * PAGE_SIZE, RW, true), EINVAL);
    KEXPECT_ERRNO(t, table->map_range(LOW, PhysAddr(0), PAGE_SIZE, PageFlags(PageTableEntry::Dirty), true), EINVAL);
    KEXPECT_ERRNO(t, table->unmap_range(VirtAddr(0x00007ffffffff000), 2 * PAGE_SIZE), EINVAL);
    KEXPECT_ERRNO(t, table->unmap_range(LOW, 100), EINVAL);
    KEXPECT_OK(t, table->map_range(LOW, PhysAddr(0), 0, RW, true));
    KEXPECT_OK(t, table->unmap_range(LOW, 0));
    KEXPECT_EQ(t, table.memory().live(), 1ll);
}

// Loads a private table as a process's address space would be: its upper half is a copy of the
// kernel's 256 PML4 entries (the PDPTs behind them are pinned, so a copy can never go stale).
// Entries the private table has itself are kept. Interrupts stay off while it is loaded.
class LoadedTable {
public:
    explicit LoadedTable(PrivateTable& table) : m_table(table)
    {
        u64* kernel = kernel_pml4();
        u64* own = table.pml4();
        for (int i = 256; i < 512; ++i) {
            m_borrowed[i] = !own[i] && kernel[i];
            if (m_borrowed[i]) {
                own[i] = kernel[i];
                m_borrowed_count++;
            }
        }
        m_rflags = x86::read_rflags();
        x86::cli();
        m_saved_cr3 = x86::read_cr3();
        x86::write_cr3(table->root().value());
    }
    ~LoadedTable()
    {
        x86::write_cr3(m_saved_cr3);
        if (m_rflags & (1 << 9))
            x86::sti();
        // Give back the kernel's entries before destroy() could free what they point to.
        u64* own = m_table.pml4();
        for (int i = 256; i < 512; ++i)
            if (m_borrowed[i])
                own[i] = 0;
    }
    int borrowed_count() const { return m_borrowed_count; }

private:
    PrivateTable& m_table;
    bool m_borrowed[512] {};
    int m_borrowed_count { 0 };
    u64 m_rflags;
    u64 m_saved_cr3;
};

void test_private_table_loaded_in_cr3(ktest::Test& t)
{
    // The MMU walks the private table: a split 2 MiB page in its lower half reads through,
    // honours the read-only page the split made, and writes land in the right physical pages.
    // Everything else the CPU touches meanwhile (this code, its stack, the direct map) is reached
    // through the kernel's PDPTs, shared by copying all 256 upper-half PML4 entries.
    CaseScope scope(t);
    PhysAddr block = scope.allocate(9);
    KASSERT_TRUE(t, !block.is_null());
    for (u64 i = 0; i < 512; ++i)
        fill(direct(block + i * PAGE_SIZE), 5000 + i);
    PrivateTable table(t);
    KASSERT_PRIVATE(t, table);
    KASSERT_OK(t, table->map(LOW, block, RW, PageSize::Size2M));
    KASSERT_OK(t, table->protect(LOW + 5 * PAGE_SIZE, RO));
    // The kernel's own table has nothing at LOW: after switching back, no leftover TLB entry may
    // still show this page (checked below).
    KEXPECT_ERRNO(t, mm::translate(LOW), ENOENT);
    i64 private_tables = table.memory().live();

    u64 mismatches = 0;
    bool write_faulted = false, read_only_faulted = false;
    u64 fault_code = 0, fault_cr2 = 0, through_private = 0;
    int borrowed = 0;
    bool kernel_half_translates = false;
    {
        LoadedTable loaded(table);
        borrowed = loaded.borrowed_count();
        for (u64 i = 0; i < 512; ++i)
            mismatches += peek(LOW + i * PAGE_SIZE + 8 * (i % WORDS_PER_PAGE)) != pattern(5000 + i, i % WORDS_PER_PAGE);
        write_faulted = faults(Access::Write, LOW + 7 * PAGE_SIZE, 0x7777);
        read_only_faulted = faults(Access::Write, LOW + 5 * PAGE_SIZE + 0x40, 0x5555);
        fault_code = g_catch.frame.error_code;
        fault_cr2 = g_catch.cr2;
        through_private = peek(LOW + 9 * PAGE_SIZE);
        // The builder walks the copied entries into the kernel's own tables, too.
        auto in_private = table->translate(VirtAddr::from_ptr(&g_catch));
        auto in_kernel = mm::kernel_page_table().translate(VirtAddr::from_ptr(&g_catch));
        kernel_half_translates = !in_private.is_error() && !in_kernel.is_error() && in_private.value().phys == in_kernel.value().phys;
    }
    KEXPECT_EQ(t, borrowed, 256);
    KEXPECT_EQ(t, mismatches, 0ull);
    KEXPECT_FALSE(t, write_faulted);
    KEXPECT_EQ(t, peek(direct(block + 7 * PAGE_SIZE)), 0x7777ull);
    KEXPECT_TRUE(t, read_only_faulted);
    KEXPECT_EQ(t, fault_code & PF_MASK, PF_P | PF_W);
    KEXPECT_EQ(t, fault_cr2, (LOW + 5 * PAGE_SIZE + 0x40).value());
    KEXPECT_PATTERN(t, direct(block + 5 * PAGE_SIZE), 5005);
    KEXPECT_EQ(t, through_private, pattern(5009, 0));
    KEXPECT_TRUE(t, kernel_half_translates);
    KEXPECT_FAULT(t, Access::Read, LOW + 9 * PAGE_SIZE, 0);
    // The borrowed entries are gone again; the private table never allocated an upper-half table.
    KEXPECT_EQ(t, table.memory().live(), private_tables);
    for (int i = 256; i < 512; ++i)
        KEXPECT_EQ(t, table.pml4()[i], 0ull);
}

// ---------------------------------------------------------------------------------------------
// Last: the suite leaves nothing behind.
// ---------------------------------------------------------------------------------------------

void test_scratch_region_left_empty(ktest::Test& t)
{
    // The scratch slot keeps its pinned PDPT, with nothing below it.
    KEXPECT_TRUE(t, kernel_pml4()[SCRATCH_PML4_INDEX] & PageTableEntry::Present);
    KEXPECT_EQ(t, scratch_pdpt_entries_in_use(), 0ull);
    KEXPECT_ERRNO(t, mm::translate(SCRATCH), ENOENT);
    KEXPECT_EQ(t, mm::buddy_for_tests().check_consistency(), mm::page_stats().free_pages);
}

} // namespace

KTEST_SUITE(page_tables,
    KTEST_CASE(test_map_translate_unmap_4k),
    KTEST_CASE(test_translate_keeps_page_offset),
    KTEST_CASE(test_read_through_new_mapping),
    KTEST_CASE(test_write_through_new_mapping_shows_in_direct_map),
    KTEST_CASE(test_two_aliases_of_one_page),
    KTEST_CASE(test_neighbouring_pages_are_independent),
    KTEST_CASE(test_mappings_across_table_boundaries),
    KTEST_CASE(test_read_after_unmap_faults_not_present),
    KTEST_CASE(test_write_after_unmap_faults_with_w),
    KTEST_CASE(test_execute_unmapped_faults_with_i),
    KTEST_CASE(test_null_dereference_faults),
    KTEST_CASE(test_remap_to_other_page_is_not_stale),
    KTEST_CASE(test_remap_loop_keeps_tables),
    KTEST_CASE(test_remap_loop_with_table_pruning),
    KTEST_CASE(test_remap_global_page_is_not_stale),
    KTEST_CASE(test_protect_read_only_write_faults),
    KTEST_CASE(test_protect_read_only_still_readable),
    KTEST_CASE(test_protect_back_to_writable),
    KTEST_CASE(test_protect_keeps_physical_address),
    KTEST_CASE(test_map_flags_round_trip),
    KTEST_CASE(test_nx_page_execute_faults),
    KTEST_CASE(test_executable_page_runs),
    KTEST_CASE(test_protect_to_nx_stops_execution),
    KTEST_CASE(test_double_map_is_eexist),
    KTEST_CASE(test_unmap_unmapped_is_enoent),
    KTEST_CASE(test_protect_unmapped_is_enoent),
    KTEST_CASE(test_translate_unmapped_is_enoent),
    KTEST_CASE(test_map_misaligned_virtual_is_einval),
    KTEST_CASE(test_map_misaligned_physical_is_einval),
    KTEST_CASE(test_map_non_canonical_is_einval),
    KTEST_CASE(test_unmap_and_protect_reject_bad_addresses),
    KTEST_CASE(test_translate_non_canonical_is_einval),
    KTEST_CASE(test_map_rejects_unknown_flags),
    KTEST_CASE(test_map_rejects_physical_beyond_52_bits),
    KTEST_CASE(test_failed_map_leaves_nothing_behind),
    KTEST_CASE(test_map_256_pages_both_ways),
    KTEST_CASE(test_map_range_and_unmap_range_on_kernel_table),
    KTEST_CASE(test_kernel_table_frees_intermediate_tables),
    KTEST_CASE(test_kernel_upper_half_pdpts_all_present),
    KTEST_CASE(test_kernel_pdpt_survives_map_unmap_cycles),
    KTEST_CASE(test_live_2m_page_split_by_protect),
    KTEST_CASE(test_live_2m_page_split_by_unmap),
    KTEST_CASE(test_direct_map_uses_large_pages),
    KTEST_CASE(test_direct_map_translates_exactly),
    KTEST_CASE(test_direct_map_is_writable_nx_global_supervisor),
    KTEST_CASE(test_direct_map_covers_all_available_ram),
    KTEST_CASE(test_direct_map_covers_kernel_and_boot_allocations),
    KTEST_CASE(test_text_is_read_execute),
    KTEST_CASE(test_rodata_is_read_only_nx),
    KTEST_CASE(test_data_and_bss_are_writable_nx),
    KTEST_CASE(test_text_write_faults),
    KTEST_CASE(test_rodata_write_faults),
    KTEST_CASE(test_data_execute_faults),
    KTEST_CASE(test_boot_stack_guard_unmapped),
    KTEST_CASE(test_all_stack_guards_unmapped),
    KTEST_CASE(test_boot_mappings_are_gone),
    KTEST_CASE(test_map_mmio_is_uncached),
    KTEST_CASE(test_map_mmio_local_apic),
    KTEST_CASE(test_map_mmio_spans_pages),
    KTEST_CASE(test_map_mmio_zero_size_is_einval),
    KTEST_CASE(test_map_mmio_of_ram_returns_direct_map),
    KTEST_CASE(test_private_create_destroy_frees_root),
    KTEST_CASE(test_private_map_translate_unmap),
    KTEST_CASE(test_private_intermediate_tables_freed),
    KTEST_CASE(test_private_destroy_everything_frees_all),
    KTEST_CASE(test_private_destroy_user_half_keeps_kernel_half),
    KTEST_CASE(test_private_populate_and_pin_upper_half),
    KTEST_CASE(test_private_2m_page_translates),
    KTEST_CASE(test_private_2m_split_by_protect),
    KTEST_CASE(test_private_protect_same_flags_does_not_split),
    KTEST_CASE(test_private_2m_split_by_unmap),
    KTEST_CASE(test_private_unmap_range_whole_large_page),
    KTEST_CASE(test_private_unmap_range_straddling_large_pages),
    KTEST_CASE(test_private_1g_pages_cap_and_split),
    KTEST_CASE(test_private_map_range_picks_large_pages),
    KTEST_CASE(test_private_map_range_without_large_pages),
    KTEST_CASE(test_private_map_range_unaligned_phys_uses_4k),
    KTEST_CASE(test_private_map_range_rolls_back_on_eexist),
    KTEST_CASE(test_private_unmap_range_with_hole_changes_nothing),
    KTEST_CASE(test_private_map_over_large_page_is_eexist),
    KTEST_CASE(test_private_enomem_leaves_nothing_linked),
    KTEST_CASE(test_private_split_enomem_keeps_translation),
    KTEST_CASE(test_private_user_bit_on_intermediates),
    KTEST_CASE(test_private_protect_to_user_updates_path),
    KTEST_CASE(test_private_invalidate_only_on_change),
    KTEST_CASE(test_private_ranges_reject_bad_arguments),
    KTEST_CASE(test_private_table_loaded_in_cr3),
    KTEST_CASE(test_scratch_region_left_empty));
