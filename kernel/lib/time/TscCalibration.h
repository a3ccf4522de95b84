#pragma once
// Cycle-counter calibration arithmetic, independent of any hardware: the kernel takes the
// samples (time/Clock.cpp), this turns them into a frequency and an honest error bound.
//
// Interface:
//   ClockSample start = ..., end = ...;       // reference time, bracketed cycle count
//   auto estimate = estimate_frequency(start, end, /* reference tick */ 10);
//   estimate.hz, estimate.error_ppm           // the truth lies within hz +- error_ppm
//   reported_frequency_agrees(cpuid_hz, estimate)
//
// A sample pairs one reading of the reference clock with the cycle counter read just before
// and just after it: the reference instant lies within that bracket, so its midpoint is off by
// at most half the bracket (`uncertainty`). The bound adds both samples' uncertainty and one
// reference tick at each end, relative to the window.
#include <ktl/Types.h>

struct ClockSample {
    u64 reference_ns;
    u64 cycles;      // the midpoint of the bracket
    u64 uncertainty; // half the bracket, in cycles
};

struct CalibrationEstimate {
    u64 hz { 0 };
    u64 error_ppm { UINT64_MAX }; // UINT64_MAX: no usable window
    u64 window_ns { 0 };
};

CalibrationEstimate estimate_frequency(const ClockSample& start, const ClockSample& end, u64 reference_resolution_ns);
// Whether a frequency the CPU states (CPUID 0x15/0x16) agrees with a measurement within the
// measurement's error bound plus margin_ppm.
bool reported_frequency_agrees(u64 reported_hz, const CalibrationEstimate& measured, u64 margin_ppm = 100);
