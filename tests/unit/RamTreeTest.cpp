// The library headers come first: ktl/Errno.h defines errno names that <cerrno> would turn into macros.
#include <lib/archive/Cpio.h>
#include <lib/archive/RamTree.h>

#include "support/HostAllocator.h"

#include <gtest/gtest.h>
#include <support/CpioBuilder.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

std::string to_string(StringView s) { return std::string(s.characters(), s.length()); }
std::string to_string(ReadonlyBytes b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

std::string read(RamTree& tree, const char* path)
{
    auto data = tree.read_file(path);
    if (data.is_error()) return data.error().code() == EISDIR ? "<EISDIR>" : std::string("<") + data.error().name() + ">";
    return to_string(data.value());
}

int lookup_error(RamTree& tree, const char* path, RamTree::Follow follow = RamTree::Follow::Yes)
{
    auto node = tree.lookup(path, follow);
    return node.is_error() ? node.error().code() : 0;
}

std::vector<std::string> list(RamTree& tree, const char* path)
{
    std::vector<std::string> names;
    auto node = tree.lookup(path);
    if (node.is_error()) return names;
    node.value()->for_each_child([&](const RamTree::Node& child) { names.push_back(to_string(child.name())); });
    return names;
}

// A full listing, "path type" per node in pre-order, to compare trees before and after.
std::string dump(const RamTree::Node& node, const std::string& prefix = "")
{
    std::string out;
    node.for_each_child([&](const RamTree::Node& child) {
        std::string path = prefix + to_string(child.name());
        char type = child.is_directory() ? 'd' : child.is_file() ? 'f' : 'l';
        out += path + " " + type + " " + std::to_string(child.mode()) + " ";
        if (child.is_file()) out += to_string(child.data());
        if (child.is_symlink()) out += to_string(child.symlink_target());
        out += "\n";
        if (child.is_directory()) out += dump(child, path + "/");
    });
    return out;
}

CpioBuilder sample_archive()
{
    CpioBuilder b;
    b.dir("etc")
        .file("etc/motd", "welcome\n")
        .dir("lib")
        .dir("lib/modules")
        .file("lib/modules/virtio_blk.ko", "\x7f" "ELF blk")
        .file("lib/modules/virtio_net.ko", "\x7f" "ELF net")
        .symlink("lib/modules/default.ko", "virtio_blk.ko")
        .symlink("modules", "/lib/modules")
        .file("init", "#!/bin/sh\n", 0755)
        .trailer();
    return b;
}

std::string run_to_string(const std::string& command)
{
    std::string out;
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) return out;
    char buffer[4096];
    usize n;
    while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
    pclose(pipe);
    return out;
}

} // namespace

TEST(RamTree, CreateGivesAnEmptyRoot)
{
    HostAllocator allocator;
    {
        auto tree = MUST(RamTree::create(allocator));
        EXPECT_TRUE(tree.root().is_directory());
        EXPECT_TRUE(tree.root().name().is_empty());
        EXPECT_EQ(tree.root().child_count(), 0u);
        auto stats = tree.stats();
        EXPECT_EQ(stats.directories, 1u);
        EXPECT_EQ(stats.files, 0u);
        EXPECT_EQ(stats.bytes, 0u);
        EXPECT_EQ(allocator.live_allocations(), 1u);
        EXPECT_EQ(MUST(tree.lookup("")), &tree.root());
        EXPECT_EQ(MUST(tree.lookup("/")), &tree.root());
    }
    EXPECT_EQ(allocator.live_allocations(), 0u);
}

TEST(RamTree, CreateFailsCleanlyWithoutMemory)
{
    HostAllocator allocator;
    allocator.fail_nth_allocation(1);
    auto tree = RamTree::create(allocator);
    ASSERT_TRUE(tree.is_error());
    EXPECT_EQ(tree.error().code(), ENOMEM);
    EXPECT_EQ(allocator.live_allocations(), 0u);
}

