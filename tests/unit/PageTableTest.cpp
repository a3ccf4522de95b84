// The library header comes first: ktl/Errno.h defines errno names that <cerrno> would turn into macros.
#include <arch/x86_64/lib/PageTable.h>

#include <gtest/gtest.h>
#include <support/Addresses.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <vector>

namespace {

using namespace PageTableEntry;

// Host arena of 4 KiB tables, addressed by fake physical addresses. Freed tables are poisoned and
// touching one through table() aborts, so a use-after-free in the builder cannot go unnoticed.
class FakePageMemory final : public PageTableMemory {
public:
    static constexpr PhysAddr Base { 0x40000000 };

    ErrorOr<PhysAddr> allocate_table() override
    {
        ++allocation_attempts;
        if (fail_after == 0)
            return Error(ENOMEM);
        if (fail_after > 0)
            --fail_after;
        usize index;
        if (!m_free.empty()) {
            index = m_free.back();
            m_free.pop_back();
        } else {
            index = m_pages.size();
            m_pages.push_back(std::make_unique<u64[]>(512));
            m_live.push_back(false);
        }
        std::memset(m_pages[index].get(), 0, PAGE_SIZE);
        m_live[index] = true;
        ++allocated;
        return Base + index * PAGE_SIZE;
    }
    void free_table(PhysAddr address) override
    {
        usize index = checked_index(address);
        std::memset(m_pages[index].get(), 0xab, PAGE_SIZE);
        m_live[index] = false;
        m_free.push_back(index);
        ++freed;
    }
    u64* table(PhysAddr address) override { return m_pages[checked_index(address)].get(); }
    void invalidate(VirtAddr address) override { invalidations.push_back(address); }

    usize live_tables() const { return allocated - freed; }
    bool invalidated(VirtAddr address) const { return std::find(invalidations.begin(), invalidations.end(), address) != invalidations.end(); }

    int fail_after { -1 }; // successful allocations left before ENOMEM; -1 never fails
    usize allocated { 0 };
    usize freed { 0 };
    usize allocation_attempts { 0 };
    std::vector<VirtAddr> invalidations;

private:
    usize checked_index(PhysAddr address) const
    {
        usize index = (address - Base) / PAGE_SIZE;
        if (address < Base || !is_aligned(address, PAGE_SIZE) || index >= m_pages.size() || !m_live[index]) {
            fprintf(stderr, "FakePageMemory: access to table %#llx that is not allocated\n", address.ull());
            std::abort();
        }
        return index;
    }
    std::vector<std::unique_ptr<u64[]>> m_pages;
    std::vector<bool> m_live;
    std::vector<usize> m_free;
};

constexpr VirtAddr UserBase { 0x0000'4000'0000'0000 }; // 1 GiB aligned, PML4 index 128
constexpr VirtAddr KernelBase { 0xffff'8000'0000'0000 };
constexpr PageFlags RW = PageFlags::Writable;
constexpr PageFlags RWNX = PageFlags::Writable | PageFlags::NoExecute;
constexpr PageFlags URW = PageFlags::User | PageFlags::Writable;

struct Fixture {
    FakePageMemory memory;
    PageTable table { memory, create_root(memory) };

    static PhysAddr create_root(FakePageMemory& memory) { return MUST(PageTable::create(memory)).root(); }

    // Raw entry at `level` for virt, or 0 if the path is missing.
    u64 raw(VirtAddr virt, int level)
    {
        PhysAddr t = table.root();
        for (int l = 4; l >= level; --l) {
            u64 e = memory.table(t)[(virt.value() >> (12 + 9 * (l - 1))) & 511];
            if (l == level)
                return e;
            if (!(e & Present) || (l <= 3 && (e & HugePage)))
                return 0;
            t = PhysAddr(e & AddressMask);
        }
        return 0;
    }
    u64* pml4() { return memory.table(table.root()); }
    Translation tr(VirtAddr virt) { return MUST(table.translate(virt)); }
    int err(ErrorOr<void> result) { return result.is_error() ? result.error().code() : 0; }
};

} // namespace

TEST(PageTable, CreateAllocatesEmptyRoot)
{
    Fixture f;
    EXPECT_EQ(f.memory.live_tables(), 1u);
    EXPECT_EQ(f.table.root(), FakePageMemory::Base);
    for (int i = 0; i < 512; ++i)
        EXPECT_EQ(f.memory.table(f.table.root())[i], 0u);
}

TEST(PageTable, CreateFailsWithoutMemory)
{
    FakePageMemory memory;
    memory.fail_after = 0;
    auto table = PageTable::create(memory);
    ASSERT_TRUE(table.is_error());
    EXPECT_EQ(table.error().code(), ENOMEM);
}

TEST(PageTable, Map4KAndTranslate)
{
    Fixture f;
    ASSERT_EQ(f.err(f.table.map(UserBase, 0x123000_pa, RW)), 0);
    auto t = f.tr(UserBase);
    EXPECT_EQ(t.phys, 0x123000_pa);
    EXPECT_EQ(t.flags, RW);
    EXPECT_EQ(t.size, PageSize::Size4K);
    EXPECT_EQ(f.memory.live_tables(), 4u);
}

TEST(PageTable, Map2MAndTranslate)
{
    Fixture f;
    ASSERT_EQ(f.err(f.table.map(UserBase + 2 * MiB, 0x40000000_pa, RWNX, PageSize::Size2M)), 0);
    auto t = f.tr(UserBase + 2 * MiB);
    EXPECT_EQ(t.phys, 0x40000000_pa);
    EXPECT_EQ(t.flags, RWNX);
    EXPECT_EQ(t.size, PageSize::Size2M);
    EXPECT_EQ(f.memory.live_tables(), 3u);
}

TEST(PageTable, Map1GAndTranslate)
{
    Fixture f;
    ASSERT_EQ(f.err(f.table.map(UserBase, PhysAddr(3 * GiB), RW, PageSize::Size1G)), 0);
    auto t = f.tr(UserBase);
    EXPECT_EQ(t.phys, PhysAddr(3 * GiB));
    EXPECT_EQ(t.size, PageSize::Size1G);
    EXPECT_EQ(f.memory.live_tables(), 2u);
}

TEST(PageTable, TranslateIncludesOffset4K)
{
    Fixture f;
    MUST(f.table.map(UserBase + 0x5000, 0xabc000_pa, RW));
    EXPECT_EQ(f.tr(UserBase + 0x5123).phys, 0xabc123_pa);
    EXPECT_EQ(f.tr(UserBase + 0x5fff).phys, 0xabcfff_pa);
}

TEST(PageTable, TranslateIncludesOffset2M)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0x200000_pa, RW, PageSize::Size2M));
    EXPECT_EQ(f.tr(UserBase + 0x1f'f123).phys, 0x3f'f123_pa);
}

TEST(PageTable, TranslateIncludesOffset1G)
{
    Fixture f;
    MUST(f.table.map(UserBase, PhysAddr(1 * GiB), RW, PageSize::Size1G));
    EXPECT_EQ(f.tr(UserBase + 0x3abc'd123).phys, PhysAddr(1 * GiB + 0x3abc'd123));
}

TEST(PageTable, TranslateUnmappedIsENOENT)
{
    Fixture f;
    auto t = f.table.translate(UserBase);
    ASSERT_TRUE(t.is_error());
    EXPECT_EQ(t.error().code(), ENOENT);
    MUST(f.table.map(UserBase, 0x1000_pa, RW));
    EXPECT_EQ(f.table.translate(UserBase + 0x1000).error().code(), ENOENT);
    EXPECT_EQ(f.table.translate(UserBase + 2 * MiB).error().code(), ENOENT);
    EXPECT_EQ(f.table.translate(UserBase + 1 * GiB).error().code(), ENOENT);
}

