#pragma once
// Registry of kernel stacks and their guard pages. Backtraces only follow frame pointers inside a
// known stack, and the fault handlers use the guards to call an overflow by its name.
//
//   higher addresses
//   +-----------------+ <- top
//   |   stack pages   |
//   +-----------------+ <- bottom
//   |   guard page    |    never mapped: touching it faults
//   +-----------------+ <- guard
#include <ktl/Types.h>

namespace kernel_stacks {

struct Stack {
    const char* name;
    u64 guard; // Base of the unmapped guard page.
    u64 bottom;
    u64 top;
};

void init();
u64 ist_stack_top(u8 ist);
// The stack self-tests overflow on purpose.
const Stack& test_stack();
usize count();
const Stack& at(usize index);
// The stack whose guard page contains address, if any.
const Stack* guard_hit(u64 address);
// Whether [address, address + length) lies inside the usable part of a known stack.
bool contains(u64 address, u64 length);

} // namespace kernel_stacks
