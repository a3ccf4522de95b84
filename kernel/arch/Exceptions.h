#pragma once
// Arch interface: exception reports, symbolized backtraces and ExceptionCatch, which the
// selftests arm to provoke a fault on purpose and recover from it.
#include <arch/Arch.h>
#if defined(HOMEOS_ARCH_X86_64)
#    include <arch/x86_64/Exceptions.h>
#endif
