#pragma once
// CPU exception reporting and recovery.
//
// Every architectural exception gets a report: its name, the decoded error code (for #PF the CR2
// and P/W/U/I flags; for selector errors the table and index), the full register state and a
// symbolized backtrace. An unexpected exception in the kernel panics with that report.
//
// The self-tests provoke exceptions on purpose. They arm an ExceptionCatch first:
//
//   ExceptionCatch c;
//   if (ksetjmp(&c.jump) == 0) {
//       exceptions::arm(c, VECTOR_PF);
//       *(volatile u64*)bad = 1;      // faults
//   }
//   exceptions::disarm();             // c.caught, c.frame and c.report describe what happened
//
// The handler copies the report and rewrites the trap frame so iretq resumes in ksetjmp, which
// then returns 1.
#include <arch/x86_64/TrapFrame.h>
#include <ktl/Types.h>

struct KJmpBuf {
    u64 rbx, rbp, r12, r13, r14, r15, rsp, rip;
};
extern "C" int ksetjmp(KJmpBuf*) __attribute__((returns_twice));
extern "C" [[noreturn]] void klongjmp(KJmpBuf*, int value);

enum ExceptionVector : u8 {
    VECTOR_DE = 0, VECTOR_DB = 1, VECTOR_NMI = 2, VECTOR_BP = 3, VECTOR_OF = 4, VECTOR_BR = 5, VECTOR_UD = 6,
    VECTOR_NM = 7, VECTOR_DF = 8, VECTOR_TS = 10, VECTOR_NP = 11, VECTOR_SS = 12, VECTOR_GP = 13,
    VECTOR_PF = 14, VECTOR_MF = 16, VECTOR_AC = 17, VECTOR_MC = 18, VECTOR_XM = 19, VECTOR_VE = 20,
    VECTOR_CP = 21,
};

struct ExceptionCatch {
    KJmpBuf jump;
    int vector { -1 }; // -1: any exception.
    u64 saved_rflags { 0 };
    bool caught { false };
    int caught_vector { -1 };
    TrapFrame frame {};
    u64 cr2 { 0 };
    char report[4096];
    usize report_length { 0 };
};

namespace exceptions {

const char* mnemonic(u8 vector); // "#PF"
const char* name(u8 vector);     // "page fault"
bool has_error_code(u8 vector);

void arm(ExceptionCatch&, int vector);
void disarm();

// Handles vectors 0..31. Returns if the exception was recovered (caught by a test, or a
// non-fatal trap such as #BP); otherwise panics.
void handle(TrapFrame&);

// Writes the report for `frame` into buffer; returns its length.
usize format_report(const TrapFrame& frame, u64 cr2, char* buffer, usize capacity);
// Appends "  #n 0x... symbol+0x..\n" lines walking frame pointers from rbp.
usize format_backtrace(u64 rip, u64 rbp, char* buffer, usize capacity);

} // namespace exceptions
