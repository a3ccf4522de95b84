#pragma once
// Trap dispatch: exceptions go to exceptions::handle(), everything else to a registered handler.
// The nesting guard counts trap depth per CPU and panics if handlers keep re-entering.
#include <arch/x86_64/TrapFrame.h>
#include <ktl/ErrorOr.h>

namespace interrupts {

constexpr u32 MAX_NESTING = 8;
constexpr u8 FIRST_EXTERNAL_VECTOR = 32;
constexpr u8 SPURIOUS_VECTOR = 0xFF;

using Handler = void (*)(TrapFrame&, void* context);

constexpr u8 FIRST_DYNAMIC_VECTOR = 48;
constexpr u8 LAST_DYNAMIC_VECTOR = 239;

// Claiming a vector is atomic (under the vector-table lock), so two callers never get the same.
// EBUSY if the vector already has a handler; EINVAL for exception vectors. A vector reserved by
// allocate_vector() takes its handler here.
ErrorOr<void> register_handler(u8 vector, Handler, void* context);
// Frees the vector (registered or only reserved).
void unregister_handler(u8 vector);
// Reserves a free vector in 48..239 for a new device interrupt; register_handler() on it next,
// or unregister_handler() to give it back. EBUSY when none is left.
ErrorOr<u8> allocate_vector();
bool is_reserved_for_tests(u8 vector);
bool is_free_for_tests(u8 vector);
u32 depth();
// For the nesting guard: whether trap depth `depth` is over the limit (pure, unit-tested in kernel).
constexpr bool nesting_exceeded(u32 depth) { return depth > MAX_NESTING; }

} // namespace interrupts

extern "C" void trap_dispatch(TrapFrame* frame);
