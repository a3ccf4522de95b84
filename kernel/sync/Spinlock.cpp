#include <Panic.h>
#include <arch/Cpu.h>
#include <arch/PerCpu.h>
#include <sync/Spinlock.h>

u64 Spinlock::lock()
{
    u64 flags = arch::save_and_disable_interrupts();
    auto* cpu = PerCpu::current_or_null();
    if (cpu && m_rank != LockRank::None) {
        // Ranks only grow while locks are held; taking a lower or equal rank could deadlock.
        if ((u8)m_rank <= cpu->held_lock_rank && !panic_in_progress())
            panic("lock rank violation: taking rank %u while holding rank %u", (unsigned)m_rank, (unsigned)cpu->held_lock_rank);
    }
    while (__atomic_exchange_n(&m_locked, 1, __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(&m_locked, __ATOMIC_RELAXED))
            arch::cpu_relax();
    }
    if (cpu && m_rank != LockRank::None) {
        m_previous_max_rank = cpu->held_lock_rank;
        cpu->held_lock_rank = (u8)m_rank;
    }
    return flags;
}

void Spinlock::unlock(u64 saved_flags)
{
    auto* cpu = PerCpu::current_or_null();
    if (cpu && m_rank != LockRank::None)
        cpu->held_lock_rank = m_previous_max_rank;
    __atomic_store_n(&m_locked, 0, __ATOMIC_RELEASE);
    arch::restore_interrupts(saved_flags);
}
