#pragma once
// Arch interface: the per-CPU tick timer (the LAPIC timer on x86-64) and a fallback calibration
// reference for platforms without an HPET (the PIT on x86-64).
#include <arch/Arch.h>
#include <ktl/Types.h>

namespace arch {

using NanosecondClock = u64 (*)();

// Starts the tick timer, calibrated against `reference`, raising `vector` every period_us.
void start_tick_timer(u8 vector, u32 period_us, NanosecondClock reference);
u64 tick_timer_counts_per_ms();
// The interrupt vector the tick uses.
constexpr u8 TICK_VECTOR = 0x20;

// A monotonic nanosecond clock good enough to calibrate against, and its name, or nullptr when
// the platform has none. Starting it may take a few microseconds.
NanosecondClock start_fallback_reference(const char** name);

} // namespace arch
