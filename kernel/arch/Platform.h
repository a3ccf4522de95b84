#pragma once
// Arch interface: bringing the CPU and its interrupt controllers up, and leaving (reboot, the
// emulator's exit device). kernel_main calls these in the order listed.
#include <arch/Arch.h>
#include <ktl/StringView.h>
#include <ktl/Types.h>

struct MadtInfo;

namespace arch {

// Per-CPU data, kernel stacks with guard pages, descriptor tables and exception vectors: enough
// to report a fault. Runs before the memory manager.
void early_init();
// Feature detection; switches on the protections the CPU has (NX, WP, SMEP, SMAP on x86-64).
void init_cpu_features();
void log_cpu_features();
// The interrupt controllers described by the ACPI MADT (LAPIC and IOAPIC on x86-64; the legacy
// PIC is masked).
void init_interrupt_controllers(const MadtInfo&);

[[noreturn]] void reboot();
// Leaves the emulator with a status through its debug-exit device (QEMU's isa-debug-exit); on
// hardware without one it halts.
[[noreturn]] void debug_exit(u8 code);

// Test-only faults that need the architecture's own instructions (the inject= command line):
// returns false for a name this architecture does not know.
bool inject_fault(StringView what);

} // namespace arch
