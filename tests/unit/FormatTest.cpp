// Differential tests: kernel format() must agree with the host's snprintf, byte for byte.
#include <lib/text/Format.h>

#include <gtest/gtest.h>
#include <climits>
#include <cstdio>
#include <random>
#include <string>

namespace {

struct Formatted {
    std::string text;
    usize length;
};

// Runs both formatters on the same arguments; returns {ours, theirs}.
template<typename... Args>
std::pair<Formatted, Formatted> run_both(const char* fmt, Args... args)
{
    char ours[512];
    char theirs[512];
    __builtin_memset(ours, 'Z', sizeof ours);
    __builtin_memset(theirs, 'Z', sizeof theirs);
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wformat-nonliteral"
#pragma clang diagnostic ignored "-Wformat-security"
    usize our_length = format(ours, sizeof ours, fmt, args...);
    int their_length = snprintf(theirs, sizeof theirs, fmt, args...);
#pragma clang diagnostic pop
    return { { ours, our_length }, { theirs, (usize)their_length } };
}

#define EXPECT_SAME(fmt, ...)                                                         \
    do {                                                                              \
        auto [ours, theirs] = run_both(fmt __VA_OPT__(, ) __VA_ARGS__);               \
        EXPECT_EQ(ours.text, theirs.text) << "format: \"" << (fmt) << "\"";           \
        EXPECT_EQ(ours.length, theirs.length) << "format: \"" << (fmt) << "\"";       \
    } while (0)

}

TEST(FormatTest, PlainText)
{
    EXPECT_SAME("hello, world");
    EXPECT_SAME("");
    EXPECT_SAME("100%% sure");
}

TEST(FormatTest, SignedDecimal)
{
    EXPECT_SAME("%d %i", 0, -1);
    EXPECT_SAME("%d|%d|%d", INT_MAX, INT_MIN, 42);
    EXPECT_SAME("%lld|%lld", LLONG_MAX, LLONG_MIN);
    EXPECT_SAME("%ld|%li", LONG_MIN, -123456789L);
}

TEST(FormatTest, UnsignedConversions)
{
    EXPECT_SAME("%u %x %X %o", 0u, 0u, 0u, 0u);
    EXPECT_SAME("%u %x %X %o", UINT_MAX, UINT_MAX, UINT_MAX, UINT_MAX);
    EXPECT_SAME("%llu %llx %llX %llo", ULLONG_MAX, ULLONG_MAX, ULLONG_MAX, ULLONG_MAX);
    EXPECT_SAME("%x %X", 0xdeadbeefu, 0xcafef00du);
}

TEST(FormatTest, CharLengthModifiers)
{
    EXPECT_SAME("%hhd %hhu %hhx", 300, 300, -1);
    EXPECT_SAME("%hhd %hhi", 128, -129);
}

TEST(FormatTest, ShortLengthModifiers)
{
    EXPECT_SAME("%hd %hu %hx", 70000, 70000, -1);
    EXPECT_SAME("%hd", -32768);
}

TEST(FormatTest, SizeAndPtrdiffAndIntmax)
{
    EXPECT_SAME("%zu %zx %zd", (size_t)-1, (size_t)0x1234, (ssize_t)-5);
    EXPECT_SAME("%td %tx", (ptrdiff_t)-77, (ptrdiff_t)0xff);
    EXPECT_SAME("%jd %ju %jx", (intmax_t)INT64_MIN, (uintmax_t)UINT64_MAX, (uintmax_t)0xabc);
}

TEST(FormatTest, WidthAndLeftAlign)
{
    EXPECT_SAME("[%5d][%-5d][%5u][%-8x]", 42, 42, 7u, 0xabu);
    EXPECT_SAME("[%1d][%2d]", 12345, -12345);
    EXPECT_SAME("[%-1d]", -3);
}

TEST(FormatTest, ZeroPadding)
{
    EXPECT_SAME("[%05d][%05d][%08x][%08X]", 42, -42, 0xbeefu, 0xbeefu);
    EXPECT_SAME("[%-05d]", 42);
    EXPECT_SAME("[%020llu]", ULLONG_MAX);
}