TEST(RamTree, PopulatesFilesZeroCopy)
{
    HostAllocator allocator;
    auto archive = sample_archive();
    auto tree = MUST(RamTree::create(allocator));
    auto result = tree.populate_from_cpio(archive.span());
    ASSERT_FALSE(result.is_error()) << tree.error_message();
    EXPECT_EQ(read(tree, "etc/motd"), "welcome\n");
    EXPECT_EQ(read(tree, "lib/modules/virtio_net.ko"), "\x7f" "ELF net");
    auto data = MUST(tree.read_file("init"));
    EXPECT_GE(data.data(), archive.bytes().data());
    EXPECT_LT(data.data(), archive.bytes().data() + archive.bytes().size());
    auto* init = MUST(tree.lookup("init"));
    EXPECT_EQ(init->permissions(), 0755u);
    EXPECT_EQ(init->mode(), Cpio::TypeRegular | 0755);
    EXPECT_EQ(to_string(init->name()), "init");
    EXPECT_EQ(init->parent(), &tree.root());
    EXPECT_EQ(tree.root().parent(), &tree.root());
}

TEST(RamTree, CopyModeOwnsTheData)
{
    HostAllocator allocator;
    auto tree = MUST(RamTree::create(allocator));
    {
        auto archive = sample_archive();
        ASSERT_FALSE(tree.populate_from_cpio(archive.span(), RamTree::DataMode::Copy).is_error());
        auto data = MUST(tree.read_file("init"));
        EXPECT_TRUE(data.data() < archive.bytes().data() || data.data() >= archive.bytes().data() + archive.bytes().size());
        for (auto& byte : archive.bytes()) byte = 0xAA; // scribble over the archive
    }
    EXPECT_EQ(read(tree, "etc/motd"), "welcome\n");
    EXPECT_EQ(read(tree, "lib/modules/default.ko"), "\x7f" "ELF blk");
}

TEST(RamTree, CreatesIntermediateDirectories)
{
    HostAllocator allocator;
    CpioBuilder b;
    b.file("a/b/c/d.txt", "deep").trailer();
    auto tree = MUST(RamTree::create(allocator));
    ASSERT_FALSE(tree.populate_from_cpio(b.span()).is_error());
    auto* c = MUST(tree.lookup("a/b/c"));
    EXPECT_TRUE(c->is_directory());
    EXPECT_EQ(c->mode(), Cpio::TypeDirectory | 0755);
    EXPECT_EQ(read(tree, "a/b/c/d.txt"), "deep");
    EXPECT_EQ(tree.stats().directories, 4u);
}

TEST(RamTree, NormalizesDotSlashAndRepeatedSlashes)
{
    HostAllocator allocator;
    CpioBuilder b;
    b.file("./etc//hosts", "1").file("etc/./x/.//y", "2").file("/abs/z", "3").file("trail/", "4").trailer();
    auto tree = MUST(RamTree::create(allocator));
    ASSERT_FALSE(tree.populate_from_cpio(b.span()).is_error()) << tree.error_message();
    EXPECT_EQ(read(tree, "etc/hosts"), "1");
    EXPECT_EQ(read(tree, "/etc/hosts"), "1");
    EXPECT_EQ(read(tree, "./etc///hosts"), "1");
    EXPECT_EQ(read(tree, "etc/x/y"), "2");
    EXPECT_EQ(read(tree, "abs/z"), "3");
    EXPECT_EQ(read(tree, "trail"), "4");
    EXPECT_EQ(list(tree, ""), (std::vector<std::string> { "abs", "etc", "trail" }));
}

TEST(RamTree, RejectsDotDotAnywhere)
{
    for (const char* bad : { "..", "../etc/passwd", "a/../../b", "a/..", "/../x", "./a/b/../c" }) {
        HostAllocator allocator;
        CpioBuilder b;
        b.file("ok", "fine").file(bad, "evil").trailer();
        auto tree = MUST(RamTree::create(allocator));
        auto result = tree.populate_from_cpio(b.span());
        ASSERT_TRUE(result.is_error()) << bad;
        EXPECT_EQ(result.error().code(), EINVAL) << bad;
        EXPECT_NE(std::string(tree.error_message()).find("'..'"), std::string::npos) << tree.error_message();
        EXPECT_EQ(lookup_error(tree, "ok"), ENOENT) << "a failed populate leaves no trace";
        EXPECT_EQ(allocator.live_allocations(), 1u);
    }
}

