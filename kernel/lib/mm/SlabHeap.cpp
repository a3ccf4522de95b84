#include <lib/mm/SlabHeap.h>

namespace {

constexpr usize s_class_sizes[SlabHeap::class_count] = { 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192 };
constexpr const char* s_class_names[SlabHeap::class_count] = { "kmalloc-16", "kmalloc-32", "kmalloc-64",
    "kmalloc-96", "kmalloc-128", "kmalloc-192", "kmalloc-256", "kmalloc-512", "kmalloc-1k", "kmalloc-2k",
    "kmalloc-4k", "kmalloc-8k" };

// Class index for sizes 1..256 by 16-byte step, so the common small sizes need no search.
struct SmallClassTable {
    u8 index[17];
    constexpr SmallClassTable()
        : index()
    {
        usize current = 0;
        for (usize step = 0; step <= 16; ++step) {
            while (s_class_sizes[current] < step * 16)
                ++current;
            index[step] = static_cast<u8>(current);
        }
    }
};
constexpr SmallClassTable s_small_classes;

constexpr unsigned ceil_log2(u64 value) { return value <= 1 ? 0 : 64 - __builtin_clzll(value - 1); }

// Natural alignment for power-of-two classes, the largest power of two dividing the size otherwise.
constexpr usize class_align(usize size)
{
    usize align = size & -size;
    return align > PAGE_SIZE ? PAGE_SIZE : align;
}

}

SlabHeap::SlabHeap(PageProvider& provider)
    : m_provider(provider)
{
    for (usize i = 0; i < class_count; ++i)
        m_caches[i] = new (m_cache_storage[i]) SlabCache(s_class_names[i], s_class_sizes[i], class_align(s_class_sizes[i]), provider);
}

SlabHeap::~SlabHeap()
{
    for (usize i = 0; i < class_count; ++i)
        m_caches[i]->~SlabCache();
}

usize SlabHeap::class_size(usize index)
{
    VERIFY(index < class_count);
    return s_class_sizes[index];
}

usize SlabHeap::class_index_for(usize size)
{
    if (size <= 256)
        return s_small_classes.index[(size + 15) / 16];
    if (size > max_small_size)
        return class_count;
    // 512 -> 7, 1024 -> 8, ... 8192 -> 11.
    return 7 + ceil_log2(size) - 9;
}

ErrorOr<void*> SlabHeap::allocate(usize size)
{
    ++m_alloc_calls;
    if (size == 0 || size > max_allocation_size) {
        ++m_failed_calls;
        return size == 0 ? EINVAL : ENOMEM;
    }

    usize index = class_index_for(size);
    if (index < class_count) {
        auto result = m_caches[index]->allocate();
        if (result.is_error()) {
            ++m_failed_calls;
            return ENOMEM;
        }
        m_bytes_in_use += s_class_sizes[index];
        ++m_small_in_use;
        return result.release_value();
    }

    unsigned order = ceil_log2((size + PAGE_SIZE - 1) / PAGE_SIZE);
    ++m_large_alloc_calls;
    auto result = m_provider.allocate_pages(order);
    if (result.is_error()) {
        // The provider may say EINVAL for an order beyond its largest block; to the caller that is
        // simply memory it cannot have.
        ++m_failed_calls;
        return ENOMEM;
    }
    void* block = result.release_value();
    VERIFY(is_aligned(reinterpret_cast<uptr>(block), PAGE_SIZE << order));
    m_provider.set_page_owner(block, large_tag(order));
    m_bytes_in_use += PAGE_SIZE << order;
    m_large_pages_in_use += 1ull << order;
    ++m_large_in_use;
    return block;
}

ErrorOr<void*> SlabHeap::allocate(usize size, void* caller)
{
    void* ptr = TRY(allocate(size));
    if (m_caller_tracking)
        record_caller(caller, allocation_size(ptr));
    return ptr;
}

bool SlabHeap::is_our_cache(const void* owner) const
{
    for (usize i = 0; i < class_count; ++i) {
        if (m_caches[i] == owner)
            return true;
    }
    return false;
}

