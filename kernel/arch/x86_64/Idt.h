#pragma once
// The IDT: every one of the 256 vectors has a stub; exceptions, IRQs and IPIs share one dispatcher.
#include <ktl/Types.h>

namespace idt {

void init();
// Exposed for the self-tests and for IRQ routing: vectors 32..255.
void set_gate(u8 vector, u8 ist, u8 dpl);

} // namespace idt
