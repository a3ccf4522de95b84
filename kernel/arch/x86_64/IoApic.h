#pragma once
// IOAPIC: routes legacy ISA IRQs (through the MADT's interrupt source overrides) and PCI GSIs to
// IDT vectors on the boot CPU.
#include <ktl/ErrorOr.h>

struct MadtInfo;

namespace ioapic {

ErrorOr<void> init(const MadtInfo&);
bool is_initialized();
// Routes ISA IRQ `irq` to `vector`, honouring source overrides. Unmasked on return.
ErrorOr<void> route_isa_irq(u8 irq, u8 vector);
ErrorOr<void> mask_isa_irq(u8 irq);
u32 redirection_entries();

} // namespace ioapic
