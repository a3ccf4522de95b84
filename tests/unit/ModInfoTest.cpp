// The library header comes first: ktl/Errno.h defines errno names that <cerrno> would turn into macros.
#include <lib/module/ModInfo.h>

#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <vector>

namespace {

std::string to_string(StringView s) { return std::string(s.characters(), s.length()); }

ReadonlyBytes bytes_of(const std::string& s) { return ReadonlyBytes(reinterpret_cast<const u8*>(s.data()), s.size()); }

// The ModInfo keeps views into the bytes it parsed: park test sections where they outlive it.
ReadonlyBytes kept(std::string bytes)
{
    static std::deque<std::string> storage;
    storage.push_back(std::move(bytes));
    return bytes_of(storage.back());
}

// Builds a section the way the compiler lays out __attribute__((section(".modinfo"))) strings.
std::string section(std::initializer_list<const char*> strings)
{
    std::string out;
    for (const char* s : strings) {
        out += s;
        out.push_back('\0');
    }
    return out;
}

std::vector<std::string> dependencies(const ModInfo& info)
{
    std::vector<std::string> out;
    info.for_each_dependency([&](StringView name) { out.push_back(to_string(name)); });
    return out;
}

std::vector<std::string> aliases(const ModInfo& info)
{
    std::vector<std::string> out;
    info.for_each_alias([&](StringView alias) { out.push_back(to_string(alias)); });
    return out;
}

// Parses and returns the error message, or "" on success.
std::string parse_error(const std::string& bytes)
{
    ModInfo info;
    auto result = info.parse(bytes_of(bytes));
    if (!result.is_error()) return "";
    EXPECT_EQ(result.error().code(), EINVAL);
    return info.error_message();
}

} // namespace

TEST(ModInfo, ParsesEveryField)
{
    auto bytes = section({ "license=GPL", "description=Virtio block driver", "author=Jane Doe", "author=John Roe",
        "name=virtio_blk", "version=1.2.3", "abi=1.0", "vermagic=homeos 0.1 SMP",
        "depends=virtio,virtio_ring", "alias=pci:v00001AF4d00001001sv*sd*bc*sc*i*",
        "alias=pci:v00001AF4d00001042sv*sd*bc*sc*i*", "srcversion=ABCDEF", "intree=Y" });
    ModInfo info;
    ASSERT_FALSE(info.parse(bytes_of(bytes)).is_error()) << info.error_message();
    EXPECT_EQ(to_string(info.name()), "virtio_blk");
    EXPECT_EQ(to_string(info.version()), "1.2.3");
    EXPECT_EQ(to_string(info.description()), "Virtio block driver");
    EXPECT_EQ(to_string(info.author()), "Jane Doe");
    EXPECT_EQ(to_string(info.license()), "GPL");
    EXPECT_EQ(to_string(info.vermagic()), "homeos 0.1 SMP");
    EXPECT_TRUE(info.has_abi());
    EXPECT_EQ(info.abi_major(), 1);
    EXPECT_EQ(info.abi_minor(), 0);
    EXPECT_EQ(dependencies(info), (std::vector<std::string> { "virtio", "virtio_ring" }));
    EXPECT_EQ(info.dependency_count(), 2u);
    EXPECT_EQ(aliases(info), (std::vector<std::string> { "pci:v00001AF4d00001001sv*sd*bc*sc*i*", "pci:v00001AF4d00001042sv*sd*bc*sc*i*" }));
    EXPECT_EQ(info.alias_count(), 2u);
    std::vector<std::string> authors;
    info.for_each_author([&](StringView a) { authors.push_back(to_string(a)); });
    EXPECT_EQ(authors, (std::vector<std::string> { "Jane Doe", "John Roe" }));
    EXPECT_STREQ(info.error_message(), "");
}

