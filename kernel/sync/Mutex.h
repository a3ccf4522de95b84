#pragma once
// A sleeping lock for long critical sections that may wait with interrupts enabled (module
// loading runs module_init, which may sleep on timers). Until the scheduler exists, waiting is
// halting until the next interrupt; then it becomes a wait queue. Never taken in interrupt context.
#include <arch/Cpu.h>
#include <ktl/ThreadAnnotations.h>
#include <ktl/Types.h>

class CAPABILITY("mutex") Mutex {
public:
    constexpr Mutex() = default;
    Mutex(const Mutex&) = delete;

    void lock() ACQUIRE()
    {
        while (__atomic_exchange_n(&m_locked, 1, __ATOMIC_ACQUIRE)) {
            if (arch::interrupts_enabled())
                arch::wait_for_interrupt();
            else
                arch::cpu_relax();
        }
    }
    void unlock() RELEASE() { __atomic_store_n(&m_locked, 0, __ATOMIC_RELEASE); }
    bool is_locked() const { return __atomic_load_n(&m_locked, __ATOMIC_RELAXED); }

private:
    u32 m_locked { 0 };
};

class SCOPED_CAPABILITY MutexLocker {
public:
    explicit MutexLocker(Mutex& mutex) ACQUIRE(mutex) : m_mutex(mutex) { m_mutex.lock(); }
    ~MutexLocker() RELEASE() { m_mutex.unlock(); }
    MutexLocker(const MutexLocker&) = delete;

private:
    Mutex& m_mutex;
};