TEST(FormatTest, Precision)
{
    EXPECT_SAME("[%.5d][%.5d][%.0d][%.0d][%.3x]", 42, -42, 0, 7, 0xau);
    EXPECT_SAME("[%8.3d][%-8.3d][%08.3d]", 5, -5, 5);
    EXPECT_SAME("[%.0u][%.0x][%.0o][%5.0d]", 0u, 0u, 0u, 0);
}

TEST(FormatTest, SignFlags)
{
    EXPECT_SAME("[%+d][%+d][% d][% d][%+ d]", 5, -5, 5, -5, 5);
    EXPECT_SAME("[%+05d][% 05d][%+.3d]", 5, 5, 5);
    EXPECT_SAME("[%+u][% u][%+x]", 5u, 5u, 5u);
}

TEST(FormatTest, AlternateForms)
{
    EXPECT_SAME("[%#x][%#X][%#o][%#x][%#o]", 255u, 255u, 8u, 0u, 0u);
    EXPECT_SAME("[%#10x][%#-10x][%#010x]", 255u, 255u, 255u);
    EXPECT_SAME("[%#.0o][%#.0x][%#.5o][%#5.3x]", 0u, 0u, 8u, 1u);
    EXPECT_SAME("[%#llx][%#llo]", ULLONG_MAX, ULLONG_MAX);
}

TEST(FormatTest, StarWidthAndPrecision)
{
    EXPECT_SAME("[%*d][%-*d][%*d]", 6, 42, 6, 42, -6, 42);
    EXPECT_SAME("[%.*d][%.*d]", 4, 7, -1, 7);
    EXPECT_SAME("[%*.*x]", 10, 6, 0xabcu);
    EXPECT_SAME("[%.*s][%*s]", 3, "abcdef", 8, "ab");
}

TEST(FormatTest, Strings)
{
    EXPECT_SAME("[%s][%10s][%-10s]", "abc", "abc", "abc");
    EXPECT_SAME("[%.2s][%.0s][%.10s][%5.1s]", "abc", "abc", "abc", "xyz");
    EXPECT_SAME("[%s]", "");
}

TEST(FormatTest, NullString)
{
    const char* null = nullptr;
    EXPECT_SAME("[%s][%10s][%-8s]", null, null, null);
    // glibc prints nothing when the precision cannot fit all of "(null)".
    EXPECT_SAME("[%.3s][%.6s][%.8s]", null, null, null);
}

TEST(FormatTest, StringPrecisionDoesNotReadPastIt)
{
    // Not NUL-terminated: the precision must bound the read (ASan checks this).
    char chars[3] = { 'a', 'b', 'c' };
    char buffer[16];
    EXPECT_EQ(format(buffer, sizeof buffer, "%.3s", chars), 3u);
    EXPECT_STREQ(buffer, "abc");
}

TEST(FormatTest, Characters)
{
    EXPECT_SAME("[%c][%3c][%-3c]", 'a', 'b', 'c');
    EXPECT_SAME("[%c%c%c]", 'x', 'y', 'z');
}

TEST(FormatTest, Pointers)
{
    EXPECT_SAME("[%p][%p]", (void*)0x1234, (void*)0xffff800000001000ull);
    EXPECT_SAME("[%20p][%-20p]", (void*)0xabc, (void*)0xabc);
}

TEST(FormatTest, NullPointer)
{
    EXPECT_SAME("[%p][%10p][%-10p]", (void*)nullptr, (void*)nullptr, (void*)nullptr);
}

TEST(FormatTest, PointerFlagsMatchGlibc)
{
    // Clang warns about these flags with %p, but glibc honours them; so do we.
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wformat"
    EXPECT_SAME("[%+p][% p][%020p][%.10p][%08.3p]", (void*)0x12, (void*)0x12, (void*)0x12, (void*)0x12,
        (void*)0x12);
    EXPECT_SAME("[%.3p][%05p]", (void*)nullptr, (void*)nullptr);
#pragma clang diagnostic pop
}