TEST(ModInfo, MinimalSectionHasOnlyAName)
{
    ModInfo info;
    ASSERT_FALSE(info.parse(kept(section({ "name=m" }))).is_error());
    EXPECT_EQ(to_string(info.name()), "m");
    EXPECT_FALSE(info.has_abi());
    EXPECT_TRUE(info.version().is_empty());
    EXPECT_EQ(info.dependency_count(), 0u);
    EXPECT_EQ(info.alias_count(), 0u);
    EXPECT_EQ(info.param_count(), 0u);
}

TEST(ModInfo, IgnoresPaddingAndEmptyStrings)
{
    std::string bytes = std::string("\0\0\0", 3) + "name=a" + std::string("\0\0\0\0", 4) + "license=MIT" + std::string(8, '\0');
    ModInfo info;
    ASSERT_FALSE(info.parse(bytes_of(bytes)).is_error()) << info.error_message();
    EXPECT_EQ(to_string(info.name()), "a");
    EXPECT_EQ(to_string(info.license()), "MIT");
}

TEST(ModInfo, AcceptsAnUnterminatedLastString)
{
    std::string bytes = section({ "license=GPL" }) + "name=last";
    ModInfo info;
    ASSERT_FALSE(info.parse(bytes_of(bytes)).is_error());
    EXPECT_EQ(to_string(info.name()), "last");
}

TEST(ModInfo, EmptyAndSparseDependencyLists)
{
    ModInfo info;
    ASSERT_FALSE(info.parse(kept(section({ "name=a", "depends=" }))).is_error());
    EXPECT_TRUE(dependencies(info).empty());
    ASSERT_FALSE(info.parse(kept(section({ "name=a", "depends=,b,,c," }))).is_error());
    EXPECT_EQ(dependencies(info), (std::vector<std::string> { "b", "c" }));
    // Linux modules carry one depends= line; several are read in order.
    ASSERT_FALSE(info.parse(kept(section({ "depends=x", "name=a", "depends=y" }))).is_error());
    EXPECT_EQ(dependencies(info), (std::vector<std::string> { "x", "y" }));
}

TEST(ModInfo, ParamsMergeParmAndParmtype)
{
    auto bytes = section({ "name=net", "parmtype=debug:int", "parm=debug:Debug level (0-7)", "parm=mac:MAC address: xx:xx",
        "parmtype=mac:charp", "parmtype=queues:uint", "parm=debug:second description is ignored" });
    ModInfo info;
    ASSERT_FALSE(info.parse(bytes_of(bytes)).is_error()) << info.error_message();
    std::vector<std::string> seen;
    info.for_each_param([&](const ModuleParam& p) {
        seen.push_back(to_string(p.name) + "|" + to_string(p.type) + "|" + to_string(p.description));
    });
    EXPECT_EQ(seen, (std::vector<std::string> { "debug|int|Debug level (0-7)", "mac|charp|MAC address: xx:xx", "queues|uint|" }));
    EXPECT_EQ(info.param_count(), 3u);
    ModuleParam p;
    ASSERT_TRUE(info.find_param("mac", p));
    EXPECT_EQ(to_string(p.type), "charp");
    EXPECT_FALSE(info.find_param("nope", p));
}

TEST(ModInfo, MalformedStringsAreErrors)
{
    EXPECT_EQ(parse_error(section({ "name=a", "garbage" })), "modinfo: string 1 ('garbage') has no '='");
    EXPECT_EQ(parse_error(section({ "=value", "name=a" })), "modinfo: string 0 ('=value') has an empty key");
    EXPECT_EQ(parse_error(section({ "parm=nocolon", "name=a" })), "modinfo: parm 'nocolon' is not NAME:DESCRIPTION");
    EXPECT_EQ(parse_error(section({ "parmtype=:int", "name=a" })), "modinfo: parmtype ':int' is not NAME:TYPE");
}

