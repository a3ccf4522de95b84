// libFuzzer target: arbitrary bytes as an initramfs cpio archive, unpacked into a RamTree and
// looked up. Checks, beyond the sanitizers: every failure explains itself, a failed populate
// leaves the tree untouched, and every allocation is returned when the tree goes away.
#include <lib/archive/Cpio.h>
#include <lib/archive/RamTree.h>

#include <cstdlib>
#include <cstring>

namespace {

// A counting malloc allocator (the Makefile's fuzz rule links no test support beyond HostSupport).
// Every 64th input also fails one allocation, chosen from the input, to exercise the ENOMEM path.
class FuzzAllocator final : public Allocator {
public:
    ErrorOr<void*> allocate(usize size, usize alignment) override
    {
        if (fail_at && ++count == fail_at) return ENOMEM;
        void* p = nullptr;
        if (posix_memalign(&p, alignment < sizeof(void*) ? sizeof(void*) : alignment, size ? size : 1)) return ENOMEM;
        ++live;
        return p;
    }
    void deallocate(void* pointer, usize) override
    {
        --live;
        free(pointer);
    }
    usize live { 0 };
    usize count { 0 };
    usize fail_at { 0 };
};

void touch(ReadonlyBytes bytes)
{
    volatile u8 sink = 0;
    for (u8 b : bytes) sink = sink + b;
    (void)sink;
}

usize count_nodes(const RamTree::Node& node)
{
    usize n = 1;
    node.for_each_child([&](const RamTree::Node& child) {
        volatile usize length = child.name().length();
        (void)length;
        if (child.is_file()) touch(child.data());
        if (child.is_symlink()) touch(ReadonlyBytes(reinterpret_cast<const u8*>(child.symlink_target().characters()), child.symlink_target().length()));
        n += count_nodes(child); // depth is bounded by RamTree::MaxDepth
    });
    return n;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    // An exact-size copy, so ASan catches any read past the end.
    u8* copy = static_cast<u8*>(malloc(size ? size : 1));
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    ReadonlyBytes archive(copy, size);

    FuzzAllocator allocator;
    if (size >= 2 && data[size - 1] % 64 == 0) allocator.fail_at = 1 + data[size - 2] % 32;
    {
        auto created = RamTree::create(allocator);
        if (created.is_error()) {
            free(copy);
            return 0;
        }
        RamTree tree = created.release_value();
        auto mode = (size && data[0] & 1) ? RamTree::DataMode::Copy : RamTree::DataMode::Borrow;
        auto result = tree.populate_from_cpio(archive, mode);
        if (result.is_error()) {
            if (tree.error_message()[0] == 0) abort(); // every failure must explain itself
            if (tree.root().child_count() != 0 || allocator.live != 1) abort(); // and leave no trace
        }
        usize nodes = count_nodes(tree.root());
        auto stats = tree.stats();
        if (stats.files + stats.directories + stats.symlinks != nodes) abort();

        // Look up every name the archive mentions, plus a few fixed paths.
        CpioReader reader(archive);
        CpioEntry entry;
        for (usize i = 0; i < 64; ++i) {
            auto more = reader.next(entry);
            if (more.is_error() || !more.value()) break;
            auto node = tree.lookup(entry.name);
            if (!node.is_error()) touch(node.value()->data());
            (void)tree.lookup(entry.name, RamTree::Follow::No);
            auto file = tree.read_file(entry.name);
            if (!file.is_error()) touch(file.value());
        }
        for (const char* path : { "init", "/lib/modules/a.ko", "lib/../lib/./x/", "..", "a/b/c", "" }) {
            auto node = tree.lookup(path);
            if (!node.is_error()) touch(node.value()->data());
        }
        if (mode == RamTree::DataMode::Copy) {
            free(copy); // a copied tree must not point into the archive: ASan would see it now
            copy = nullptr;
            (void)count_nodes(tree.root());
        }
    }
    if (allocator.live != 0) abort();
    free(copy);
    return 0;
}
