#pragma once
// SlabCache: fixed-size objects carved from slabs of 2^order pages, in the style of Bonwick's slab
// allocator and Linux SLUB.
//
// Interface:
//   SlabCache cache("inode", sizeof(Inode), alignof(Inode), provider);
//   void* p = TRY(cache.allocate());
//   cache.free(p);
//
// Layout of one slab (naturally aligned, so any object finds its header by masking):
//
//   slab base                                                     base + (PAGE_SIZE << order)
//   | Slab header | allocated bitmap | pad | obj 0 | obj 1 | ... | obj n-1 | waste |
//
// Free objects are threaded through their first word. A fresh slab is not threaded up front:
// next_unused hands out untouched objects in order, so creating a slab touches only its header.
// The bitmap makes double frees and foreign pointers a VERIFY failure, not silent corruption.
// Every page of a slab is tagged with the owning cache through the PageProvider.
//
// Slabs live on two lists, full and partial. One empty slab is kept, at the tail of the partial
// list, to absorb alloc/free ping-pong at a slab boundary without touching the page allocator or
// relinking anything; allocation drains the partially used slabs in front of it first. A second
// slab that becomes empty goes back to the page allocator at once. Not thread-safe: callers lock.
#include <ktl/ErrorOr.h>
#include <ktl/IntrusiveList.h>
#include <ktl/Types.h>
#include <lib/mm/PageProvider.h>

struct SlabCacheStats {
    const char* name { nullptr };
    usize object_size { 0 };
    usize object_align { 0 };
    usize objects_per_slab { 0 };
    unsigned slab_order { 0 };
    usize objects_in_use { 0 };
    usize objects_total { 0 };
    usize slabs { 0 };
    usize empty_slabs { 0 };
    usize pages { 0 };
    u64 alloc_calls { 0 };
    u64 free_calls { 0 };
    u64 failed_calls { 0 };
};

class SlabCache {
public:
    static constexpr unsigned MAX_SLAB_ORDER = 5;
    static constexpr usize MIN_OBJECTS_PER_SLAB = 8;

    // object_size is rounded up to a multiple of the alignment (at least pointer-sized); align must
    // be a power of two. VERIFYs that one object fits in a slab of MAX_SLAB_ORDER.
    SlabCache(const char* name, usize object_size, usize align, PageProvider&);
    // Returns every slab to the provider; the owner must be done with every object.
    ~SlabCache();
    SlabCache(const SlabCache&) = delete;
    SlabCache& operator=(const SlabCache&) = delete;

    // ENOMEM (or the provider's error) when a new slab is needed and none can be had.
    ErrorOr<void*> allocate();
    // nullptr is a no-op. VERIFYs that ptr is the start of an allocated object of this cache.
    void free(void* ptr);
    // Whether ptr lies in one of this cache's slabs (not necessarily at an object start).
    bool owns(void* ptr) const;
    // Releases every empty slab, including the cached one.
    void shrink();

    const char* name() const { return m_name; }
    usize object_size() const { return m_object_size; }
    usize align() const { return m_align; }
    unsigned slab_order() const { return m_slab_order; }
    usize objects_per_slab() const { return m_capacity; }
    SlabCacheStats stats() const;

private:
    // SlabHeap has already looked up the page owner to pick the cache; it skips the second lookup.
    friend class SlabHeap;
    void free_owned(void* ptr);

    struct Slab {
        IntrusiveListNode node;
        SlabCache* cache;
        void* freelist;
        u32 in_use;
        u32 next_unused;
        u64* bitmap() { return reinterpret_cast<u64*>(this + 1); }
    };
    using SlabList = IntrusiveList<Slab, &Slab::node>;

    usize slab_bytes() const { return PAGE_SIZE << m_slab_order; }
    usize objects_offset_for(usize capacity) const;
    usize capacity_for(usize slab_bytes) const;
    u8* objects_of(Slab& slab) const { return reinterpret_cast<u8*>(&slab) + m_objects_offset; }
    Slab& slab_of(void* ptr) const { return *reinterpret_cast<Slab*>(align_down(reinterpret_cast<uptr>(ptr), slab_bytes())); }
    ErrorOr<Slab*> create_slab();
    void release_slab(Slab&);
    void release_list(SlabList&);

    const char* m_name;
    usize m_object_size;
    usize m_align;
    unsigned m_slab_order { 0 };
    usize m_capacity { 0 };
    usize m_objects_offset { 0 };
    // ceil(2^32 / object_size): turns the object index division on every free into a multiply.
    u64 m_reciprocal { 0 };
    PageProvider& m_provider;

    SlabList m_full;
    // Invariant: the cached empty slab, if any, is the last slab on this list.
    SlabList m_partial;
    usize m_slab_count { 0 };
    usize m_empty_count { 0 };
    usize m_in_use { 0 };
    u64 m_alloc_calls { 0 };
    u64 m_free_calls { 0 };
    u64 m_failed_calls { 0 };
};