TEST(PageTable, TranslateNonCanonicalIsEINVAL)
{
    Fixture f;
    EXPECT_EQ(f.table.translate(VirtAddr(0x0000'8000'0000'0000)).error().code(), EINVAL);
    EXPECT_EQ(f.table.translate(VirtAddr(0xffff'7fff'ffff'f000)).error().code(), EINVAL);
}

TEST(PageTable, IsCanonical)
{
    EXPECT_TRUE(PageTable::is_canonical(0_va));
    EXPECT_TRUE(PageTable::is_canonical(VirtAddr(0x0000'7fff'ffff'ffff)));
    EXPECT_FALSE(PageTable::is_canonical(VirtAddr(0x0000'8000'0000'0000)));
    EXPECT_FALSE(PageTable::is_canonical(VirtAddr(0xffff'7fff'ffff'ffff)));
    EXPECT_TRUE(PageTable::is_canonical(VirtAddr(0xffff'8000'0000'0000)));
    EXPECT_TRUE(PageTable::is_canonical(VirtAddr(0xffff'ffff'ffff'ffff)));
    EXPECT_FALSE(PageTable::is_canonical(VirtAddr(0x1234'0000'0000'0000)));
}

TEST(PageTable, MapNonCanonicalIsEINVAL)
{
    Fixture f;
    EXPECT_EQ(f.err(f.table.map(VirtAddr(0x0000'8000'0000'0000), 0x1000_pa, RW)), EINVAL);
    EXPECT_EQ(f.err(f.table.map(VirtAddr(0x8000'0000'0000'0000), 0x1000_pa, RW)), EINVAL);
    EXPECT_EQ(f.memory.live_tables(), 1u);
}

TEST(PageTable, MapMisaligned4K)
{
    Fixture f;
    EXPECT_EQ(f.err(f.table.map(UserBase + 0x10, 0x1000_pa, RW)), EINVAL);
    EXPECT_EQ(f.err(f.table.map(UserBase, 0x1010_pa, RW)), EINVAL);
    EXPECT_EQ(f.memory.live_tables(), 1u);
}

TEST(PageTable, MapMisaligned2M)
{
    Fixture f;
    EXPECT_EQ(f.err(f.table.map(UserBase + 0x1000, 0x200000_pa, RW, PageSize::Size2M)), EINVAL);
    EXPECT_EQ(f.err(f.table.map(UserBase, 0x201000_pa, RW, PageSize::Size2M)), EINVAL);
}

TEST(PageTable, MapMisaligned1G)
{
    Fixture f;
    EXPECT_EQ(f.err(f.table.map(UserBase + 2 * MiB, PhysAddr(1 * GiB), RW, PageSize::Size1G)), EINVAL);
    EXPECT_EQ(f.err(f.table.map(UserBase, PhysAddr(1 * GiB + 2 * MiB), RW, PageSize::Size1G)), EINVAL);
}

TEST(PageTable, MapPhysicalBeyond52BitsIsEINVAL)
{
    Fixture f;
    EXPECT_EQ(f.err(f.table.map(UserBase, PhysAddr(1ull << 52), RW)), EINVAL);
    EXPECT_EQ(f.err(f.table.map(UserBase, PhysAddr((1ull << 52) - PAGE_SIZE), RW)), 0);
}

TEST(PageTable, MapUnknownFlagsIsEINVAL)
{
    Fixture f;
    EXPECT_EQ(f.err(f.table.map(UserBase, 0x1000_pa, PageFlags(1ull << 7))), EINVAL);
    EXPECT_EQ(f.err(f.table.map(UserBase, 0x1000_pa, PageFlags(1ull << 9))), EINVAL);
    EXPECT_EQ(f.err(f.table.map(UserBase, 0x1000_pa, PageFlags(Present))), EINVAL);
}

TEST(PageTable, MapExistingIsEEXIST)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0x1000_pa, RW));
    EXPECT_EQ(f.err(f.table.map(UserBase, 0x2000_pa, RW)), EEXIST);
    EXPECT_EQ(f.tr(UserBase).phys, 0x1000_pa);
}

TEST(PageTable, Map4KInside2MIsEEXIST)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0x200000_pa, RW, PageSize::Size2M));
    EXPECT_EQ(f.err(f.table.map(UserBase + 0x3000, 0x1000_pa, RW)), EEXIST);
    EXPECT_EQ(f.memory.live_tables(), 3u);
}

TEST(PageTable, Map2MOverPageTableIsEEXIST)
{
    Fixture f;
    MUST(f.table.map(UserBase + 0x5000, 0x1000_pa, RW));
    EXPECT_EQ(f.err(f.table.map(UserBase, 0x200000_pa, RW, PageSize::Size2M)), EEXIST);
}

TEST(PageTable, Map1GOverExistingIsEEXIST)
{
    Fixture f;
    MUST(f.table.map(UserBase + 4 * MiB, 0x200000_pa, RW, PageSize::Size2M));
    EXPECT_EQ(f.err(f.table.map(UserBase, 0_pa, RW, PageSize::Size1G)), EEXIST);
    Fixture g;
    MUST(g.table.map(UserBase, 0_pa, RW, PageSize::Size1G));
    EXPECT_EQ(g.err(g.table.map(UserBase + 4 * MiB, 0x200000_pa, RW, PageSize::Size2M)), EEXIST);
    EXPECT_EQ(g.err(g.table.map(UserBase + 0x7000, 0x200000_pa, RW)), EEXIST);
    EXPECT_EQ(g.err(g.table.map(UserBase, 0_pa, RW, PageSize::Size1G)), EEXIST);
}

TEST(PageTable, LeafEntryBits)
{
    Fixture f;
    PageFlags all = PageFlags::Writable | PageFlags::User | PageFlags::WriteThrough | PageFlags::CacheDisable | PageFlags::Global | PageFlags::NoExecute;
    MUST(f.table.map(UserBase, 0x7000_pa, all));
    u64 e = f.raw(UserBase, 1);
    EXPECT_EQ(e, 0x7000 | Present | Writable | User | WriteThrough | CacheDisable | Global | NoExecute);
    MUST(f.table.map(UserBase + 2 * MiB, 0x200000_pa, PageFlags::None, PageSize::Size2M));
    EXPECT_EQ(f.raw(UserBase + 2 * MiB, 2), 0x200000 | Present | HugePage);
    MUST(f.table.map(UserBase + 1 * GiB, PhysAddr(1 * GiB), PageFlags::NoExecute, PageSize::Size1G));
    EXPECT_EQ(f.raw(UserBase + 1 * GiB, 3), 1 * GiB | Present | HugePage | NoExecute);
}

TEST(PageTable, IntermediateEntriesArePresentWritableOnly)
{
    Fixture f;
    MUST(f.table.map(KernelBase, 0x1000_pa, PageFlags::NoExecute | PageFlags::Global));
    for (int level = 4; level >= 2; --level) {
        u64 e = f.raw(KernelBase, level);
        EXPECT_EQ(e & ~AddressMask, Present | Writable) << level;
    }
    EXPECT_FALSE(f.tr(KernelBase).flags == PageFlags::Writable);
}

TEST(PageTable, IntermediateEntriesGetUserForUserLeaf)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0x1000_pa, URW));
    for (int level = 4; level >= 2; --level)
        EXPECT_EQ(f.raw(UserBase, level) & ~AddressMask, Present | Writable | User) << level;
}

TEST(PageTable, UserLeafUpgradesExistingPathAndInvalidates)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0x1000_pa, RW));
    EXPECT_TRUE(f.memory.invalidations.empty());
    MUST(f.table.map(UserBase + 0x1000, 0x2000_pa, URW));
    for (int level = 4; level >= 2; --level)
        EXPECT_TRUE(f.raw(UserBase, level) & User) << level;
    EXPECT_FALSE(f.raw(UserBase, 1) & User); // the kernel page stays supervisor-only
    EXPECT_TRUE(f.memory.invalidated(UserBase + 0x1000));
}

TEST(PageTable, NewMappingsDoNotInvalidate)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0x1000_pa, RW));
    MUST(f.table.map(UserBase + 0x1000, 0x2000_pa, RW));
    MUST(f.table.map(UserBase + 2 * MiB, 0x200000_pa, RW, PageSize::Size2M));
    EXPECT_TRUE(f.memory.invalidations.empty());
}

TEST(PageTable, TablesAreShared)
{
    Fixture f;
    for (u64 i = 0; i < 512; ++i)
        MUST(f.table.map(UserBase + i * PAGE_SIZE, PhysAddr(i * PAGE_SIZE), RW));
    EXPECT_EQ(f.memory.live_tables(), 4u);
    MUST(f.table.map(UserBase + 2 * MiB, 0_pa, RW));
    EXPECT_EQ(f.memory.live_tables(), 5u);
    MUST(f.table.map(UserBase + 1 * GiB, 0_pa, RW));
    EXPECT_EQ(f.memory.live_tables(), 7u);
}

TEST(PageTable, UpperHalfAndTopOfAddressSpace)
{
    Fixture f;
    VirtAddr top { 0xffff'ffff'ffff'f000 };
    MUST(f.table.map(top, 0x5000_pa, RW));
    EXPECT_EQ(f.tr(VirtAddr(top + 0xfff)).phys, 0x5fff_pa);
    EXPECT_EQ(MUST(f.table.unmap(top)), 0x5000_pa);
    EXPECT_EQ(f.memory.live_tables(), 1u);
    MUST(f.table.map_range(VirtAddr(top - 3 * PAGE_SIZE), 0x10000_pa, 4 * PAGE_SIZE, RW, true));
    EXPECT_EQ(f.tr(top).phys, 0x13000_pa);
    MUST(f.table.unmap_range(VirtAddr(top - 3 * PAGE_SIZE), 4 * PAGE_SIZE));
    EXPECT_EQ(f.memory.live_tables(), 1u);
}

TEST(PageTable, UnmapReturnsPhysAndInvalidates)
{
    Fixture f;
    MUST(f.table.map(UserBase + 0x3000, 0x77000_pa, RW));
    EXPECT_EQ(MUST(f.table.unmap(UserBase + 0x3000)), 0x77000_pa);
    EXPECT_TRUE(f.memory.invalidated(UserBase + 0x3000));
    EXPECT_EQ(f.table.translate(UserBase + 0x3000).error().code(), ENOENT);
}

TEST(PageTable, UnmapFreesEmptyTables)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0x1000_pa, RW));
    MUST(f.table.map(UserBase + 0x1000, 0x2000_pa, RW));
    EXPECT_EQ(f.memory.live_tables(), 4u);
    MUST(f.table.unmap(UserBase));
    EXPECT_EQ(f.memory.live_tables(), 4u);
    MUST(f.table.unmap(UserBase + 0x1000));
    EXPECT_EQ(f.memory.live_tables(), 1u);
    EXPECT_EQ(f.memory.table(f.table.root())[128], 0u);
}

TEST(PageTable, UnmapKeepsTablesStillInUse)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0x1000_pa, RW));
    MUST(f.table.map(UserBase + 1 * GiB, 0x2000_pa, RW));
    MUST(f.table.unmap(UserBase));
    EXPECT_EQ(f.memory.live_tables(), 4u); // root, PDPT, and the other PD and PT
    EXPECT_EQ(f.tr(UserBase + 1 * GiB).phys, 0x2000_pa);
}

TEST(PageTable, UnmapNotMappedIsENOENT)
{
    Fixture f;
    EXPECT_EQ(f.table.unmap(UserBase).error().code(), ENOENT);
    MUST(f.table.map(UserBase, 0x1000_pa, RW));
    EXPECT_EQ(f.table.unmap(UserBase + 0x1000).error().code(), ENOENT);
    EXPECT_EQ(f.memory.live_tables(), 4u);
}

TEST(PageTable, UnmapMisalignedOrNonCanonicalIsEINVAL)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0x1000_pa, RW));
    EXPECT_EQ(f.table.unmap(UserBase + 8).error().code(), EINVAL);
    EXPECT_EQ(f.table.unmap(VirtAddr(0x0000'8000'0000'0000)).error().code(), EINVAL);
}

TEST(PageTable, UnmapSplits2MPage)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0x400000_pa, RWNX, PageSize::Size2M));
    EXPECT_EQ(MUST(f.table.unmap(UserBase + 0x5000)), 0x405000_pa);
    EXPECT_EQ(f.memory.live_tables(), 4u);
    EXPECT_EQ(f.table.translate(UserBase + 0x5000).error().code(), ENOENT);
    for (u64 off = 0; off < 2 * MiB; off += PAGE_SIZE) {
        if (off == 0x5000)
            continue;
        auto t = f.tr(UserBase + off);
        ASSERT_EQ(t.phys, 0x400000_pa + off);
        ASSERT_EQ(t.size, PageSize::Size4K);
        ASSERT_EQ(t.flags, RWNX);
    }
    EXPECT_TRUE(f.memory.invalidated(UserBase + 0x5000));
}

TEST(PageTable, UnmapSplits1GPage)
{
    Fixture f;
    MUST(f.table.map(UserBase, PhysAddr(2 * GiB), URW, PageSize::Size1G));
    VirtAddr hole = UserBase + 5 * MiB + 0x3000; // in the third 2 MiB block
    EXPECT_EQ(MUST(f.table.unmap(hole)), PhysAddr(2 * GiB + 5 * MiB + 0x3000));
    EXPECT_EQ(f.memory.live_tables(), 4u);
    EXPECT_EQ(f.tr(UserBase).size, PageSize::Size2M);
    EXPECT_EQ(f.tr(UserBase + 1 * GiB - 1).phys, PhysAddr(3 * GiB - 1));
    EXPECT_EQ(f.tr(UserBase + 1 * GiB - 1).size, PageSize::Size2M);
    EXPECT_EQ(f.tr(VirtAddr(hole + PAGE_SIZE)).size, PageSize::Size4K);
    EXPECT_EQ(f.tr(VirtAddr(hole + PAGE_SIZE)).phys, PhysAddr(2 * GiB + 5 * MiB + 0x4000));
    EXPECT_EQ(f.tr(VirtAddr(hole - PAGE_SIZE)).flags, URW);
    EXPECT_EQ(f.table.translate(hole).error().code(), ENOENT);
    // The intermediates created by the split carry User because the leaves do.
    EXPECT_TRUE(f.raw(hole, 3) & User);
    EXPECT_TRUE(f.raw(hole, 2) & User);
}

TEST(PageTable, Split1GCopiesEveryLargeEntry)
{
    Fixture f;
    MUST(f.table.map(UserBase, PhysAddr(4 * GiB), RWNX | PageFlags::Global, PageSize::Size1G));
    MUST(f.table.unmap(UserBase));
    for (u64 i = 1; i < 512; ++i) {
        u64 e = f.raw(UserBase + i * 2 * MiB, 2);
        ASSERT_EQ(e, (4 * GiB + i * 2 * MiB) | Present | HugePage | Writable | Global | NoExecute) << i;
    }
}

TEST(PageTable, SplitMovesPatBit)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0x600000_pa, RW, PageSize::Size2M));
    // Set the large-page PAT bit by hand, as boot code mapping a framebuffer write-combining would.
    PhysAddr pd(f.raw(UserBase, 3) & AddressMask);
    f.memory.table(pd)[0] |= LargePat;
    EXPECT_EQ(f.tr(UserBase + 0x1000).phys, 0x601000_pa); // PAT does not leak into the address
    MUST(f.table.unmap(UserBase));
    u64 pte = f.raw(UserBase + 0x1000, 1);
    EXPECT_EQ(pte, 0x601000 | Present | Writable | HugePage /* PAT in a PTE */);
}

TEST(PageTable, UnmapSplitENOMEMLeavesMappingIntact)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0x400000_pa, RW, PageSize::Size2M));
    usize before = f.memory.live_tables();
    f.memory.fail_after = 0;
    EXPECT_EQ(f.table.unmap(UserBase + 0x1000).error().code(), ENOMEM);
    EXPECT_EQ(f.memory.live_tables(), before);
    EXPECT_EQ(f.tr(UserBase + 0x1000).size, PageSize::Size2M);
}

TEST(PageTable, Unmap1GSplitENOMEMOnSecondTableDoesNotLeak)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0_pa, RW, PageSize::Size1G));
    usize before = f.memory.live_tables();
    for (int k = 0; k < 2; ++k) {
        f.memory.fail_after = k;
        EXPECT_EQ(f.table.unmap(UserBase).error().code(), ENOMEM);
        EXPECT_EQ(f.memory.live_tables(), before);
        EXPECT_EQ(f.tr(UserBase).size, PageSize::Size1G);
    }
    f.memory.fail_after = -1;
    MUST(f.table.unmap(UserBase));
}

