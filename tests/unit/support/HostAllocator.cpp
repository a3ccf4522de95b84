#include "support/HostAllocator.h"

#include <cstdio>
#include <cstdlib>

HostAllocator::~HostAllocator()
{
    // Leaks are reported, not freed, so that ASan and the tests both see them.
    if (!m_live.empty())
        fprintf(stderr, "HostAllocator: %zu allocations (%zu bytes) still live at destruction\n", m_live.size(), m_live_bytes);
}

void HostAllocator::fail_nth_allocation(usize n)
{
    m_countdown = n;
    m_fail_persistently = false;
    m_tripped = false;
}

void HostAllocator::fail_all_from(usize n)
{
    m_countdown = n;
    m_fail_persistently = true;
    m_tripped = false;
}

ErrorOr<void*> HostAllocator::allocate(usize size, usize alignment)
{
    if (m_tripped && m_fail_persistently) {
        ++m_failures;
        return ENOMEM;
    }
    if (m_countdown) {
        if (--m_countdown == 0) {
            m_tripped = true;
            ++m_failures;
            return ENOMEM;
        }
    }
    if (alignment < alignof(void*)) alignment = alignof(void*);
    if (alignment & (alignment - 1)) abort();
    void* pointer = nullptr;
    // A zero-byte request still gets a distinct block, as kmalloc(0) would need to be freed.
    if (posix_memalign(&pointer, alignment, size ? size : 1) != 0) return ENOMEM;
    m_live[pointer] = size;
    m_live_bytes += size;
    ++m_allocations;
    return pointer;
}

void HostAllocator::deallocate(void* pointer, usize size)
{
    auto it = m_live.find(pointer);
    if (it == m_live.end()) {
        fprintf(stderr, "HostAllocator: deallocate(%p) of a block it does not own\n", pointer);
        abort();
    }
    if (it->second != size) {
        fprintf(stderr, "HostAllocator: deallocate(%p, %zu) of a %zu-byte block\n", pointer, size, it->second);
        abort();
    }
    m_live_bytes -= size;
    m_live.erase(it);
    free(pointer);
}