TEST(FormatTest, PercentLiteralAndUnknownConversions)
{
    char buffer[32];
    // An unknown conversion is echoed as written, like glibc.
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wformat"
#pragma clang diagnostic ignored "-Wformat-invalid-specifier"
    EXPECT_EQ(format(buffer, sizeof buffer, "a%yb"), 4u);
    EXPECT_STREQ(buffer, "a%yb");
    EXPECT_EQ(format(buffer, sizeof buffer, "end%"), 4u);
    EXPECT_STREQ(buffer, "end%");
    // "%5%" is "%": glibc ignores the width (its ASan interceptor rejects the spec, so no snprintf here).
    EXPECT_EQ(format(buffer, sizeof buffer, "[%5%]"), 3u);
    EXPECT_STREQ(buffer, "[%]");
#pragma clang diagnostic pop
}

TEST(FormatTest, TruncationReturnsFullLength)
{
    char buffer[8];
    __builtin_memset(buffer, 'Z', sizeof buffer);
    EXPECT_EQ(format(buffer, 5, "%s-%d", "abcdef", 12), 9u);
    EXPECT_STREQ(buffer, "abcd");
    EXPECT_EQ(buffer[5], 'Z') << "wrote past the capacity";
}

TEST(FormatTest, ZeroCapacityWritesNothing)
{
    char byte = 'Z';
    EXPECT_EQ(format(&byte, 0, "%d", 12345), 5u);
    EXPECT_EQ(byte, 'Z');
    EXPECT_EQ(format(nullptr, 0, "%s", "abc"), 3u);
}

TEST(FormatTest, CapacityOneIsJustTheTerminator)
{
    char buffer[2] = { 'Z', 'Z' };
    EXPECT_EQ(format(buffer, 1, "xyz"), 3u);
    EXPECT_EQ(buffer[0], '\0');
    EXPECT_EQ(buffer[1], 'Z');
}

TEST(FormatTest, ExactFitIsTerminated)
{
    char buffer[4];
    EXPECT_EQ(format(buffer, sizeof buffer, "abc"), 3u);
    EXPECT_STREQ(buffer, "abc");
    EXPECT_EQ(format(buffer, sizeof buffer, "abcd"), 4u);
    EXPECT_STREQ(buffer, "abc");
}

