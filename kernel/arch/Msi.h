#pragma once
// Arch interface: composing the MSI message (address and data) that delivers an interrupt vector
// to a CPU. Generic code programs it into a device; only the architecture knows its format.
#include <arch/Arch.h>
#if defined(HOMEOS_ARCH_X86_64)
#    include <arch/x86_64/Msi.h>
#endif
