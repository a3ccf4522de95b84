#include <Panic.h>
#include <arch/Cpu.h>
#include <arch/Exceptions.h>
#include <arch/Platform.h>
#include <lib/text/Format.h>
#include <log/Log.h>

namespace {
PanicAction g_action = PanicAction::Halt;
bool g_in_panic = false;
char g_backtrace[2048];

[[noreturn]] void finish_panic(const char* message, u64 rip, u64 rbp)
{
    klog::force_unlock();
    klog::console_printf("\nKERNEL PANIC: %s\n", message);
    usize length = exceptions::format_backtrace(rip, rbp, g_backtrace, sizeof(g_backtrace));
    klog::console_write("Backtrace:\n", 11);
    klog::console_write(g_backtrace, length);
    klog::console_printf("---[ end Kernel panic - %s ]---\n", message);
    switch (g_action) {
    case PanicAction::Exit:
        qemu_exit::exit(qemu_exit::PANIC);
    case PanicAction::Reboot:
        arch::reboot();
    case PanicAction::Halt:
        break;
    }
    arch::halt_forever();
}

[[noreturn]] void vpanic(const TrapFrame* frame, const char* fmt, va_list args)
{
    arch::disable_interrupts();
    if (g_in_panic) {
        // A panic inside the panic path: say so once, raw, and stop.
        klog::console_write("\nKERNEL PANIC: nested panic\n", 28);
        if (g_action == PanicAction::Exit)
            qemu_exit::exit(qemu_exit::PANIC);
        arch::halt_forever();
    }
    g_in_panic = true;
    static char message[512];
    vformat(message, sizeof(message), fmt, args);
    if (frame)
        finish_panic(message, frame->rip, frame->rbp);
    finish_panic(message, (u64)__builtin_return_address(0), (u64)__builtin_frame_address(0));
}
}

void panic(const char* fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vpanic(nullptr, fmt, args);
}

void panic_with_frame(const TrapFrame* frame, const char* fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vpanic(frame, fmt, args);
}

bool panic_in_progress() { return g_in_panic; }
void set_panic_action(PanicAction action) { g_action = action; }

namespace qemu_exit {
void exit(u8 code)
{
    arch::debug_exit(code);
}
}

[[noreturn]] void ktl_verify_failed(const char* expr, const char* file, int line)
{
    panic("VERIFY(%s) failed at %s:%d", expr, file, line);
}