TEST(RamTree, NamesThatOnlyLookLikeDotDotAreFine)
{
    HostAllocator allocator;
    CpioBuilder b;
    b.file("...", "3").file("..a", "a").file("a..", "b").file(".hidden", "h").trailer();
    auto tree = MUST(RamTree::create(allocator));
    ASSERT_FALSE(tree.populate_from_cpio(b.span()).is_error()) << tree.error_message();
    EXPECT_EQ(read(tree, "..."), "3");
    EXPECT_EQ(read(tree, "..a"), "a");
    EXPECT_EQ(read(tree, ".hidden"), "h");
}

TEST(RamTree, LastEntryWins)
{
    HostAllocator allocator;
    CpioBuilder b;
    b.file("etc/conf", "old").file("etc/conf", "new").file("./etc//conf", "newest").trailer();
    auto tree = MUST(RamTree::create(allocator));
    ASSERT_FALSE(tree.populate_from_cpio(b.span()).is_error());
    EXPECT_EQ(read(tree, "etc/conf"), "newest");
    EXPECT_EQ(tree.stats().files, 1u);
    EXPECT_EQ(allocator.live_allocations(), 3u); // root, etc, conf
}

TEST(RamTree, DirectoryOverDirectoryKeepsChildren)
{
    HostAllocator allocator;
    CpioBuilder b;
    b.file("d/child", "c").dir("d", 0700).trailer();
    auto tree = MUST(RamTree::create(allocator));
    ASSERT_FALSE(tree.populate_from_cpio(b.span()).is_error());
    EXPECT_EQ(MUST(tree.lookup("d"))->permissions(), 0700u);
    EXPECT_EQ(read(tree, "d/child"), "c");
}

TEST(RamTree, FileReplacesADirectoryAndEverythingUnderIt)
{
    HostAllocator allocator;
    CpioBuilder b;
    b.file("d/x/y", "1").file("d/z", "2").file("d", "now a file").trailer();
    auto tree = MUST(RamTree::create(allocator));
    ASSERT_FALSE(tree.populate_from_cpio(b.span()).is_error());
    EXPECT_EQ(read(tree, "d"), "now a file");
    EXPECT_EQ(lookup_error(tree, "d/z"), ENOTDIR);
    EXPECT_EQ(allocator.live_allocations(), 2u);
}

TEST(RamTree, DirectoryReplacesAFile)
{
    HostAllocator allocator;
    CpioBuilder b;
    b.file("d", "file").dir("d").trailer();
    auto tree = MUST(RamTree::create(allocator));
    ASSERT_FALSE(tree.populate_from_cpio(b.span()).is_error());
    EXPECT_TRUE(MUST(tree.lookup("d"))->is_directory());
}

TEST(RamTree, FileAsIntermediateComponentIsENOTDIR)
{
    HostAllocator allocator;
    CpioBuilder b;
    b.file("f", "x").file("f/g", "y").trailer();
    auto tree = MUST(RamTree::create(allocator));
    auto result = tree.populate_from_cpio(b.span());
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ENOTDIR);
    EXPECT_EQ(std::string(tree.error_message()), "initramfs: entry 1 ('f/g'): 'f' is not a directory");
}

TEST(RamTree, LookupErrors)
{
    HostAllocator allocator;
    auto archive = sample_archive();
    auto tree = MUST(RamTree::create(allocator));
    ASSERT_FALSE(tree.populate_from_cpio(archive.span()).is_error());
    EXPECT_EQ(lookup_error(tree, "nope"), ENOENT);
    EXPECT_EQ(lookup_error(tree, "etc/nope"), ENOENT);
    EXPECT_EQ(lookup_error(tree, "nope/deeper"), ENOENT);
    EXPECT_EQ(lookup_error(tree, "init/x"), ENOTDIR);
    EXPECT_EQ(lookup_error(tree, "init/"), ENOTDIR);
    EXPECT_EQ(lookup_error(tree, "etc/"), 0);
    EXPECT_EQ(read(tree, "etc"), "<EISDIR>");
    EXPECT_EQ(read(tree, "missing"), "<ENOENT>");
    EXPECT_EQ(lookup_error(tree, "etc/mot"), ENOENT);
    EXPECT_EQ(lookup_error(tree, "etc/motdx"), ENOENT);
}

