#include <arch/x86_64/Gdt.h>
#include <arch/x86_64/Idt.h>

extern "C" const u64 trap_stub_table[256];

namespace idt {

namespace {
struct [[gnu::packed]] Gate {
    u16 offset_low;
    u16 selector;
    u8 ist;
    u8 type_attributes;
    u16 offset_mid;
    u32 offset_high;
    u32 reserved;
};
static_assert(sizeof(Gate) == 16);

struct [[gnu::packed]] Pointer {
    u16 limit;
    u64 base;
};

alignas(16) Gate g_idt[256];
}

void set_gate(u8 vector, u8 ist, u8 dpl)
{
    u64 handler = trap_stub_table[vector];
    g_idt[vector] = Gate {
        .offset_low = (u16)handler,
        .selector = gdt::KERNEL_CODE,
        .ist = ist,
        // Interrupt gates (0xE) for everything: handlers start with interrupts off.
        .type_attributes = (u8)(0x80 | (dpl << 5) | 0xE),
        .offset_mid = (u16)(handler >> 16),
        .offset_high = (u32)(handler >> 32),
        .reserved = 0,
    };
}

void init()
{
    for (int v = 0; v < 256; ++v)
        set_gate((u8)v, gdt::IST_NONE, 0);
    set_gate(2, gdt::IST_NMI, 0);
    set_gate(8, gdt::IST_DOUBLE_FAULT, 0);
    set_gate(18, gdt::IST_MACHINE_CHECK, 0);
    // #BP and #OF may be raised from user mode by int3/int $4, as on Linux.
    set_gate(3, gdt::IST_NONE, 3);
    set_gate(4, gdt::IST_NONE, 3);
    Pointer pointer { sizeof(g_idt) - 1, (u64)g_idt };
    asm volatile("lidt %0" : : "m"(pointer));
}

} // namespace idt
