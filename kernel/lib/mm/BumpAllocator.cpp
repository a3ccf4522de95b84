#include <lib/mm/BumpAllocator.h>

BumpAllocator::BumpAllocator(PhysAddr start, PhysAddr end)
    : m_start(start)
    , m_end(end)
    , m_current(start)
{
    VERIFY(start <= end);
}

ErrorOr<PhysAddr> BumpAllocator::allocate(u64 size, u64 align)
{
    if (m_frozen)
        return EPERM;
    if (size == 0 || !is_power_of_two(align))
        return EINVAL;

    // NOTE: every step is overflow-checked; a huge request near the top of the address space must
    // fail cleanly rather than wrap around and hand out low memory twice.
    PhysAddr padded;
    if (add_overflows(m_current, align - 1, &padded))
        return ENOMEM;
    PhysAddr block = align_down(padded, align);
    if (block > m_end || size > m_end - block)
        return ENOMEM;

    m_current = block + size;
    ++m_allocation_count;
    return block;
}
