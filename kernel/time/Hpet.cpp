#include <lib/acpi/Acpi.h>
#include <log/Log.h>
#include <mm/MemoryManager.h>
#include <time/Hpet.h>

namespace hpet {

namespace {
volatile u64* g_mmio = nullptr;
u64 g_period_fs = 0;
bool g_64bit = false;
u64 g_last = 0;
u64 g_high = 0;

constexpr u32 CAPABILITIES = 0x0 / 8;
constexpr u32 CONFIGURATION = 0x10 / 8;
constexpr u32 MAIN_COUNTER = 0xF0 / 8;

u64 counter()
{
    if (g_64bit)
        return g_mmio[MAIN_COUNTER];
    // A 32-bit counter wraps every ~5 minutes at 14.3 MHz; extend it in software.
    u64 now = (u32)g_mmio[MAIN_COUNTER];
    if (now < g_last)
        g_high += 1ull << 32;
    g_last = now;
    return g_high | now;
}
}

ErrorOr<void> init(const HpetInfo& info)
{
    if (info.address_space_id != 0 || info.base_address.is_null())
        return ENODEV;
    g_mmio = (volatile u64*)TRY(mm::map_mmio(info.base_address, PAGE_SIZE));
    u64 caps = g_mmio[CAPABILITIES];
    g_period_fs = caps >> 32;
    g_64bit = caps & (1 << 13);
    // The spec bounds the period to (0, 100 ns]; anything else is a broken table or device.
    if (g_period_fs == 0 || g_period_fs > 100000000) {
        g_mmio = nullptr;
        return EIO;
    }
    g_mmio[CONFIGURATION] = g_mmio[CONFIGURATION] | 1; // ENABLE_CNF
    log_info("hpet: %s counter at 0x%llx, period %llu fs (%llu Hz)", g_64bit ? "64-bit" : "32-bit",
        info.base_address.ull(), (unsigned long long)g_period_fs,
        (unsigned long long)(1000000000000000ull / g_period_fs));
    return {};
}

bool is_available() { return g_mmio != nullptr; }
u64 period_fs() { return g_period_fs; }

u64 now_ns()
{
    u64 ticks = counter();
    // ticks * period_fs / 1e6, split so it cannot overflow for a long uptime.
    return (ticks / 1000000) * g_period_fs + (ticks % 1000000) * g_period_fs / 1000000;
}

} // namespace hpet
