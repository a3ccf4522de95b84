#pragma once
// Arch interface: control of the current CPU for generic code (interrupt flag, waiting, the cycle
// counter, TLB entries of the kernel's own address space).
#include <arch/Arch.h>
#include <ktl/Types.h>

namespace arch {

// Interrupts on this CPU. save_and_disable_interrupts() returns a token for restore_interrupts().
inline void enable_interrupts();
inline void disable_interrupts();
inline bool interrupts_enabled();
inline u64 save_and_disable_interrupts();
inline void restore_interrupts(u64 token);

// Sleep until the next interrupt (returns at once if one is pending and interrupts are on).
inline void wait_for_interrupt();
// A spin-wait hint for busy loops.
inline void cpu_relax();
[[noreturn]] inline void halt_forever();

// A free-running per-CPU cycle counter (the TSC on x86-64) and whether its rate is constant.
inline u64 read_cycle_counter();
bool cycle_counter_is_invariant();
// The counter's frequency as the CPU reports it (CPUID leaves 0x15/0x16 on x86-64), or 0 if the
// CPU does not say and the counter must be calibrated against a timer.
u64 cycle_counter_reported_hz();

// Drops a stale translation of one kernel page on this CPU.
inline void flush_tlb_page(u64 virtual_address);

} // namespace arch

#if defined(HOMEOS_ARCH_X86_64)
#    include <arch/x86_64/ArchCpu.h>
#endif
