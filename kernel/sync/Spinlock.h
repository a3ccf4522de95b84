#pragma once
// An interrupt-safe ticket-free spinlock with a lock rank, annotated for -Wthread-safety.
// Locking disables interrupts on this CPU (saving the previous state), so a lock taken in
// thread context can also be taken by an interrupt handler without deadlocking the CPU.
#include <arch/Cpu.h>
#include <ktl/ThreadAnnotations.h>
#include <ktl/Types.h>

// Ranks make an out-of-order acquisition a loud failure instead of a rare deadlock: a CPU may
// only take a lock whose rank is strictly greater than every lock it already holds.
enum class LockRank : u8 {
    None = 0,
    Timer = 5,
    MemoryManager = 10, // kernel page tables; allocates pages, so below PageAllocator
    Heap = 20,          // kmalloc; refills from the page allocator
    PageAllocator = 30,
    InterruptVectors = 40, // the handler table; a leaf, held only to claim or free a vector
    Log = 250, // Last: printk must work while holding anything.
};

class CAPABILITY("spinlock") Spinlock {
public:
    constexpr explicit Spinlock(LockRank rank = LockRank::None) : m_rank(rank) { }
    Spinlock(const Spinlock&) = delete;

    // Returns the interrupt flag state to hand back to unlock().
    u64 lock() ACQUIRE();
    void unlock(u64 saved_flags) RELEASE();
    bool is_locked() const { return __atomic_load_n(&m_locked, __ATOMIC_RELAXED); }
    LockRank rank() const { return m_rank; }

private:
    u32 m_locked { 0 };
    LockRank m_rank;
    u8 m_previous_max_rank { 0 };
};

class SCOPED_CAPABILITY SpinlockLocker {
public:
    explicit SpinlockLocker(Spinlock& lock) ACQUIRE(lock) : m_lock(lock) { m_flags = lock.lock(); }
    ~SpinlockLocker() RELEASE() { m_lock.unlock(m_flags); }
    SpinlockLocker(const SpinlockLocker&) = delete;

private:
    Spinlock& m_lock;
    u64 m_flags;
};
