#include <lib/mm/SlabCache.h>

namespace {

constexpr usize bitmap_words(usize capacity) { return (capacity + 63) / 64; }

}

SlabCache::SlabCache(const char* name, usize object_size, usize align, PageProvider& provider)
    : m_name(name)
    , m_provider(provider)
{
    VERIFY(object_size != 0 && is_power_of_two(align));
    // The free list lives in the first word of each free object.
    m_align = align < alignof(void*) ? alignof(void*) : align;
    m_object_size = align_up(object_size < sizeof(void*) ? sizeof(void*) : object_size, m_align);

    // Prefer the smallest slab that holds enough objects with little waste; settle for enough
    // objects; settle for one object in the largest slab.
    bool chosen = false;
    for (int pass = 0; pass < 2 && !chosen; ++pass) {
        for (unsigned order = 0; order <= MAX_SLAB_ORDER; ++order) {
            usize bytes = PAGE_SIZE << order;
            usize capacity = capacity_for(bytes);
            usize waste = bytes - capacity * m_object_size;
            if (capacity >= MIN_OBJECTS_PER_SLAB && (pass == 1 || waste <= bytes / 8)) {
                m_slab_order = order;
                chosen = true;
                break;
            }
        }
    }
    if (!chosen)
        m_slab_order = MAX_SLAB_ORDER;
    m_capacity = capacity_for(slab_bytes());
    VERIFY(m_capacity >= 1);
    m_objects_offset = objects_offset_for(m_capacity);
    m_reciprocal = ((1ull << 32) + m_object_size - 1) / m_object_size;
}

SlabCache::~SlabCache()
{
    release_list(m_full);
    release_list(m_partial);
    m_empty_count = 0;
    m_in_use = 0;
}

usize SlabCache::objects_offset_for(usize capacity) const
{
    return align_up(sizeof(Slab) + bitmap_words(capacity) * sizeof(u64), m_align);
}

usize SlabCache::capacity_for(usize bytes) const
{
    usize capacity = bytes / m_object_size;
    while (capacity > 0 && objects_offset_for(capacity) + capacity * m_object_size > bytes)
        --capacity;
    return capacity;
}

ErrorOr<SlabCache::Slab*> SlabCache::create_slab()
{
    void* memory = TRY(m_provider.allocate_pages(m_slab_order));
    VERIFY(is_aligned(reinterpret_cast<uptr>(memory), slab_bytes()));
    for (usize offset = 0; offset < slab_bytes(); offset += PAGE_SIZE)
        m_provider.set_page_owner(static_cast<u8*>(memory) + offset, this);

    auto* slab = new (memory) Slab { {}, this, nullptr, 0, 0 };
    __builtin_memset(slab->bitmap(), 0, bitmap_words(m_capacity) * sizeof(u64));
    ++m_slab_count;
    return slab;
}

void SlabCache::release_slab(Slab& slab)
{
    for (usize offset = 0; offset < slab_bytes(); offset += PAGE_SIZE)
        m_provider.set_page_owner(reinterpret_cast<u8*>(&slab) + offset, nullptr);
    // Clear the cookie so a stale pointer into a recycled page cannot pass for one of ours.
    slab.cache = nullptr;
    --m_slab_count;
    m_provider.free_pages(&slab, m_slab_order);
}

void SlabCache::release_list(SlabList& list)
{
    while (auto* slab = list.take_first())
        release_slab(*slab);
}

