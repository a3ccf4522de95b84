// The console print path: output longer than any internal buffer arrives whole, and where a
// limit remains (a log record's 1024 characters) the cut carries a visible mark.
#include <ktl/StringView.h>
#include <lib/log/LogRing.h>
#include <lib/text/Format.h>
#include <log/Log.h>
#include <test/KTest.h>

namespace {

constexpr usize CAPTURE_BYTES = 16 * 1024;
char g_capture[CAPTURE_BYTES];
usize g_captured = 0;
bool g_capture_overflowed = false;

void capture(const char* text, usize length)
{
    for (usize i = 0; i < length; ++i) {
        if (g_captured == CAPTURE_BYTES) {
            g_capture_overflowed = true;
            return;
        }
        g_capture[g_captured++] = text[i];
    }
}

void start_capture()
{
    g_captured = 0;
    g_capture_overflowed = false;
    klog::register_console(capture);
}

StringView captured() { return StringView(g_capture, g_captured); }

bool contains(StringView haystack, StringView needle)
{
    for (usize i = 0; i + needle.length() <= haystack.length(); ++i)
        if (haystack.substring(i, needle.length()) == needle)
            return true;
    return false;
}

bool ends_with(StringView text, StringView suffix)
{
    return text.length() >= suffix.length() && text.substring(text.length() - suffix.length()) == suffix;
}

char g_long[3000];

void fill_long(usize length)
{
    for (usize i = 0; i < length; ++i)
        g_long[i] = (char)('a' + i % 26);
    g_long[length] = 0;
}

void test_console_printf_longer_than_any_buffer_arrives_whole(ktest::Test& t)
{
    fill_long(2500);
    static char expected[4096];
    usize expected_length = format(expected, sizeof(expected), "<%s|%d|%s>\n", g_long, 12345, "end");
    start_capture();
    klog::console_printf("<%s|%d|%s>\n", g_long, 12345, "end");
    klog::unregister_console(capture);
    KEXPECT_FALSE(t, g_capture_overflowed);
    KEXPECT_EQ(t, g_captured, expected_length);
    KEXPECT_TRUE(t, captured() == StringView(expected, expected_length));
    KEXPECT_FALSE(t, contains(captured(), klog::TRUNCATION_MARK));
}

void test_console_printf_many_short_pieces(ktest::Test& t)
{
    // Many conversions across chunk boundaries: the order and every byte survive.
    start_capture();
    for (int i = 0; i < 50; ++i)
        klog::console_printf("%03d:%-20s|", i, "piece");
    klog::console_printf("\n"); // Keep the serial log's KTAP lines on lines of their own.
    klog::unregister_console(capture);
    KASSERT_EQ(t, g_captured, 50ul * 25 + 1);
    bool ordered = true;
    for (int i = 0; i < 50; ++i) {
        char piece[32];
        format(piece, sizeof(piece), "%03d:%-20s|", i, "piece");
        ordered &= captured().substring((usize)i * 25, 25) == StringView(piece);
    }
    KEXPECT_TRUE(t, ordered);
}

void test_unregistered_console_gets_nothing(ktest::Test& t)
{
    start_capture();
    klog::unregister_console(capture);
    klog::console_printf("not for the capture\n");
    KEXPECT_EQ(t, g_captured, 0ul);
}

// The last record in the log ring that starts with `tag`, replayed through the capture console,
// without its newline; empty when there is none.
StringView last_replayed_record(StringView tag)
{
    start_capture();
    klog::unregister_console(capture);
    klog::replay_ring(capture);
    StringView text = captured();
    isize at = -1;
    for (usize i = 0; i + tag.length() <= text.length(); ++i)
        if (text.substring(i, tag.length()) == tag)
            at = (isize)i;
    if (at < 0)
        return {};
    StringView line = text.substring((usize)at);
    isize newline = line.find('\n');
    return newline > 0 ? line.substring(0, (usize)newline) : StringView();
}

void test_overlong_log_message_is_marked(ktest::Test& t)
{
    // Longer than a record: the ring keeps the first 1024 characters, ending in the mark.
    fill_long(LogRing::max_text_length + 200);
    printk(LOG_DEBUG, "overlong-test %s", g_long);
    StringView line = last_replayed_record("overlong-test");
    KASSERT_TRUE(t, !line.is_empty());
    KEXPECT_EQ(t, line.length(), LogRing::max_text_length);
    KEXPECT_TRUE(t, ends_with(line, klog::TRUNCATION_MARK));
}

void test_log_message_that_fits_is_not_marked(ktest::Test& t)
{
    fill_long(LogRing::max_text_length - 13);
    printk(LOG_DEBUG, "fitting-test %s", g_long); // exactly max_text_length characters
    StringView line = last_replayed_record("fitting-test");
    KASSERT_TRUE(t, !line.is_empty());
    KEXPECT_EQ(t, line.length(), LogRing::max_text_length);
    KEXPECT_FALSE(t, ends_with(line, klog::TRUNCATION_MARK));
    KEXPECT_TRUE(t, ends_with(line, StringView(g_long + LogRing::max_text_length - 13 - 5)));
}

} // namespace

KTEST_SUITE(console_print,
    KTEST_CASE(test_console_printf_longer_than_any_buffer_arrives_whole),
    KTEST_CASE(test_console_printf_many_short_pieces),
    KTEST_CASE(test_unregistered_console_gets_nothing),
    KTEST_CASE(test_overlong_log_message_is_marked),
    KTEST_CASE(test_log_message_that_fits_is_not_marked));
