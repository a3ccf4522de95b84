#pragma once
// HostPageProvider: the slab allocator's PageProvider for host tests and benchmarks. It runs the real
// BuddyAllocator over an aligned malloc'd arena, treating the arena's virtual addresses as
// "physical", and keeps page owners in PageFrame::owner exactly as the kernel does.
//
// Under AddressSanitizer, pages not currently allocated are poisoned, so a slab bug that touches a
// returned page fails loudly.
#include <lib/mm/BuddyAllocator.h>
#include <lib/mm/PageProvider.h>
#include <memory>
#include <vector>

class HostPageProvider final : public PageProvider {
public:
    explicit HostPageProvider(usize arena_bytes = 64 * MiB);
    ~HostPageProvider();
    HostPageProvider(const HostPageProvider&) = delete;
    HostPageProvider& operator=(const HostPageProvider&) = delete;

    ErrorOr<void*> allocate_pages(unsigned order) override;
    void free_pages(void* pages, unsigned order) override;
    void set_page_owner(void* page, void* owner) override;
    void* page_owner(void* page) override;

    // Fault injection: the next `count` allocate_pages() calls fail with ENOMEM.
    void fail_next(usize count) { m_fail_next = count; }
    bool contains(const void* ptr) const;
    u64 pages_in_use() const { return m_pages_in_use; }
    u64 allocate_calls() const { return m_allocate_calls; }
    u64 free_calls() const { return m_free_calls; }
    BuddyAllocator& buddy() { return *m_buddy; }
    u8* arena() const { return m_arena; }
    usize arena_bytes() const { return m_arena_bytes; }

private:
    u8* m_arena { nullptr };
    usize m_arena_bytes { 0 };
    std::vector<PageFrame> m_frames;
    std::unique_ptr<BuddyAllocator> m_buddy;
    usize m_fail_next { 0 };
    u64 m_pages_in_use { 0 };
    u64 m_allocate_calls { 0 };
    u64 m_free_calls { 0 };
};
