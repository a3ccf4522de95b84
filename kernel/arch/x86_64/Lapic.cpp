#include <arch/x86_64/Cpu.h>
#include <arch/x86_64/Lapic.h>
#include <log/Log.h>
#include <mm/MemoryManager.h>

namespace lapic {

namespace {
enum Register : u32 {
    ID = 0x20,
    EOI = 0xB0,
    SPURIOUS = 0xF0,
    ICR_LOW = 0x300,
    ICR_HIGH = 0x310,
    LVT_TIMER = 0x320,
    TIMER_INITIAL = 0x380,
    TIMER_CURRENT = 0x390,
    TIMER_DIVIDE = 0x3E0,
};
constexpr u32 LVT_MASKED = 1 << 16;
constexpr u32 TIMER_PERIODIC = 1 << 17;

volatile u32* g_mmio = nullptr;
u64 g_ticks_per_ms = 0;

u32 read(u32 reg) { return g_mmio[reg / 4]; }
void write(u32 reg, u32 value) { g_mmio[reg / 4] = value; }
}

void init(PhysAddr mmio_base)
{
    g_mmio = (volatile u32*)MUST(mm::map_mmio(mmio_base, PAGE_SIZE));
    // Hardware-enable the APIC in the base MSR, then software-enable with the spurious vector.
    u64 base = x86::rdmsr(x86::MSR_APIC_BASE);
    x86::wrmsr(x86::MSR_APIC_BASE, base | (1 << 11));
    write(SPURIOUS, 0x100 | 0xFF);
    write(LVT_TIMER, LVT_MASKED);
    write(EOI, 0);
}

bool is_initialized() { return g_mmio != nullptr; }
u32 id() { return g_mmio ? read(ID) >> 24 : 0; }

void eoi()
{
    if (g_mmio)
        write(EOI, 0);
}

static void send_self(u32 command)
{
    write(ICR_HIGH, id() << 24);
    write(ICR_LOW, command);
    for (int i = 0; i < 1000000 && (read(ICR_LOW) & (1 << 12)); ++i)
        x86::pause();
}

void send_self_nmi() { send_self(4 << 8); /* delivery mode NMI */ }
void send_self_ipi(u8 vector) { send_self(vector); }

void timer_calibrate(u64 (*reference_now_ns)())
{
    // The tick only paces timer checks (deadlines are read from the calibrated clock), so 0.5%
    // is plenty. Each end of the 2 ms window is bracketed by two reference readings and taken at
    // their midpoint, so the error is the bracket width (a few us under TCG) over the window.
    constexpr u64 WINDOW_NS = 2 * 1000 * 1000;
    write(TIMER_DIVIDE, 0x3); // divide by 16
    write(LVT_TIMER, LVT_MASKED);
    u64 before = reference_now_ns();
    write(TIMER_INITIAL, 0xFFFFFFFF);
    u64 start = (before + reference_now_ns()) / 2;
    while (reference_now_ns() - start < WINDOW_NS)
        x86::pause();
    before = reference_now_ns();
    u32 elapsed_ticks = 0xFFFFFFFF - read(TIMER_CURRENT);
    u64 end = (before + reference_now_ns()) / 2;
    write(TIMER_INITIAL, 0);
    u64 elapsed_ns = end > start ? end - start : 1;
    g_ticks_per_ms = (u64)elapsed_ticks * 1000000 / elapsed_ns;
    if (!g_ticks_per_ms)
        g_ticks_per_ms = 1;
}

u64 timer_ticks_per_ms() { return g_ticks_per_ms; }

void timer_start_periodic(u8 vector, u32 period_us)
{
    u64 initial = g_ticks_per_ms * period_us / 1000;
    write(TIMER_DIVIDE, 0x3);
    write(LVT_TIMER, vector | TIMER_PERIODIC);
    write(TIMER_INITIAL, (u32)(initial ? initial : 1));
}

void timer_stop()
{
    write(LVT_TIMER, LVT_MASKED);
    write(TIMER_INITIAL, 0);
}

} // namespace lapic
