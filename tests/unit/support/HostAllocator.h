#pragma once
// A malloc-backed Allocator for host tests, with bookkeeping and failure injection.
//
//   HostAllocator allocator;
//   allocator.fail_nth_allocation(3);   // the 3rd allocation from now returns ENOMEM (once)
//   allocator.fail_all_from(3);         // ... or the 3rd and every later one
//   EXPECT_EQ(allocator.live_allocations(), 0u);
//
// Every block is tracked by address, so freeing an unknown pointer, freeing twice or passing the
// wrong size back to deallocate() aborts the test.
#include <ktl/Allocator.h>

#include <map>

class HostAllocator final : public Allocator {
public:
    HostAllocator() = default;
    HostAllocator(const HostAllocator&) = delete;
    HostAllocator& operator=(const HostAllocator&) = delete;
    ~HostAllocator();

    ErrorOr<void*> allocate(usize size, usize alignment = 16) override;
    void deallocate(void* pointer, usize size) override;

    // Fail only the nth allocation from now (1-based); 0 disarms.
    void fail_nth_allocation(usize n);
    // Fail the nth allocation from now and every one after it; 0 disarms.
    void fail_all_from(usize n);

    usize allocation_count() const { return m_allocations; } // successful calls to allocate()
    usize failure_count() const { return m_failures; }
    usize live_allocations() const { return m_live.size(); }
    usize live_bytes() const { return m_live_bytes; }

private:
    std::map<void*, usize> m_live;
    usize m_live_bytes { 0 };
    usize m_allocations { 0 };
    usize m_failures { 0 };
    usize m_countdown { 0 };
    bool m_fail_persistently { false };
    bool m_tripped { false };
};
