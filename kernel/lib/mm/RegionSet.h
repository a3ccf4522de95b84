#pragma once
// RegionSet: a small sorted set of disjoint address ranges, for turning the boot memory map into
// the list of pages the buddy allocator may own, and for free virtual address space (vmalloc, the
// module region).
//
// NOTE: it is a template on the address kind (PhysRegionSet, VirtRegionSet) rather than a set of
// plain u64s converted at its edges: the set is used for both kinds, and a u64 set would let a
// physical range be subtracted from a virtual one, which is the mistake the types exist to stop.
// The code is the same for both; RegionSet.cpp instantiates the two.
//
// Interface:
//   PhysRegionSet usable;
//   TRY(usable.add(PhysAddr(e.base), PhysAddr(e.base + e.length))); // every usable memory-map entry
//   TRY(usable.subtract(kernel_start, kernel_end)); // the kernel image, modules, ACPI, bump region
//   usable.page_align_inward();
//   for (auto& range : usable) buddy.add_free_range(range.start, range.end);
//
// Ranges are half-open [start, end). Stored ranges never overlap or touch: add() merges neighbours.
// Capacity is fixed so that it works before any allocator exists; a failing call changes nothing.
#include <ktl/ErrorOr.h>
#include <ktl/Types.h>

template<typename Addr>
struct AddressRange {
    Addr start {};
    Addr end {};

    constexpr u64 size() const { return end - start; }
    constexpr bool is_empty() const { return start == end; }
    constexpr bool contains(Addr address) const { return address >= start && address < end; }
    constexpr bool operator==(const AddressRange& other) const { return start == other.start && end == other.end; }
};

using PhysRange = AddressRange<PhysAddr>;
using VirtRange = AddressRange<VirtAddr>;

template<typename Addr>
class RegionSet {
    // Only the two instantiations in RegionSet.cpp exist.
    static_assert(__is_same(Addr, PhysAddr) || __is_same(Addr, VirtAddr), "RegionSet holds PhysAddr or VirtAddr ranges");

public:
    using Range = AddressRange<Addr>;

    static constexpr usize capacity = 128;

    // Adds [start, end), merging with ranges it overlaps or touches. An empty range is a no-op.
    // EINVAL if start > end, ENOSPC if a new disjoint range does not fit.
    ErrorOr<void> add(Addr start, Addr end);
    // Removes [start, end) from the set, trimming or splitting ranges. ENOSPC if a split does not
    // fit, EINVAL if start > end.
    ErrorOr<void> subtract(Addr start, Addr end);
    // Shrinks every range to whole pages and drops those that become empty.
    void page_align_inward();
    void clear() { m_count = 0; }

    // The lowest aligned address of a [size]-byte block wholly inside one range, at or above
    // `minimum`. ENOMEM if none fits. Used to place the bump allocator's region.
    ErrorOr<Addr> find_fit(u64 size, u64 align, Addr minimum = Addr()) const;

    bool contains(Addr address) const;
    // Whether [start, end) lies wholly inside one range.
    bool contains_range(Addr start, Addr end) const;
    // Whether any byte of [start, end) is in the set.
    bool intersects(Addr start, Addr end) const;

    u64 total_bytes() const;
    usize count() const { return m_count; }
    bool is_empty() const { return m_count == 0; }
    const Range& operator[](usize index) const
    {
        VERIFY(index < m_count);
        return m_ranges[index];
    }
    const Range* begin() const { return m_ranges; }
    const Range* end() const { return m_ranges + m_count; }

private:
    void insert_at(usize index, Range range);
    void remove_at(usize index, usize how_many = 1);

    Range m_ranges[capacity];
    usize m_count { 0 };
};

extern template class RegionSet<PhysAddr>;
extern template class RegionSet<VirtAddr>;
using PhysRegionSet = RegionSet<PhysAddr>;
using VirtRegionSet = RegionSet<VirtAddr>;
