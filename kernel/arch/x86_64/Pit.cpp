#include <arch/x86_64/Cpu.h>
#include <arch/x86_64/Pit.h>

namespace pit {

namespace {
constexpr u64 FREQUENCY_HZ = 1193182;
u16 g_last = 0;
u64 g_ticks = 0;

u16 read_channel2()
{
    x86::outb(0x43, 0x80); // latch channel 2
    u8 lo = x86::inb(0x42);
    u8 hi = x86::inb(0x42);
    return (u16)(lo | (hi << 8));
}
}

void start_reference()
{
    // Gate on, speaker off; mode 2 (rate generator) with the full 65536 reload.
    x86::outb(0x61, (x86::inb(0x61) & ~0x02) | 0x01);
    x86::outb(0x43, 0xB4);
    x86::outb(0x42, 0x00);
    x86::outb(0x42, 0x00);
    g_last = read_channel2();
    g_ticks = 0;
}

u64 now_ns()
{
    u16 now = read_channel2();
    g_ticks += (u16)(g_last - now); // counts down, wraps at 65536
    g_last = now;
    return g_ticks * 1000000000ull / FREQUENCY_HZ;
}

} // namespace pit
