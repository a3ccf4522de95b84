#pragma once
// Kernel timers: one-shot and periodic callbacks driven by the LAPIC timer tick (1 kHz).
// Callbacks run in interrupt context with the timer lock dropped, so they may add() or cancel()
// any timer, themselves included (Linux's mod_timer from the handler). cancel() also waits for a
// callback running on another CPU, so after it the timer may be freed.
#include <lib/time/TimerQueue.h>

namespace timers {

constexpr u32 TICK_HZ = 1000;

void init();
bool is_running();
void add(Timer&, u64 delay_ns, u64 period_ns = 0);
bool cancel(Timer&);
u64 ticks();
// Cancels every armed timer the predicate selects (module teardown); returns how many.
usize cancel_matching(bool (*predicate)(const Timer&, void* context), void* context);
// Sleeps by halting until `ns` have passed (interrupts must be on).
void sleep_ns(u64 ns);

} // namespace timers
