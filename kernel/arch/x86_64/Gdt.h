#pragma once
// GDT and TSS. The TSS carries the interrupt stack tables: #DF, NMI and #MC run on their own
// stacks so that a fault on a broken kernel stack still reaches a handler.
#include <ktl/Types.h>

namespace gdt {

constexpr u16 KERNEL_CODE = 0x08;
constexpr u16 KERNEL_DATA = 0x10;
constexpr u16 USER_CODE32 = 0x18;
constexpr u16 USER_DATA = 0x20;
constexpr u16 USER_CODE = 0x28;
constexpr u16 TSS = 0x30;
// A data descriptor with P=0: loading it raises #NP, which the exception self-tests use.
constexpr u16 TEST_NOT_PRESENT = 0x40;

enum Ist : u8 { IST_NONE = 0, IST_DOUBLE_FAULT = 1, IST_NMI = 2, IST_MACHINE_CHECK = 3 };

void init();
void set_kernel_stack(u64 rsp0);

} // namespace gdt