TEST(RamTree, DotAndDotDotInLookups)
{
    HostAllocator allocator;
    auto archive = sample_archive();
    auto tree = MUST(RamTree::create(allocator));
    ASSERT_FALSE(tree.populate_from_cpio(archive.span()).is_error());
    EXPECT_EQ(read(tree, "lib/modules/../../etc/motd"), "welcome\n");
    EXPECT_EQ(read(tree, "../../../etc/./motd"), "welcome\n");
    EXPECT_EQ(MUST(tree.lookup("..")), &tree.root());
    EXPECT_EQ(lookup_error(tree, "init/.."), ENOTDIR);
}

TEST(RamTree, SymlinksAreFollowedUpToALimit)
{
    HostAllocator allocator;
    auto archive = sample_archive();
    auto tree = MUST(RamTree::create(allocator));
    ASSERT_FALSE(tree.populate_from_cpio(archive.span()).is_error());
    // Relative target, final component.
    EXPECT_EQ(read(tree, "lib/modules/default.ko"), "\x7f" "ELF blk");
    // Absolute target, intermediate component.
    EXPECT_EQ(read(tree, "modules/virtio_net.ko"), "\x7f" "ELF net");
    EXPECT_EQ(read(tree, "modules/default.ko"), "\x7f" "ELF blk");
    // Follow::No stops at a final link but still follows intermediate ones.
    auto* link = MUST(tree.lookup("modules/default.ko", RamTree::Follow::No));
    EXPECT_TRUE(link->is_symlink());
    EXPECT_EQ(to_string(link->symlink_target()), "virtio_blk.ko");
    EXPECT_TRUE(link->data().is_empty());
    EXPECT_TRUE(MUST(tree.lookup("modules", RamTree::Follow::No))->is_symlink());
    // A trailing slash follows the final link.
    EXPECT_TRUE(MUST(tree.lookup("modules/", RamTree::Follow::No))->is_directory());
}

TEST(RamTree, SymlinkLoopsAndChainsStopAtEight)
{
    HostAllocator allocator;
    CpioBuilder b;
    b.symlink("loop", "loop").symlink("a", "b").symlink("b", "a").symlink("dangling", "nowhere").file("target", "t");
    // A chain of exactly 8 links resolves; 9 is ELOOP.
    b.symlink("l1", "target");
    for (int i = 2; i <= 9; ++i) b.symlink("l" + std::to_string(i), "l" + std::to_string(i - 1));
    b.symlink("to_file_dir", "target/").trailer();
    auto tree = MUST(RamTree::create(allocator));
    ASSERT_FALSE(tree.populate_from_cpio(b.span()).is_error());
    EXPECT_EQ(lookup_error(tree, "loop"), ELOOP);
    EXPECT_EQ(lookup_error(tree, "a"), ELOOP);
    EXPECT_EQ(lookup_error(tree, "loop", RamTree::Follow::No), 0);
    EXPECT_EQ(lookup_error(tree, "dangling"), ENOENT);
    EXPECT_EQ(lookup_error(tree, "dangling", RamTree::Follow::No), 0);
    EXPECT_EQ(read(tree, "l8"), "t");
    EXPECT_EQ(lookup_error(tree, "l9"), ELOOP);
    EXPECT_EQ(lookup_error(tree, "to_file_dir"), ENOTDIR);
}

TEST(RamTree, ChildrenAreSortedByName)
{
    HostAllocator allocator;
    CpioBuilder b;
    for (const char* name : { "zeta", "Alpha", "beta", "alpha", "_x", "b", "beta2", "0" }) b.file(std::string("d/") + name, name);
    b.trailer();
    auto tree = MUST(RamTree::create(allocator));
    ASSERT_FALSE(tree.populate_from_cpio(b.span()).is_error());
    EXPECT_EQ(list(tree, "d"), (std::vector<std::string> { "0", "Alpha", "_x", "alpha", "b", "beta", "beta2", "zeta" }));
    auto* d = MUST(tree.lookup("d"));
    EXPECT_EQ(d->child_count(), 8u);
    std::vector<std::string> manual;
    for (auto* child = d->first_child(); child; child = child->next_sibling()) manual.push_back(to_string(child->name()));
    EXPECT_EQ(manual, list(tree, "d"));
    EXPECT_EQ(to_string(MUST(tree.lookup("d/beta"))->data()), "beta");
    EXPECT_EQ(d->find_child("nope"), nullptr);
}

