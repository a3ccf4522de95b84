#pragma once
// The kernel log ring: fixed-size storage for log records, read later by dmesg.
//
// Interface:
//   LogRing ring(Span<u8>(storage));      - the caller owns the bytes (a static array in the kernel).
//   ring.append(level, timestamp_ns, text) - stores a record; the oldest whole records make room.
//   for (u64 seq = ring.first_sequence(); seq < ring.next_sequence(); ++seq)
//       ring.read(seq, record, text_buffer, sizeof text_buffer);
//
// Every record gets the next sequence number, starting at 0, so a reader can tell what it missed:
// read() fails for a sequence that was overwritten or not yet written. The ring is not locked;
// the kernel log wraps it in its own lock.
//
// Layout: records are packed back to back and may straddle the end of the storage:
//
//   | ... | seq:8 | timestamp:8 | level:1 | length:2 | text:length | seq:8 | ...
//           ^ m_tail (oldest)                                               ^ m_head (next write)
#include <ktl/Span.h>
#include <ktl/StringView.h>
#include <ktl/Types.h>

// Linux console log levels: KERN_EMERG is 0, KERN_DEBUG is 7.
enum class LogLevel : u8 { Emergency = 0, Alert, Critical, Error, Warning, Notice, Info, Debug };

struct LogRecord {
    u64 sequence { 0 };
    u64 timestamp_ns { 0 };
    u8 level { 0 };
    // Length of the stored text; the copy in `text` is shorter if the reader's buffer was.
    u16 length { 0 };
    StringView text;
};

class LogRing {
public:
    static constexpr usize header_size = 8 + 8 + 1 + 2;
    // Longer messages are truncated, as Linux truncates at LOG_LINE_MAX.
    static constexpr usize max_text_length = 1024;
    // Enough storage for at least one header and one byte of text.
    static constexpr usize minimum_storage = header_size + 1;

    explicit LogRing(Span<u8> storage);
    LogRing(const LogRing&) = delete;
    LogRing& operator=(const LogRing&) = delete;

    void append(u8 level, u64 timestamp_ns, StringView text);

    // Copies record `sequence` out. The text is copied up to capacity - 1 bytes and NUL-terminated.
    // Returns false if the record was overwritten or has not been written yet.
    bool read(u64 sequence, LogRecord& out, char* text_buffer, usize capacity);

    // The oldest record still stored; equals next_sequence() when the ring is empty.
    u64 first_sequence() const { return m_first_sequence; }
    u64 next_sequence() const { return m_next_sequence; }
    usize record_count() const { return (usize)(m_next_sequence - m_first_sequence); }
    // Records overwritten to make room since the ring was created.
    usize dropped() const { return m_dropped; }
    usize used_bytes() const { return m_used; }
    usize capacity() const { return m_storage.size(); }
    // The longest text append() keeps whole, given the storage size.
    usize max_text() const;

private:
    void write_bytes(usize offset, const void* data, usize length);
    void read_bytes(usize offset, void* data, usize length) const;
    usize wrap(usize offset) const { return offset >= m_storage.size() ? offset - m_storage.size() : offset; }
    u16 text_length_at(usize offset) const;
    void drop_oldest();

    Span<u8> m_storage;
    usize m_tail { 0 }; // Offset of the oldest record.
    usize m_head { 0 }; // Offset where the next record goes.
    usize m_used { 0 };
    u64 m_first_sequence { 0 };
    u64 m_next_sequence { 0 };
    usize m_dropped { 0 };
    // Where the last read() found its record: records never move, so a sequential reader
    // continues from here instead of walking from the oldest record each time.
    u64 m_cursor_sequence { 0 };
    usize m_cursor_offset { 0 };
};

// Formats a record as dmesg prints it, "[    1.234567] text", NUL-terminated; snprintf semantics.
usize format_log_record(const LogRecord& record, char* buffer, usize capacity);