TEST(ModInfo, NameIsRequiredAndValid)
{
    EXPECT_EQ(parse_error(section({ "license=GPL" })), "modinfo: no name= entry");
    EXPECT_EQ(parse_error(""), "modinfo: no name= entry");
    EXPECT_EQ(parse_error(std::string(16, '\0')), "modinfo: no name= entry");
    EXPECT_NE(parse_error(section({ "name=" })), "");
    EXPECT_NE(parse_error(section({ "name=../evil" })), "");
    EXPECT_NE(parse_error(section({ "name=a/b" })), "");
    EXPECT_NE(parse_error(section({ "name=has space" })), "");
    EXPECT_NE(parse_error(section({ ("name=" + std::string(56, 'x')).c_str() })), "");
    EXPECT_EQ(parse_error(section({ ("name=" + std::string(55, 'x')).c_str() })), "");
    EXPECT_EQ(parse_error(section({ "name=virtio-net_2" })), "");
    EXPECT_NE(parse_error(section({ "name=a", "depends=ok,../../etc/passwd" })), "");
}

TEST(ModInfo, SingleValuedKeysMayNotRepeat)
{
    EXPECT_EQ(parse_error(section({ "name=a", "name=b" })), "modinfo: 'name' given twice");
    EXPECT_EQ(parse_error(section({ "name=a", "version=1", "version=2" })), "modinfo: 'version' given twice");
    EXPECT_EQ(parse_error(section({ "name=a", "abi=1.0", "abi=1.0" })), "modinfo: 'abi' given twice");
    EXPECT_EQ(parse_error(section({ "name=a", "alias=x", "alias=x" })), ""); // aliases repeat freely
}

TEST(ModInfo, AbiMustBeMajorDotMinor)
{
    ModInfo info;
    ASSERT_FALSE(info.parse(kept(section({ "name=a", "abi=65535.12" }))).is_error());
    EXPECT_EQ(info.abi_major(), 65535);
    EXPECT_EQ(info.abi_minor(), 12);
    for (const char* bad : { "abi=", "abi=1", "abi=1.", "abi=.1", "abi=1.2.3", "abi=a.b", "abi=65536.0", "abi=-1.0",
             "abi=+1.0", "abi= 1.0", "abi=1.0x", "abi=99999999999999999999.1" })
        EXPECT_NE(parse_error(section({ "name=a", bad })), "") << bad;
}

TEST(ModInfo, ReparsingResetsEverything)
{
    ModInfo info;
    ASSERT_FALSE(info.parse(kept(section({ "name=a", "version=1", "abi=2.3" }))).is_error());
    ASSERT_FALSE(info.parse(kept(section({ "name=b" }))).is_error());
    EXPECT_EQ(to_string(info.name()), "b");
    EXPECT_TRUE(info.version().is_empty());
    EXPECT_FALSE(info.has_abi());
}

TEST(ModAlias, MatchesTheVirtioExample)
{
    EXPECT_TRUE(modalias_match("pci:v00001AF4d00001005sv*sd*bc*sc*i*", "pci:v00001AF4d00001005sv00001AF4sd00000004bc00scFFi00"));
    EXPECT_FALSE(modalias_match("pci:v00001AF4d00001005sv*sd*bc*sc*i*", "pci:v00001AF4d00001006sv00001AF4sd00000004bc00scFFi00"));
    EXPECT_FALSE(modalias_match("pci:v00001AF4d00001005sv*sd*bc*sc*i*", "pci:v00001AF4d00001005sv00001AF4sd00000004bc00scFF"));
    EXPECT_TRUE(modalias_match("pci:v*d*sv*sd*bc01sc08i02*", "pci:v00008086d00005845sv00001AF4sd00001100bc01sc08i02"));
    EXPECT_FALSE(modalias_match("pci:v*d*sv*sd*bc01sc08i02*", "pci:v00008086d00005845sv00001AF4sd00001100bc01sc06i01"));
}

TEST(ModAlias, StarMatchesAnyRunIncludingNone)
{
    EXPECT_TRUE(modalias_match("*", ""));
    EXPECT_TRUE(modalias_match("*", "anything/at:all"));
    EXPECT_TRUE(modalias_match("a*", "a"));
    EXPECT_TRUE(modalias_match("*a", "a"));
    EXPECT_TRUE(modalias_match("a*b*c", "abc"));
    EXPECT_TRUE(modalias_match("a*b*c", "aXXbYYc"));
    EXPECT_TRUE(modalias_match("a**b", "ab"));
    EXPECT_FALSE(modalias_match("a*b", "a"));
    EXPECT_FALSE(modalias_match("a*b", "ba"));
    EXPECT_TRUE(modalias_match("*ab", "aab"));      // needs the star to backtrack
    EXPECT_TRUE(modalias_match("*aab*", "aaaab"));
    EXPECT_TRUE(modalias_match("x*/y", "x/a/b/y")); // no FNM_PATHNAME: '*' crosses '/'
}

