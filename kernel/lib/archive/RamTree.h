#pragma once
// RamTree: the kernel's in-memory root, which the initramfs is unpacked into until the VFS exists.
//
// Interface:
//   auto tree = TRY(RamTree::create(allocator));
//   TRY(tree.populate_from_cpio(archive));            // file data points into `archive`
//   ReadonlyBytes elf = TRY(tree.read_file("lib/modules/virtio_blk.ko"));
//   RamTree::Node* dir = TRY(tree.lookup("lib/modules"));
//   dir->for_each_child([](const RamTree::Node& child) { ... child.name() ... });
//   RamTree::Stats stats = tree.stats();
//
// Ownership: the tree owns every node, and each node is one allocation from the Allocator given
// to create(): the node followed by its name. In DataMode::Borrow (the default) file contents and
// symlink targets are views into the archive, which must then outlive the tree; DataMode::Copy
// gives each a second allocation of its own. The destructor returns everything to the allocator.
//
//   RamTree --m_root--> Node "" (dir) --m_children--> Node "etc" <-> Node "lib" (sorted by name)
//                          ^                              |
//                          +---------- m_parent ----------+
//
// populate_from_cpio() is all-or-nothing: it builds the archive's tree on the side and grafts it
// onto the root only once the whole archive has been read and every allocation has succeeded, so
// a failure (format error, bad path, ENOMEM) leaves the tree exactly as it was. Rules:
//   - "./", a leading "/" and repeated slashes are dropped: "./lib//x", "/lib/x" and "lib/x" are
//     one path. The entry "." (or "/") describes the root itself and must be a directory.
//   - A ".." component is rejected with EINVAL: an archive cannot reach outside its root.
//   - Missing intermediate directories are created (mode 0755). A component that already names a
//     file or symlink inside the same archive is ENOTDIR.
//   - The last entry for a path wins. A directory entry over a directory updates its metadata and
//     keeps its children; any other combination replaces the old node and everything under it.
//     The same holds between archives: a second populate_from_cpio() overlays the first.
//   - Regular files, directories and symlinks become nodes. Device nodes, FIFOs and sockets are
//     counted in Stats::skipped and otherwise ignored: there is nothing to back them yet.
//   - Hard links are not shared: newc stores the data with the last link only, so earlier links
//     of the same inode read as empty files.
//   - Format errors are EBADMSG (see Cpio.h); a component over 255 bytes, or a path deeper than
//     MaxDepth components, is ENAMETOOLONG. error_message() names the entry and the problem.
//
// lookup() takes paths relative to the root ("lib/x", "/lib/x" and "./lib/x" are the same); "."
// and ".." work as usual and ".." at the root stays there. Symlinks in the middle of a path are
// always followed, and so is a final one unless Follow::No is passed (lstat semantics). At most
// MaxSymlinkFollows symlinks are followed per lookup, after which it fails with ELOOP. Relative
// targets resolve from the link's directory, absolute ones from the root. A trailing slash
// requires a directory. Errors: ENOENT, ENOTDIR, ELOOP.
#include <ktl/Allocator.h>
#include <ktl/ErrorOr.h>
#include <ktl/IntrusiveList.h>
#include <ktl/Span.h>
#include <ktl/StringView.h>
#include <ktl/Types.h>

struct CpioEntry;

class RamTree {
public:
    enum class NodeType : u8 { Directory, File, Symlink };
    enum class DataMode : u8 { Borrow, Copy };
    enum class Follow : u8 { No, Yes };

    static constexpr u32 MaxSymlinkFollows = 8;
    static constexpr usize MaxDepth = 64;
    static constexpr usize MaxNameLength = 255;

