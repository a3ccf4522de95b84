#include <Panic.h>
#include <arch/x86_64/Cpu.h>
#include <arch/x86_64/Interrupts.h>
#include <arch/x86_64/Lapic.h>
#include <log/Log.h>
#include <sync/Spinlock.h>
#include <time/Clock.h>
#include <time/Timers.h>

namespace timers {

namespace {
constexpr u8 TIMER_VECTOR = 0x20;
Spinlock g_lock { LockRank::Timer };
TimerQueue g_queue GUARDED_BY(g_lock);
volatile u64 g_ticks = 0;
bool g_running = false;

void on_tick(TrapFrame&, void*)
{
    g_ticks = g_ticks + 1;
    SpinlockLocker locker(g_lock);
    g_queue.run_expired(clock::monotonic_ns());
}
}

void init()
{
    MUST(interrupts::register_handler(TIMER_VECTOR, on_tick, nullptr));
    lapic::timer_calibrate(clock::monotonic_ns);
    lapic::timer_start_periodic(TIMER_VECTOR, 1000000 / TICK_HZ);
    g_running = true;
    log_info("timer: LAPIC timer %llu ticks/ms, periodic at %u Hz on vector 0x%x", (unsigned long long)lapic::timer_ticks_per_ms(),
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
    SpinlockLocker locker(g_lock);
    return g_queue.cancel(timer);
}

u64 ticks() { return g_ticks; }

usize cancel_matching(bool (*predicate)(const Timer&, void*), void* context)
{
    SpinlockLocker locker(g_lock);
    return g_queue.cancel_if([&](const Timer& timer) { return predicate(timer, context); });
}

void sleep_ns(u64 ns)
{
    u64 end = clock::monotonic_ns() + ns;
    while (clock::monotonic_ns() < end) {
        if (x86::interrupts_enabled())
            x86::hlt();
        else
            x86::pause();
    }
}

} // namespace timers
