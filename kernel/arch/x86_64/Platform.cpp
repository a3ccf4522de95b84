// x86-64 definitions of the arch interfaces in kernel/arch/Platform.h, Cpu.h, Timer.h, Mmu.h and
// PciConfig.h.
#include <arch/Cpu.h>
#include <arch/Mmu.h>
#include <arch/PciConfig.h>
#include <arch/Platform.h>
#include <arch/Timer.h>
#include <arch/x86_64/Cpu.h>
#include <arch/x86_64/CpuFeatures.h>
#include <arch/x86_64/Gdt.h>
#include <arch/x86_64/Idt.h>
#include <arch/x86_64/Interrupts.h>
#include <arch/x86_64/IoApic.h>
#include <arch/x86_64/KernelStacks.h>
#include <arch/x86_64/Lapic.h>
#include <arch/x86_64/PerCpu.h>
#include <arch/x86_64/Pic.h>
#include <arch/x86_64/Pit.h>
#include <lib/acpi/Acpi.h>
#include <log/Log.h>

namespace arch {

void early_init()
{
    PerCpu::init_boot_cpu();
    kernel_stacks::init();
    gdt::init();
    idt::init();
}

void init_cpu_features()
{
    cpu::detect();
    cpu::log_features();
    cpu::enable_protections();
}

void log_cpu_features() { cpu::log_features(); }

void init_interrupt_controllers(const MadtInfo& madt)
{
    pic::remap_and_mask();
    lapic::init(madt.lapic_address);
    if (auto result = ioapic::init(madt); result.is_error())
        log_warn("ioapic: not available (%s)", result.error().name());
}

[[noreturn]] void reboot()
{
    // The reset control register of the PCI host bridge: a full (cold) reset.
    x86::outb(0xCF9, 0x06);
    x86::halt_forever();
}

[[noreturn]] void debug_exit(u8 code)
{
    // isa-debug-exit at 0xf4: QEMU exits with status (code << 1) | 1. On real hardware the
    // write does nothing, so fall back to halting.
    x86::outb(0xF4, code);
    x86::halt_forever();
}

bool inject_fault(StringView what)
{
    if (what == "irq-nesting") {
        // A handler that re-raises its own vector: the nesting guard must stop the recursion.
        log_info("inject: re-entrant interrupt handler");
        MUST(interrupts::register_handler(0xF3, [](TrapFrame&, void*) { asm volatile("int $0xF3"); }, nullptr));
        asm volatile("int $0xF3");
        return true;
    }
    if (what == "triple-fault") {
        // For the harness's own test: with an empty IDT any exception escalates to a triple fault.
        log_info("inject: triple fault");
        struct [[gnu::packed]] {
            u16 limit;
            u64 base;
        } empty_idt { 0, 0 };
        asm volatile("lidt %0; int3" : : "m"(empty_idt));
        return true;
    }
    return false;
}

bool cycle_counter_is_invariant()
{
    return x86::cpuid(0x80000000).eax >= 0x80000007 && (x86::cpuid(0x80000007).edx & (1 << 8));
}

u64 cycle_counter_reported_hz()
{
    // CPUID 0x15: TSC/crystal ratio and (if non-zero) the crystal frequency. 0x16: the base
    // frequency in MHz, which on such CPUs is the TSC frequency.
    u32 max_leaf = x86::cpuid(0).eax;
    if (max_leaf >= 0x15) {
        auto leaf = x86::cpuid(0x15);
        if (leaf.eax && leaf.ebx && leaf.ecx)
            return (u64)leaf.ecx * leaf.ebx / leaf.eax;
    }
    if (max_leaf >= 0x16) {
        u32 mhz = x86::cpuid(0x16).eax & 0xFFFF;
        if (mhz)
            return (u64)mhz * 1000000;
    }
    return 0;
}

void start_tick_timer(u8 vector, u32 period_us, NanosecondClock reference)
{
    lapic::timer_calibrate(reference);
    lapic::timer_start_periodic(vector, period_us);
}

u64 tick_timer_counts_per_ms() { return lapic::timer_ticks_per_ms(); }

NanosecondClock start_fallback_reference(const char** name)
{
    pit::start_reference();
    *name = "pit";
    return pit::now_ns;
}

bool has_1g_pages() { return cpu::features().gbpages; }

void activate_kernel_page_table(u64 root_physical)
{
    x86::write_cr4(x86::read_cr4() | x86::CR4_PGE);
    x86::write_cr3(root_physical);
}

namespace {
u32 legacy_address(u8 bus, u8 slot, u8 function, u16 offset)
{
    return 0x80000000u | ((u32)bus << 16) | ((u32)slot << 11) | ((u32)function << 8) | (offset & 0xFC);
}
}

bool has_legacy_pci_config() { return true; }

u32 legacy_pci_config_read(u8 bus, u8 slot, u8 function, u16 offset, u8 size)
{
    x86::outl(0xCF8, legacy_address(bus, slot, function, offset));
    u32 value = x86::inl(0xCFC);
    return size == 4 ? value : (value >> ((offset & 3) * 8)) & (size == 1 ? 0xFF : 0xFFFF);
}

void legacy_pci_config_write(u8 bus, u8 slot, u8 function, u16 offset, u8 size, u32 value)
{
    x86::outl(0xCF8, legacy_address(bus, slot, function, offset));
    if (size == 4) {
        x86::outl(0xCFC, value);
        return;
    }
    // Read-modify-write the dword for narrower writes.
    u32 shift = (offset & 3) * 8;
    u32 mask = (size == 1 ? 0xFFu : 0xFFFFu) << shift;
    u32 old = x86::inl(0xCFC);
    x86::outl(0xCF8, legacy_address(bus, slot, function, offset));
    x86::outl(0xCFC, (old & ~mask) | ((value << shift) & mask));
}

} // namespace arch