TEST(PageTable, ProtectChangesFlagsAndInvalidates)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0x1000_pa, RW));
    MUST(f.table.protect(UserBase, PageFlags::NoExecute));
    EXPECT_EQ(f.tr(UserBase).flags, PageFlags::NoExecute);
    EXPECT_EQ(f.tr(UserBase).phys, 0x1000_pa);
    EXPECT_TRUE(f.memory.invalidated(UserBase));
}

TEST(PageTable, ProtectUnchangedDoesNotInvalidate)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0x1000_pa, RW));
    MUST(f.table.protect(UserBase, RW));
    EXPECT_TRUE(f.memory.invalidations.empty());
}

TEST(PageTable, ProtectKeepsAccessedAndDirty)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0x1000_pa, RW));
    PhysAddr pt(f.raw(UserBase, 2) & AddressMask);
    f.memory.table(pt)[0] |= Accessed | Dirty;
    MUST(f.table.protect(UserBase, PageFlags::None));
    EXPECT_EQ(f.raw(UserBase, 1), 0x1000 | Present | Accessed | Dirty);
}

TEST(PageTable, ProtectNotMappedIsENOENT)
{
    Fixture f;
    EXPECT_EQ(f.err(f.table.protect(UserBase, RW)), ENOENT);
    EXPECT_EQ(f.memory.live_tables(), 1u);
}

