// The library header comes first: ktl/Errno.h defines errno names that <cerrno> would turn into macros.
#include <lib/archive/Cpio.h>

#include <gtest/gtest.h>
#include <support/CpioBuilder.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

std::string to_string(StringView s) { return std::string(s.characters(), s.length()); }
std::string to_string(ReadonlyBytes b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

struct ReadResult {
    int error = 0;
    std::string message; // the reader's detail (entry, offset)
    std::string reason;  // the Error's static message
    std::vector<CpioEntry> entries;
};

ReadResult read_all(ReadonlyBytes archive)
{
    ReadResult result;
    CpioReader reader(archive);
    for (;;) {
        CpioEntry entry;
        auto more = reader.next(entry);
        if (more.is_error()) {
            result.error = more.error().code();
            result.message = reader.error_message();
            result.reason = more.error().message();
            // Every failure carries its static reason in the Error itself.
            EXPECT_EQ(result.reason.rfind("cpio: ", 0), 0u) << "no reason in the Error for: " << result.message;
            return result;
        }
        if (!more.value()) return result;
        result.entries.push_back(entry);
    }
}

ReadResult read_all(const std::vector<u8>& bytes)
{
    // An exact-size heap copy, so ASan catches any read past the end.
    u8* copy = static_cast<u8*>(malloc(bytes.size() ? bytes.size() : 1));
    if (!bytes.empty()) memcpy(copy, bytes.data(), bytes.size());
    ReadResult result = read_all(ReadonlyBytes(copy, bytes.size()));
    // Views into the copy are dead after free: keep only what the tests compare.
    free(copy);
    for (auto& e : result.entries) e.name = StringView(), e.data = ReadonlyBytes();
    return result;
}

std::string shell_quote(const std::string& s) { return "'" + s + "'"; }

// Runs a shell command and returns its stdout as bytes.
std::vector<u8> run(const std::string& command)
{
    std::vector<u8> out;
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) return out;
    u8 buffer[4096];
    usize n;
    while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.insert(out.end(), buffer, buffer + n);
    pclose(pipe);
    return out;
}

std::string make_temp_tree()
{
    char dir_template[] = "/tmp/cpiotest.XXXXXX";
    std::string dir = mkdtemp(dir_template);
    std::string q = shell_quote(dir);
    std::string cmd = "cd " + q + " && mkdir -p lib/modules etc && printf 'hello\\n' > etc/motd"
        " && printf 'ELF-ish' > lib/modules/foo.ko && ln -s modules/foo.ko lib/foo && : > empty"
        " && chmod 0600 etc/motd";
    EXPECT_EQ(system(cmd.c_str()), 0);
    return dir;
}

} // namespace

TEST(Cpio, TrailerOnlyArchiveHasNoEntries)
{
    CpioBuilder b;
    b.trailer();
    CpioReader reader(b.span());
    CpioEntry entry;
    auto more = reader.next(entry);
    ASSERT_FALSE(more.is_error());
    EXPECT_FALSE(more.value());
    EXPECT_TRUE(reader.reached_trailer());
    EXPECT_EQ(reader.offset(), b.bytes().size());
    // And it stays finished.
    EXPECT_FALSE(reader.next(entry).value());
}

TEST(Cpio, ParsesEveryHeaderField)
{
    CpioBuilder b;
    CpioBuilder::Options o;
    o.mode = Cpio::TypeRegular | 04755;
    o.uid = 1000, o.gid = 100, o.mtime = 0x5f5e1000, o.nlink = 2, o.ino = 0x1234;
    o.dev_major = 8, o.dev_minor = 1, o.rdev_major = 3, o.rdev_minor = 4;
    b.add("bin/init", "#!/bin/sh\n", o).trailer();
    CpioReader reader(b.span());
    CpioEntry e;
    ASSERT_TRUE(reader.next(e).value());
    EXPECT_EQ(to_string(e.name), "bin/init");
    EXPECT_EQ(to_string(e.data), "#!/bin/sh\n");
    EXPECT_TRUE(e.is_regular());
    EXPECT_EQ(e.permissions(), 04755u);
    EXPECT_EQ(e.uid, 1000u);
    EXPECT_EQ(e.gid, 100u);
    EXPECT_EQ(e.mtime, 0x5f5e1000u);
    EXPECT_EQ(e.nlink, 2u);
    EXPECT_EQ(e.ino, 0x1234u);
    EXPECT_EQ(e.dev_major, 8u);
    EXPECT_EQ(e.dev_minor, 1u);
    EXPECT_EQ(e.rdev_major, 3u);
    EXPECT_EQ(e.rdev_minor, 4u);
    EXPECT_FALSE(e.has_crc);
    EXPECT_EQ(e.index, 0u);
    // Zero-copy: the data is a view into the archive.
    EXPECT_GE(e.data.data(), b.bytes().data());
    EXPECT_LE(e.data.data() + e.data.size(), b.bytes().data() + b.bytes().size());
    EXPECT_FALSE(reader.next(e).value());
    EXPECT_EQ(reader.entries_read(), 2u);
}

