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
}

HostPageProvider::HostPageProvider(usize arena_bytes)
    : m_arena_bytes(align_up(arena_bytes, arena_align))
{
    m_arena = static_cast<u8*>(std::aligned_alloc(arena_align, m_arena_bytes));
    VERIFY(m_arena != nullptr);
    m_frames.resize(m_arena_bytes / PAGE_SIZE);
    auto base = reinterpret_cast<PhysAddr>(m_arena);
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
    UNPOISON(reinterpret_cast<void*>(block), PAGE_SIZE << order);
    return reinterpret_cast<void*>(block);
}

void HostPageProvider::free_pages(void* pages, unsigned order)
{
    ++m_free_calls;
    m_buddy->free(reinterpret_cast<PhysAddr>(pages), order);
    m_pages_in_use -= 1ull << order;
    POISON(pages, PAGE_SIZE << order);
}

void HostPageProvider::set_page_owner(void* page, void* owner)
{
    auto* frame = m_buddy->frame_for(reinterpret_cast<PhysAddr>(page));
    VERIFY(frame != nullptr);
    frame->owner = owner;
}

void* HostPageProvider::page_owner(void* page)
{
    auto* frame = m_buddy->frame_for(reinterpret_cast<PhysAddr>(page));
    return frame ? frame->owner : nullptr;
}

bool HostPageProvider::contains(const void* ptr) const
{
    auto* p = static_cast<const u8*>(ptr);
    return p >= m_arena && p < m_arena + m_arena_bytes;
}