TEST(RamTree, StatsCountEverything)
{
    HostAllocator allocator;
    auto archive = sample_archive();
    auto tree = MUST(RamTree::create(allocator));
    ASSERT_FALSE(tree.populate_from_cpio(archive.span()).is_error());
    auto stats = tree.stats();
    EXPECT_EQ(stats.directories, 4u); // root, etc, lib, lib/modules
    EXPECT_EQ(stats.files, 4u);
    EXPECT_EQ(stats.symlinks, 2u);
    EXPECT_EQ(stats.bytes, 8u + 8 + 8 + 10);
    EXPECT_EQ(stats.skipped, 0u);
}

TEST(RamTree, SkipsDeviceNodesFifosAndSockets)
{
    HostAllocator allocator;
    CpioBuilder b;
    CpioBuilder::Options o;
    o.mode = Cpio::TypeCharDevice | 0600;
    o.rdev_major = 5, o.rdev_minor = 1;
    b.add("dev/console", "", o);
    o.mode = Cpio::TypeFifo | 0600;
    b.add("fifo", "", o);
    o.mode = Cpio::TypeSocket | 0600;
    b.add("sock", "", o);
    b.file("real", "r").trailer();
    auto tree = MUST(RamTree::create(allocator));
    ASSERT_FALSE(tree.populate_from_cpio(b.span()).is_error());
    EXPECT_EQ(tree.stats().skipped, 3u);
    EXPECT_EQ(lookup_error(tree, "fifo"), ENOENT);
    EXPECT_EQ(lookup_error(tree, "dev/console"), ENOENT);
    EXPECT_EQ(read(tree, "real"), "r");
}

TEST(RamTree, RootEntrySetsRootMetadataAndMustBeADirectory)
{
    HostAllocator allocator;
    CpioBuilder b;
    b.dir(".", 0700).file("x", "1").trailer();
    auto tree = MUST(RamTree::create(allocator));
    ASSERT_FALSE(tree.populate_from_cpio(b.span()).is_error());
    EXPECT_EQ(tree.root().permissions(), 0700u);

    CpioBuilder bad;
    bad.file("./", "not a dir").trailer();
    auto result = tree.populate_from_cpio(bad.span());
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), EINVAL);
    EXPECT_TRUE(tree.root().is_directory());
}

TEST(RamTree, SecondArchiveOverlaysTheFirst)
{
    HostAllocator allocator;
    auto first = sample_archive();
    CpioBuilder second;
    second.file("etc/motd", "second\n").file("etc/new", "n").dir("lib").file("lib/modules", "flat").trailer();
    auto tree = MUST(RamTree::create(allocator));
    ASSERT_FALSE(tree.populate_from_cpio(first.span()).is_error());
    ASSERT_FALSE(tree.populate_from_cpio(second.span()).is_error()) << tree.error_message();
    EXPECT_EQ(read(tree, "etc/motd"), "second\n");
    EXPECT_EQ(read(tree, "etc/new"), "n");
    EXPECT_EQ(read(tree, "init"), "#!/bin/sh\n");
    EXPECT_EQ(read(tree, "lib/modules"), "flat");
    EXPECT_EQ(lookup_error(tree, "modules/virtio_blk.ko"), ENOTDIR);
    auto stats = tree.stats();
    EXPECT_EQ(stats.files, 4u); // init, etc/motd, etc/new, lib/modules
    EXPECT_EQ(stats.directories, 3u);
}

