// The module ABI's kernel side on the live kernel: MSI through homeos_pci_enable_msi (the message
// composed by arch code, delivered, switched off again), platform interrupts by resource
// (homeos_platform_irq, homeos_request_irq, homeos_free_irq), the interrupt slots the unload
// sweep walks, and register access through homeos_pci_io_* regions, with bad input refused.
//
// The q35 machine the harness boots always has an e1000e (QEMU's default NIC there), unbound:
// it has MSI, a memory BAR and an I/O BAR, so it is the oracle here. Without it the cases fail.
#include <arch/Cpu.h>
#include <arch/Interrupts.h>
#include <homeos/homeos.h>
#include <module/AbiCleanup.h>
#include <pci/Pci.h>
#include <test/KTest.h>
#include <time/Clock.h>

namespace {

homeos_pci_device* find_e1000e()
{
    for (auto& d : pci::devices())
        if (d.vendor == 0x8086 && (d.device == 0x10D3 || d.device == 0x100E) && d.msi_capability && !d.bound_driver)
            return &d;
    return nullptr;
}

volatile u32 g_interrupts = 0;
void count_interrupt(void* context)
{
    g_interrupts = g_interrupts + 1;
    if (context)
        *(volatile u32*)context = *(volatile u32*)context + 1;
}
void kernel_handler(TrapFrame&, void*) { }

bool wait_for_interrupts(u32 at_least)
{
    u64 deadline = clock::monotonic_ns() + 2000ull * 1000 * 1000;
    while (g_interrupts < at_least && clock::monotonic_ns() < deadline)
        arch::wait_for_interrupt();
    return g_interrupts >= at_least;
}

bool msi_enabled_in_device(const homeos_pci_device& device)
{
    return pci::read_config(device, device.msi_capability + 2, 2) & 1;
}

// e1000e registers (82574 datasheet 10.2): STATUS, and the interrupt cause set/mask registers.
constexpr u32 STATUS = 0x08, ICR = 0xC0, ICS = 0xC8, IMS = 0xD0, IMC = 0xD8;
constexpr u32 LSC = 1u << 2; // link status change: a cause software may raise

void test_msi_refused_without_capability(ktest::Test& t)
{
    homeos_pci_device fake {};
    KEXPECT_EQ(t, homeos_pci_enable_msi(&fake, count_interrupt, nullptr), -ENOTSUP);
    homeos_pci_disable_msi(&fake); // nothing to do, and no crash
    KEXPECT_EQ(t, abi_cleanup::msi_vector_for_tests(&fake), -1);
}

void test_msi_bad_arguments(ktest::Test& t)
{
    KEXPECT_EQ(t, homeos_pci_enable_msi(nullptr, count_interrupt, nullptr), -EINVAL);
    auto* device = find_e1000e();
    KASSERT_TRUE(t, device != nullptr);
    KEXPECT_EQ(t, homeos_pci_enable_msi(device, nullptr, nullptr), -EINVAL);
    KEXPECT_EQ(t, abi_cleanup::msi_vector_for_tests(device), -1);
    homeos_pci_disable_msi(nullptr);
}

// The whole path a driver uses: enable with a handler, the device interrupts, disable.
void test_msi_delivers_and_disable_switches_off(ktest::Test& t)
{
    auto* device = find_e1000e();
    KASSERT_TRUE(t, device != nullptr);
    homeos_pci_io_region regs;
    KASSERT_EQ(t, homeos_pci_io_map(device, 0, &regs), 0);
    homeos_pci_enable_device(device);
    u32 mine = 0;
    g_interrupts = 0;
    KASSERT_EQ(t, homeos_pci_enable_msi(device, count_interrupt, (void*)&mine), 0);
    KEXPECT_TRUE(t, msi_enabled_in_device(*device));
    KEXPECT_TRUE(t, abi_cleanup::msi_vector_for_tests(device) >= interrupts::FIRST_EXTERNAL_VECTOR);
    KEXPECT_EQ(t, homeos_pci_enable_msi(device, count_interrupt, nullptr), -EBUSY);
    (void)homeos_pci_io_read(&regs, ICR, 4);
    (void)homeos_pci_io_write(&regs, IMS, 4, LSC);
    (void)homeos_pci_io_write(&regs, ICS, 4, LSC);
    bool delivered = wait_for_interrupts(1);
    (void)homeos_pci_io_write(&regs, IMC, 4, 0xFFFFFFFF);
    (void)homeos_pci_io_read(&regs, ICR, 4);
    homeos_pci_disable_msi(device);
    KEXPECT_TRUE(t, delivered);
    KEXPECT_TRUE(t, mine >= 1); // the handler got its own context back
    KEXPECT_FALSE(t, msi_enabled_in_device(*device));
    KEXPECT_EQ(t, abi_cleanup::msi_vector_for_tests(device), -1);
    homeos_pci_disable_msi(device); // a second disable does nothing
}

// Regression: freeing an interrupt left its slot behind, so the unload sweep of the module that
// once owned it matched the stale handler and unregistered whoever held the vector next.
void test_freed_interrupt_leaves_nothing_for_the_sweep(ktest::Test& t)
{
    auto* device = find_e1000e();
    KASSERT_TRUE(t, device != nullptr);
    KASSERT_EQ(t, homeos_pci_enable_msi(device, count_interrupt, nullptr), 0);
    int vector = abi_cleanup::msi_vector_for_tests(device);
    homeos_pci_disable_msi(device);
    KASSERT_TRUE(t, vector >= interrupts::FIRST_EXTERNAL_VECTOR);
    // The vector goes to the kernel; then "the module whose code holds count_interrupt" unloads.
    KASSERT_TRUE(t, !interrupts::register_handler((u8)vector, kernel_handler, nullptr).is_error());
    u64 handler = (u64)&count_interrupt;
    usize swept = abi_cleanup::free_vectors_in(handler, handler + 1);
    KEXPECT_EQ(t, swept, (usize)0);
    // The kernel's handler is still registered: registering again is refused as busy.
    auto again = interrupts::register_handler((u8)vector, kernel_handler, nullptr);
    KEXPECT_TRUE(t, again.is_error() && again.error().code() == EBUSY);
    interrupts::unregister_handler((u8)vector);
}

// The same for a platform line: homeos_free_irq, the successor of ABI 1's homeos_free_vector.
void test_freed_platform_irq_leaves_nothing_for_the_sweep(ktest::Test& t)
{
    homeos_irq_resource com1;
    KASSERT_EQ(t, homeos_platform_irq("PNP0501", 0, &com1), 0);
    int irq = homeos_request_irq(&com1, count_interrupt, nullptr);
    KASSERT_TRUE(t, irq >= interrupts::FIRST_EXTERNAL_VECTOR);
    homeos_free_irq(irq);
    KASSERT_TRUE(t, !interrupts::register_handler((u8)irq, kernel_handler, nullptr).is_error());
    u64 handler = (u64)&count_interrupt;
    KEXPECT_EQ(t, abi_cleanup::free_vectors_in(handler, handler + 1), (usize)0);
    auto again = interrupts::register_handler((u8)irq, kernel_handler, nullptr);
    KEXPECT_TRUE(t, again.is_error() && again.error().code() == EBUSY);
    interrupts::unregister_handler((u8)irq);
    homeos_free_irq(irq); // no longer ours: ignored
}

void test_platform_irq_bad_input(ktest::Test& t)
{
    homeos_irq_resource resource;
    KEXPECT_EQ(t, homeos_platform_irq("NOPE0000", 0, &resource), -ENODEV);
    KEXPECT_EQ(t, homeos_platform_irq("PNP0501", 99, &resource), -ENODEV);
    KEXPECT_EQ(t, homeos_platform_irq(nullptr, 0, &resource), -EINVAL);
    KEXPECT_EQ(t, homeos_platform_irq("PNP0501", 0, nullptr), -EINVAL);
    KASSERT_EQ(t, homeos_platform_irq("PNP0501", 0, &resource), 0);
    KEXPECT_EQ(t, homeos_request_irq(&resource, nullptr, nullptr), -EINVAL);
    KEXPECT_EQ(t, homeos_request_irq(nullptr, count_interrupt, nullptr), -EINVAL);
    homeos_irq_resource forged = resource;
    forged.line = 200; // a line the kernel never handed out
    KEXPECT_EQ(t, homeos_request_irq(&forged, count_interrupt, nullptr), -EINVAL);
    homeos_free_irq(-1);
    homeos_free_irq(5);
    homeos_free_irq(1000);
}

// The sweep itself: a module that unloads with MSI on gets it switched off and its vector freed.
void test_sweep_switches_off_a_leaked_msi(ktest::Test& t)
{
    auto* device = find_e1000e();
    KASSERT_TRUE(t, device != nullptr);
    KASSERT_EQ(t, homeos_pci_enable_msi(device, count_interrupt, nullptr), 0);
    u64 handler = (u64)&count_interrupt;
    KEXPECT_EQ(t, abi_cleanup::free_vectors_in(handler, handler + 1), (usize)1);
    KEXPECT_FALSE(t, msi_enabled_in_device(*device));
    KEXPECT_EQ(t, abi_cleanup::msi_vector_for_tests(device), -1);
}

// Register access without port numbers: the same STATUS register read through the memory BAR
// and, indirectly (IOADDR/IODATA), through the I/O BAR.
void test_io_regions_reach_both_bar_kinds(ktest::Test& t)
{
    auto* device = find_e1000e();
    KASSERT_TRUE(t, device != nullptr);
    homeos_pci_enable_device(device);
    homeos_pci_io_region mem, io;
    KASSERT_EQ(t, homeos_pci_io_map(device, 0, &mem), 0);
    unsigned io_bar = 6;
    for (unsigned i = 0; i < 6 && io_bar == 6; ++i)
        if (device->bars[i].is_io && device->bars[i].size)
            io_bar = i;
    KASSERT_TRUE(t, io_bar < 6);
    KASSERT_EQ(t, homeos_pci_io_map(device, io_bar, &io), 0);
    KEXPECT_EQ(t, io.size, device->bars[io_bar].size);
    u32 direct = homeos_pci_io_read(&mem, STATUS, 4);
    KEXPECT_EQ(t, homeos_pci_io_write(&io, 0, 4, STATUS), 0); // IOADDR
    u32 indirect = homeos_pci_io_read(&io, 4, 4);             // IODATA
    KEXPECT_EQ(t, direct, indirect);
    KEXPECT_NE(t, direct, 0xFFFFFFFFu);
}

void test_io_regions_refuse_bad_access(ktest::Test& t)
{
    auto* device = find_e1000e();
    KASSERT_TRUE(t, device != nullptr);
    homeos_pci_io_region region;
    KEXPECT_EQ(t, homeos_pci_io_map(device, 6, &region), -EINVAL);
    KEXPECT_EQ(t, homeos_pci_io_map(nullptr, 0, &region), -EINVAL);
    KEXPECT_EQ(t, homeos_pci_io_map(device, 0, nullptr), -EINVAL);
    homeos_pci_device fake {};
    KEXPECT_EQ(t, homeos_pci_io_map(&fake, 0, &region), -EINVAL); // a BAR without size
    KASSERT_EQ(t, homeos_pci_io_map(device, 0, &region), 0);
    u32 size = (u32)region.size;
    KEXPECT_EQ(t, homeos_pci_io_read(&region, size, 4), 0xFFFFFFFFu);     // past the end
    KEXPECT_EQ(t, homeos_pci_io_read(&region, size - 2, 4), 0xFFFFFFFFu); // straddles the end
    KEXPECT_EQ(t, homeos_pci_io_read(&region, 0, 3), 0xFFFFFFFFu);        // no such width
    KEXPECT_EQ(t, homeos_pci_io_read(&region, 2, 4), 0xFFFFFFFFu);        // misaligned
    KEXPECT_EQ(t, homeos_pci_io_read(&region, size, 1), 0xFFu);
    KEXPECT_EQ(t, homeos_pci_io_write(&region, size, 4, 0), -EINVAL);
    KEXPECT_EQ(t, homeos_pci_io_write(&region, 0, 8, 0), -EINVAL);
    KEXPECT_EQ(t, homeos_pci_io_write(nullptr, 0, 4, 0), -EINVAL);
    homeos_pci_io_region forged = region;
    forged.kind = 77;
    KEXPECT_EQ(t, homeos_pci_io_read(&forged, 0, 4), 0xFFFFFFFFu);
}

} // namespace

KTEST_SUITE(module_abi,
    KTEST_CASE(test_msi_refused_without_capability),
    KTEST_CASE(test_msi_bad_arguments),
    KTEST_CASE(test_msi_delivers_and_disable_switches_off),
    KTEST_CASE(test_freed_interrupt_leaves_nothing_for_the_sweep),
    KTEST_CASE(test_freed_platform_irq_leaves_nothing_for_the_sweep),
    KTEST_CASE(test_platform_irq_bad_input),
    KTEST_CASE(test_sweep_switches_off_a_leaked_msi),
    KTEST_CASE(test_io_regions_reach_both_bar_kinds),
    KTEST_CASE(test_io_regions_refuse_bad_access));