TEST(ModAlias, QuestionMarkMatchesExactlyOne)
{
    EXPECT_TRUE(modalias_match("?", "x"));
    EXPECT_FALSE(modalias_match("?", ""));
    EXPECT_FALSE(modalias_match("?", "xy"));
    EXPECT_TRUE(modalias_match("usb:v?p*", "usb:vAp1234"));
    EXPECT_TRUE(modalias_match("??*", "ab"));
    EXPECT_FALSE(modalias_match("??*", "a"));
}

TEST(ModAlias, LiteralsEmptyAndCase)
{
    EXPECT_TRUE(modalias_match("", ""));
    EXPECT_FALSE(modalias_match("", "a"));
    EXPECT_FALSE(modalias_match("a", ""));
    EXPECT_TRUE(modalias_match("acpi:PNP0A03:", "acpi:PNP0A03:"));
    EXPECT_FALSE(modalias_match("pci:v00001af4*", "pci:v00001AF4d0"));
    EXPECT_FALSE(modalias_match("abc", "abcd"));
    EXPECT_FALSE(modalias_match("abcd", "abc"));
}

TEST(ModAlias, BracketExpressions)
{
    // Linux's file2alias writes ranges like these for USB bcdDevice.
    EXPECT_TRUE(modalias_match("usb:v0BDAp8187d0[0-1]*", "usb:v0BDAp8187d0100dc00"));
    EXPECT_FALSE(modalias_match("usb:v0BDAp8187d0[0-1]*", "usb:v0BDAp8187d0200dc00"));
    EXPECT_TRUE(modalias_match("[abc]", "b"));
    EXPECT_FALSE(modalias_match("[abc]", "d"));
    EXPECT_TRUE(modalias_match("[!abc]", "d"));
    EXPECT_FALSE(modalias_match("[!abc]", "a"));
    EXPECT_TRUE(modalias_match("[^a]", "b"));
    EXPECT_TRUE(modalias_match("[]]", "]"));      // ']' first is a member
    EXPECT_TRUE(modalias_match("[a-]", "-"));     // trailing '-' is literal
    EXPECT_TRUE(modalias_match("[0-9A-F]x", "Cx"));
    EXPECT_FALSE(modalias_match("[0-9A-F]x", "gx"));
    EXPECT_TRUE(modalias_match("[", "["));        // unterminated: a literal '['
    EXPECT_TRUE(modalias_match("a[bc", "a[bc"));
    EXPECT_TRUE(modalias_match("*[0-9]", "abc7"));
}

TEST(ModAlias, BackslashEscapes)
{
    EXPECT_TRUE(modalias_match("a\\*b", "a*b"));
    EXPECT_FALSE(modalias_match("a\\*b", "aXb"));
    EXPECT_TRUE(modalias_match("\\?", "?"));
    EXPECT_FALSE(modalias_match("\\?", "x"));
    EXPECT_TRUE(modalias_match("[\\]]", "]"));
    EXPECT_TRUE(modalias_match("a\\", "a\\")); // a trailing backslash is literal
}

TEST(ModAlias, PathologicalPatternsStayFast)
{
    std::string text(10000, 'a');
    std::string pattern;
    for (int i = 0; i < 50; ++i) pattern += "a*";
    pattern += "b";
    EXPECT_FALSE(modalias_match(StringView(pattern.data(), pattern.size()), StringView(text.data(), text.size())));
    text.back() = 'b';
    EXPECT_TRUE(modalias_match(StringView(pattern.data(), pattern.size()), StringView(text.data(), text.size())));
}
