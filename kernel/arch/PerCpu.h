#pragma once
// Arch interface: this CPU's PerCpu block (held lock rank, interrupt depth and counters), reached
// the architecture's way (the GS base on x86-64).
#include <arch/Arch.h>
#if defined(HOMEOS_ARCH_X86_64)
#    include <arch/x86_64/PerCpu.h>
#endif
