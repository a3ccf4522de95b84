#pragma once
// The legacy 8259 PICs: remapped away from the exception vectors and fully masked. The IOAPIC
// delivers device interrupts instead.
namespace pic {
void remap_and_mask();
}
