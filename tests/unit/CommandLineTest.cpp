// The library header comes first: ktl/Errno.h defines errno names that <cerrno> would turn into macros.
#include <lib/boot/CommandLine.h>

#include <gtest/gtest.h>

#include <string>

namespace {

std::string sv(StringView view) { return std::string(view.characters(), view.length()); }

} // namespace

TEST(CommandLine, EmptyAndBlank)
{
    CommandLine cmdline;
    ASSERT_FALSE(cmdline.parse("").is_error());
    EXPECT_EQ(cmdline.entry_count(), 0u);
    ASSERT_FALSE(cmdline.parse("   \t  ").is_error());
    EXPECT_EQ(cmdline.entry_count(), 0u);
    EXPECT_FALSE(cmdline.has("x"));
}

TEST(CommandLine, KeyValuesAndFlags)
{
    CommandLine cmdline;
    ASSERT_FALSE(cmdline.parse("console=serial quiet  selftest=all\tloglevel=7").is_error());
    EXPECT_EQ(cmdline.entry_count(), 4u);
    EXPECT_TRUE(cmdline.has("quiet"));
    EXPECT_TRUE(cmdline.has("console"));
    EXPECT_FALSE(cmdline.has("consol"));
    EXPECT_EQ(sv(cmdline.get("console")), "serial");
    EXPECT_EQ(sv(cmdline.get("selftest")), "all");
    EXPECT_EQ(sv(cmdline.get("quiet", "fallback")), "");
    EXPECT_EQ(sv(cmdline.get("missing", "fallback")), "fallback");
    EXPECT_FALSE(cmdline.entry(1).has_value);
    EXPECT_TRUE(cmdline.entry(0).has_value);
}

TEST(CommandLine, EmptyValue)
{
    CommandLine cmdline;
    ASSERT_FALSE(cmdline.parse("root= x").is_error());
    EXPECT_TRUE(cmdline.has("root"));
    EXPECT_TRUE(cmdline.entry(0).has_value);
    EXPECT_EQ(sv(cmdline.get("root", "fb")), "");
}

TEST(CommandLine, QuotedValues)
{
    CommandLine cmdline;
    ASSERT_FALSE(cmdline.parse("init=\"/bin/sh -x\" name=\"\" after").is_error());
    EXPECT_EQ(sv(cmdline.get("init")), "/bin/sh -x");
    EXPECT_TRUE(cmdline.has("name"));
    EXPECT_EQ(sv(cmdline.get("name", "fb")), "");
    EXPECT_TRUE(cmdline.has("after"));
    EXPECT_EQ(cmdline.entry_count(), 3u);
}

TEST(CommandLine, ValueMayContainEquals)
{
    CommandLine cmdline;
    ASSERT_FALSE(cmdline.parse("opt=a=b").is_error());
    EXPECT_EQ(sv(cmdline.get("opt")), "a=b");
}

TEST(CommandLine, LastOccurrenceWins)
{
    CommandLine cmdline;
    ASSERT_FALSE(cmdline.parse("smp=2 x smp=4").is_error());
    EXPECT_EQ(MUST(cmdline.get_u64("smp")), 4u);
}

TEST(CommandLine, UnterminatedQuote)
{
    CommandLine cmdline;
    auto result = cmdline.parse("a=1 init=\"/bin/sh");
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), EINVAL);
    EXPECT_STREQ(cmdline.error(), "command line: unterminated quote");
    EXPECT_EQ(cmdline.entry_count(), 0u);
    EXPECT_FALSE(cmdline.has("a"));
}

TEST(CommandLine, GarbageAroundQuotes)
{
    CommandLine cmdline;
    EXPECT_TRUE(cmdline.parse("a=\"x\"y").is_error());
    EXPECT_TRUE(cmdline.parse("a=x\"y\"").is_error());
    EXPECT_TRUE(cmdline.parse("\"a\"=1").is_error());
    EXPECT_TRUE(cmdline.parse("=1").is_error());
    EXPECT_STREQ(cmdline.error(), "command line: entry with an empty key");
}