TEST(Cpio, DirectoriesAndSymlinks)
{
    CpioBuilder b;
    b.dir("lib").symlink("lib64", "lib").trailer();
    auto r = read_all(b.span());
    ASSERT_EQ(r.error, 0);
    ASSERT_EQ(r.entries.size(), 2u);
    EXPECT_TRUE(r.entries[0].is_directory());
    EXPECT_TRUE(r.entries[1].is_symlink());
    EXPECT_EQ(to_string(r.entries[1].symlink_target()), "lib");
    EXPECT_TRUE(r.entries[0].symlink_target().is_empty());
}

TEST(Cpio, SymlinkTargetDropsATrailingNul)
{
    CpioBuilder b;
    b.symlink("l", std::string("target\0", 7)).trailer();
    auto r = read_all(b.span());
    ASSERT_EQ(r.entries.size(), 1u);
    EXPECT_EQ(to_string(r.entries[0].symlink_target()), "target");
}

TEST(Cpio, CrcVariantIsAcceptedAndChecksumVerifiable)
{
    CpioBuilder b;
    CpioBuilder::Options o;
    o.magic = "070702";
    o.check = 'a' + 'b' + 'c';
    b.add("good", "abc", o);
    o.check = 1;
    b.add("bad", "abc", o).trailer();
    auto r = read_all(b.span());
    ASSERT_EQ(r.error, 0) << r.message;
    ASSERT_EQ(r.entries.size(), 2u);
    EXPECT_TRUE(r.entries[0].has_crc);
    EXPECT_TRUE(r.entries[0].verify_checksum());
    EXPECT_FALSE(r.entries[1].verify_checksum());
}

TEST(Cpio, HexDigitsInEitherCase)
{
    CpioBuilder b;
    b.file("x", "data").trailer();
    // The mode field (offset 6 + 8) is 000081A4: write it in lower case.
    auto& bytes = b.bytes();
    ASSERT_EQ(memcmp(&bytes[14], "000081A4", 8), 0);
    memcpy(&bytes[14], "000081a4", 8);
    auto r = read_all(b.span());
    ASSERT_EQ(r.error, 0) << r.message;
    EXPECT_EQ(r.entries[0].mode, 0100644u);
}

TEST(Cpio, NamesOfEveryPaddingLength)
{
    CpioBuilder b;
    for (int length = 1; length <= 9; ++length)
        b.file(std::string(length, char('a' + length)), std::string(length, 'x'));
    b.trailer();
    auto r = read_all(b.span());
    ASSERT_EQ(r.error, 0) << r.message;
    ASSERT_EQ(r.entries.size(), 9u);
    for (int length = 1; length <= 9; ++length) {
        EXPECT_EQ(to_string(r.entries[length - 1].name), std::string(length, char('a' + length)));
        EXPECT_EQ(to_string(r.entries[length - 1].data), std::string(length, 'x'));
    }
}

TEST(Cpio, BadMagicIsRejected)
{
    CpioBuilder b;
    b.file("x", "").trailer();
    b.bytes()[5] = '7'; // "070707" is the old binary-compatible ASCII format, not newc
    auto r = read_all(b.span());
    EXPECT_EQ(r.error, EBADMSG);
    EXPECT_NE(r.message.find("bad magic"), std::string::npos) << r.message;
}

TEST(Cpio, NonHexFieldIsRejectedByName)
{
    CpioBuilder b;
    b.file("x", "").trailer();
    b.bytes()[6 + 6 * 8 + 3] = 'g'; // inside filesize
    auto r = read_all(b.span());
    EXPECT_EQ(r.error, EBADMSG);
    EXPECT_EQ(r.message, "cpio: entry 0: field filesize is not 8 hex digits");
    CpioBuilder c;
    c.file("x", "").trailer();
    c.bytes()[6] = ' ';
    EXPECT_EQ(read_all(c.span()).message, "cpio: entry 0: field ino is not 8 hex digits");
}

TEST(Cpio, ZeroNameSizeIsRejected)
{
    CpioBuilder b;
    CpioBuilder::Options o;
    o.namesize_override = 0;
    b.add("x", "", o).trailer();
    auto r = read_all(b.span());
    EXPECT_EQ(r.error, EBADMSG);
    EXPECT_NE(r.message.find("namesize is 0"), std::string::npos);
}

