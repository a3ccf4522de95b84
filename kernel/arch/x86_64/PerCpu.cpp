#include <arch/x86_64/Cpu.h>
#include <arch/x86_64/PerCpu.h>

namespace {
PerCpu g_boot_cpu;
bool g_initialized = false;
}

void PerCpu::init_boot_cpu()
{
    g_boot_cpu.self = &g_boot_cpu;
    g_boot_cpu.id = 0;
    x86::wrmsr(x86::MSR_GS_BASE, (u64)&g_boot_cpu);
    x86::wrmsr(x86::MSR_KERNEL_GS_BASE, 0);
    g_initialized = true;
}

PerCpu* PerCpu::current_or_null()
{
    if (!g_initialized)
        return nullptr;
    PerCpu* cpu;
    asm volatile("movq %%gs:0, %0" : "=r"(cpu));
    return cpu;
}

PerCpu& PerCpu::current() { return *current_or_null(); }
