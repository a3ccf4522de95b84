#include <lib/mm/RegionSet.h>

template<typename Addr>
ErrorOr<void> RegionSet<Addr>::add(Addr start, Addr end)
{
    if (start > end)
        return EINVAL;
    if (start == end)
        return {};

    // [first, last) are the stored ranges that overlap or touch the new one. Because the stored
    // ranges are sorted and disjoint, they are contiguous in the array.
    usize first = 0;
    while (first < m_count && m_ranges[first].end < start)
        ++first;
    usize last = first;
    while (last < m_count && m_ranges[last].start <= end)
        ++last;

    if (first == last) {
        if (m_count == capacity)
            return ENOSPC;
        insert_at(first, { start, end });
        return {};
    }

    Range merged { m_ranges[first].start < start ? m_ranges[first].start : start,
        m_ranges[last - 1].end > end ? m_ranges[last - 1].end : end };
    m_ranges[first] = merged;
    remove_at(first + 1, last - first - 1);
    return {};
}

template<typename Addr>
ErrorOr<void> RegionSet<Addr>::subtract(Addr start, Addr end)
{
    if (start > end)
        return EINVAL;
    if (start == end)
        return {};

    // Check the only case that needs a new slot before touching anything: a hole punched strictly
    // inside one range. At most one range can contain the hole, so at most one split happens.
    for (usize i = 0; i < m_count; ++i) {
        auto& range = m_ranges[i];
        if (range.start < start && range.end > end) {
            if (m_count == capacity)
                return ENOSPC;
            Range upper { end, range.end };
            range.end = start;
            insert_at(i + 1, upper);
            return {};
        }
    }

    usize i = 0;
    while (i < m_count) {
        auto& range = m_ranges[i];
        if (range.end <= start) {
            ++i;
            continue;
        }
        if (range.start >= end)
            break;
        if (range.start >= start && range.end <= end) {
            remove_at(i);
            continue;
        }
        if (range.start < start)
            range.end = start;
        else
            range.start = end;
        ++i;
    }
    return {};
}

template<typename Addr>
void RegionSet<Addr>::page_align_inward()
{
    usize out = 0;
    for (usize i = 0; i < m_count; ++i) {
        Addr start;
        if (add_overflows(m_ranges[i].start, PAGE_SIZE - 1, &start))
            continue;
        start = align_down(start, PAGE_SIZE);
        Addr end = align_down(m_ranges[i].end, PAGE_SIZE);
        if (start >= end)
            continue;
        m_ranges[out++] = { start, end };
    }
    m_count = out;
}

template<typename Addr>
ErrorOr<Addr> RegionSet<Addr>::find_fit(u64 size, u64 align, Addr minimum) const
{
    if (size == 0 || !is_power_of_two(align))
        return EINVAL;
    for (usize i = 0; i < m_count; ++i) {
        auto& range = m_ranges[i];
        Addr from = range.start > minimum ? range.start : minimum;
        Addr padded;
        if (from >= range.end || add_overflows(from, align - 1, &padded))
            continue;
        Addr candidate = align_down(padded, align);
        if (candidate < range.end && size <= range.end - candidate)
            return candidate;
    }
    return ENOMEM;
}

template<typename Addr>
bool RegionSet<Addr>::contains(Addr address) const
{
    for (usize i = 0; i < m_count; ++i) {
        if (m_ranges[i].contains(address))
            return true;
    }
    return false;
}

template<typename Addr>
bool RegionSet<Addr>::contains_range(Addr start, Addr end) const
{
    if (start >= end)
        return false;
    for (usize i = 0; i < m_count; ++i) {
        if (m_ranges[i].start <= start && end <= m_ranges[i].end)
            return true;
    }
    return false;
}

template<typename Addr>
bool RegionSet<Addr>::intersects(Addr start, Addr end) const
{
    for (usize i = 0; i < m_count; ++i) {
        if (m_ranges[i].start < end && start < m_ranges[i].end)
            return true;
    }
    return false;
}

template<typename Addr>
u64 RegionSet<Addr>::total_bytes() const
{
    u64 total = 0;
    for (usize i = 0; i < m_count; ++i)
        total += m_ranges[i].size();
    return total;
}

template<typename Addr>
void RegionSet<Addr>::insert_at(usize index, Range range)
{
    VERIFY(m_count < capacity && index <= m_count);
    for (usize i = m_count; i > index; --i)
        m_ranges[i] = m_ranges[i - 1];
    m_ranges[index] = range;
    ++m_count;
}

template<typename Addr>
void RegionSet<Addr>::remove_at(usize index, usize how_many)
{
    VERIFY(index + how_many <= m_count);
    for (usize i = index; i + how_many < m_count; ++i)
        m_ranges[i] = m_ranges[i + how_many];
    m_count -= how_many;
}

template class RegionSet<PhysAddr>;
template class RegionSet<VirtAddr>;
