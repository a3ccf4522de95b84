#pragma once
// panic(): stop the machine with a message, the registers' owner's backtrace and, under test, a
// distinct QEMU exit code (panic=exit), so a harness never mistakes a panic for a hang.
#include <ktl/Types.h>

struct TrapFrame;

[[noreturn]] void panic(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// Panic after an exception: the report has already been printed; `frame` gives the backtrace.
[[noreturn]] void panic_with_frame(const TrapFrame* frame, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
bool panic_in_progress();

enum class PanicAction { Halt, Exit, Reboot };
void set_panic_action(PanicAction);

// QEMU isa-debug-exit codes (the process exits with (code << 1) | 1).
namespace qemu_exit {
constexpr u8 SELFTEST_PASS = 0x10;
constexpr u8 SELFTEST_FAIL = 0x11;
constexpr u8 PANIC = 0x12;
[[noreturn]] void exit(u8 code);
}
