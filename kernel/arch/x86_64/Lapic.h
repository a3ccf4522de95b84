#pragma once
// Local APIC: per-CPU interrupt controller and timer. xAPIC MMIO mode, mapped uncached.
#include <ktl/ErrorOr.h>

namespace lapic {

void init(PhysAddr mmio_base);
bool is_initialized();
u32 id();
void eoi();
// Sends an NMI to this CPU (the NMI self-test uses it).
void send_self_nmi();
void send_self_ipi(u8 vector);

// Timer. Calibration counts LAPIC ticks (divide-by-16) over `reference_ns` of a reference clock.
void timer_calibrate(u64 (*reference_now_ns)());
u64 timer_ticks_per_ms();
void timer_start_periodic(u8 vector, u32 period_us);
void timer_stop();

} // namespace lapic
