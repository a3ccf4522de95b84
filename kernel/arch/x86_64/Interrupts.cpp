#include <Panic.h>
#include <arch/x86_64/Exceptions.h>
#include <arch/x86_64/Interrupts.h>
#include <arch/x86_64/Lapic.h>
#include <arch/x86_64/PerCpu.h>
#include <sync/Spinlock.h>

namespace interrupts {

namespace {
struct Slot {
    Handler handler;
    void* context;
};

// Claiming and freeing a slot is check-then-set, so it happens under g_vector_lock. Dispatch
// reads a slot without the lock (an acquire load of the handler pairs with the release store
// that publishes it), so an interrupt never waits for a registration.
Spinlock g_vector_lock { LockRank::InterruptVectors };
Slot g_handlers[256] GUARDED_BY(g_vector_lock);
u64 g_spurious_count = 0;
u64 g_reserved_vector_hits = 0;

// Holds a vector from allocate_vector() until its owner registers the real handler, so two
// allocations cannot hand out the same vector.
void reserved_handler(TrapFrame&, void*) { __atomic_add_fetch(&g_reserved_vector_hits, 1, __ATOMIC_RELAXED); }

bool is_free_locked(u8 vector) REQUIRES(g_vector_lock) { return !g_handlers[vector].handler; }

Handler load_handler(u8 vector, void*& context) NO_THREAD_SAFETY_ANALYSIS
{
    Handler handler = __atomic_load_n(&g_handlers[vector].handler, __ATOMIC_ACQUIRE);
    context = g_handlers[vector].context;
    return handler;
}
}

ErrorOr<void> register_handler(u8 vector, Handler handler, void* context)
{
    if (vector < FIRST_EXTERNAL_VECTOR || !handler || handler == reserved_handler)
        return Error::with_message(EINVAL, "exception vector or no handler");
    SpinlockLocker locker(g_vector_lock);
    Slot& slot = g_handlers[vector];
    // Free, or reserved by allocate_vector() for this caller.
    if (slot.handler && slot.handler != reserved_handler)
        return Error::with_message(EBUSY, "vector already has a handler");
    slot.context = context;
    __atomic_store_n(&slot.handler, handler, __ATOMIC_RELEASE);
    return {};
}

void unregister_handler(u8 vector)
{
    SpinlockLocker locker(g_vector_lock);
    __atomic_store_n(&g_handlers[vector].handler, (Handler) nullptr, __ATOMIC_RELEASE);
}

ErrorOr<u8> allocate_vector()
{
    SpinlockLocker locker(g_vector_lock);
    for (u32 v = FIRST_DYNAMIC_VECTOR; v <= LAST_DYNAMIC_VECTOR; ++v) {
        if (is_free_locked((u8)v)) {
            g_handlers[v].context = nullptr;
            __atomic_store_n(&g_handlers[v].handler, (Handler)reserved_handler, __ATOMIC_RELEASE);
            return (u8)v;
        }
    }
    return Error::with_message(EBUSY, "no free interrupt vector");
}

bool is_reserved_for_tests(u8 vector)
{
    SpinlockLocker locker(g_vector_lock);
    return g_handlers[vector].handler == reserved_handler;
}

bool is_free_for_tests(u8 vector)
{
    SpinlockLocker locker(g_vector_lock);
    return is_free_locked(vector);
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
        void* context;
        auto handler = interrupts::load_handler((u8)vector, context);
        if (handler)
            handler(*frame, context);
        lapic::eoi();
    }

    if (cpu)
        cpu->interrupt_depth--;
}
