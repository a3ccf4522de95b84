#pragma once
// Per-CPU state, reached through the GS base. One CPU for now; SMP bring-up adds more.
#include <ktl/Types.h>

struct TrapFrame;

struct PerCpu {
    PerCpu* self; // %gs:0, so current() is one load.
    u32 id;
    // Depth of nested trap handling on this CPU; the nesting guard panics past a limit.
    u32 interrupt_depth;
    u32 max_interrupt_depth_seen;
    u8 held_lock_rank;
    u64 interrupt_count;
    u64 exception_count;

    static void init_boot_cpu();
    static PerCpu* current_or_null();
    static PerCpu& current();
};
