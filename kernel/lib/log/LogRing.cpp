// The kernel log ring; see LogRing.h for the record layout.
#include <lib/text/Format.h>
#include <lib/log/LogRing.h>

LogRing::LogRing(Span<u8> storage)
    : m_storage(storage)
{
    VERIFY(storage.size() >= minimum_storage);
}

usize LogRing::max_text() const
{
    usize room = m_storage.size() - header_size;
    return room < max_text_length ? room : max_text_length;
}

void LogRing::write_bytes(usize offset, const void* data, usize length)
{
    usize first = m_storage.size() - offset;
    if (first > length)
        first = length;
    __builtin_memcpy(m_storage.data() + offset, data, first);
    __builtin_memcpy(m_storage.data(), static_cast<const u8*>(data) + first, length - first);
}

void LogRing::read_bytes(usize offset, void* data, usize length) const
{
    usize first = m_storage.size() - offset;
    if (first > length)
        first = length;
    __builtin_memcpy(data, m_storage.data() + offset, first);
    __builtin_memcpy(static_cast<u8*>(data) + first, m_storage.data(), length - first);
}

u16 LogRing::text_length_at(usize offset) const
{
    u16 length;
    read_bytes(wrap(offset + 17), &length, sizeof length);
    return length;
}

void LogRing::drop_oldest()
{
    VERIFY(m_first_sequence < m_next_sequence);
    usize size = header_size + text_length_at(m_tail);
    m_tail = wrap(m_tail + size);
    m_used -= size;
    ++m_first_sequence;
    ++m_dropped;
}

void LogRing::append(u8 level, u64 timestamp_ns, StringView text)
{
    usize length = text.length() < max_text() ? text.length() : max_text();
    usize size = header_size + length;
    // Free whole records until the new one fits: a reader never sees half a record.
    while (m_storage.size() - m_used < size)
        drop_oldest();

    u8 header[header_size];
    u64 sequence = m_next_sequence;
    u16 length16 = (u16)length;
    __builtin_memcpy(header, &sequence, 8);
    __builtin_memcpy(header + 8, &timestamp_ns, 8);
    header[16] = level;
    __builtin_memcpy(header + 17, &length16, 2);
    write_bytes(m_head, header, header_size);
    if (length > 0)
        write_bytes(wrap(m_head + header_size), text.characters(), length);

    m_head = wrap(m_head + size);
    m_used += size;
    ++m_next_sequence;
}

bool LogRing::read(u64 sequence, LogRecord& out, char* text_buffer, usize capacity)
{
    if (sequence < m_first_sequence || sequence >= m_next_sequence)
        return false;

    u64 at_sequence = m_first_sequence;
    usize offset = m_tail;
    if (m_cursor_sequence >= m_first_sequence && m_cursor_sequence <= sequence && m_cursor_sequence < m_next_sequence) {
        at_sequence = m_cursor_sequence;
        offset = m_cursor_offset;
    }
    for (; at_sequence < sequence; ++at_sequence)
        offset = wrap(offset + header_size + text_length_at(offset));
    m_cursor_sequence = sequence;
    m_cursor_offset = offset;

    u8 header[header_size];
    read_bytes(offset, header, header_size);
    __builtin_memcpy(&out.sequence, header, 8);
    __builtin_memcpy(&out.timestamp_ns, header + 8, 8);
    out.level = header[16];
    __builtin_memcpy(&out.length, header + 17, 2);
    VERIFY(out.sequence == sequence);

    usize copied = 0;
    if (capacity > 0) {
        copied = out.length < capacity - 1 ? out.length : capacity - 1;
        read_bytes(wrap(offset + header_size), text_buffer, copied);
        text_buffer[copied] = '\0';
    }
    out.text = StringView(text_buffer, copied);
    return true;
}

usize format_log_record(const LogRecord& record, char* buffer, usize capacity)
{
    u64 seconds = record.timestamp_ns / 1'000'000'000;
    u64 microseconds = (record.timestamp_ns % 1'000'000'000) / 1000;
    return format(buffer, capacity, "[%5llu.%06llu] %.*s", (unsigned long long)seconds,
        (unsigned long long)microseconds, (int)record.text.length(), record.text.characters());
}