TEST(RamTree, FailedPopulateLeavesTheTreeUnchanged)
{
    HostAllocator allocator;
    auto good = sample_archive();
    auto tree = MUST(RamTree::create(allocator));
    ASSERT_FALSE(tree.populate_from_cpio(good.span()).is_error());
    std::string before = dump(tree.root());
    usize live = allocator.live_allocations();

    CpioBuilder corrupt;
    corrupt.file("etc/motd", "changed").file("brand/new/file", "x");
    CpioBuilder::Options o;
    o.filesize_override = 1000;
    corrupt.add("lib/modules/foo.ko", "short", o);
    auto result = tree.populate_from_cpio(corrupt.span());
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), EBADMSG);
    EXPECT_EQ(std::string(tree.error_message()),
        "initramfs: cpio: entry 2 ('lib/modules/foo.ko') data runs past the end of the archive");
    EXPECT_EQ(dump(tree.root()), before);
    EXPECT_EQ(allocator.live_allocations(), live);
}

TEST(RamTree, MissingTrailerFailsThePopulate)
{
    HostAllocator allocator;
    CpioBuilder b;
    b.file("a", "1");
    auto tree = MUST(RamTree::create(allocator));
    auto result = tree.populate_from_cpio(b.span());
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), EBADMSG);
    EXPECT_EQ(lookup_error(tree, "a"), ENOENT);
}

TEST(RamTree, EveryTruncationFailsWithoutLeaks)
{
    auto archive = sample_archive();
    const auto full = archive.bytes();
    HostAllocator allocator;
    auto tree = MUST(RamTree::create(allocator));
    usize successes = 0;
    for (usize length = 0; length < full.size(); ++length) {
        std::vector<u8> cut(full.begin(), full.begin() + length);
        auto result = tree.populate_from_cpio(ReadonlyBytes(cut.data(), cut.size()), RamTree::DataMode::Copy);
        if (result.is_error()) {
            EXPECT_EQ(result.error().code(), EBADMSG) << length;
            EXPECT_EQ(allocator.live_allocations(), 1u) << length;
        } else {
            ++successes; // only once the trailer's name is complete
            EXPECT_GE(length, full.size() - 124 + 121);
        }
    }
    EXPECT_EQ(successes, 3u);
}

TEST(RamTree, LongNamesAndDeepPathsAreRejected)
{
    HostAllocator allocator;
    auto tree = MUST(RamTree::create(allocator));
    CpioBuilder long_name;
    long_name.file(std::string(255, 'a'), "ok").file("d/" + std::string(256, 'b'), "too long").trailer();
    auto result = tree.populate_from_cpio(long_name.span());
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ENAMETOOLONG);

    std::string deep;
    for (usize i = 0; i < RamTree::MaxDepth; ++i) deep += "d/";
    CpioBuilder ok;
    ok.file(deep.substr(0, deep.size() - 1), "deepest").trailer();
    ASSERT_FALSE(tree.populate_from_cpio(ok.span()).is_error()) << tree.error_message();
    CpioBuilder too_deep;
    too_deep.file(deep + "x", "deeper").trailer();
    result = tree.populate_from_cpio(too_deep.span());
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), ENAMETOOLONG);
    EXPECT_EQ(tree.stats().directories, RamTree::MaxDepth);
}

TEST(RamTree, MoveTransfersOwnership)
{
    HostAllocator allocator;
    auto archive = sample_archive();
    {
        auto tree = MUST(RamTree::create(allocator));
        ASSERT_FALSE(tree.populate_from_cpio(archive.span()).is_error());
        RamTree moved(std::move(tree));
        EXPECT_EQ(read(moved, "etc/motd"), "welcome\n");
    }
    EXPECT_EQ(allocator.live_allocations(), 0u);
}

TEST(RamTree, DestructorReturnsEverythingToTheAllocator)
{
    HostAllocator allocator;
    auto archive = sample_archive();
    {
        auto tree = MUST(RamTree::create(allocator));
        ASSERT_FALSE(tree.populate_from_cpio(archive.span(), RamTree::DataMode::Copy).is_error());
        EXPECT_EQ(allocator.live_allocations(), 1u + 3 + 6 + 6); // root, 3 dirs, 6 nodes, 6 data blocks
    }
    EXPECT_EQ(allocator.live_allocations(), 0u);
    EXPECT_EQ(allocator.live_bytes(), 0u);
}

