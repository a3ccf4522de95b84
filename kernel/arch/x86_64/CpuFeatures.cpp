#include <arch/x86_64/Cpu.h>
#include <arch/x86_64/CpuFeatures.h>
#include <lib/text/Format.h>
#include <log/Log.h>

namespace cpu {

namespace {
Features g_features;
}

void detect()
{
    auto& f = g_features;
    auto leaf0 = x86::cpuid(0);
    __builtin_memcpy(f.vendor + 0, &leaf0.ebx, 4);
    __builtin_memcpy(f.vendor + 4, &leaf0.edx, 4);
    __builtin_memcpy(f.vendor + 8, &leaf0.ecx, 4);
    f.vendor[12] = 0;
    u32 max_leaf = leaf0.eax;
    auto leaf1 = x86::cpuid(1);
    f.stepping = leaf1.eax & 0xF;
    f.model = (leaf1.eax >> 4) & 0xF;
    f.family = (leaf1.eax >> 8) & 0xF;
    if (f.family == 0xF)
        f.family += (leaf1.eax >> 20) & 0xFF;
    if (f.family >= 6)
        f.model |= ((leaf1.eax >> 16) & 0xF) << 4;
    f.tsc = leaf1.edx & (1 << 4);
    f.pse = leaf1.edx & (1 << 3);
    f.apic = leaf1.edx & (1 << 9);
    f.pge = leaf1.edx & (1 << 13);
    f.pat = leaf1.edx & (1 << 16);
    f.fxsr = leaf1.edx & (1 << 24);
    f.sse = leaf1.edx & (1 << 25);
    f.sse2 = leaf1.edx & (1 << 26);
    f.pcid = leaf1.ecx & (1 << 17);
    f.x2apic = leaf1.ecx & (1 << 21);
    f.xsave = leaf1.ecx & (1 << 26);
    f.hypervisor = leaf1.ecx & (1u << 31);
    if (max_leaf >= 7) {
        auto leaf7 = x86::cpuid(7, 0);
        f.smep = leaf7.ebx & (1 << 7);
        f.smap = leaf7.ebx & (1 << 20);
        f.umip = leaf7.ecx & (1 << 2);
        f.la57 = leaf7.ecx & (1 << 16);
    }
    u32 max_ext = x86::cpuid(0x80000000).eax;
    if (max_ext >= 0x80000001) {
        auto ext1 = x86::cpuid(0x80000001);
        f.nx = ext1.edx & (1 << 20);
        f.gbpages = ext1.edx & (1 << 26);
        f.rdtscp = ext1.edx & (1 << 27);
    }
    if (max_ext >= 0x80000004) {
        for (u32 i = 0; i < 3; ++i) {
            auto r = x86::cpuid(0x80000002 + i);
            __builtin_memcpy(f.brand + i * 16 + 0, &r.eax, 4);
            __builtin_memcpy(f.brand + i * 16 + 4, &r.ebx, 4);
            __builtin_memcpy(f.brand + i * 16 + 8, &r.ecx, 4);
            __builtin_memcpy(f.brand + i * 16 + 12, &r.edx, 4);
        }
        f.brand[48] = 0;
    }
    if (max_ext >= 0x80000007)
        f.invariant_tsc = x86::cpuid(0x80000007).edx & (1 << 8);
    if (max_ext >= 0x80000008) {
        auto r = x86::cpuid(0x80000008);
        f.physical_address_bits = r.eax & 0xFF;
        f.linear_address_bits = (r.eax >> 8) & 0xFF;
    }
}

const Features& features() { return g_features; }

void enable_protections()
{
    auto& f = g_features;
    u64 cr0 = x86::read_cr0();
    // WP: the kernel honours read-only pages too. NE: x87 errors raise #MF, not the legacy IRQ 13.
    cr0 |= x86::CR0_WP | x86::CR0_NE | x86::CR0_MP;
    cr0 &= ~(x86::CR0_EM | x86::CR0_TS);
    x86::write_cr0(cr0);
    if (f.nx)
        x86::wrmsr(x86::MSR_EFER, x86::rdmsr(x86::MSR_EFER) | x86::EFER_NXE);
    u64 cr4 = x86::read_cr4();
    if (f.fxsr && f.sse)
        cr4 |= x86::CR4_OSFXSR | x86::CR4_OSXMMEXCPT;
    if (f.smep)
        cr4 |= x86::CR4_SMEP;
    if (f.smap)
        cr4 |= x86::CR4_SMAP;
    if (f.pge)
        cr4 |= x86::CR4_PGE;
    x86::write_cr4(cr4);
    asm volatile("fninit");
    log_info("cpu: protections: NX %s, WP on, SMEP %s, SMAP %s", f.nx ? "on" : "unsupported", f.smep ? "on" : "unsupported",
        f.smap ? "on" : "unsupported");
}

void log_features()
{
    auto& f = g_features;
    log_info("cpu: %s \"%s\" family 0x%x model 0x%x stepping %u", f.vendor, f.brand[0] ? f.brand : "(no brand string)", f.family, f.model,
        f.stepping);
    char flags[256];
    format(flags, sizeof(flags), "%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s", f.nx ? " nx" : "", f.smep ? " smep" : "", f.smap ? " smap" : "",
        f.pge ? " pge" : "", f.pat ? " pat" : "", f.gbpages ? " pdpe1gb" : "", f.apic ? " apic" : "", f.x2apic ? " x2apic" : "",
        f.tsc ? " tsc" : "", f.invariant_tsc ? " invtsc" : "", f.rdtscp ? " rdtscp" : "", f.sse2 ? " sse2" : "", f.fxsr ? " fxsr" : "",
        f.xsave ? " xsave" : "", f.pcid ? " pcid" : "", f.umip ? " umip" : "", f.hypervisor ? " hypervisor" : "");
    log_info("cpu: features:%s", flags);
    log_info("cpu: address sizes %u bits physical, %u bits virtual", f.physical_address_bits, f.linear_address_bits);
}

} // namespace cpu
