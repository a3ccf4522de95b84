// Host tests for the kernel log ring: ordering, overwrite of whole records, truncation, wrap.
#include <lib/log/LogRing.h>

#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace {

std::string read_text(LogRing& ring, u64 sequence, LogRecord* record_out = nullptr)
{
    char text[2048];
    LogRecord record;
    if (!ring.read(sequence, record, text, sizeof text))
        return "<missing>";
    if (record_out)
        *record_out = record;
    return std::string(record.text.characters(), record.text.length());
}

}

TEST(LogRingTest, EmptyRing)
{
    u8 storage[256];
    LogRing ring(Span<u8>(storage, sizeof storage));
    EXPECT_EQ(ring.first_sequence(), 0u);
    EXPECT_EQ(ring.next_sequence(), 0u);
    EXPECT_EQ(ring.record_count(), 0u);
    EXPECT_EQ(ring.dropped(), 0u);
    char text[8];
    LogRecord record;
    EXPECT_FALSE(ring.read(0, record, text, sizeof text));
}

TEST(LogRingTest, AppendAndReadBack)
{
    u8 storage[256];
    LogRing ring(Span<u8>(storage, sizeof storage));
    ring.append(6, 1'234'567'000, "hello");
    ring.append(3, 2'000'000'000, "world!");
    EXPECT_EQ(ring.record_count(), 2u);
    EXPECT_EQ(ring.next_sequence(), 2u);

    LogRecord record;
    EXPECT_EQ(read_text(ring, 0, &record), "hello");
    EXPECT_EQ(record.sequence, 0u);
    EXPECT_EQ(record.level, 6);
    EXPECT_EQ(record.timestamp_ns, 1'234'567'000u);
    EXPECT_EQ(record.length, 5);
    EXPECT_EQ(read_text(ring, 1, &record), "world!");
    EXPECT_EQ(record.level, 3);
    EXPECT_EQ(read_text(ring, 2), "<missing>");
}

TEST(LogRingTest, ReadNulTerminatesAndTruncatesToBuffer)
{
    u8 storage[256];
    LogRing ring(Span<u8>(storage, sizeof storage));
    ring.append(6, 0, "abcdefgh");
    char text[4] = { 'Z', 'Z', 'Z', 'Z' };
    LogRecord record;
    ASSERT_TRUE(ring.read(0, record, text, sizeof text));
    EXPECT_STREQ(text, "abc");
    EXPECT_EQ(record.length, 8) << "length is the stored length, not the copied one";
    EXPECT_EQ(record.text.length(), 3u);
    ASSERT_TRUE(ring.read(0, record, nullptr, 0));
    EXPECT_EQ(record.text.length(), 0u);
}

TEST(LogRingTest, OverwritesOldestWholeRecords)
{
    // Room for exactly three records of 10 bytes of text each.
    constexpr usize record_size = LogRing::header_size + 10;
    u8 storage[record_size * 3];
    LogRing ring(Span<u8>(storage, sizeof storage));
    for (int i = 0; i < 3; ++i)
        ring.append(6, (u64)i, "0123456789");
    EXPECT_EQ(ring.record_count(), 3u);
    EXPECT_EQ(ring.dropped(), 0u);

    ring.append(6, 3, "abcdefghij");
    EXPECT_EQ(ring.first_sequence(), 1u);
    EXPECT_EQ(ring.next_sequence(), 4u);
    EXPECT_EQ(ring.dropped(), 1u);
    EXPECT_EQ(read_text(ring, 0), "<missing>");
    EXPECT_EQ(read_text(ring, 3), "abcdefghij");

    // A record bigger than one slot pushes out two.
    ring.append(6, 4, "this text is longer than ten");
    EXPECT_EQ(ring.first_sequence(), 3u);
    EXPECT_EQ(ring.dropped(), 3u);
    EXPECT_EQ(read_text(ring, 3), "abcdefghij");
    EXPECT_EQ(read_text(ring, 4), "this text is longer than ten");
}

TEST(LogRingTest, RecordsStraddlingTheEndReadBackIntact)
{
    u8 storage[100];
    LogRing ring(Span<u8>(storage, sizeof storage));
    std::vector<std::string> written;
    for (int i = 0; i < 200; ++i) {
        std::string text = "message number " + std::to_string(i * 7919);
        text.resize(5 + i % 23, '.');
        ring.append((u8)(i % 8), (u64)i * 1000, StringView(text.data(), text.size()));
        written.push_back(text);
        EXPECT_LE(ring.used_bytes(), sizeof storage);
        for (u64 seq = ring.first_sequence(); seq < ring.next_sequence(); ++seq) {
            LogRecord record;
            ASSERT_EQ(read_text(ring, seq, &record), written[seq]) << "seq " << seq;
            ASSERT_EQ(record.level, seq % 8);
            ASSERT_EQ(record.timestamp_ns, seq * 1000);
        }
    }
    EXPECT_EQ(ring.dropped() + ring.record_count(), 200u);
}

TEST(LogRingTest, OverlongMessagesAreTruncated)
{
    u8 storage[4096];
    LogRing ring(Span<u8>(storage, sizeof storage));
    std::string huge(3000, 'x');
    ring.append(4, 0, StringView(huge.data(), huge.size()));
    LogRecord record;
    EXPECT_EQ(read_text(ring, 0, &record), std::string(LogRing::max_text_length, 'x'));
    EXPECT_EQ(record.length, LogRing::max_text_length);
}

TEST(LogRingTest, MessageLargerThanStorageKeepsOnlyItself)
{
    u8 storage[64];
    LogRing ring(Span<u8>(storage, sizeof storage));
    ring.append(6, 0, "first");
    std::string big(500, 'y');
    ring.append(6, 1, StringView(big.data(), big.size()));
    EXPECT_EQ(ring.record_count(), 1u);
    EXPECT_EQ(ring.first_sequence(), 1u);
    EXPECT_EQ(read_text(ring, 1), std::string(sizeof storage - LogRing::header_size, 'y'));
    EXPECT_EQ(ring.used_bytes(), sizeof storage);
}

TEST(LogRingTest, EmptyMessages)
{
    u8 storage[64];
    LogRing ring(Span<u8>(storage, sizeof storage));
    ring.append(7, 5, StringView());
    ring.append(7, 6, StringView(nullptr, 0));
    EXPECT_EQ(read_text(ring, 0), "");
    EXPECT_EQ(read_text(ring, 1), "");
    EXPECT_EQ(ring.used_bytes(), 2 * LogRing::header_size);
}

TEST(LogRingTest, RandomAccessReadsAfterSequentialOnes)
{
    u8 storage[512];
    LogRing ring(Span<u8>(storage, sizeof storage));
    for (int i = 0; i < 20; ++i)
        ring.append(6, 0, StringView(std::to_string(i).c_str()));
    // Backwards and skipping: the read cursor must not be trusted past its validity.
    for (int seq = 19; seq >= 0; seq -= 3)
        EXPECT_EQ(read_text(ring, (u64)seq), std::to_string(seq));
    EXPECT_EQ(read_text(ring, 5), "5");
    EXPECT_EQ(read_text(ring, 17), "17");
    EXPECT_EQ(read_text(ring, 2), "2");
}

TEST(LogRingTest, CursorSurvivesOverwrite)
{
    constexpr usize record_size = LogRing::header_size + 4;
    u8 storage[record_size * 4];
    LogRing ring(Span<u8>(storage, sizeof storage));
    for (int i = 0; i < 4; ++i)
        ring.append(6, 0, "aaaa");
    EXPECT_EQ(read_text(ring, 1), "aaaa");
    // Records 0 and 1 go; the cursor at 1 is now stale.
    ring.append(6, 0, "bbbb");
    ring.append(6, 0, "cccc");
    EXPECT_EQ(read_text(ring, 1), "<missing>");
    EXPECT_EQ(read_text(ring, 4), "bbbb");
    EXPECT_EQ(read_text(ring, 5), "cccc");
    EXPECT_EQ(read_text(ring, 2), "aaaa");
}

TEST(LogRingTest, FormatsLikeDmesg)
{
    char line[64];
    LogRecord record;
    record.timestamp_ns = 1'234'567'890;
    record.text = StringView("pmm: ready");
    EXPECT_EQ(format_log_record(record, line, sizeof line), 25u);
    EXPECT_STREQ(line, "[    1.234567] pmm: ready");
    record.timestamp_ns = 123'456'000'001'000;
    format_log_record(record, line, sizeof line);
    EXPECT_STREQ(line, "[123456.000001] pmm: ready");
    record.timestamp_ns = 0;
    record.text = StringView("x");
    format_log_record(record, line, sizeof line);
    EXPECT_STREQ(line, "[    0.000000] x");
}