TEST(CommandLine, TooManyEntries)
{
    std::string text;
    for (int i = 0; i < 32; ++i)
        text += "k" + std::to_string(i) + "=v ";
    CommandLine cmdline;
    ASSERT_FALSE(cmdline.parse(StringView(text.data(), text.size())).is_error());
    EXPECT_EQ(cmdline.entry_count(), 32u);
    text += "one_more";
    auto result = cmdline.parse(StringView(text.data(), text.size()));
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), E2BIG);
    EXPECT_STREQ(cmdline.error(), "command line: more than 32 entries");
}

TEST(CommandLine, KeyTooLong)
{
    std::string key64(64, 'k'), key65(65, 'k');
    CommandLine cmdline;
    ASSERT_FALSE(cmdline.parse(StringView(key64.data(), key64.size())).is_error());
    std::string text = key65 + "=1";
    auto result = cmdline.parse(StringView(text.data(), text.size()));
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ENAMETOOLONG);
}

TEST(CommandLine, GetU64)
{
    CommandLine cmdline;
    ASSERT_FALSE(cmdline.parse("a=42 b=0x1F c=0XfF d=18446744073709551615 e=18446744073709551616 f=0x10000000000000000 g=12z h=0x i= flag j=-1").is_error());
    EXPECT_EQ(MUST(cmdline.get_u64("a")), 42u);
    EXPECT_EQ(MUST(cmdline.get_u64("b")), 0x1fu);
    EXPECT_EQ(MUST(cmdline.get_u64("c")), 0xffu);
    EXPECT_EQ(MUST(cmdline.get_u64("d")), 18446744073709551615ull);
    EXPECT_EQ(cmdline.get_u64("e").error().code(), ERANGE);
    EXPECT_EQ(cmdline.get_u64("f").error().code(), ERANGE);
    EXPECT_EQ(cmdline.get_u64("g").error().code(), EINVAL);
    EXPECT_EQ(cmdline.get_u64("h").error().code(), EINVAL);
    EXPECT_EQ(cmdline.get_u64("i").error().code(), EINVAL);
    EXPECT_EQ(cmdline.get_u64("j").error().code(), EINVAL);
    EXPECT_EQ(cmdline.get_u64("flag").error().code(), ENOENT);
    EXPECT_EQ(cmdline.get_u64("absent").error().code(), ENOENT);
}

TEST(CommandLine, GetBool)
{
    CommandLine cmdline;
    ASSERT_FALSE(cmdline.parse("a=1 b=true c=yes d=on e=0 f=false g=no h=off flag weird=maybe").is_error());
    for (auto key : { "a", "b", "c", "d", "flag" })
        EXPECT_TRUE(cmdline.get_bool(key)) << key;
    for (auto key : { "e", "f", "g", "h" })
        EXPECT_FALSE(cmdline.get_bool(key, true)) << key;
    EXPECT_TRUE(cmdline.get_bool("weird", true));
    EXPECT_FALSE(cmdline.get_bool("weird", false));
    EXPECT_TRUE(cmdline.get_bool("absent", true));
    EXPECT_FALSE(cmdline.get_bool("absent"));
}

TEST(CommandLine, ParseU64Directly)
{
    EXPECT_EQ(MUST(CommandLine::parse_u64("0")), 0u);
    EXPECT_EQ(MUST(CommandLine::parse_u64("0x0")), 0u);
    EXPECT_TRUE(CommandLine::parse_u64("").is_error());
    EXPECT_TRUE(CommandLine::parse_u64(" 1").is_error());
}

TEST(CommandLine, ReparseReplacesEntries)
{
    CommandLine cmdline;
    ASSERT_FALSE(cmdline.parse("a b c").is_error());
    ASSERT_FALSE(cmdline.parse("d").is_error());
    EXPECT_EQ(cmdline.entry_count(), 1u);
    EXPECT_FALSE(cmdline.has("a"));
}
