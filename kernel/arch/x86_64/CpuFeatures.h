#pragma once
// CPUID feature detection and the protection features the kernel turns on where present:
// NX (EFER.NXE), WP, SMEP and SMAP.
#include <ktl/Types.h>

namespace cpu {

struct Features {
    char vendor[13];
    char brand[49];
    u32 family, model, stepping;
    bool nx, smep, smap, pge, pse, pat, gbpages, apic, x2apic, tsc, invariant_tsc, rdtscp, sse, sse2, fxsr,
        xsave, hypervisor, umip, pcid, la57;
    u8 physical_address_bits, linear_address_bits;
};

void detect();
const Features& features();
// Enables WP, NX, SMEP, SMAP, SSE state (for #XM reporting) as the CPU allows; logs what it did.
void enable_protections();
void log_features();

} // namespace cpu
