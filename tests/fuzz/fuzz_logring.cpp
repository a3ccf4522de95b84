// Fuzzes LogRing with a byte-coded sequence of append and read operations against a simple model.
//
// Input: byte 0 picks the storage size; then each operation is an opcode byte followed by operands.
//   op % 3 == 0: append  - length byte (text from the following input bytes), level byte
//   op % 3 == 1: read    - sequence offset byte, relative to first_sequence() - 8
//   op % 3 == 2: scan    - reads every stored record with a small buffer size taken from the op
// Invariants: sequence numbers are contiguous, dropped + stored == appended, used <= capacity,
// every stored record reads back exactly as the model says, overwritten ones fail to read.
#include <lib/log/LogRing.h>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>

namespace {

struct ModelRecord {
    u64 sequence;
    u64 timestamp;
    u8 level;
    std::string text;
};

void check(bool condition, const char* what)
{
    if (!condition) {
        __builtin_printf("invariant failed: %s\n", what);
        abort();
    }
}

void check_record(LogRing& ring, const ModelRecord& expected, usize buffer_size)
{
    char* buffer = buffer_size ? static_cast<char*>(malloc(buffer_size)) : nullptr;
    LogRecord record;
    check(ring.read(expected.sequence, record, buffer, buffer_size), "stored record reads");
    check(record.sequence == expected.sequence, "sequence");
    check(record.timestamp_ns == expected.timestamp, "timestamp");
    check(record.level == expected.level, "level");
    check(record.length == expected.text.size(), "length");
    usize copied = buffer_size ? std::min(expected.text.size(), buffer_size - 1) : 0;
    check(record.text.length() == copied, "copied length");
    check(copied == 0 || memcmp(record.text.characters(), expected.text.data(), copied) == 0, "text");
    if (buffer_size)
        check(buffer[copied] == '\0', "terminator");
    free(buffer);
}

}

extern "C" int LLVMFuzzerTestOneInput(const u8* data, size_t size)
{
    if (size < 1)
        return 0;
    usize capacity = LogRing::minimum_storage + data[0] * 3;
    // Heap storage so ASan catches any byte written outside it.
    auto* storage = static_cast<u8*>(malloc(capacity));
    LogRing ring(Span<u8>(storage, capacity));
    std::deque<ModelRecord> model;
    u64 appended = 0;
    u64 timestamp = 0;

    usize i = 1;
    while (i < size) {
        u8 op = data[i++];
        switch (op % 3) {
        case 0: {
            usize length = i < size ? data[i++] : 0;
            if (op & 0x80)
                length *= 8; // Sometimes longer than the whole ring or max_text_length.
            u8 level = i < size ? data[i++] & 7 : 6;
            std::string text;
            for (usize k = 0; k < length; ++k)
                text.push_back((char)(i + k < size ? data[i + k] : 'a' + k % 26));
            i += std::min(length, size - i);
            timestamp += op;
            ring.append(level, timestamp, StringView(text.data(), text.size()));
            text.resize(std::min(text.size(), ring.max_text()));
            model.push_back({ appended++, timestamp, level, text });
            // Drop from the model exactly what must have been dropped: records are packed.
            usize used = 0;
            for (auto& record : model)
                used += LogRing::header_size + record.text.size();
            while (used > capacity) {
                used -= LogRing::header_size + model.front().text.size();
                model.pop_front();
            }
            check(ring.used_bytes() == used, "used bytes match the model");
            break;
        }
        case 1: {
            u8 offset = i < size ? data[i++] : 0;
            u64 sequence = ring.first_sequence() + offset - std::min<u64>(8, ring.first_sequence());
            bool stored = sequence >= ring.first_sequence() && sequence < ring.next_sequence();
            if (stored) {
                check_record(ring, model[sequence - ring.first_sequence()], 64);
            } else {
                char buffer[8];
                LogRecord record;
                check(!ring.read(sequence, record, buffer, sizeof buffer), "missing record fails");
            }
            break;
        }
        default:
            for (auto& record : model)
                check_record(ring, record, op % 40);
            break;
        }
        check(ring.next_sequence() == appended, "next sequence counts appends");
        check(ring.record_count() == model.size(), "record count matches the model");
        check(model.empty() || ring.first_sequence() == model.front().sequence, "first sequence");
        check(ring.dropped() + ring.record_count() == appended, "dropped + stored == appended");
        check(ring.used_bytes() <= capacity, "used <= capacity");
    }
    free(storage);
    return 0;
}