TEST(PageTable, ProtectInvalidArguments)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0x1000_pa, RW));
    EXPECT_EQ(f.err(f.table.protect(UserBase + 1, RW)), EINVAL);
    EXPECT_EQ(f.err(f.table.protect(UserBase, PageFlags(HugePage))), EINVAL);
    EXPECT_EQ(f.err(f.table.protect(VirtAddr(0x0000'8000'0000'0000), RW)), EINVAL);
}

TEST(PageTable, ProtectSplits2MPage)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0x200000_pa, RW, PageSize::Size2M));
    MUST(f.table.protect(UserBase + 0x7000, PageFlags::NoExecute));
    EXPECT_EQ(f.tr(UserBase + 0x7000).flags, PageFlags::NoExecute);
    EXPECT_EQ(f.tr(UserBase + 0x7000).size, PageSize::Size4K);
    EXPECT_EQ(f.tr(UserBase + 0x6000).flags, RW);
    EXPECT_EQ(f.tr(UserBase + 0x8000).phys, 0x208000_pa);
    EXPECT_TRUE(f.memory.invalidated(UserBase + 0x7000));
}

TEST(PageTable, ProtectSplits1GPage)
{
    Fixture f;
    MUST(f.table.map(UserBase, PhysAddr(1 * GiB), RW, PageSize::Size1G));
    MUST(f.table.protect(UserBase + 3 * MiB, PageFlags::None));
    EXPECT_EQ(f.tr(UserBase + 3 * MiB).flags, PageFlags::None);
    EXPECT_EQ(f.tr(UserBase + 3 * MiB).size, PageSize::Size4K);
    EXPECT_EQ(f.tr(UserBase).size, PageSize::Size2M);
    EXPECT_EQ(f.tr(UserBase + 3 * MiB + PAGE_SIZE).flags, RW);
    EXPECT_EQ(f.memory.live_tables(), 4u);
}

TEST(PageTable, ProtectLargePageWithSameFlagsDoesNotSplit)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0_pa, RWNX, PageSize::Size1G));
    usize before = f.memory.live_tables();
    MUST(f.table.protect(UserBase + 0x5000, RWNX));
    EXPECT_EQ(f.memory.live_tables(), before);
    EXPECT_EQ(f.tr(UserBase).size, PageSize::Size1G);
}

TEST(PageTable, ProtectSplitENOMEMChangesNothing)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0x200000_pa, RW, PageSize::Size2M));
    f.memory.fail_after = 0;
    EXPECT_EQ(f.err(f.table.protect(UserBase, PageFlags::None)), ENOMEM);
    EXPECT_EQ(f.tr(UserBase).flags, RW);
    EXPECT_EQ(f.tr(UserBase).size, PageSize::Size2M);
    EXPECT_EQ(f.memory.live_tables(), 3u);
}

TEST(PageTable, ProtectToUserUpgradesPath)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0x1000_pa, RW));
    MUST(f.table.protect(UserBase, URW));
    for (int level = 4; level >= 1; --level)
        EXPECT_TRUE(f.raw(UserBase, level) & User) << level;
    EXPECT_EQ(f.tr(UserBase).flags, URW);
}

TEST(PageTable, MapRangeWithoutLargePagesUses4K)
{
    Fixture f;
    MUST(f.table.map_range(UserBase, 0_pa, 4 * MiB, RW, false));
    EXPECT_EQ(f.tr(UserBase).size, PageSize::Size4K);
    EXPECT_EQ(f.tr(UserBase + 4 * MiB - 1).phys, PhysAddr(4 * MiB - 1));
    EXPECT_EQ(f.memory.live_tables(), 5u);
}

TEST(PageTable, MapRangeMixedSizes)
{
    Fixture f;
    // [1G - 2M - 8K, 2G + 2M + 8K): 4K head, one 2M, one 1G, one 2M, 4K tail.
    VirtAddr start = UserBase + 1 * GiB - 2 * MiB - 0x2000;
    u64 length = 2 * 0x2000 + 2 * 2 * MiB + 1 * GiB;
    PhysAddr phys(8 * GiB + 1 * GiB - 2 * MiB - 0x2000);
    MUST(f.table.map_range(start, phys, length, RW, true));
    EXPECT_EQ(f.tr(start).size, PageSize::Size4K);
    EXPECT_EQ(f.tr(VirtAddr(start + 0x2000)).size, PageSize::Size2M);
    EXPECT_EQ(f.tr(VirtAddr(start + 0x2000 + 2 * MiB)).size, PageSize::Size1G);
    EXPECT_EQ(f.tr(VirtAddr(start + 0x2000 + 2 * MiB + 1 * GiB)).size, PageSize::Size2M);
    EXPECT_EQ(f.tr(VirtAddr(start + length - 1)).size, PageSize::Size4K);
    for (u64 off = 0; off < length; off += 1 * MiB + 0x1000)
        ASSERT_EQ(f.tr(VirtAddr(start + off)).phys, phys + off);
    EXPECT_EQ(f.tr(VirtAddr(start + length - 1)).phys, PhysAddr(phys + length - 1));
    EXPECT_EQ(f.table.translate(VirtAddr(start + length)).error().code(), ENOENT);
    MUST(f.table.unmap_range(start, length));
    EXPECT_EQ(f.memory.live_tables(), 1u);
}

TEST(PageTable, MapRangeNeedsBothAddressesAligned)
{
    Fixture f;
    MUST(f.table.map_range(UserBase, 0x1000_pa, 4 * MiB, RW, true));
    EXPECT_EQ(f.tr(UserBase).size, PageSize::Size4K);
    EXPECT_EQ(f.tr(UserBase + 2 * MiB).size, PageSize::Size4K);
}

TEST(PageTable, MapRangeHonoursLargestPageSize)
{
    Fixture f;
    f.table.set_largest_page_size(PageSize::Size2M);
    MUST(f.table.map_range(UserBase, 0_pa, 1 * GiB, RW, true));
    EXPECT_EQ(f.tr(UserBase).size, PageSize::Size2M);
    EXPECT_EQ(f.err(f.table.map(UserBase + 1 * GiB, 0_pa, RW, PageSize::Size1G)), EINVAL);
}

