#pragma once
// RegionSet: a small sorted set of disjoint physical ranges, for turning the boot memory map into
// the list of pages the buddy allocator may own.
//
// Interface:
//   RegionSet usable;
//   TRY(usable.add(e.base, e.base + e.length));     // every usable memory-map entry
//   TRY(usable.subtract(kernel_start, kernel_end)); // the kernel image, modules, ACPI, bump region
//   usable.page_align_inward();
//   for (auto& range : usable) buddy.add_free_range(range.start, range.end);
//
// Ranges are half-open [start, end). Stored ranges never overlap or touch: add() merges neighbours.
// Capacity is fixed so that it works before any allocator exists; a failing call changes nothing.
#include <ktl/ErrorOr.h>
#include <ktl/Types.h>

struct PhysRange {
    PhysAddr start { 0 };
    PhysAddr end { 0 };

    constexpr u64 size() const { return end - start; }
    constexpr bool is_empty() const { return start == end; }
    constexpr bool contains(PhysAddr address) const { return address >= start && address < end; }
    constexpr bool operator==(const PhysRange&) const = default;
};

class RegionSet {
public:
    static constexpr usize capacity = 128;

    // Adds [start, end), merging with ranges it overlaps or touches. An empty range is a no-op.
    // EINVAL if start > end, ENOSPC if a new disjoint range does not fit.
    ErrorOr<void> add(PhysAddr start, PhysAddr end);
    // Removes [start, end) from the set, trimming or splitting ranges. ENOSPC if a split does not
    // fit, EINVAL if start > end.
    ErrorOr<void> subtract(PhysAddr start, PhysAddr end);
    // Shrinks every range to whole pages and drops those that become empty.
    void page_align_inward();
    void clear() { m_count = 0; }

    // The lowest aligned address of a [size]-byte block wholly inside one range, at or above
    // `minimum`. ENOMEM if none fits. Used to place the bump allocator's region.
    ErrorOr<PhysAddr> find_fit(u64 size, u64 align, PhysAddr minimum = 0) const;

    bool contains(PhysAddr address) const;
    // Whether [start, end) lies wholly inside one range.
    bool contains_range(PhysAddr start, PhysAddr end) const;
    // Whether any byte of [start, end) is in the set.
    bool intersects(PhysAddr start, PhysAddr end) const;

    u64 total_bytes() const;
    usize count() const { return m_count; }
    bool is_empty() const { return m_count == 0; }
    const PhysRange& operator[](usize index) const
    {
        VERIFY(index < m_count);
        return m_ranges[index];
    }
    const PhysRange* begin() const { return m_ranges; }
    const PhysRange* end() const { return m_ranges + m_count; }

private:
    void insert_at(usize index, PhysRange range);
    void remove_at(usize index, usize how_many = 1);

    PhysRange m_ranges[capacity];
    usize m_count { 0 };
};
