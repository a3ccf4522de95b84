// errno_name() must name every constant ktl/Errno.h declares: a refusal printed as "E?" tells the
// user nothing. The list of constants comes from the header's text, so a constant added to the
// enum without a name fails here.
#include <ktl/ErrorOr.h>

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <vector>

namespace {

struct Constant {
    std::string name;
    int value;
};

// The "NAME = value" pairs inside `enum ErrnoCode { ... }`. Tests run from the repository root.
std::vector<Constant> declared_constants()
{
    std::ifstream in("include/ktl/Errno.h");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<Constant> constants;
    auto start = text.find("enum ErrnoCode");
    if (start == std::string::npos)
        return constants;
    auto end = text.find("};", start);
    std::string body = text.substr(start, end - start);
    std::regex pair(R"((E[A-Z0-9]+)\s*=\s*(\d+))");
    for (auto it = std::sregex_iterator(body.begin(), body.end(), pair); it != std::sregex_iterator(); ++it)
        constants.push_back({ (*it)[1].str(), std::stoi((*it)[2].str()) });
    return constants;
}

}

TEST(Errno, EveryDeclaredConstantHasAName)
{
    auto constants = declared_constants();
    // The header has dozens; finding few means the parse above broke, not that all is well.
    ASSERT_GE(constants.size(), 50u) << "could not read the errno constants from include/ktl/Errno.h";
    for (auto& constant : constants) {
        std::string name = errno_name(constant.value);
        EXPECT_NE(name, "E?") << constant.name << " (" << constant.value << ") has no name";
        // Aliases share a value (EOPNOTSUPP is ENOTSUP); the name printed must be one of them.
        bool matches = name == constant.name;
        for (auto& other : constants)
            matches |= other.value == constant.value && other.name == name;
        EXPECT_TRUE(matches) << constant.name << " (" << constant.value << ") prints as " << name;
    }
}

TEST(Errno, LoaderRefusalsAreNamed)
{
    // The errnos the module loader returns that used to print as "E?".
    EXPECT_STREQ(errno_name(EFBIG), "EFBIG");
    EXPECT_STREQ(errno_name(ENOPKG), "ENOPKG");
    EXPECT_STREQ(errno_name(EPROTO), "EPROTO");
    EXPECT_STREQ(errno_name(EPROTONOSUPPORT), "EPROTONOSUPPORT");
    EXPECT_EQ(int(ENOPKG), 65);
    EXPECT_EQ(int(EPROTO), 71);
    EXPECT_EQ(int(EPROTONOSUPPORT), 93);
    EXPECT_STREQ(errno_name(9999), "E?");
}

TEST(Errno, ErrorCarriesItsOwnReason)
{
    Error plain(ENOENT);
    EXPECT_FALSE(plain.has_message());
    EXPECT_STREQ(plain.message(), "");
    auto reasoned = Error::with_message(ENOEXEC, "init entry outside the module's text");
    EXPECT_TRUE(reasoned.has_message());
    EXPECT_STREQ(reasoned.message(), "init entry outside the module's text");
    EXPECT_STREQ(reasoned.name(), "ENOEXEC");
}
