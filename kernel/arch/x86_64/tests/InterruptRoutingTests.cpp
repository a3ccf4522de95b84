// Real device interrupts end to end: an ISA IRQ routed through the IOAPIC (the 16550's transmit
// interrupt on IRQ 4), and an MSI from a PCI device (the q35 e1000e raising an interrupt cause
// on request), each delivered to a vector whose handler counts it.
#include <arch/x86_64/Cpu.h>
#include <arch/x86_64/Interrupts.h>
#include <arch/x86_64/IoApic.h>
#include <homeos/homeos.h>
#include <pci/Pci.h>
#include <test/KTest.h>
#include <time/Clock.h>

namespace {

volatile u32 g_count = 0;
void count_interrupt(TrapFrame&, void*) { g_count = g_count + 1; }
void count_msi(void*) { g_count = g_count + 1; }

bool wait_for_count(u32 at_least)
{
    u64 deadline = clock::monotonic_ns() + 2000ull * 1000 * 1000;
    while (g_count < at_least && clock::monotonic_ns() < deadline)
        x86::hlt();
    return g_count >= at_least;
}

void test_ioapic_routes_serial_irq(ktest::Test& t)
{
    if (!ioapic::is_initialized()) {
        t.skip("no IOAPIC");
        return;
    }
    auto vector = interrupts::allocate_vector();
    KASSERT_TRUE(t, !vector.is_error());
    KASSERT_TRUE(t, !interrupts::register_handler(vector.value(), count_interrupt, nullptr).is_error());
    g_count = 0;
    KASSERT_TRUE(t, !ioapic::route_isa_irq(4, vector.value()).is_error());
    // UART: OUT2 gates the IRQ line on PCs; IER bit 1 = transmitter-holding-register-empty.
    constexpr u16 COM1 = 0x3F8;
    u8 mcr = x86::inb(COM1 + 4);
    x86::outb(COM1 + 4, mcr | 0x08);
    x86::outb(COM1 + 1, 0x02);
    bool delivered = wait_for_count(1);
    x86::outb(COM1 + 1, 0x00);
    x86::outb(COM1 + 4, mcr);
    (void)ioapic::mask_isa_irq(4);
    (void)x86::inb(COM1 + 2); // reading IIR acknowledges the THRE interrupt
    interrupts::unregister_handler(vector.value());
    KEXPECT_TRUE(t, delivered);
}

void test_ioapic_rejects_bad_irq(ktest::Test& t)
{
    KEXPECT_TRUE(t, ioapic::route_isa_irq(200, 0x50).is_error());
}

homeos_pci_device* find_e1000e()
{
    for (auto& d : pci::devices())
        if (d.vendor == 0x8086 && (d.device == 0x10D3 || d.device == 0x100E) && d.msi_capability && !d.bound_driver)
            return &d;
    return nullptr;
}

void test_msi_delivery_from_e1000e(ktest::Test& t)
{
    auto* device = find_e1000e();
    if (!device) {
        t.skip("no e1000e with MSI on this machine");
        return;
    }
    auto* regs = (volatile u32*)homeos_pci_map_bar(device, 0);
    KASSERT_TRUE(t, regs != nullptr);
    g_count = 0;
    homeos_pci_enable_device(device);
    KASSERT_EQ(t, homeos_pci_enable_msi(device, count_msi, nullptr), 0);
    constexpr u32 ICR = 0xC0 / 4, ICS = 0xC8 / 4, IMS = 0xD0 / 4, IMC = 0xD8 / 4;
    constexpr u32 LSC = 1u << 2; // link status change: a cause software may set
    (void)regs[ICR];
    regs[IMS] = LSC;
    regs[ICS] = LSC;
    bool delivered = wait_for_count(1);
    regs[IMC] = 0xFFFFFFFF;
    (void)regs[ICR];
    homeos_pci_disable_msi(device); // MSI off again and the vector freed
    KEXPECT_TRUE(t, delivered);
}

void test_msi_refused_without_capability(ktest::Test& t)
{
    homeos_pci_device fake {};
    KEXPECT_EQ(t, homeos_pci_enable_msi(&fake, count_msi, nullptr), -ENOTSUP);
}

} // namespace

KTEST_SUITE(interrupt_routing,
    KTEST_CASE(test_ioapic_routes_serial_irq),
    KTEST_CASE(test_ioapic_rejects_bad_irq),
    KTEST_CASE(test_msi_delivery_from_e1000e),
    KTEST_CASE(test_msi_refused_without_capability));
