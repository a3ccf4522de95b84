#pragma once
// Thin wrappers over x86-64 instructions the kernel needs. Nothing here keeps state.
#include <ktl/Types.h>

namespace x86 {

inline void outb(u16 port, u8 value) { asm volatile("outb %0, %1" : : "a"(value), "Nd"(port)); }
inline void outw(u16 port, u16 value) { asm volatile("outw %0, %1" : : "a"(value), "Nd"(port)); }
inline void outl(u16 port, u32 value) { asm volatile("outl %0, %1" : : "a"(value), "Nd"(port)); }
inline u8 inb(u16 port)
{
    u8 value;
    asm volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}
inline u32 inl(u16 port)
{
    u32 value;
    asm volatile("inl %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}
inline void io_wait() { outb(0x80, 0); }

inline u64 rdmsr(u32 msr)
{
    u32 lo, hi;
    asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((u64)hi << 32) | lo;
}
inline void wrmsr(u32 msr, u64 value) { asm volatile("wrmsr" : : "c"(msr), "a"((u32)value), "d"((u32)(value >> 32))); }

inline u64 rdtsc()
{
    u32 lo, hi;
    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((u64)hi << 32) | lo;
}

#define X86_CR_ACCESSORS(n)                                                                 \
    inline u64 read_cr##n()                                                                 \
    {                                                                                       \
        u64 v;                                                                              \
        asm volatile("mov %%cr" #n ", %0" : "=r"(v));                                       \
        return v;                                                                           \
    }                                                                                       \
    inline void write_cr##n(u64 v) { asm volatile("mov %0, %%cr" #n : : "r"(v) : "memory"); }
X86_CR_ACCESSORS(0)
X86_CR_ACCESSORS(2)
X86_CR_ACCESSORS(3)
X86_CR_ACCESSORS(4)
#undef X86_CR_ACCESSORS

inline void invlpg(u64 address) { asm volatile("invlpg (%0)" : : "r"(address) : "memory"); }
inline void flush_tlb() { write_cr3(read_cr3()); }
inline void cli() { asm volatile("cli" ::: "memory"); }
inline void sti() { asm volatile("sti" ::: "memory"); }
inline void hlt() { asm volatile("hlt" ::: "memory"); }
inline void pause() { asm volatile("pause"); }
inline u64 read_rflags()
{
    u64 flags;
    asm volatile("pushfq; popq %0" : "=r"(flags));
    return flags;
}
inline bool interrupts_enabled() { return read_rflags() & (1 << 9); }
inline u64 read_rbp() { return (u64)__builtin_frame_address(0); }
inline void stac() { asm volatile("stac" ::: "memory"); }
inline void clac() { asm volatile("clac" ::: "memory"); }

struct CpuidResult {
    u32 eax, ebx, ecx, edx;
};
inline CpuidResult cpuid(u32 leaf, u32 subleaf = 0)
{
    CpuidResult r;
    asm volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(subleaf));
    return r;
}

[[noreturn]] inline void halt_forever()
{
    for (;;) {
        cli();
        hlt();
    }
}

constexpr u32 MSR_EFER = 0xC0000080;
constexpr u32 MSR_FS_BASE = 0xC0000100;
constexpr u32 MSR_GS_BASE = 0xC0000101;
constexpr u32 MSR_KERNEL_GS_BASE = 0xC0000102;
constexpr u32 MSR_APIC_BASE = 0x1B;
constexpr u64 CR0_WP = 1 << 16;
constexpr u64 CR0_NE = 1 << 5;
constexpr u64 CR0_TS = 1 << 3;
constexpr u64 CR0_EM = 1 << 2;
constexpr u64 CR0_MP = 1 << 1;
constexpr u64 CR0_AM = 1 << 18;
constexpr u64 CR4_PGE = 1 << 7;
constexpr u64 CR4_OSFXSR = 1 << 9;
constexpr u64 CR4_OSXMMEXCPT = 1 << 10;
constexpr u64 CR4_SMEP = 1 << 20;
constexpr u64 CR4_SMAP = 1 << 21;
constexpr u64 EFER_NXE = 1 << 11;

} // namespace x86
