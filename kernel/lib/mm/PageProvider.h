#pragma once
// PageProvider: what the slab allocator needs from the page allocator underneath it.
//
// The kernel implements it over the BuddyAllocator and the direct map, keeping owners in
// PageFrame::owner; host tests implement it over an aligned arena (tests/unit/support). The owner
// tag is how SlabHeap::free(ptr) finds its cache with no header in front of each object.
//
// Contract:
//   allocate_pages(order)  - a usable virtual pointer to 2^order pages, aligned to their size.
//   free_pages(p, order)   - returns a block from allocate_pages() with the same order.
//   set_page_owner(page, owner) / page_owner(page)
//                          - an opaque word per page (page-aligned pointer). page_owner() returns
//                            nullptr for pages never tagged, and for pointers it does not manage.
#include <ktl/ErrorOr.h>

class PageProvider {
public:
    virtual ErrorOr<void*> allocate_pages(unsigned order) = 0;
    virtual void free_pages(void* pages, unsigned order) = 0;
    virtual void set_page_owner(void* page, void* owner) = 0;
    virtual void* page_owner(void* page) = 0;

protected:
    // NOTE: never deleted through this interface, so no virtual destructor and no operator delete
    // dependency in the kernel.
    ~PageProvider() = default;
};
