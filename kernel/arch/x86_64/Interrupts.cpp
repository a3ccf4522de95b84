#include <Panic.h>
#include <arch/x86_64/Exceptions.h>
#include <arch/x86_64/Interrupts.h>
#include <arch/x86_64/Lapic.h>
#include <arch/x86_64/PerCpu.h>

namespace interrupts {

namespace {
struct Slot {
    Handler handler;
    void* context;
};
Slot g_handlers[256];
u64 g_spurious_count = 0;
}

ErrorOr<void> register_handler(u8 vector, Handler handler, void* context)
{
    if (vector < FIRST_EXTERNAL_VECTOR || !handler)
        return EINVAL;
    if (__atomic_load_n(&g_handlers[vector].handler, __ATOMIC_ACQUIRE))
        return EBUSY;
    g_handlers[vector].context = context;
    __atomic_store_n(&g_handlers[vector].handler, handler, __ATOMIC_RELEASE);
    return {};
}

void unregister_handler(u8 vector) { __atomic_store_n(&g_handlers[vector].handler, (Handler) nullptr, __ATOMIC_RELEASE); }

ErrorOr<u8> allocate_vector()
{
    for (u32 v = 48; v < 240; ++v)
        if (!g_handlers[v].handler)
            return (u8)v;
    return EBUSY;
}

u32 depth()
{
    auto* cpu = PerCpu::current_or_null();
    return cpu ? cpu->interrupt_depth : 0;
}

} // namespace interrupts

extern "C" void trap_dispatch(TrapFrame* frame)
{
    auto* cpu = PerCpu::current_or_null();
    if (cpu) {
        cpu->interrupt_depth++;
        if (cpu->interrupt_depth > cpu->max_interrupt_depth_seen)
            cpu->max_interrupt_depth_seen = cpu->interrupt_depth;
        if (interrupts::nesting_exceeded(cpu->interrupt_depth) && !panic_in_progress())
            panic_with_frame(frame, "interrupt nesting guard: trap depth %u exceeds %u (vector %llu)", cpu->interrupt_depth,
                interrupts::MAX_NESTING, (unsigned long long)frame->vector);
    }

    u64 vector = frame->vector;
    if (vector < interrupts::FIRST_EXTERNAL_VECTOR) {
        exceptions::handle(*frame);
    } else if (vector == interrupts::SPURIOUS_VECTOR) {
        interrupts::g_spurious_count++; // The LAPIC wants no EOI for a spurious interrupt.
    } else {
        if (cpu)
            cpu->interrupt_count++;
        auto& slot = interrupts::g_handlers[vector];
        auto handler = __atomic_load_n(&slot.handler, __ATOMIC_ACQUIRE);
        if (handler)
            handler(*frame, slot.context);
        lapic::eoi();
    }

    if (cpu)
        cpu->interrupt_depth--;
}
