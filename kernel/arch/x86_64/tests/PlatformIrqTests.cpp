// A platform device's interrupt requested the arch-neutral way, end to end on a PC: the module
// ABI's homeos_platform_irq("PNP0501", 0) names COM1's line without an ISA number, and
// homeos_request_irq routes it; the 16550's transmitter-empty interrupt must reach the handler,
// and after homeos_free_irq the line is masked again.
#include <arch/x86_64/Cpu.h>
#include <arch/x86_64/IoApic.h>
#include <homeos/homeos.h>
#include <test/KTest.h>
#include <time/Clock.h>

namespace {

volatile u32 g_uart_interrupts = 0;
void count_uart(void* context)
{
    g_uart_interrupts = g_uart_interrupts + 1;
    // THRE is level-like: reading IIR acknowledges it, so the line goes quiet.
    (void)x86::inb((u16)(uintptr_t)context + 2);
}

void test_com1_interrupt_through_platform_resource(ktest::Test& t)
{
    KASSERT_TRUE(t, ioapic::is_initialized());
    homeos_irq_resource com1;
    KASSERT_EQ(t, homeos_platform_irq("PNP0501", 0, &com1), 0);
    constexpr u16 COM1 = 0x3F8;
    int irq = homeos_request_irq(&com1, count_uart, (void*)(uintptr_t)COM1);
    KASSERT_TRUE(t, irq >= 0);
    KEXPECT_EQ(t, homeos_request_irq(&com1, count_uart, nullptr), -EBUSY);
    g_uart_interrupts = 0;
    // OUT2 gates the UART's IRQ line on PCs; IER bit 1 = transmitter-holding-register-empty.
    u8 mcr = x86::inb(COM1 + 4);
    x86::outb(COM1 + 4, mcr | 0x08);
    x86::outb(COM1 + 1, 0x02);
    u64 deadline = clock::monotonic_ns() + 2000ull * 1000 * 1000;
    while (g_uart_interrupts == 0 && clock::monotonic_ns() < deadline)
        x86::hlt();
    x86::outb(COM1 + 1, 0x00);
    x86::outb(COM1 + 4, mcr);
    homeos_free_irq(irq);
    (void)x86::inb(COM1 + 2);
    KEXPECT_TRUE(t, g_uart_interrupts >= 1);
    // Freed: the same resource can be requested again, and is released again.
    int again = homeos_request_irq(&com1, count_uart, (void*)(uintptr_t)COM1);
    KEXPECT_TRUE(t, again >= 0);
    homeos_free_irq(again);
}

} // namespace

KTEST_SUITE(platform_irq, KTEST_CASE(test_com1_interrupt_through_platform_resource));
