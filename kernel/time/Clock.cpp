#include <arch/Cpu.h>
#include <arch/Timer.h>
#include <lib/time/TscCalibration.h>
#include <log/Log.h>
#include <time/Clock.h>
#include <time/Hpet.h>

namespace clock {

namespace {
u64 g_tsc_hz = 0;
u64 g_tsc_base = 0;
// ns = (tsc * g_mult) >> 32, computed in 128 bits.
u64 g_mult = 0;
const char* g_reference = "none";
u64 g_error_ppm = 0;
u64 g_boot_tsc = 0;
u64 (*g_reference_now)() = nullptr;
}

void record_boot_tsc(u64 tsc) { g_boot_tsc = tsc; }

u64 tsc_to_ns(u64 delta) { return (u64)(((unsigned __int128)delta * g_mult) >> 32); }

namespace {
// One reading of the reference, bracketed by cycle-counter reads (see lib/time/TscCalibration.h).
ClockSample take_sample()
{
    // The narrowest of 32 brackets (~0.1 ms under TCG): a host hiccup widens some, rarely all.
    ClockSample best { 0, 0, UINT64_MAX };
    for (int attempt = 0; attempt < 32; ++attempt) {
        u64 before = arch::read_cycle_counter();
        u64 reference = g_reference_now();
        u64 after = arch::read_cycle_counter();
        u64 half = (after - before) / 2;
        if (half < best.uncertainty)
            best = { reference, before + half, half };
    }
    return best;
}

// Calibration stops once its worst-case error is below this, or at the longest window. The old
// fixed 3 x 20 ms calibration scattered by about +-500 ppm from boot to boot under TCG (its
// best-of-three kept the largest, most host-delayed, estimate); a bound of 250 ppm is tighter.
constexpr u64 TARGET_PPM = 250;
constexpr u64 MIN_WINDOW_NS = 500 * 1000;
constexpr u64 MAX_WINDOW_NS = 20 * 1000 * 1000;

// Measures the counter against the reference over a window that grows until the error bound
// meets target_ppm. `resolution_ns` is the reference's tick (the HPET period, the PIT's ~838 ns).
CalibrationEstimate calibrate(u64 resolution_ns, u64 target_ppm)
{
    ClockSample start = take_sample();
    CalibrationEstimate result;
    u64 window = MIN_WINDOW_NS;
    for (;;) {
        while (g_reference_now() - start.reference_ns < window)
            arch::cpu_relax();
        result = estimate_frequency(start, take_sample(), resolution_ns);
        if (result.error_ppm <= target_ppm || result.window_ns >= MAX_WINDOW_NS)
            return result;
        window = window * 2 < MAX_WINDOW_NS ? window * 2 : MAX_WINDOW_NS;
    }
}
}

void init()
{
    u64 resolution_ns;
    if (hpet::is_available()) {
        g_reference_now = hpet::now_ns;
        g_reference = "hpet";
        resolution_ns = hpet::period_fs() / 1000000 + 1;
    } else {
        g_reference_now = arch::start_fallback_reference(&g_reference);
        resolution_ns = 1000; // the PIT's 1.193182 MHz
    }
    u64 start_ns = g_reference_now();
    // The CPU may state the frequency (CPUID 0x15/0x16): exact, but only trusted once a short
    // measurement agrees with it within that measurement's own error.
    u64 reported = arch::cycle_counter_reported_hz();
    CalibrationEstimate measured = calibrate(resolution_ns, reported ? 1000 : TARGET_PPM);
    const char* source = "measured";
    u64 hz = measured.hz;
    if (reported_frequency_agrees(reported, measured)) {
        hz = reported;
        source = "CPUID frequency confirmed";
    } else {
        if (reported)
            log_warn("clock: CPUID says %llu Hz but the %s measures %llu Hz; using the measurement", (unsigned long long)reported,
                g_reference, (unsigned long long)measured.hz);
        if (reported && measured.error_ppm > TARGET_PPM)
            measured = calibrate(resolution_ns, TARGET_PPM);
        hz = measured.hz;
    }
    u64 took_ns = g_reference_now() - start_ns;
    g_error_ppm = reported && hz == reported ? 0 : measured.error_ppm;
    g_tsc_hz = hz ? hz : 1000000000;
    g_mult = (1000000000ull << 32) / g_tsc_hz;
    g_tsc_base = g_boot_tsc;
    bool invariant = arch::cycle_counter_is_invariant();
    log_info("clock: TSC %llu.%03llu MHz (calibrated against %s in %llu.%02llu ms, %s, error below %llu ppm, %s)",
        (unsigned long long)(g_tsc_hz / 1000000), (unsigned long long)(g_tsc_hz / 1000 % 1000), g_reference,
        (unsigned long long)(took_ns / 1000000), (unsigned long long)(took_ns / 10000 % 100), source,
        (unsigned long long)measured.error_ppm, invariant ? "invariant" : "not invariant");
}

u64 monotonic_ns() { return g_mult ? tsc_to_ns(arch::read_cycle_counter() - g_tsc_base) : 0; }
u64 tsc_hz() { return g_tsc_hz; }
const char* reference_name() { return g_reference; }
u64 calibration_error_ppm() { return g_error_ppm; }
u64 since_boot_entry_ns() { return monotonic_ns(); }

void busy_wait_ns(u64 ns)
{
    u64 end = monotonic_ns() + ns;
    while (monotonic_ns() < end)
        arch::cpu_relax();
}

} // namespace clock
