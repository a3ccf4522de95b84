#pragma once
// The kernel log: printk-style levels, timestamps since boot, a ring buffer for dmesg, and the
// consoles (serial, framebuffer) that show messages at or above the console log level.
#include <ktl/Types.h>
#include <stdarg.h>

enum KernelLogLevel : u8 {
    LOG_EMERG = 0,
    LOG_ALERT = 1,
    LOG_CRIT = 2,
    LOG_ERR = 3,
    LOG_WARNING = 4,
    LOG_NOTICE = 5,
    LOG_INFO = 6,
    LOG_DEBUG = 7,
};

// A message longer than the ring's record limit (LogRing::max_text_length) is cut there and ends
// in TRUNCATION_MARK, on the consoles and in the ring, so a cut is never silent.
void printk(u8 level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_emerg(...) printk(LOG_EMERG, __VA_ARGS__)
#define log_err(...) printk(LOG_ERR, __VA_ARGS__)
#define log_warn(...) printk(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) printk(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) printk(LOG_INFO, __VA_ARGS__)
#define log_debug(...) printk(LOG_DEBUG, __VA_ARGS__)

namespace klog {

using ConsoleWrite = void (*)(const char* text, usize length);
constexpr char TRUNCATION_MARK[] = "...[truncated]";

void register_console(ConsoleWrite);
void unregister_console(ConsoleWrite);
// Writes raw text to every console, bypassing the ring (KTAP output, the prompt's echo).
void console_write(const char* text, usize length);
// Formats straight to the consoles in small chunks, so output of any length arrives whole (and
// in one piece: the log lock is held throughout).
void console_printf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void console_vprintf(const char* fmt, va_list args);
void set_console_level(u8 level);
u8 console_level();
void set_clock(u64 (*now_ns)());
u64 now_ns();
// Prints every record still in the ring, oldest first, like dmesg.
void dump_ring();
// Writes the ring to one console only: a console that starts late catches up on the boot log.
void replay_ring(ConsoleWrite only);
u64 records_written();
// Panic path: drop the log lock if this CPU died holding it.
void force_unlock();

} // namespace klog