void SlabHeap::free(void* ptr)
{
    if (!ptr)
        return;
    void* page = reinterpret_cast<void*>(align_down(reinterpret_cast<uptr>(ptr), PAGE_SIZE));
    void* owner = m_provider.page_owner(page);
    bool is_heap_pointer = owner != nullptr;
    VERIFY(is_heap_pointer);
    ++m_free_calls;

    auto tag = reinterpret_cast<uptr>(owner);
    if (tag & 1) {
        unsigned order = static_cast<unsigned>(tag >> 1);
        // Interior pages of a large block are never tagged, so only the head pointer gets here.
        VERIFY(ptr == page);
        m_provider.set_page_owner(page, nullptr);
        m_provider.free_pages(ptr, order);
        m_bytes_in_use -= PAGE_SIZE << order;
        m_large_pages_in_use -= 1ull << order;
        --m_large_in_use;
        ++m_large_free_calls;
        return;
    }

    VERIFY(is_our_cache(owner));
    auto* cache = static_cast<SlabCache*>(owner);
    cache->free_owned(ptr);
    m_bytes_in_use -= cache->object_size();
    --m_small_in_use;
}

usize SlabHeap::allocation_size(void* ptr)
{
    if (!ptr)
        return 0;
    void* page = reinterpret_cast<void*>(align_down(reinterpret_cast<uptr>(ptr), PAGE_SIZE));
    void* owner = m_provider.page_owner(page);
    VERIFY(owner != nullptr);
    auto tag = reinterpret_cast<uptr>(owner);
    if (tag & 1)
        return PAGE_SIZE << (tag >> 1);
    VERIFY(is_our_cache(owner));
    return static_cast<SlabCache*>(owner)->object_size();
}

void SlabHeap::shrink()
{
    for (usize i = 0; i < class_count; ++i)
        m_caches[i]->shrink();
}

SlabCacheStats SlabHeap::class_stats(usize index) const
{
    VERIFY(index < class_count);
    return m_caches[index]->stats();
}

SlabHeapStats SlabHeap::stats() const
{
    SlabHeapStats stats;
    stats.bytes_in_use = m_bytes_in_use;
    stats.small_allocations_in_use = m_small_in_use;
    stats.large_allocations_in_use = m_large_in_use;
    stats.large_pages_in_use = m_large_pages_in_use;
    for (usize i = 0; i < class_count; ++i)
        stats.slab_pages += m_caches[i]->stats().pages;
    stats.alloc_calls = m_alloc_calls;
    stats.free_calls = m_free_calls;
    stats.failed_calls = m_failed_calls;
    stats.large_alloc_calls = m_large_alloc_calls;
    stats.large_free_calls = m_large_free_calls;
    return stats;
}

usize SlabHeap::slot_for(void* caller)
{
    // Fibonacci hashing: return addresses differ mostly in their low bits.
    return static_cast<usize>((reinterpret_cast<uptr>(caller) * 0x9E3779B97F4A7C15ull) >> 58);
}
static_assert(SlabHeap::caller_table_size == 64, "slot_for() hashes to 6 bits");

void SlabHeap::record_caller(void* caller, usize bytes)
{
    // nullptr marks an empty slot, so an unknown caller can only be counted in bulk.
    if (!caller) {
        ++m_untracked_allocations;
        return;
    }
    usize slot = slot_for(caller);
    for (usize probe = 0; probe < caller_table_size; ++probe) {
        auto& entry = m_callers[(slot + probe) % caller_table_size];
        if (entry.caller == caller || entry.caller == nullptr) {
            entry.caller = caller;
            ++entry.allocations;
            entry.bytes += bytes;
            return;
        }
    }
    ++m_untracked_allocations;
}

u64 SlabHeap::allocations_by(void* caller) const
{
    if (!caller)
        return 0;
    usize slot = slot_for(caller);
    for (usize probe = 0; probe < caller_table_size; ++probe) {
        auto& entry = m_callers[(slot + probe) % caller_table_size];
        if (entry.caller == caller)
            return entry.allocations;
        if (entry.caller == nullptr)
            return 0;
    }
    return 0;
}

usize SlabHeap::top_callers(Span<CallerStat> out) const
{
    usize written = 0;
    for (auto& entry : m_callers) {
        if (!entry.caller)
            continue;
        // Insertion into a short sorted array: the table is tiny and this is a debug path.
        usize position = written < out.size() ? written : out.size();
        while (position > 0 && out[position - 1].allocations < entry.allocations)
            --position;
        if (position >= out.size())
            continue;
        usize last = written < out.size() ? written : out.size() - 1;
        for (usize i = last; i > position; --i)
            out[i] = out[i - 1];
        out[position] = entry;
        if (written < out.size())
            ++written;
    }
    return written;
}

void SlabHeap::reset_caller_stats()
{
    for (auto& entry : m_callers)
        entry = {};
    m_untracked_allocations = 0;
}