TEST(Cpio, NameMustBeNulTerminatedInsideNameSize)
{
    CpioBuilder b;
    CpioBuilder::Options o;
    o.namesize_override = 3; // "abc" + NUL is 4
    b.add("abc", "", o).trailer();
    auto r = read_all(b.span());
    EXPECT_EQ(r.error, EBADMSG);
    EXPECT_NE(r.message.find("not NUL-terminated"), std::string::npos) << r.message;
}

TEST(Cpio, NameWithEmbeddedNulOrOnlyNulIsRejected)
{
    CpioBuilder b;
    b.file(std::string("a\0b", 3), "").trailer();
    EXPECT_EQ(read_all(b.span()).error, EBADMSG);
    CpioBuilder c;
    c.file("", "").trailer();
    auto r = read_all(c.span());
    EXPECT_EQ(r.error, EBADMSG);
    EXPECT_NE(r.message.find("empty name"), std::string::npos);
}

TEST(Cpio, DataPastTheEndNamesTheEntry)
{
    CpioBuilder b;
    CpioBuilder::Options o;
    o.filesize_override = 4096;
    b.file("etc/a", "1").file("etc/b", "2").file("lib/modules/foo.ko", "").add("lib/modules/foo.ko", "short", o);
    auto r = read_all(b.span());
    EXPECT_EQ(r.error, EBADMSG);
    EXPECT_EQ(r.message, "cpio: entry 3 ('lib/modules/foo.ko') data runs past the end of the archive");
}

TEST(Cpio, HugeFileSizeDoesNotOverflow)
{
    CpioBuilder b;
    CpioBuilder::Options o;
    o.filesize_override = 0xffffffff;
    b.add("x", "", o).trailer();
    EXPECT_EQ(read_all(b.span()).error, EBADMSG);
    CpioBuilder c;
    o.filesize_override = -1;
    o.namesize_override = 0xffffffff;
    c.add("x", "", o).trailer();
    EXPECT_EQ(read_all(c.span()).error, EBADMSG);
}

TEST(Cpio, MissingTrailerIsAnError)
{
    CpioBuilder b;
    b.file("a", "1").file("b", "22");
    auto r = read_all(b.span());
    EXPECT_EQ(r.error, EBADMSG);
    EXPECT_EQ(r.message, "cpio: archive ends after 2 entries without a TRAILER!!! entry");
    EXPECT_EQ(read_all(ReadonlyBytes()).error, EBADMSG);
}

TEST(Cpio, TrailerWithDataIsRejected)
{
    CpioBuilder b;
    CpioBuilder::Options o;
    o.mode = 0;
    b.add("TRAILER!!!", "junk", o);
    EXPECT_EQ(read_all(b.span()).error, EBADMSG);
}

TEST(Cpio, BytesAfterTheTrailerAreNotRead)
{
    CpioBuilder b;
    b.file("a", "1").trailer();
    usize end = b.bytes().size();
    b.bytes().resize(512, 0); // GNU cpio pads to 512-byte blocks
    b.bytes().insert(b.bytes().end(), { 'g', 'a', 'r', 'b', 'a', 'g', 'e' });
    CpioReader reader(b.span());
    CpioEntry e;
    ASSERT_TRUE(reader.next(e).value());
    ASSERT_FALSE(reader.next(e).value());
    EXPECT_EQ(reader.offset(), end);
}

TEST(Cpio, ErrorsAreSticky)
{
    CpioBuilder b;
    b.file("a", "1");
    b.bytes()[0] = 'X';
    CpioReader reader(b.span());
    CpioEntry e;
    EXPECT_EQ(reader.next(e).error().code(), EBADMSG);
    std::string first = reader.error_message();
    EXPECT_EQ(reader.next(e).error().code(), EBADMSG);
    EXPECT_EQ(first, reader.error_message());
    EXPECT_FALSE(reader.reached_trailer());
}

TEST(Cpio, EveryTruncationFailsUntilTheTrailerNameIsComplete)
{
    CpioBuilder b;
    b.dir("lib").file("lib/a.ko", "abcdefg").symlink("lib/b", "a.ko").file("init", "#!").trailer();
    const auto full = b.bytes();
    // The trailer's name ends 11 bytes after its header; its final pad may be cut.
    usize trailer_start = full.size() - 124;
    usize minimum = trailer_start + Cpio::HeaderSize + 11;
    ASSERT_EQ(memcmp(&full[trailer_start + 110], "TRAILER!!!", 10), 0);
    for (usize length = 0; length <= full.size(); ++length) {
        std::vector<u8> cut(full.begin(), full.begin() + length);
        auto r = read_all(cut);
        if (length < minimum) {
            EXPECT_EQ(r.error, EBADMSG) << "length " << length;
            EXPECT_FALSE(r.message.empty());
            EXPECT_EQ(r.message.rfind("cpio: ", 0), 0u) << r.message;
        } else {
            EXPECT_EQ(r.error, 0) << "length " << length << ": " << r.message;
            EXPECT_EQ(r.entries.size(), 4u);
        }
    }
}

