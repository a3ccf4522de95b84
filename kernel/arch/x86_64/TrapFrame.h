#pragma once
// The register state every trap stub saves, in push order reversed (lowest address first).
#include <ktl/Types.h>

struct TrapFrame {
    u64 r15, r14, r13, r12, r11, r10, r9, r8;
    u64 rbp, rdi, rsi, rdx, rcx, rbx, rax;
    u64 vector;
    u64 error_code; // Zero for vectors where the CPU pushes none.
    // Pushed by the CPU.
    u64 rip, cs, rflags, rsp, ss;

    bool from_user() const { return (cs & 3) != 0; }
};
static_assert(sizeof(TrapFrame) == 22 * 8);
