#pragma once
// Arch interface: the registry of kernel stacks and their unmapped guard pages (boot stack,
// exception stacks), which the memory manager leaves unmapped and backtraces stay inside.
#include <arch/Arch.h>
#if defined(HOMEOS_ARCH_X86_64)
#    include <arch/x86_64/KernelStacks.h>
#endif
