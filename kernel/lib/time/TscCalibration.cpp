// Frequency and error bound from two bracketed samples; see TscCalibration.h.
#include <lib/time/TscCalibration.h>

namespace {
constexpr u64 PPM = 1000000;
constexpr u64 NS_PER_S = 1000000000;

// a * PPM / b without overflow for the values calibration sees (a is at most b in practice).
u64 ratio_ppm(u64 a, u64 b)
{
    if (!b)
        return UINT64_MAX;
    if (a <= UINT64_MAX / PPM)
        return a * PPM / b;
    return a / b >= UINT64_MAX / PPM ? UINT64_MAX : a / (b / PPM ? b / PPM : 1);
}
}

CalibrationEstimate estimate_frequency(const ClockSample& start, const ClockSample& end, u64 reference_resolution_ns)
{
    CalibrationEstimate result;
    result.window_ns = end.reference_ns > start.reference_ns ? end.reference_ns - start.reference_ns : 0;
    if (end.reference_ns <= start.reference_ns || end.cycles <= start.cycles)
        return result;
    u64 elapsed_ns = end.reference_ns - start.reference_ns;
    u64 cycles = end.cycles - start.cycles;
    // cycles * 1e9 fits in 64 bits up to 18e9 cycles (7 s at 2.6 GHz); beyond that, whole seconds
    // of window make the coarser division exact enough.
    if (cycles <= UINT64_MAX / NS_PER_S)
        result.hz = cycles * NS_PER_S / elapsed_ns;
    else
        result.hz = cycles / (elapsed_ns / 1000 ? elapsed_ns / 1000 : 1) * 1000000;
    // Relative errors (rounded up) of the measured cycle count, e_c, and window, e_t. The truth is
    // at least c(1 - e_c) cycles in at most t(1 + e_t), so the estimate is off by at most
    // (e_c + e_t) / (1 - e_c) of the truth (the other side is smaller): exact, not first order.
    u64 cycle_error = ratio_ppm(start.uncertainty + end.uncertainty, cycles) + 1;
    u64 reference_error = ratio_ppm(2 * reference_resolution_ns, elapsed_ns) + 1;
    if (cycle_error >= PPM || reference_error >= PPM)
        return result; // a window shorter than its own uncertainty says nothing
    result.error_ppm = ((cycle_error + reference_error) * PPM + (PPM - cycle_error - 1)) / (PPM - cycle_error);
    return result;
}

bool reported_frequency_agrees(u64 reported_hz, const CalibrationEstimate& measured, u64 margin_ppm)
{
    if (!reported_hz || !measured.hz || measured.error_ppm == UINT64_MAX)
        return false;
    u64 difference = reported_hz > measured.hz ? reported_hz - measured.hz : measured.hz - reported_hz;
    u64 allowed = measured.error_ppm > UINT64_MAX - margin_ppm ? UINT64_MAX : measured.error_ppm + margin_ppm;
    return ratio_ppm(difference, measured.hz) <= allowed;
}