    class Node {
    public:
        NodeType type() const { return m_type; }
        bool is_directory() const { return m_type == NodeType::Directory; }
        bool is_file() const { return m_type == NodeType::File; }
        bool is_symlink() const { return m_type == NodeType::Symlink; }
        // The last path component; empty for the root.
        StringView name() const { return StringView(reinterpret_cast<const char*>(this + 1), m_name_length); }
        u32 mode() const { return m_mode; } // file type and permission bits, as in the archive
        u32 permissions() const { return m_mode & 07777; }
        u32 uid() const { return m_uid; }
        u32 gid() const { return m_gid; }
        u32 mtime() const { return m_mtime; }
        // The parent directory; the root is its own parent.
        Node* parent() { return m_parent ? m_parent : this; }

        // A file's contents (empty for directories and symlinks).
        ReadonlyBytes data() const { return is_file() ? ReadonlyBytes(m_data, m_size) : ReadonlyBytes(); }
        // A symlink's target, without a trailing NUL (empty for other nodes).
        StringView symlink_target() const;

        // Children of a directory, in byte order of their names.
        template<typename Callback>
        void for_each_child(Callback callback) const
        {
            for (auto& child : m_children)
                callback(static_cast<const Node&>(child));
        }
        const Node* first_child() const { return m_children.first(); }
        const Node* next_sibling() const { return m_parent ? m_parent->m_children.next(const_cast<Node&>(*this)) : nullptr; }
        usize child_count() const { return m_children.size_slow(); }
        // The child with this exact name, or null.
        Node* find_child(StringView name) const;

    private:
        friend class RamTree;
        Node(NodeType type, u32 mode, usize name_length) : m_type(type), m_mode(mode), m_name_length(name_length) { }
        usize allocation_size() const { return sizeof(Node) + m_name_length; }

        IntrusiveListNode m_sibling;
        IntrusiveList<Node, &Node::m_sibling> m_children;
        Node* m_parent { nullptr };
        const u8* m_data { nullptr }; // file contents or symlink target
        usize m_size { 0 };
        NodeType m_type;
        bool m_owns_data { false };
        bool m_explicit { false }; // has its own archive entry, rather than implied by a path
        u32 m_mode;
        u32 m_uid { 0 };
        u32 m_gid { 0 };
        u32 m_mtime { 0 };
        usize m_name_length;
        // The name's bytes follow the Node in the same allocation.
    };

    struct Stats {
        usize files { 0 };
        usize directories { 0 }; // including the root
        usize symlinks { 0 };
        u64 bytes { 0 };         // total size of the regular files
        usize skipped { 0 };     // archive entries of types the tree does not hold
    };

    static ErrorOr<RamTree> create(Allocator& allocator);
    RamTree(RamTree&& other);
    RamTree(const RamTree&) = delete;
    RamTree& operator=(const RamTree&) = delete;
    RamTree& operator=(RamTree&&) = delete;
    ~RamTree();

    ErrorOr<void> populate_from_cpio(ReadonlyBytes archive, DataMode mode = DataMode::Borrow);

    ErrorOr<Node*> lookup(StringView path, Follow follow = Follow::Yes);
    // The contents of the regular file at path (symlinks followed); EISDIR for a directory.
    ErrorOr<ReadonlyBytes> read_file(StringView path);

    Node& root() { return *m_root; }
    Stats stats() const;
    // Why the last populate_from_cpio() failed, or "".
    const char* error_message() const { return m_error; }

private:
    explicit RamTree(Allocator& allocator) : m_allocator(&allocator) { m_error[0] = 0; }

    ErrorOr<Node*> allocate_node(NodeType type, u32 mode, StringView name);
    void free_node(Node* node);
    void free_subtree(Node* node);
    static void insert_child(Node& directory, Node& child);
    ErrorOr<void> add_entry(Node& staging_root, const CpioEntry& entry, DataMode mode);
    void graft(Node& destination, Node& source, usize depth);
    ErrorOr<Node*> walk(Node* start, StringView path, bool follow_final, u32& follows_left);
    Error fail(Error error, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

    Allocator* m_allocator;
    Node* m_root { nullptr };
    usize m_skipped { 0 };
    char m_error[192];
};
