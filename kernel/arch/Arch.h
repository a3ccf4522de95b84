#pragma once
// How generic code reaches the architecture.
//
// Generic code (everything outside kernel/arch/<arch>/) includes only the interface headers in
// kernel/arch/*.h. Each declares what generic code may use and then includes the selected
// architecture's definitions, chosen by the build (ARCH= in the Makefile defines
// HOMEOS_ARCH_<ARCH>). tests/scripts/layout.sh fails the build's tests if generic code includes
// kernel/arch/x86_64/ directly.
#if defined(HOMEOS_ARCH_X86_64)
#    define HOMEOS_ARCH_NAME "x86_64"
#else
#    error "no architecture selected: build with ARCH=... (the Makefile defines HOMEOS_ARCH_<ARCH>)"
#endif
