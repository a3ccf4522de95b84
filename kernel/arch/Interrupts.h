#pragma once
// Arch interface: interrupt vectors, handlers and the trap frame they receive.
#include <arch/Arch.h>
#if defined(HOMEOS_ARCH_X86_64)
#    include <arch/x86_64/Interrupts.h>
#endif