TEST(Cpio, EveryByteFlipIsSafe)
{
    CpioBuilder b;
    b.file("a", "xyz").symlink("b", "a").trailer();
    const auto full = b.bytes();
    for (usize i = 0; i < full.size(); ++i) {
        for (u8 value : { u8(0), u8('0'), u8('F'), u8(0xff) }) {
            auto copy = full;
            copy[i] = value;
            auto r = read_all(copy); // ASan checks every read stays inside
            if (r.error) EXPECT_FALSE(r.message.empty());
        }
    }
}

TEST(Cpio, ForEachVisitsEntriesAndPropagatesCallbackErrors)
{
    CpioBuilder b;
    b.file("a", "1").file("b", "2").file("c", "3").trailer();
    int count = 0;
    auto result = for_each_cpio_entry(b.span(), [&](const CpioEntry&) -> ErrorOr<void> {
        ++count;
        return {};
    });
    EXPECT_FALSE(result.is_error());
    EXPECT_EQ(count, 3);
    count = 0;
    result = for_each_cpio_entry(b.span(), [&](const CpioEntry& e) -> ErrorOr<void> {
        ++count;
        if (e.name == "b") return ENOSPC;
        return {};
    });
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ENOSPC);
    EXPECT_EQ(count, 2);
}

TEST(Cpio, ReadsAnArchiveWrittenByGnuCpio)
{
    std::string dir = make_temp_tree();
    auto archive = run("cd " + shell_quote(dir) + " && find . | LC_ALL=C sort | cpio -o -H newc --quiet");
    system(("rm -rf " + shell_quote(dir)).c_str());
    ASSERT_FALSE(archive.empty());
    EXPECT_EQ(archive.size() % 512, 0u);
    CpioReader reader(ReadonlyBytes(archive.data(), archive.size()));
    CpioEntry e;
    std::map<std::string, CpioEntry> by_name;
    for (;;) {
        auto more = reader.next(e);
        ASSERT_FALSE(more.is_error()) << reader.error_message();
        if (!more.value()) break;
        by_name[to_string(e.name)] = e;
    }
    ASSERT_TRUE(by_name.count("."));
    EXPECT_TRUE(by_name["."].is_directory());
    ASSERT_TRUE(by_name.count("etc/motd"));
    EXPECT_EQ(to_string(by_name["etc/motd"].data), "hello\n");
    EXPECT_EQ(by_name["etc/motd"].permissions(), 0600u);
    EXPECT_EQ(to_string(by_name["lib/modules/foo.ko"].data), "ELF-ish");
    EXPECT_TRUE(by_name["lib/foo"].is_symlink());
    EXPECT_EQ(to_string(by_name["lib/foo"].symlink_target()), "modules/foo.ko");
    EXPECT_TRUE(by_name["empty"].is_regular());
    EXPECT_TRUE(by_name["empty"].data.is_empty());
    EXPECT_TRUE(by_name["lib/modules"].is_directory());
}

TEST(Cpio, ReadsTheCrcFormatWrittenByGnuCpio)
{
    std::string dir = make_temp_tree();
    auto archive = run("cd " + shell_quote(dir) + " && find . | LC_ALL=C sort | cpio -o -H crc --quiet");
    system(("rm -rf " + shell_quote(dir)).c_str());
    ASSERT_GE(archive.size(), 6u);
    EXPECT_EQ(memcmp(archive.data(), "070702", 6), 0);
    auto r = read_all(archive);
    ASSERT_EQ(r.error, 0) << r.message;
    EXPECT_EQ(r.entries.size(), 8u);
    CpioReader reader(ReadonlyBytes(archive.data(), archive.size()));
    CpioEntry e;
    while (reader.next(e).value()) EXPECT_TRUE(e.verify_checksum()) << to_string(e.name);
}

TEST(CpioTest, ErrorsCarryTheirReason)
{
    std::vector<u8> bad(Cpio::HeaderSize, '0');
    memcpy(bad.data(), "070709", 6);
    ReadResult r = read_all(bad);
    EXPECT_EQ(r.error, EBADMSG);
    EXPECT_EQ(r.reason, "cpio: bad magic (expected 070701 or 070702)");
    EXPECT_NE(r.message.find("entry 0"), std::string::npos) << r.message;
    ReadResult empty = read_all(std::vector<u8>());
    EXPECT_EQ(empty.reason, "cpio: the archive ends without a TRAILER!!! entry");
}