// Fails each allocation of populate_from_cpio in turn: every failure must be ENOMEM, leave the
// tree exactly as it was and leak nothing; with no failure injected it must succeed.
static void check_enomem_at_every_allocation(RamTree::DataMode mode, bool prepopulate)
{
    auto base = sample_archive();
    CpioBuilder overlay;
    overlay.dir("etc", 0711).file("etc/motd", "new").file("lib/modules/extra/x.ko", "x").file("init", "replaced")
        .dir("var/run").symlink("etc/link", "motd").trailer();
    usize failures = 0;
    for (usize n = 1;; ++n) {
        HostAllocator allocator;
        auto tree = MUST(RamTree::create(allocator));
        if (prepopulate) ASSERT_FALSE(tree.populate_from_cpio(base.span(), mode).is_error());
        std::string before = dump(tree.root());
        usize live = allocator.live_allocations();
        allocator.fail_nth_allocation(n);
        auto result = tree.populate_from_cpio(overlay.span(), mode);
        if (!result.is_error()) {
            EXPECT_EQ(allocator.failure_count(), 0u);
            EXPECT_EQ(read(tree, "etc/link"), "new");
            break;
        }
        ++failures;
        EXPECT_EQ(result.error().code(), ENOMEM) << n;
        EXPECT_EQ(allocator.live_allocations(), live) << n;
        EXPECT_EQ(dump(tree.root()), before) << n;
        EXPECT_NE(std::string(tree.error_message()).find("ENOMEM"), std::string::npos) << tree.error_message();
    }
    EXPECT_GE(failures, mode == RamTree::DataMode::Copy ? 10u : 8u);
}

TEST(RamTree, EnomemAtEveryAllocationBorrow) { check_enomem_at_every_allocation(RamTree::DataMode::Borrow, false); }
TEST(RamTree, EnomemAtEveryAllocationCopy) { check_enomem_at_every_allocation(RamTree::DataMode::Copy, false); }
TEST(RamTree, EnomemAtEveryAllocationOverExistingTree) { check_enomem_at_every_allocation(RamTree::DataMode::Copy, true); }

TEST(RamTree, PersistentAllocationFailureAlsoCleansUp)
{
    auto archive = sample_archive();
    for (usize n = 1; n < 20; ++n) {
        HostAllocator allocator;
        auto tree = MUST(RamTree::create(allocator));
        allocator.fail_all_from(n);
        auto result = tree.populate_from_cpio(archive.span(), RamTree::DataMode::Copy);
        if (!result.is_error()) break;
        EXPECT_EQ(allocator.live_allocations(), 1u);
    }
}

TEST(RamTree, PopulatesFromAnArchiveWrittenByGnuCpio)
{
    char dir_template[] = "/tmp/ramtreetest.XXXXXX";
    std::string dir = mkdtemp(dir_template);
    std::string setup = "cd '" + dir + "' && mkdir -p lib/modules etc/empty && printf 'kmod' > lib/modules/a.ko"
        " && printf 'x' > etc/hostname && ln -s lib/modules mods && chmod 0750 lib";
    ASSERT_EQ(system(setup.c_str()), 0);
    std::string bytes = run_to_string("cd '" + dir + "' && find . | LC_ALL=C sort | cpio -o -H newc --quiet");
    system(("rm -rf '" + dir + "'").c_str());
    ASSERT_FALSE(bytes.empty());
    HostAllocator allocator;
    auto tree = MUST(RamTree::create(allocator));
    auto result = tree.populate_from_cpio(ReadonlyBytes(reinterpret_cast<const u8*>(bytes.data()), bytes.size()));
    ASSERT_FALSE(result.is_error()) << tree.error_message();
    EXPECT_EQ(read(tree, "lib/modules/a.ko"), "kmod");
    EXPECT_EQ(read(tree, "mods/a.ko"), "kmod");
    EXPECT_EQ(read(tree, "etc/hostname"), "x");
    EXPECT_EQ(MUST(tree.lookup("lib"))->permissions(), 0750u);
    EXPECT_TRUE(MUST(tree.lookup("etc/empty"))->is_directory());
    EXPECT_EQ(list(tree, ""), (std::vector<std::string> { "etc", "lib", "mods" }));
    auto stats = tree.stats();
    EXPECT_EQ(stats.files, 2u);
    EXPECT_EQ(stats.symlinks, 1u);
    EXPECT_EQ(stats.directories, 5u);
}
