#pragma once
// x86-64 definitions of the arch interface in kernel/arch/Cpu.h.
#include <arch/x86_64/Cpu.h>

namespace arch {

inline void enable_interrupts() { x86::sti(); }
inline void disable_interrupts() { x86::cli(); }
inline bool interrupts_enabled() { return x86::interrupts_enabled(); }
inline u64 save_and_disable_interrupts()
{
    u64 flags = x86::read_rflags();
    x86::cli();
    return flags;
}
inline void restore_interrupts(u64 token)
{
    if (token & (1 << 9))
        x86::sti();
}
inline void wait_for_interrupt() { x86::hlt(); }
inline void cpu_relax() { x86::pause(); }
[[noreturn]] inline void halt_forever() { x86::halt_forever(); }
inline u64 read_cycle_counter() { return x86::rdtsc(); }
inline void flush_tlb_page(u64 virtual_address) { x86::invlpg(virtual_address); }

} // namespace arch
