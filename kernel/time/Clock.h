#pragma once
// The monotonic clock: TSC-based, calibrated at boot against the HPET (or the PIT), converted to
// nanoseconds with a fixed-point multiplier so reading it is one rdtsc and a multiply.
#include <ktl/Types.h>

namespace clock {

// The TSC value read by the first boot instruction: time zero for the log and the boot time.
void record_boot_tsc(u64 tsc);
void init();
u64 monotonic_ns();
u64 tsc_hz();
const char* reference_name();
// The calibration's worst-case error bound, in parts per million of tsc_hz().
u64 calibration_error_ppm();
// Nanoseconds since GRUB handed over, from the TSC read in the first boot instruction.
u64 since_boot_entry_ns();
u64 tsc_to_ns(u64 tsc_delta);
void busy_wait_ns(u64 ns);

} // namespace clock
