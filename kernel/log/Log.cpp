#include <Panic.h>
#include <lib/text/Format.h>
#include <lib/log/LogRing.h>
#include <log/Log.h>
#include <sync/Spinlock.h>

namespace klog {

namespace {
constexpr usize MAX_CONSOLES = 4;
constexpr usize RING_BYTES = 256 * KiB;

alignas(8) u8 g_ring_storage[RING_BYTES];
// The log lock is the highest rank: printk may be called with any other lock held.
Spinlock g_lock { LockRank::Log };
LogRing g_ring GUARDED_BY(g_lock) { Bytes(g_ring_storage, RING_BYTES) };
ConsoleWrite g_consoles[MAX_CONSOLES] GUARDED_BY(g_lock);
usize g_console_count GUARDED_BY(g_lock) = 0;
u8 g_console_level = LOG_INFO;
u64 (*g_clock)() = nullptr;

void write_consoles_locked(const char* text, usize length) REQUIRES(g_lock)
{
    for (usize i = 0; i < g_console_count; ++i)
        g_consoles[i](text, length);
}
}

void register_console(ConsoleWrite write)
{
    SpinlockLocker locker(g_lock);
    if (g_console_count < MAX_CONSOLES)
        g_consoles[g_console_count++] = write;
}

void unregister_console(ConsoleWrite write)
{
    SpinlockLocker locker(g_lock);
    for (usize i = 0; i < g_console_count; ++i) {
        if (g_consoles[i] == write) {
            for (usize j = i + 1; j < g_console_count; ++j)
                g_consoles[j - 1] = g_consoles[j];
            --g_console_count;
            return;
        }
    }
}

void console_write(const char* text, usize length)
{
    SpinlockLocker locker(g_lock);
    write_consoles_locked(text, length);
}

namespace {
// Collects formatted characters and hands them to the consoles a chunk at a time.
struct ConsoleChunker {
    char chunk[128];
    usize used { 0 };

    void flush() NO_THREAD_SAFETY_ANALYSIS // Runs under g_lock, taken by console_vprintf().
    {
        if (used)
            write_consoles_locked(chunk, used);
        used = 0;
    }
    static void emit(char c, void* context)
    {
        auto* self = (ConsoleChunker*)context;
        self->chunk[self->used++] = c;
        if (self->used == sizeof(self->chunk))
            self->flush();
    }
};
}

void console_vprintf(const char* fmt, va_list args)
{
    ConsoleChunker chunker;
    SpinlockLocker locker(g_lock);
    vformat_to(ConsoleChunker::emit, &chunker, fmt, args);
    chunker.flush();
}

void console_printf(const char* fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    console_vprintf(fmt, args);
    va_end(args);
}

void set_console_level(u8 level) { g_console_level = level > LOG_DEBUG ? LOG_DEBUG : level; }
u8 console_level() { return g_console_level; }
void set_clock(u64 (*now)()) { g_clock = now; }
u64 now_ns() { return g_clock ? g_clock() : 0; }

void dump_ring() { replay_ring(nullptr); }

void replay_ring(ConsoleWrite only)
{
    SpinlockLocker locker(g_lock);
    char text[LogRing::max_text_length + 1];
    char line[LogRing::max_text_length + 64 + 1];
    for (u64 seq = g_ring.first_sequence(); seq < g_ring.next_sequence(); ++seq) {
        LogRecord record;
        if (!g_ring.read(seq, record, text, sizeof(text)))
            continue;
        usize length = format_log_record(record, line, sizeof(line));
        if (length >= sizeof(line))
            length = sizeof(line) - 1;
        line[length++] = '\n';
        if (only)
            only(line, length);
        else
            write_consoles_locked(line, length);
    }
}

u64 records_written()
{
    SpinlockLocker locker(g_lock);
    return g_ring.next_sequence();
}

void force_unlock() NO_THREAD_SAFETY_ANALYSIS
{
    if (g_lock.is_locked())
        g_lock.unlock(0);
}

} // namespace klog

void printk(u8 level, const char* fmt, ...)
{
    char text[LogRing::max_text_length + 1];
    va_list args;
    va_start(args, fmt);
    usize length = vformat(text, sizeof(text), fmt, args);
    va_end(args);
    if (length >= sizeof(text)) {
        // Cut, and say so: the mark replaces the tail of what fits.
        constexpr usize mark = sizeof(klog::TRUNCATION_MARK) - 1;
        length = sizeof(text) - 1;
        __builtin_memcpy(text + length - mark, klog::TRUNCATION_MARK, mark);
    } else {
        while (length && text[length - 1] == '\n')
            --length;
    }
    u64 now = klog::now_ns();

    char line[LogRing::max_text_length + 64];
    usize prefix = format(line, sizeof(line), "[%5llu.%06llu] ", (unsigned long long)(now / 1000000000), (unsigned long long)(now % 1000000000 / 1000));
    usize total = prefix + length;
    if (total > sizeof(line) - 2)
        total = sizeof(line) - 2;
    __builtin_memcpy(line + prefix, text, total - prefix);
    line[total++] = '\n';

    SpinlockLocker locker(klog::g_lock);
    klog::g_ring.append(level, now, StringView(text, length));
    if (level <= klog::g_console_level)
        klog::write_consoles_locked(line, total);
}
