#include <arch/x86_64/Gdt.h>
#include <arch/x86_64/KernelStacks.h>

namespace gdt {

namespace {
struct [[gnu::packed]] Tss {
    u32 reserved0;
    u64 rsp[3];
    u64 reserved1;
    u64 ist[7];
    u64 reserved2;
    u16 reserved3;
    u16 iomap_base;
};
static_assert(sizeof(Tss) == 104);

struct [[gnu::packed]] DescriptorPointer {
    u16 limit;
    u64 base;
};

alignas(16) u64 g_gdt[10];
Tss g_tss;

constexpr u64 segment(u8 access, u8 flags) { return ((u64)access << 40) | ((u64)flags << 52) | 0x000F00000000FFFFull; }
}

void init()
{
    g_gdt[0] = 0;
    g_gdt[KERNEL_CODE / 8] = segment(0x9A, 0xA); // present, ring 0, code, long mode
    g_gdt[KERNEL_DATA / 8] = segment(0x92, 0xC);
    g_gdt[USER_CODE32 / 8] = segment(0xFA, 0xC);
    g_gdt[USER_DATA / 8] = segment(0xF2, 0xC);
    g_gdt[USER_CODE / 8] = segment(0xFA, 0xA);

    g_tss.iomap_base = sizeof(Tss);
    g_tss.ist[IST_DOUBLE_FAULT - 1] = kernel_stacks::ist_stack_top(IST_DOUBLE_FAULT);
    g_tss.ist[IST_NMI - 1] = kernel_stacks::ist_stack_top(IST_NMI);
    g_tss.ist[IST_MACHINE_CHECK - 1] = kernel_stacks::ist_stack_top(IST_MACHINE_CHECK);
    u64 base = (u64)&g_tss;
    u64 limit = sizeof(Tss) - 1;
    g_gdt[TSS / 8] = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (0x89ull << 40) | (((limit >> 16) & 0xF) << 48)
        | (((base >> 24) & 0xFF) << 56);
    g_gdt[TSS / 8 + 1] = base >> 32;
    g_gdt[TEST_NOT_PRESENT / 8] = segment(0x92, 0xC) & ~(1ull << 47);

    DescriptorPointer pointer { sizeof(g_gdt) - 1, (u64)g_gdt };
    asm volatile(
        "lgdt %0\n"
        "pushq %1\n"
        "leaq 1f(%%rip), %%rax\n"
        "pushq %%rax\n"
        "lretq\n"
        "1:\n"
        "movw %w2, %%ax\n"
        "movw %%ax, %%ds\n"
        "movw %%ax, %%es\n"
        "movw %%ax, %%ss\n"
        "ltr %w3\n"
        :
        : "m"(pointer), "i"((u64)KERNEL_CODE), "r"((u64)KERNEL_DATA), "r"((u64)TSS)
        : "rax", "memory");
}

void set_kernel_stack(u64 rsp0) { g_tss.rsp[0] = rsp0; }

} // namespace gdt
