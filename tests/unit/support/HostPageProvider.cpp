#include "HostPageProvider.h"
#include <cstdlib>

#if defined(__has_feature)
#    if __has_feature(address_sanitizer)
#        define HOST_ASAN 1
#    endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#    define HOST_ASAN 1
#endif
#ifdef HOST_ASAN
#    include <sanitizer/asan_interface.h>
#    define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#    define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#    define POISON(p, n) ((void)(p), (void)(n))
#    define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace {
// Aligning the arena to the largest buddy block lets every order be carved from it.
constexpr usize arena_align = PAGE_SIZE << BuddyAllocator::MAX_ORDER;

// NOTE: the host has no physical addresses, so the buddy allocator manages the arena's own host
// addresses as if they were physical, an identity "direct map". These two are the only places
// that cross between the kinds, as mm::phys_to_virt and mm::virt_to_phys do in the kernel.
PhysAddr phys_of(const void* pointer) { return PhysAddr(reinterpret_cast<uptr>(pointer)); }
void* pointer_to(PhysAddr phys) { return reinterpret_cast<void*>(static_cast<uptr>(phys.value())); }
}

HostPageProvider::HostPageProvider(usize arena_bytes)
    : m_arena_bytes(align_up(arena_bytes, arena_align))
{
    m_arena = static_cast<u8*>(std::aligned_alloc(arena_align, m_arena_bytes));
    VERIFY(m_arena != nullptr);
    m_frames.resize(m_arena_bytes / PAGE_SIZE);
    auto base = phys_of(m_arena);
    m_buddy = std::make_unique<BuddyAllocator>(base, Span<PageFrame>(m_frames.data(), m_frames.size()));
    m_buddy->add_free_range(base, base + m_arena_bytes);
    POISON(m_arena, m_arena_bytes);
}

HostPageProvider::~HostPageProvider()
{
    UNPOISON(m_arena, m_arena_bytes);
    m_buddy.reset();
    std::free(m_arena);
}

ErrorOr<void*> HostPageProvider::allocate_pages(unsigned order)
{
    ++m_allocate_calls;
    if (m_fail_next > 0) {
        --m_fail_next;
        return ENOMEM;
    }
    PhysAddr block = TRY(m_buddy->allocate(order));
    m_pages_in_use += 1ull << order;
    UNPOISON(pointer_to(block), PAGE_SIZE << order);
    return pointer_to(block);
}

void HostPageProvider::free_pages(void* pages, unsigned order)
{
    ++m_free_calls;
    m_buddy->free(phys_of(pages), order);
    m_pages_in_use -= 1ull << order;
    POISON(pages, PAGE_SIZE << order);
}

void HostPageProvider::set_page_owner(void* page, void* owner)
{
    auto* frame = m_buddy->frame_for(phys_of(page));
    VERIFY(frame != nullptr);
    frame->owner = owner;
}

void* HostPageProvider::page_owner(void* page)
{
    auto* frame = m_buddy->frame_for(phys_of(page));
    return frame ? frame->owner : nullptr;
}

bool HostPageProvider::contains(const void* ptr) const
{
    auto* p = static_cast<const u8*>(ptr);
    return p >= m_arena && p < m_arena + m_arena_bytes;
}