ErrorOr<void*> SlabCache::allocate()
{
    ++m_alloc_calls;
    Slab* slab = m_partial.first();
    if (!slab) {
        auto created = create_slab();
        if (created.is_error()) {
            ++m_failed_calls;
            return created.release_error();
        }
        slab = created.release_value();
        m_partial.prepend(*slab);
    } else if (slab->in_use == 0) {
        // The cached empty slab is last, so reaching it means no partially used slab is left.
        --m_empty_count;
    }

    u8* object = static_cast<u8*>(slab->freelist);
    bool from_freelist = object != nullptr;
    if (!from_freelist) {
        VERIFY(slab->next_unused < m_capacity);
        object = objects_of(*slab) + slab->next_unused++ * m_object_size;
    }

    // A free-list entry outside this slab's objects, or one already marked allocated, means a
    // use after free overwrote the list. Check before following the link or handing it out.
    u64 offset = static_cast<u64>(reinterpret_cast<uptr>(object) - reinterpret_cast<uptr>(objects_of(*slab)));
    usize index = (offset * m_reciprocal) >> 32;
    bool freelist_intact = offset < m_capacity * m_object_size && index * m_object_size == offset;
    VERIFY(freelist_intact);
    u64 bit = 1ull << (index % 64);
    u64& word = slab->bitmap()[index / 64];
    VERIFY(!(word & bit));
    word |= bit;
    if (from_freelist)
        slab->freelist = *reinterpret_cast<void**>(object);

    if (++slab->in_use == m_capacity) {
        SlabList::remove(*slab);
        m_full.append(*slab);
    }
    ++m_in_use;
    return object;
}

void SlabCache::free(void* ptr)
{
    if (!ptr)
        return;
    bool owned_by_this_cache = m_provider.page_owner(reinterpret_cast<void*>(align_down(reinterpret_cast<uptr>(ptr), PAGE_SIZE))) == this;
    VERIFY(owned_by_this_cache);
    free_owned(ptr);
}

void SlabCache::free_owned(void* ptr)
{
    Slab& slab = slab_of(ptr);
    VERIFY(slab.cache == this);

    u8* objects = objects_of(slab);
    u8* object = static_cast<u8*>(ptr);
    VERIFY(object >= objects);
    u64 offset = static_cast<u64>(object - objects);
    usize index = (offset * m_reciprocal) >> 32;
    bool is_object_start = index < m_capacity && index * m_object_size == offset;
    VERIFY(is_object_start);
    u64 bit = 1ull << (index % 64);
    u64& word = slab.bitmap()[index / 64];
    bool is_double_free = !(word & bit);
    VERIFY(!is_double_free);
    word &= ~bit;

    *reinterpret_cast<void**>(object) = slab.freelist;
    slab.freelist = object;
    ++m_free_calls;
    --m_in_use;

    bool was_full = slab.in_use == m_capacity;
    --slab.in_use;
    if (slab.in_use == 0) {
        if (m_empty_count >= 1) {
            SlabList::remove(slab);
            release_slab(slab);
        } else {
            if (m_partial.last() != &slab) {
                SlabList::remove(slab);
                m_partial.append(slab);
            }
            ++m_empty_count;
        }
    } else if (was_full) {
        SlabList::remove(slab);
        m_partial.prepend(slab);
    }
}

bool SlabCache::owns(void* ptr) const
{
    if (!ptr)
        return false;
    return m_provider.page_owner(reinterpret_cast<void*>(align_down(reinterpret_cast<uptr>(ptr), PAGE_SIZE))) == this;
}

void SlabCache::shrink()
{
    if (m_empty_count == 0)
        return;
    Slab* slab = m_partial.last();
    VERIFY(slab && slab->in_use == 0);
    SlabList::remove(*slab);
    release_slab(*slab);
    m_empty_count = 0;
}

SlabCacheStats SlabCache::stats() const
{
    SlabCacheStats stats;
    stats.name = m_name;
    stats.object_size = m_object_size;
    stats.object_align = m_align;
    stats.objects_per_slab = m_capacity;
    stats.slab_order = m_slab_order;
    stats.objects_in_use = m_in_use;
    stats.objects_total = m_slab_count * m_capacity;
    stats.slabs = m_slab_count;
    stats.empty_slabs = m_empty_count;
    stats.pages = m_slab_count << m_slab_order;
    stats.alloc_calls = m_alloc_calls;
    stats.free_calls = m_free_calls;
    stats.failed_calls = m_failed_calls;
    return stats;
}