TEST(PageTable, MapRangeInvalidArguments)
{
    Fixture f;
    EXPECT_EQ(f.err(f.table.map_range(UserBase + 1, 0_pa, PAGE_SIZE, RW, true)), EINVAL);
    EXPECT_EQ(f.err(f.table.map_range(UserBase, 1_pa, PAGE_SIZE, RW, true)), EINVAL);
    EXPECT_EQ(f.err(f.table.map_range(UserBase, 0_pa, 100, RW, true)), EINVAL);
    // Crossing the non-canonical hole, and wrapping past 2^64.
    EXPECT_EQ(f.err(f.table.map_range(VirtAddr(0x0000'7fff'ffff'f000), 0_pa, 2 * PAGE_SIZE, RW, true)), EINVAL);
    EXPECT_EQ(f.err(f.table.map_range(VirtAddr(0xffff'ffff'ffff'f000), 0_pa, 2 * PAGE_SIZE, RW, true)), EINVAL);
    EXPECT_EQ(f.err(f.table.map_range(UserBase, PhysAddr(0xffff'ffff'ffff'f000), 2 * PAGE_SIZE, RW, true)), EINVAL);
    EXPECT_EQ(f.err(f.table.map_range(UserBase, PhysAddr((1ull << 52) - PAGE_SIZE), 2 * PAGE_SIZE, RW, true)), EINVAL);
    EXPECT_EQ(f.err(f.table.map_range(UserBase, 0_pa, PAGE_SIZE, PageFlags(1ull << 62), true)), EINVAL);
    EXPECT_EQ(f.err(f.table.map_range(UserBase, 0_pa, 0, RW, true)), 0);
    EXPECT_EQ(f.memory.live_tables(), 1u);
}

TEST(PageTable, MapRangeRollsBackOnEEXIST)
{
    Fixture f;
    MUST(f.table.map(UserBase + 3 * MiB, 0x1000_pa, RW));
    usize before = f.memory.live_tables();
    EXPECT_EQ(f.err(f.table.map_range(UserBase, 0_pa, 4 * MiB, RW, true)), EEXIST);
    EXPECT_EQ(f.table.translate(UserBase).error().code(), ENOENT);
    EXPECT_EQ(f.table.translate(UserBase + 2 * MiB).error().code(), ENOENT);
    EXPECT_EQ(f.tr(UserBase + 3 * MiB).phys, 0x1000_pa);
    EXPECT_EQ(f.memory.live_tables(), before);
}

TEST(PageTable, MapRangeENOMEMAtEveryAllocationLeavesNothing)
{
    // How many allocations does the whole range take?
    VirtAddr start = UserBase + 1 * GiB - 2 * MiB - 0x3000;
    u64 length = 0x3000 + 2 * MiB + 1 * GiB + 2 * MiB + 0x5000;
    PhysAddr phys(4 * GiB - 2 * MiB - 0x3000);
    usize total;
    {
        Fixture f;
        usize before = f.memory.allocated;
        MUST(f.table.map_range(start, phys, length, RW, true));
        total = f.memory.allocated - before;
    }
    ASSERT_GE(total, 5u);
    for (usize k = 0; k < total; ++k) {
        Fixture f;
        f.memory.fail_after = int(k);
        EXPECT_EQ(f.err(f.table.map_range(start, phys, length, RW, true)), ENOMEM) << k;
        EXPECT_EQ(f.memory.live_tables(), 1u) << k;
        for (u64 off = 0; off < length; off += 1 * MiB)
            ASSERT_TRUE(f.table.translate(VirtAddr(start + off)).is_error()) << k;
    }
}

TEST(PageTable, MapENOMEMAtEveryLevelLeavesNothingVisible)
{
    for (int k = 0; k < 3; ++k) {
        Fixture f;
        f.memory.fail_after = k;
        EXPECT_EQ(f.err(f.table.map(KernelBase + 0x5000, 0x1000_pa, RW)), ENOMEM);
        EXPECT_EQ(f.memory.live_tables(), 1u);
        for (int i = 0; i < 512; ++i)
            ASSERT_EQ(f.memory.table(f.table.root())[i], 0u);
    }
}

TEST(PageTable, MapENOMEMWithPartialPathExisting)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0x1000_pa, RW)); // PDPT and PD exist for UserBase's 1 GiB
    f.memory.fail_after = 0;
    EXPECT_EQ(f.err(f.table.map(UserBase + 2 * MiB, 0x2000_pa, RW)), ENOMEM);
    EXPECT_EQ(f.raw(UserBase + 2 * MiB, 2), 0u);
    EXPECT_EQ(f.memory.live_tables(), 4u);
}

TEST(PageTable, UnmapRangeRemovesLargePagesWhole)
{
    Fixture f;
    MUST(f.table.map_range(UserBase, 0_pa, 2 * GiB + 4 * MiB, RW, true));
    usize allocated = f.memory.allocated;
    MUST(f.table.unmap_range(UserBase, 2 * GiB + 4 * MiB));
    EXPECT_EQ(f.memory.allocated, allocated); // no split needed
    EXPECT_EQ(f.memory.live_tables(), 1u);
    EXPECT_EQ(f.memory.invalidations.size(), 4u); // two 1 GiB and two 2 MiB leaves
    EXPECT_TRUE(f.memory.invalidated(UserBase));
    EXPECT_TRUE(f.memory.invalidated(UserBase + 1 * GiB));
    EXPECT_TRUE(f.memory.invalidated(UserBase + 2 * GiB));
    EXPECT_TRUE(f.memory.invalidated(UserBase + 2 * GiB + 2 * MiB));
}

TEST(PageTable, UnmapRangeSplitsStraddlingLargePages)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0_pa, RW, PageSize::Size1G));
    MUST(f.table.map(UserBase + 1 * GiB, 0x40000000_pa, RW, PageSize::Size2M));
    // From the middle of the 1 GiB page to the middle of the 2 MiB page.
    VirtAddr start = UserBase + 1 * GiB - 3 * MiB - 0x4000;
    VirtAddr end = UserBase + 1 * GiB + 0x3000;
    MUST(f.table.unmap_range(start, end - start));
    EXPECT_EQ(f.tr(VirtAddr(start - PAGE_SIZE)).phys, PhysAddr(1 * GiB - 3 * MiB - 0x5000));
    EXPECT_EQ(f.tr(end).phys, 0x40003000_pa);
    EXPECT_EQ(f.tr(end).size, PageSize::Size4K);
    EXPECT_EQ(f.tr(UserBase).size, PageSize::Size2M);
    for (VirtAddr va = start; va < end; va += 64 * KiB)
        ASSERT_TRUE(f.table.translate(va).is_error());
    ASSERT_TRUE(f.table.translate(VirtAddr(end - PAGE_SIZE)).is_error());
}

TEST(PageTable, UnmapRangeWithHoleIsENOENTWithoutChange)
{
    Fixture f;
    MUST(f.table.map_range(UserBase, 0_pa, 8 * PAGE_SIZE, RW, false));
    MUST(f.table.unmap(UserBase + 5 * PAGE_SIZE));
    f.memory.invalidations.clear();
    EXPECT_EQ(f.err(f.table.unmap_range(UserBase, 8 * PAGE_SIZE)), ENOENT);
    EXPECT_TRUE(f.memory.invalidations.empty());
    EXPECT_EQ(f.tr(UserBase).phys, PhysAddr(0u));
    EXPECT_EQ(f.tr(UserBase + 7 * PAGE_SIZE).phys, PhysAddr(7 * PAGE_SIZE));
}

TEST(PageTable, UnmapRangeInvalidatesEveryPage)
{
    Fixture f;
    MUST(f.table.map_range(UserBase + 0x10000, 0x10000_pa, 16 * PAGE_SIZE, RW, true));
    MUST(f.table.unmap_range(UserBase + 0x10000, 16 * PAGE_SIZE));
    ASSERT_EQ(f.memory.invalidations.size(), 16u);
    for (u64 i = 0; i < 16; ++i)
        EXPECT_TRUE(f.memory.invalidated(UserBase + 0x10000 + i * PAGE_SIZE)) << i;
    EXPECT_EQ(f.memory.live_tables(), 1u);
}

TEST(PageTable, UnmapRangeInvalidArguments)
{
    Fixture f;
    EXPECT_EQ(f.err(f.table.unmap_range(UserBase, 0)), 0);
    EXPECT_EQ(f.err(f.table.unmap_range(UserBase + 1, PAGE_SIZE)), EINVAL);
    EXPECT_EQ(f.err(f.table.unmap_range(UserBase, 10)), EINVAL);
    EXPECT_EQ(f.err(f.table.unmap_range(VirtAddr(0x0000'7fff'ffff'f000), 2 * PAGE_SIZE)), EINVAL);
    EXPECT_EQ(f.err(f.table.unmap_range(VirtAddr(0xffff'ffff'ffff'f000), 2 * PAGE_SIZE)), EINVAL);
    EXPECT_EQ(f.err(f.table.unmap_range(UserBase, PAGE_SIZE)), ENOENT);
}

TEST(PageTable, UnmapRangeSplitENOMEMLeavesTranslation)
{
    Fixture f;
    MUST(f.table.map(UserBase, 0_pa, RW, PageSize::Size1G));
    f.memory.fail_after = 1; // the PD for the split succeeds, the PT fails
    EXPECT_EQ(f.err(f.table.unmap_range(UserBase + 0x1000, 0x2000)), ENOMEM);
    EXPECT_EQ(f.tr(UserBase + 0x1000).phys, 0x1000_pa);
    EXPECT_EQ(f.tr(UserBase + 0x1000).size, PageSize::Size1G);
    EXPECT_EQ(f.memory.live_tables(), 2u);
}

TEST(PageTable, DestroyUserHalfFreesUserTables)
{
    FakePageMemory memory;
    auto table = MUST(PageTable::create(memory));
    MUST(table.map_range(UserBase, 0_pa, 8 * MiB + 0x3000, URW, true));
    MUST(table.map(0x1000_va, 0x1000_pa, URW));
    MUST(table.map(UserBase + 5 * GiB, 0_pa, URW, PageSize::Size1G));
    // A "shared kernel half": map in another table and graft its PML4 entry in.
    auto kernel = MUST(PageTable::create(memory));
    MUST(kernel.map(KernelBase, 0x1000_pa, RW));
    usize kernel_tables = 4;
    memory.table(table.root())[256] = memory.table(kernel.root())[256];
    table.destroy(PageTable::DestroyScope::UserHalf);
    EXPECT_EQ(table.root(), 0_pa);
    EXPECT_EQ(memory.live_tables(), kernel_tables);
    EXPECT_EQ(MUST(kernel.translate(KernelBase)).phys, 0x1000_pa);
    kernel.destroy(PageTable::DestroyScope::Everything);
    EXPECT_EQ(memory.live_tables(), 0u);
}

TEST(PageTable, DestroyEverythingFreesAll)
{
    FakePageMemory memory;
    auto table = MUST(PageTable::create(memory));
    MUST(table.map(KernelBase, 0_pa, RW, PageSize::Size1G));
    MUST(table.map(KernelBase + 1 * GiB, 0_pa, RW));
    MUST(table.map(VirtAddr(0xffff'ffff'8000'0000), 0x200000_pa, RW, PageSize::Size2M));
    MUST(table.map(UserBase, 0_pa, URW));
    table.destroy(PageTable::DestroyScope::Everything);
    EXPECT_EQ(memory.live_tables(), 0u);
}

TEST(PageTable, AdoptExistingRoot)
{
    FakePageMemory memory;
    PhysAddr root;
    {
        auto table = MUST(PageTable::create(memory));
        MUST(table.map(KernelBase, 0x200000_pa, RW, PageSize::Size2M));
        root = table.root();
    }
    PageTable adopted(memory, root);
    EXPECT_EQ(adopted.root(), root);
    EXPECT_EQ(MUST(adopted.translate(KernelBase + 0x1234)).phys, 0x201234_pa);
    MUST(adopted.unmap_range(KernelBase, 2 * MiB));
    EXPECT_EQ(memory.live_tables(), 1u);
}

// Pinned upper-half PDPTs: the kernel's PML4 entries 256-511 are copied into every address space,
// so unmapping must never free the PDPTs they point to.

constexpr VirtAddr KernelImage { 0xffff'ffff'8000'0000 }; // PML4 index 511

TEST(PageTable, PinningIsOffByDefault)
{
    Fixture f;
    EXPECT_FALSE(f.table.upper_half_pdpts_pinned());
    f.table.set_upper_half_pdpts_pinned(true);
    EXPECT_TRUE(f.table.upper_half_pdpts_pinned());
    f.table.set_upper_half_pdpts_pinned(false);
    EXPECT_FALSE(f.table.upper_half_pdpts_pinned());
}

TEST(PageTable, PinnedPdptSurvivesUnmapOfItsLastPage)
{
    Fixture f;
    f.table.set_upper_half_pdpts_pinned(true);
    MUST(f.table.map(KernelBase + 0x5000, 0x1000_pa, RW));
    EXPECT_EQ(f.memory.live_tables(), 4u);
    u64 slot = f.pml4()[256];
    ASSERT_NE(slot, 0u);
    PhysAddr pdpt(slot & AddressMask);
    EXPECT_EQ(MUST(f.table.unmap(KernelBase + 0x5000)), 0x1000_pa);
    // The PT and PD are gone; the PDPT stays, empty, still linked from the same entry.
    EXPECT_EQ(f.memory.freed, 2u);
    EXPECT_EQ(f.memory.live_tables(), 2u);
    EXPECT_EQ(f.pml4()[256], slot);
    for (int i = 0; i < 512; ++i)
        ASSERT_EQ(f.memory.table(pdpt)[i], 0u) << i;
    EXPECT_EQ(f.table.translate(KernelBase + 0x5000).error().code(), ENOENT);
    // Mapping again reuses it.
    MUST(f.table.map(KernelBase + 3 * GiB, 0x2000_pa, RW));
    EXPECT_EQ(f.pml4()[256], slot);
    EXPECT_EQ(f.memory.live_tables(), 4u);
    MUST(f.table.unmap(KernelBase + 3 * GiB));
    EXPECT_EQ(f.memory.live_tables(), 2u);
}

TEST(PageTable, PinnedPdptSurvivesEveryWayOfUnmapping)
{
    Fixture f;
    f.table.set_upper_half_pdpts_pinned(true);
    PhysAddr pdpt;
    auto expect_only_pdpt_left = [&](const char* what) {
        EXPECT_EQ(f.memory.live_tables(), 2u) << what;
        EXPECT_EQ(PhysAddr(f.pml4()[511] & AddressMask), pdpt) << what;
        EXPECT_EQ(f.pml4()[511] & ~AddressMask, Present | Writable) << what;
    };
    // A 1 GiB leaf lives in the PDPT itself.
    MUST(f.table.map(VirtAddr(KernelImage - 1 * GiB), 0_pa, RW, PageSize::Size1G));
    pdpt = PhysAddr(f.pml4()[511] & AddressMask);
    MUST(f.table.unmap_range(VirtAddr(KernelImage - 1 * GiB), 1 * GiB));
    expect_only_pdpt_left("1 GiB leaf removed whole");
    // Split by unmap, then the rest unmapped in two pieces.
    MUST(f.table.map(VirtAddr(KernelImage - 1 * GiB), 0_pa, RW, PageSize::Size1G));
    MUST(f.table.unmap(VirtAddr(KernelImage - 1 * GiB + 0x3000)));
    EXPECT_EQ(f.memory.live_tables(), 4u);
    MUST(f.table.unmap_range(VirtAddr(KernelImage - 1 * GiB), 0x3000));
    MUST(f.table.unmap_range(VirtAddr(KernelImage - 1 * GiB + 0x4000), 1 * GiB - 0x4000));
    expect_only_pdpt_left("1 GiB leaf split and unmapped");
    // Mixed sizes from map_range, and map_range's own rollback.
    MUST(f.table.map_range(VirtAddr(KernelImage + 2 * MiB - 0x3000), PhysAddr(0x200000 - 0x3000), 4 * MiB + 0x6000, RW, true));
    EXPECT_EQ(f.tr(VirtAddr(KernelImage + 2 * MiB)).size, PageSize::Size2M);
    MUST(f.table.unmap_range(VirtAddr(KernelImage + 2 * MiB - 0x3000), 4 * MiB + 0x6000));
    expect_only_pdpt_left("map_range then unmap_range");
    MUST(f.table.map(VirtAddr(KernelImage + 3 * MiB), 0x1000_pa, RW));
    EXPECT_EQ(f.err(f.table.map_range(KernelImage, 0_pa, 4 * MiB, RW, true)), EEXIST);
    MUST(f.table.unmap(VirtAddr(KernelImage + 3 * MiB)));
    expect_only_pdpt_left("map_range rolled back");
}

TEST(PageTable, PinningLeavesLowerHalfFullyPruned)
{
    Fixture f;
    f.table.set_upper_half_pdpts_pinned(true);
    MUST(f.table.map(UserBase, 0x1000_pa, URW));
    MUST(f.table.map(UserBase + 1 * GiB, 0x200000_pa, URW, PageSize::Size2M));
    MUST(f.table.map(VirtAddr(0x0000'7fff'c000'0000), 0_pa, URW, PageSize::Size1G)); // PML4 index 255, the last lower-half one
    MUST(f.table.unmap(UserBase));
    MUST(f.table.unmap_range(UserBase + 1 * GiB, 2 * MiB));
    MUST(f.table.unmap_range(VirtAddr(0x0000'7fff'c000'0000), 1 * GiB));
    EXPECT_EQ(f.memory.live_tables(), 1u);
    EXPECT_EQ(f.pml4()[128], 0u);
    EXPECT_EQ(f.pml4()[255], 0u);
}

TEST(PageTable, UnpinnedUpperHalfStillPrunesFully)
{
    Fixture f;
    MUST(f.table.populate_upper_half_pdpts());
    MUST(f.table.map(KernelBase, 0x1000_pa, RW));
    MUST(f.table.unmap(KernelBase));
    // Without the pin, populating does not protect anything: the emptied PDPT goes.
    EXPECT_EQ(f.pml4()[256], 0u);
    EXPECT_EQ(f.memory.live_tables(), 256u);
    f.table.destroy(PageTable::DestroyScope::Everything);
    EXPECT_EQ(f.memory.live_tables(), 0u);
}

TEST(PageTable, PopulateLinksEmptyPdptIntoEveryUpperHalfEntry)
{
    Fixture f;
    MUST(f.table.populate_upper_half_pdpts());
    EXPECT_EQ(f.memory.live_tables(), 257u);
    EXPECT_TRUE(f.memory.invalidations.empty());
    std::set<PhysAddr> pdpts;
    for (int i = 0; i < 256; ++i)
        ASSERT_EQ(f.pml4()[i], 0u) << i;
    for (int i = 256; i < 512; ++i) {
        u64 e = f.pml4()[i];
        // Supervisor, writable, never NX or Global: the leaves decide.
        ASSERT_EQ(e & ~AddressMask, Present | Writable) << i;
        PhysAddr pdpt(e & AddressMask);
        ASSERT_TRUE(pdpts.insert(pdpt).second) << i;
        for (int j = 0; j < 512; ++j)
            ASSERT_EQ(f.memory.table(pdpt)[j], 0u) << i;
    }
    EXPECT_EQ(f.table.translate(KernelBase).error().code(), ENOENT);
    EXPECT_EQ(f.table.translate(VirtAddr(0xffff'ffff'ffff'f000)).error().code(), ENOENT);
}

TEST(PageTable, PopulateIsIdempotent)
{
    Fixture f;
    MUST(f.table.populate_upper_half_pdpts());
    std::vector<u64> before(f.pml4(), f.pml4() + 512);
    usize attempts = f.memory.allocation_attempts;
    MUST(f.table.populate_upper_half_pdpts());
    EXPECT_EQ(f.memory.allocation_attempts, attempts);
    EXPECT_EQ(std::vector<u64>(f.pml4(), f.pml4() + 512), before);
    EXPECT_EQ(f.memory.live_tables(), 257u);
}

TEST(PageTable, PopulateKeepsExistingPdptsAndMappings)
{
    Fixture f;
    MUST(f.table.map(KernelBase + 0x7000, 0x7000_pa, RW));
    MUST(f.table.map(KernelImage, 0x200000_pa, RW, PageSize::Size2M));
    MUST(f.table.map(UserBase, 0x1000_pa, URW));
    u64 first = f.pml4()[256], last = f.pml4()[511], user = f.pml4()[128];
    usize live = f.memory.live_tables();
    MUST(f.table.populate_upper_half_pdpts());
    EXPECT_EQ(f.memory.live_tables(), live + 254);
    EXPECT_EQ(f.pml4()[256], first);
    EXPECT_EQ(f.pml4()[511], last);
    EXPECT_EQ(f.pml4()[128], user);
    EXPECT_EQ(f.tr(KernelBase + 0x7123).phys, 0x7123_pa);
    EXPECT_EQ(f.tr(VirtAddr(KernelImage + 0x12345)).phys, 0x212345_pa);
    EXPECT_EQ(f.tr(UserBase).phys, 0x1000_pa);
}

TEST(PageTable, PopulateENOMEMAtEveryAllocationLeavesTableAsBefore)
{
    // Two upper-half entries already exist, so populating takes 254 allocations.
    for (int k = 0; k < 254; ++k) {
        Fixture f;
        MUST(f.table.map(KernelBase + 300 * GiB, 0x1000_pa, RW)); // PML4 index 256
        MUST(f.table.map(VirtAddr(0xffff'c000'0000'0000), 0x2000_pa, RW)); // PML4 index 384
        std::vector<u64> before(f.pml4(), f.pml4() + 512);
        usize live = f.memory.live_tables();
        usize attempts = f.memory.allocation_attempts;
        f.memory.fail_after = k;
        auto result = f.table.populate_upper_half_pdpts();
        ASSERT_TRUE(result.is_error()) << k;
        ASSERT_EQ(result.error().code(), ENOMEM) << k;
        ASSERT_EQ(f.memory.allocation_attempts - attempts, usize(k) + 1) << k;
        ASSERT_EQ(f.memory.live_tables(), live) << k;
        ASSERT_EQ(std::vector<u64>(f.pml4(), f.pml4() + 512), before) << k;
        ASSERT_TRUE(f.memory.invalidations.empty()) << k;
        ASSERT_EQ(f.tr(KernelBase + 300 * GiB).phys, 0x1000_pa) << k;
        // The table still works, and a later attempt with memory succeeds.
        f.memory.fail_after = -1;
        MUST(f.table.populate_upper_half_pdpts());
        ASSERT_EQ(f.memory.live_tables(), live + 254) << k;
    }
}

TEST(PageTable, DestroyEverythingFreesPopulatedPdpts)
{
    FakePageMemory memory;
    auto table = MUST(PageTable::create(memory));
    table.set_upper_half_pdpts_pinned(true);
    MUST(table.populate_upper_half_pdpts());
    MUST(table.map(KernelBase, 0_pa, RW, PageSize::Size2M));
    MUST(table.map(VirtAddr(KernelImage + 0x1000), 0x1000_pa, RW));
    MUST(table.map(UserBase, 0x2000_pa, URW));
    MUST(table.unmap(VirtAddr(KernelImage + 0x1000)));
    table.destroy(PageTable::DestroyScope::Everything);
    EXPECT_EQ(memory.live_tables(), 0u);
    EXPECT_EQ(memory.allocated, memory.freed);
}

TEST(PageTable, SharedKernelHalfOutlivesUnmapInKernelTable)
{
    // The kernel table, pinned and populated as at boot, and an address space that copied its
    // upper half. Mappings the kernel makes and removes later stay visible through the copy, and
    // the copy never points at a freed table (FakePageMemory aborts if it does).
    FakePageMemory memory;
    auto kernel = MUST(PageTable::create(memory));
    kernel.set_upper_half_pdpts_pinned(true);
    MUST(kernel.populate_upper_half_pdpts());
    usize kernel_tables = memory.live_tables();
    auto process = MUST(PageTable::create(memory));
    for (int i = 256; i < 512; ++i)
        memory.table(process.root())[i] = memory.table(kernel.root())[i];
    MUST(process.map(UserBase, 0x5000_pa, URW));

    for (int round = 0; round < 3; ++round) {
        MUST(kernel.map(KernelBase + 7 * GiB, 0x9000_pa, RW));
        MUST(kernel.map(KernelImage, 0x200000_pa, RW, PageSize::Size2M));
        EXPECT_EQ(MUST(process.translate(KernelBase + 7 * GiB + 0x10)).phys, 0x9010_pa) << round;
        EXPECT_EQ(MUST(process.translate(VirtAddr(KernelImage + 0x1000))).phys, 0x201000_pa) << round;
        MUST(kernel.unmap(KernelBase + 7 * GiB));
        MUST(kernel.unmap_range(KernelImage, 2 * MiB));
        EXPECT_EQ(process.translate(KernelBase + 7 * GiB).error().code(), ENOENT) << round;
        EXPECT_EQ(process.translate(KernelImage).error().code(), ENOENT) << round;
        for (int i = 256; i < 512; ++i)
            ASSERT_EQ(memory.table(process.root())[i], memory.table(kernel.root())[i]) << i;
    }
    EXPECT_EQ(MUST(process.translate(UserBase)).phys, 0x5000_pa);
    process.destroy(PageTable::DestroyScope::UserHalf);
    EXPECT_EQ(memory.live_tables(), kernel_tables);
    kernel.destroy(PageTable::DestroyScope::Everything);
    EXPECT_EQ(memory.live_tables(), 0u);
}

TEST(PageTable, RemapAfterUnmapReusesFreedTables)
{
    Fixture f;
    for (int round = 0; round < 10; ++round) {
        MUST(f.table.map_range(UserBase + 3 * MiB, 0x300000_pa, 5 * MiB, URW, true));
        MUST(f.table.unmap_range(UserBase + 3 * MiB, 5 * MiB));
        ASSERT_EQ(f.memory.live_tables(), 1u) << round;
    }
}

namespace {

struct RefPage {
    PhysAddr phys;
    PageFlags flags;
};

// Runs random operations against a page-granular reference model. With `inject`, allocations
// fail at random, and a failed operation must leave the model's view unchanged. With
// `pinned_kernel_half`, the operations go to the upper half of a table populated and pinned as the
// kernel's is, whose PDPTs must then never change.
void run_random(u32 seed, int steps, bool inject, bool pinned_kernel_half = false)
{
    std::mt19937_64 rng(seed);
    Fixture f;
    const VirtAddr base = pinned_kernel_half ? KernelBase + 2 * GiB : UserBase;
    std::vector<PhysAddr> pdpts;
    if (pinned_kernel_half) {
        f.table.set_upper_half_pdpts_pinned(true);
        MUST(f.table.populate_upper_half_pdpts());
        for (int i = 256; i < 512; ++i)
            pdpts.push_back(PhysAddr(f.pml4()[i] & AddressMask));
    }
    const usize live_when_empty = f.memory.live_tables();
    std::map<VirtAddr, RefPage> ref;
    const PageFlags flag_choices[] = { PageFlags::None, RW, RWNX, URW, PageFlags::User | PageFlags::NoExecute, RW | PageFlags::Global, RW | PageFlags::CacheDisable };
    auto random_flags = [&] { return flag_choices[rng() % std::size(flag_choices)]; };
    // Two 1 GiB regions, 4 MiB used in each.
    auto random_page = [&]() -> VirtAddr {
        u64 region = rng() % 2;
        return base + region * GiB + (rng() % 1024) * PAGE_SIZE;
    };
    auto random_2m = [&]() -> VirtAddr { return base + (rng() % 2) * GiB + (rng() % 2) * 2 * MiB; };

    for (int step = 0; step < steps; ++step) {
        if (inject)
            f.memory.fail_after = (rng() % 4 == 0) ? int(rng() % 3) : -1;
        usize live_before = f.memory.live_tables();
        int op = int(rng() % 7);
        if (op == 0 || op == 1) {
            VirtAddr va = random_page();
            PhysAddr pa((rng() % 100000) * PAGE_SIZE);
            PageFlags flags = random_flags();
            auto result = f.table.map(va, pa, flags);
            if (ref.count(va)) {
                ASSERT_EQ(f.err(std::move(result)), EEXIST);
            } else if (result.is_error()) {
                ASSERT_TRUE(inject);
                ASSERT_EQ(result.error().code(), ENOMEM);
                ASSERT_EQ(f.memory.live_tables(), live_before);
            } else {
                ref[va] = { pa, flags };
            }
        } else if (op == 2) {
            VirtAddr va = random_2m();
            PhysAddr pa((rng() % 1000) * 2 * MiB);
            PageFlags flags = random_flags();
            bool any = false;
            for (u64 off = 0; off < 2 * MiB && !any; off += PAGE_SIZE)
                any = ref.count(va + off);
            auto result = f.table.map(va, pa, flags, PageSize::Size2M);
            if (any) {
                // EEXIST unless a table could not even be allocated on the way.
                ASSERT_TRUE(result.is_error());
                ASSERT_EQ(result.error().code(), EEXIST);
            } else if (result.is_error()) {
                ASSERT_TRUE(inject);
                ASSERT_EQ(result.error().code(), ENOMEM);
            } else {
                for (u64 off = 0; off < 2 * MiB; off += PAGE_SIZE)
                    ref[va + off] = { pa + off, flags };
            }
        } else if (op == 3) {
            VirtAddr va = random_page();
            auto result = f.table.unmap(va);
            auto it = ref.find(va);
            if (it == ref.end()) {
                ASSERT_EQ(result.error().code(), ENOENT);
            } else if (result.is_error()) {
                ASSERT_TRUE(inject);
                ASSERT_EQ(result.error().code(), ENOMEM);
            } else {
                ASSERT_EQ(result.value(), it->second.phys);
                ASSERT_TRUE(f.memory.invalidated(va));
                ref.erase(it);
            }
        } else if (op == 4) {
            VirtAddr va = random_page();
            PageFlags flags = random_flags();
            auto result = f.table.protect(va, flags);
            auto it = ref.find(va);
            if (it == ref.end()) {
                ASSERT_EQ(f.err(std::move(result)), ENOENT);
            } else if (result.is_error()) {
                ASSERT_TRUE(inject);
                ASSERT_EQ(result.error().code(), ENOMEM);
            } else {
                it->second.flags = flags;
            }
        } else if (op == 5) {
            VirtAddr va = random_page();
            u64 pages = 1 + rng() % 8;
            bool all = true;
            for (u64 i = 0; i < pages; ++i)
                all = all && ref.count(va + i * PAGE_SIZE);
            auto result = f.table.unmap_range(va, pages * PAGE_SIZE);
            if (!all) {
                ASSERT_EQ(f.err(std::move(result)), ENOENT);
                ASSERT_EQ(f.memory.live_tables(), live_before);
            } else if (result.is_error()) {
                ASSERT_TRUE(inject);
                ASSERT_EQ(result.error().code(), ENOMEM);
            } else {
                for (u64 i = 0; i < pages; ++i)
                    ref.erase(va + i * PAGE_SIZE);
            }
        } else {
            VirtAddr va = random_page() + rng() % PAGE_SIZE;
            auto result = f.table.translate(va);
            auto it = ref.find(align_down(va, PAGE_SIZE));
            if (it == ref.end()) {
                ASSERT_EQ(result.error().code(), ENOENT);
            } else {
                ASSERT_FALSE(result.is_error());
                ASSERT_EQ(result.value().phys, it->second.phys + (va - align_down(va, PAGE_SIZE)));
                ASSERT_EQ(result.value().flags, it->second.flags);
            }
        }
    }

    f.memory.fail_after = -1;
    // Full consistency check, then unmap everything: only the root may remain.
    for (auto& [va, page] : ref) {
        auto t = f.table.translate(va);
        ASSERT_FALSE(t.is_error()) << std::hex << va;
        ASSERT_EQ(t.value().phys, page.phys);
        ASSERT_EQ(t.value().flags, page.flags);
    }
    for (VirtAddr region : { base, base + GiB }) {
        for (u64 off = 0; off < 4 * MiB; off += PAGE_SIZE) {
            if (!ref.count(region + off))
                ASSERT_TRUE(f.table.translate(VirtAddr(region + off)).is_error()) << std::hex << region + off;
        }
    }
    for (auto& [va, page] : ref)
        ASSERT_EQ(MUST(f.table.unmap(va)), page.phys);
    EXPECT_EQ(f.memory.live_tables(), live_when_empty);
    for (usize i = 0; i < pdpts.size(); ++i) {
        ASSERT_TRUE(f.pml4()[256 + i] & Present) << 256 + i;
        ASSERT_EQ(PhysAddr(f.pml4()[256 + i] & AddressMask), pdpts[i]) << 256 + i;
    }
}

} // namespace

TEST(PageTable, RandomizedAgainstReferenceSeed1) { run_random(1, 3000, false); }
TEST(PageTable, RandomizedAgainstReferenceSeed2) { run_random(2, 3000, false); }
TEST(PageTable, RandomizedAgainstReferenceSeed3) { run_random(3, 3000, false); }
TEST(PageTable, RandomizedWithENOMEMInjectionSeed1) { run_random(11, 3000, true); }
TEST(PageTable, RandomizedWithENOMEMInjectionSeed2) { run_random(12, 3000, true); }
TEST(PageTable, RandomizedWithENOMEMInjectionSeed3) { run_random(13, 3000, true); }
TEST(PageTable, RandomizedPinnedKernelHalfSeed1) { run_random(21, 3000, false, true); }
TEST(PageTable, RandomizedPinnedKernelHalfWithENOMEMInjectionSeed1) { run_random(31, 3000, true, true); }
TEST(PageTable, RandomizedPinnedKernelHalfWithENOMEMInjectionSeed2) { run_random(32, 3000, true, true); }
