#include <arch/x86_64/Cpu.h>
#include <arch/x86_64/Pic.h>

namespace pic {

void remap_and_mask()
{
    using namespace x86;
    // ICW1-4: remap to 0x20/0x28 so a stray IRQ cannot look like an exception, then mask all.
    outb(0x20, 0x11); io_wait();
    outb(0xA0, 0x11); io_wait();
    outb(0x21, 0x20); io_wait();
    outb(0xA1, 0x28); io_wait();
    outb(0x21, 0x04); io_wait();
    outb(0xA1, 0x02); io_wait();
    outb(0x21, 0x01); io_wait();
    outb(0xA1, 0x01); io_wait();
    outb(0x21, 0xFF);
    outb(0xA1, 0xFF);
}

} // namespace pic
