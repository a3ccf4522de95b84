#pragma once
// BumpAllocator: the first physical allocator, alive before any page metadata exists.
//
// Interface:
//   BumpAllocator bump(start, end);          // owns the physical range [start, end)
//   PhysAddr p = TRY(bump.allocate(size, align));
//   bump.freeze();                           // the buddy allocator takes over; [start(), current())
//                                            // must then be reserved, and allocate() fails with EPERM
//
// It never frees: everything it hands out (page metadata, early page tables) lives forever. It only
// does arithmetic on addresses and never touches the memory, so it is host-testable.
#include <ktl/ErrorOr.h>
#include <ktl/Types.h>

class BumpAllocator {
public:
    BumpAllocator(PhysAddr start, PhysAddr end);

    // Returns a block of `size` bytes aligned to `align` (a power of two). EINVAL for size 0 or a bad
    // alignment, ENOMEM when the range is exhausted, EPERM once frozen. A failure changes nothing.
    ErrorOr<PhysAddr> allocate(u64 size, u64 align);

    // Ends the bump phase. Idempotent.
    void freeze() { m_frozen = true; }
    bool is_frozen() const { return m_frozen; }

    PhysAddr start() const { return m_start; }
    PhysAddr end() const { return m_end; }
    // The first address not handed out yet: [start(), current()) is what must be reserved.
    PhysAddr current() const { return m_current; }
    // Bytes consumed, including alignment padding.
    u64 used() const { return m_current - m_start; }
    u64 remaining() const { return m_end - m_current; }
    u64 allocation_count() const { return m_allocation_count; }
    bool contains(PhysAddr address) const { return address >= m_start && address < m_end; }

private:
    PhysAddr m_start;
    PhysAddr m_end;
    PhysAddr m_current;
    u64 m_allocation_count { 0 };
    bool m_frozen { false };
};
