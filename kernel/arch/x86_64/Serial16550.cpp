#include <arch/x86_64/Cpu.h>
#include <console/Serial.h>

namespace serial {

namespace {
constexpr u16 COM1 = 0x3F8;
enum Register : u16 { Data = 0, InterruptEnable = 1, FifoControl = 2, LineControl = 3, ModemControl = 4, LineStatus = 5, Scratch = 7 };
constexpr u8 LSR_DATA_READY = 0x01;
constexpr u8 LSR_THR_EMPTY = 0x20;
bool g_present = false;
}

void init()
{
    // The scratch register round-trip tells us a UART is really there.
    x86::outb(COM1 + Scratch, 0x5A);
    if (x86::inb(COM1 + Scratch) != 0x5A)
        return;
    x86::outb(COM1 + InterruptEnable, 0x00);
    x86::outb(COM1 + LineControl, 0x80); // DLAB on
    x86::outb(COM1 + Data, 0x01); // 115200 baud
    x86::outb(COM1 + InterruptEnable, 0x00);
    x86::outb(COM1 + LineControl, 0x03); // 8N1
    x86::outb(COM1 + FifoControl, 0xC7);
    x86::outb(COM1 + ModemControl, 0x0B);
    g_present = true;
}

bool is_present() { return g_present; }

void write_char(char c)
{
    if (!g_present)
        return;
    // Bounded wait: a wedged UART must not hang a panic path forever.
    for (int spins = 0; spins < 100000 && !(x86::inb(COM1 + LineStatus) & LSR_THR_EMPTY); ++spins)
        x86::pause();
    x86::outb(COM1 + Data, (u8)c);
}

void write(const char* text, usize length)
{
    for (usize i = 0; i < length; ++i) {
        if (text[i] == '\n')
            write_char('\r');
        write_char(text[i]);
    }
}

int read_char()
{
    if (!g_present || !(x86::inb(COM1 + LineStatus) & LSR_DATA_READY))
        return -1;
    return x86::inb(COM1 + Data);
}

} // namespace serial
