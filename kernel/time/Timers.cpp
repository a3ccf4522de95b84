#include <Panic.h>
#include <arch/Cpu.h>
#include <arch/Interrupts.h>
#include <arch/PerCpu.h>
#include <arch/Timer.h>
#include <log/Log.h>
#include <sync/Spinlock.h>
#include <time/Clock.h>
#include <time/Timers.h>

namespace timers {

namespace {
constexpr u8 TIMER_VECTOR = arch::TICK_VECTOR;
Spinlock g_lock { LockRank::Timer };
TimerQueue g_queue GUARDED_BY(g_lock);
volatile u64 g_ticks = 0;
bool g_running = false;

// The timer lock as run_expired() wants it: dropped around each callback, so a callback may
// call add() and cancel() (they take g_lock, which it cannot take twice).
struct TimerLockDropper {
    u64 flags;
    void unlock() NO_THREAD_SAFETY_ANALYSIS { g_lock.unlock(flags); }
    void lock() NO_THREAD_SAFETY_ANALYSIS { flags = g_lock.lock(); }
};

u32 this_cpu()
{
    auto* cpu = PerCpu::current_or_null();
    return cpu ? cpu->id : 0;
}

// The CPU running callbacks now (valid while the queue reports a running timer).
u32 g_runner_cpu GUARDED_BY(g_lock) = 0;

void on_tick(TrapFrame&, void*)
{
    g_ticks = g_ticks + 1;
    TimerLockDropper dropper { g_lock.lock() };
    // NOTE: run_expired() unlocks and relocks through the dropper; the analysis cannot follow it.
    [&]() NO_THREAD_SAFETY_ANALYSIS {
        // The lock is dropped only while a callback runs, so no running timer means no run here.
        if (!g_queue.running_timer())
            g_runner_cpu = this_cpu();
        g_queue.run_expired(clock::monotonic_ns(), dropper);
    }();
    g_lock.unlock(dropper.flags);
}

// Whether a caller should wait for the running callback: not when the caller is that callback
// (or anything it calls) on this CPU, which would wait for itself.
bool must_wait_for_running_locked() REQUIRES(g_lock)
{
    return g_queue.running_timer() && g_runner_cpu != this_cpu();
}
}

void init()
{
    MUST(interrupts::register_handler(TIMER_VECTOR, on_tick, nullptr));
    arch::start_tick_timer(TIMER_VECTOR, 1000000 / TICK_HZ, clock::monotonic_ns);
    g_running = true;
    log_info("timer: LAPIC timer %llu ticks/ms, periodic at %u Hz on vector 0x%x", (unsigned long long)arch::tick_timer_counts_per_ms(),
        TICK_HZ, TIMER_VECTOR);
}

bool is_running() { return g_running; }

void add(Timer& timer, u64 delay_ns, u64 period_ns)
{
    SpinlockLocker locker(g_lock);
    g_queue.add(timer, clock::monotonic_ns(), delay_ns, period_ns);
}

bool cancel(Timer& timer)
{
    // Like Linux's del_timer_sync: when this returns the callback is neither pending nor running
    // (on another CPU), so the caller may free the timer. A callback may re-arm itself while we
    // wait, hence the loop.
    bool was_armed = false;
    for (;;) {
        {
            SpinlockLocker locker(g_lock);
            was_armed |= g_queue.cancel(timer);
            if (!g_queue.is_running(timer) || !must_wait_for_running_locked())
                return was_armed;
        }
        arch::cpu_relax();
    }
}

u64 ticks() { return g_ticks; }

usize cancel_matching(bool (*predicate)(const Timer&, void*), void* context)
{
    usize cancelled = 0;
    for (;;) {
        {
            SpinlockLocker locker(g_lock);
            cancelled += g_queue.cancel_if([&](const Timer& timer) { return predicate(timer, context); });
            // A module's callback still running on another CPU would run freed code: wait for it.
            const Timer* running = g_queue.running_timer();
            if (!running || !must_wait_for_running_locked() || !predicate(*running, context))
                return cancelled;
        }
        arch::cpu_relax();
    }
}

void sleep_ns(u64 ns)
{
    u64 end = clock::monotonic_ns() + ns;
    while (clock::monotonic_ns() < end) {
        if (arch::interrupts_enabled())
            arch::wait_for_interrupt();
        else
            arch::cpu_relax();
    }
}

} // namespace timers
