#include <arch/Cpu.h>
#include <arch/Timer.h>
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
u64 g_boot_tsc = 0;
u64 (*g_reference_now)() = nullptr;
}

void record_boot_tsc(u64 tsc) { g_boot_tsc = tsc; }

u64 tsc_to_ns(u64 delta) { return (u64)(((unsigned __int128)delta * g_mult) >> 32); }

void init()
{
    if (hpet::is_available()) {
        g_reference_now = hpet::now_ns;
        g_reference = "hpet";
    } else {
        g_reference_now = arch::start_fallback_reference(&g_reference);
    }
    // Calibrate over 20 ms of the reference; the best of three runs filters out preemption by the host.
    u64 best = 0;
    for (int run = 0; run < 3; ++run) {
        u64 r0 = g_reference_now();
        u64 t0 = arch::read_cycle_counter();
        while (g_reference_now() - r0 < 20 * 1000 * 1000)
            arch::cpu_relax();
        u64 r1 = g_reference_now();
        u64 t1 = arch::read_cycle_counter();
        u64 hz = (t1 - t0) * 1000000000ull / (r1 - r0); // < 2^64 for a 20 ms window below 900 GHz
        if (hz > best)
            best = hz;
    }
    g_tsc_hz = best ? best : 1000000000;
    g_mult = (1000000000ull << 32) / g_tsc_hz;
    g_tsc_base = g_boot_tsc;
    bool invariant = arch::cycle_counter_is_invariant();
    log_info("clock: TSC %llu.%03llu MHz (calibrated against %s, %s)", (unsigned long long)(g_tsc_hz / 1000000),
        (unsigned long long)(g_tsc_hz / 1000 % 1000), g_reference, invariant ? "invariant" : "not invariant");
}

u64 monotonic_ns() { return g_mult ? tsc_to_ns(arch::read_cycle_counter() - g_tsc_base) : 0; }
u64 tsc_hz() { return g_tsc_hz; }
const char* reference_name() { return g_reference; }
u64 since_boot_entry_ns() { return monotonic_ns(); }

void busy_wait_ns(u64 ns)
{
    u64 end = monotonic_ns() + ns;
    while (monotonic_ns() < end)
        arch::cpu_relax();
}

} // namespace clock
