#pragma once
// Arch interface: PCI I/O space (I/O BARs), reached with port instructions on x86-64.
#include <arch/Arch.h>
#if defined(HOMEOS_ARCH_X86_64)
#    include <arch/x86_64/IoSpace.h>
#endif