namespace {
void emit_to_string(char c, void* ctx) { static_cast<std::string*>(ctx)->push_back(c); }

std::string vstream(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string vstream(const char* fmt, ...)
{
    std::string out;
    va_list args;
    va_start(args, fmt);
    vformat_to(emit_to_string, &out, fmt, args);
    va_end(args);
    return out;
}
}

TEST(FormatTest, StreamingFormMatchesBufferForm)
{
    EXPECT_EQ(vstream("%s=%#llx [%-4d]", "cr3", 0x1000ull, 7), "cr3=0x1000 [7   ]");
    std::string long_output = vstream("%300d", 1);
    EXPECT_EQ(long_output.size(), 300u);
    std::string direct;
    format_to(emit_to_string, &direct, "%c%c", 'o', 'k');
    EXPECT_EQ(direct, "ok");
}

TEST(FormatTest, VformatLeavesCallersArgumentsUntouched)
{
    // vformat works on a copy of the va_list (see Format.h), so one list can be formatted twice.
    auto twice = [](const char* fmt, ...) {
        va_list args;
        va_start(args, fmt);
        char a[32], b[32];
        vformat(a, sizeof a, fmt, args);
        vformat(b, sizeof b, fmt, args);
        va_end(args);
        return std::string(a) + "|" + b;
    };
    EXPECT_EQ(twice("%d-%s", 5, "x"), "5-x|5-x");
}

// Randomised differential test over flags, width, precision, length modifier and value.
TEST(FormatTest, RandomIntegerSpecsAgreeWithSnprintf)
{
    std::mt19937_64 rng(0x5eed);
    const char* flag_sets[] = { "", "-", "0", "+", " ", "#", "-+", "0#", "+0", " #", "-#0", "0 " };
    const char* lengths[] = { "hh", "h", "", "l", "ll", "z", "t", "j" };
    const char conversions[] = { 'd', 'i', 'u', 'x', 'X', 'o' };
    int checked = 0;
    for (int i = 0; i < 20000; ++i) {
        std::string fmt = "<%";
        fmt += flag_sets[rng() % std::size(flag_sets)];
        if (rng() % 2)
            fmt += std::to_string(rng() % 25);
        if (rng() % 2)
            fmt += "." + std::to_string(rng() % 25);
        const char* length = lengths[rng() % std::size(lengths)];
        fmt += length;
        char conversion = conversions[rng() % std::size(conversions)];
        fmt += conversion;
        fmt += ">";

        u64 raw = rng();
        switch (rng() % 4) {
        case 0: raw &= 0xff; break;
        case 1: raw = (u64)(i64)(i32)raw; break;
        case 2: raw = rng() % 3 == 0 ? 0 : (u64)-(i64)(raw % 1000); break;
        default: break;
        }
        std::string len(length);
        std::pair<Formatted, Formatted> result;
        if (len == "" || len == "h" || len == "hh")
            result = run_both(fmt.c_str(), (int)raw);
        else if (len == "l" || len == "z" || len == "t")
            result = run_both(fmt.c_str(), (long)raw);
        else
            result = run_both(fmt.c_str(), (long long)raw);
        ASSERT_EQ(result.first.text, result.second.text) << "format " << fmt << " value " << (i64)raw;
        ASSERT_EQ(result.first.length, result.second.length) << "format " << fmt;
        ++checked;
    }
    EXPECT_EQ(checked, 20000);
}

TEST(FormatTest, RandomStringAndCharSpecsAgreeWithSnprintf)
{
    std::mt19937_64 rng(1234);
    const char* strings[] = { "", "a", "kernel", "a longer string with spaces", nullptr };
    const char* flag_sets[] = { "", "-" };
    for (int i = 0; i < 5000; ++i) {
        std::string fmt = "{%";
        fmt += flag_sets[rng() % 2];
        if (rng() % 2)
            fmt += std::to_string(rng() % 40);
        bool is_char = rng() % 4 == 0;
        if (!is_char && rng() % 2)
            fmt += "." + std::to_string(rng() % 40);
        fmt += is_char ? "c}" : "s}";
        std::pair<Formatted, Formatted> result;
        if (is_char)
            result = run_both(fmt.c_str(), (int)(' ' + rng() % 94));
        else
            result = run_both(fmt.c_str(), strings[rng() % std::size(strings)]);
        ASSERT_EQ(result.first.text, result.second.text) << "format " << fmt;
        ASSERT_EQ(result.first.length, result.second.length) << "format " << fmt;
    }
}

TEST(FormatTest, RandomPointersAgreeWithSnprintf)
{
    std::mt19937_64 rng(99);
    for (int i = 0; i < 2000; ++i) {
        std::string fmt = "%";
        if (rng() % 2)
            fmt += "-";
        if (rng() % 2)
            fmt += std::to_string(rng() % 24);
        fmt += "p";
        void* pointer = rng() % 5 == 0 ? nullptr : (void*)(uptr)(rng() >> (rng() % 64));
        auto [ours, theirs] = run_both(fmt.c_str(), pointer);
        ASSERT_EQ(ours.text, theirs.text) << "format " << fmt;
    }
}

TEST(FormatTest, RandomTruncationAgreesWithSnprintf)
{
    std::mt19937_64 rng(7);
    for (int i = 0; i < 2000; ++i) {
        usize capacity = rng() % 24;
        long long value = (long long)rng();
        char ours[32], theirs[32];
        __builtin_memset(ours, 'Z', sizeof ours);
        __builtin_memset(theirs, 'Z', sizeof theirs);
        usize our_length = format(ours, capacity, "v=%lld/%s", value, "tail");
        int their_length = snprintf(theirs, capacity, "v=%lld/%s", value, "tail");
        ASSERT_EQ(our_length, (usize)their_length);
        ASSERT_EQ(0, __builtin_memcmp(ours, theirs, sizeof ours)) << "capacity " << capacity;
    }
}

TEST(FormatTest, MixedKernelStyleLines)
{
    EXPECT_SAME("[%5llu.%06llu] %s: %s", 12ull, 3456ull, "pmm", "ready");
    EXPECT_SAME("rip=%016llx rsp=%016llx err=%#x", 0xffffffff80001234ull, 0xffff800000ffffe0ull, 2u);
    EXPECT_SAME("%-10s|%10s|%c|%%|%o", "left", "right", '!', 0755u);
}
