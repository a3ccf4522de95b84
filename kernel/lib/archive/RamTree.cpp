#include <lib/archive/Cpio.h>
#include <lib/text/Format.h>
#include <lib/archive/RamTree.h>

#include <new>

namespace {

constexpr u32 ImplicitDirectoryMode = Cpio::TypeDirectory | 0755;

// Byte-wise ordering of names, so a directory lists the same way on every build.
int compare_names(StringView a, StringView b)
{
    usize common = a.length() < b.length() ? a.length() : b.length();
    for (usize i = 0; i < common; ++i) {
        u8 x = u8(a[i]), y = u8(b[i]);
        if (x != y) return x < y ? -1 : 1;
    }
    if (a.length() == b.length()) return 0;
    return a.length() < b.length() ? -1 : 1;
}

// Splits a path into its components, skipping empty ones (leading, trailing and repeated slashes).
class PathComponents {
public:
    explicit PathComponents(StringView path) : m_path(path) { skip_slashes(); }
    bool at_end() const { return m_offset >= m_path.length(); }
    StringView next()
    {
        usize start = m_offset;
        while (m_offset < m_path.length() && m_path[m_offset] != '/') ++m_offset;
        StringView component = m_path.substring(start, m_offset - start);
        skip_slashes();
        return component;
    }
    // Everything after the component last returned by next().
    StringView rest() const { return m_path.substring(m_offset); }

private:
    void skip_slashes()
    {
        while (m_offset < m_path.length() && m_path[m_offset] == '/') ++m_offset;
    }
    StringView m_path;
    usize m_offset { 0 };
};

bool is_dot(StringView s) { return s.length() == 1 && s[0] == '.'; }
bool is_dot_dot(StringView s) { return s.length() == 2 && s[0] == '.' && s[1] == '.'; }

} // namespace

StringView RamTree::Node::symlink_target() const
{
    if (!is_symlink()) return {};
    usize length = m_size;
    if (length && m_data[length - 1] == 0) --length;
    return StringView(reinterpret_cast<const char*>(m_data), length);
}

RamTree::Node* RamTree::Node::find_child(StringView name) const
{
    for (auto& child : m_children) {
        int order = compare_names(child.name(), name);
        if (order == 0) return &child;
        if (order > 0) break;
    }
    return nullptr;
}

ErrorOr<RamTree> RamTree::create(Allocator& allocator)
{
    RamTree tree(allocator);
    Node* root = TRY(tree.allocate_node(NodeType::Directory, ImplicitDirectoryMode, ""));
    tree.m_root = root;
    return tree;
}

RamTree::RamTree(RamTree&& other)
    : m_allocator(other.m_allocator)
    , m_root(other.m_root)
    , m_skipped(other.m_skipped)
{
    __builtin_memcpy(m_error, other.m_error, sizeof(m_error));
    other.m_root = nullptr;
}

RamTree::~RamTree()
{
    if (m_root) free_subtree(m_root);
}

ErrorOr<RamTree::Node*> RamTree::allocate_node(NodeType type, u32 mode, StringView name)
{
    void* memory = TRY(m_allocator->allocate(sizeof(Node) + name.length(), alignof(Node)));
    Node* node = new (memory) Node(type, mode, name.length());
    if (name.length()) __builtin_memcpy(reinterpret_cast<char*>(node + 1), name.characters(), name.length());
    return node;
}

void RamTree::free_node(Node* node)
{
    VERIFY(node->m_children.is_empty() && !node->m_sibling.is_linked());
    if (node->m_owns_data) m_allocator->deallocate(const_cast<u8*>(node->m_data), node->m_size);
    usize size = node->allocation_size();
    node->~Node();
    m_allocator->deallocate(node, size);
}

// Frees a node and everything below it, without recursion: descend to a leaf, free it, climb.
void RamTree::free_subtree(Node* top)
{
    if (top->m_sibling.is_linked()) decltype(top->m_children)::remove(*top);
    Node* node = top;
    for (;;) {
        if (Node* child = node->m_children.first()) {
            node = child;
            continue;
        }
        if (node == top) {
            free_node(node);
            return;
        }
        Node* parent = node->m_parent;
        decltype(parent->m_children)::remove(*node);
        free_node(node);
        node = parent;
    }
}

void RamTree::insert_child(Node& directory, Node& child)
{
    child.m_parent = &directory;
    for (auto& sibling : directory.m_children) {
        if (compare_names(sibling.name(), child.name()) > 0) {
            directory.m_children.insert_before(sibling, child);
            return;
        }
    }
    directory.m_children.append(child);
}

Error RamTree::fail(Error error, const char* fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vformat(m_error, sizeof(m_error), fmt, args);
    va_end(args);
    return error;
}

ErrorOr<void> RamTree::add_entry(Node& staging_root, const CpioEntry& entry, DataMode data_mode)
{
    int const name_length = int(entry.name.length());
    const char* const name_chars = entry.name.characters();

    NodeType type;
    if (entry.is_directory())
        type = NodeType::Directory;
    else if (entry.is_regular())
        type = NodeType::File;
    else if (entry.is_symlink())
        type = NodeType::Symlink;
    else {
        ++m_skipped;
        return {};
    }

    // First pass: check every component, with no side effects.
    usize depth = 0;
    StringView last;
    for (PathComponents components(entry.name); !components.at_end();) {
        StringView component = components.next();
        if (is_dot(component)) continue;
        if (is_dot_dot(component))
            return fail(EINVAL, "initramfs: entry %zu ('%.*s'): '..' in a path", entry.index, name_length, name_chars);
        if (component.length() > MaxNameLength)
            return fail(ENAMETOOLONG, "initramfs: entry %zu: a component is longer than %zu bytes", entry.index, MaxNameLength);
        if (++depth > MaxDepth)
            return fail(ENAMETOOLONG, "initramfs: entry %zu: path deeper than %zu components", entry.index, MaxDepth);
        last = component;
    }

    if (depth == 0) {
        // The root's own entry ("." or "/").
        if (type != NodeType::Directory)
            return fail(EINVAL, "initramfs: entry %zu ('%.*s'): the root must be a directory", entry.index, name_length, name_chars);
        staging_root.m_mode = entry.mode;
        staging_root.m_uid = entry.uid;
        staging_root.m_gid = entry.gid;
        staging_root.m_mtime = entry.mtime;
        staging_root.m_explicit = true;
        return {};
    }

    // Second pass: walk, creating missing intermediate directories.
    Node* directory = &staging_root;
    usize seen = 0;
    PathComponents components(entry.name);
    for (;;) {
        StringView component = components.next();
        if (is_dot(component)) continue;
        if (++seen == depth) break;
        Node* child = directory->find_child(component);
        if (!child) {
            child = TRY(allocate_node(NodeType::Directory, ImplicitDirectoryMode, component));
            insert_child(*directory, *child);
        } else if (!child->is_directory()) {
            return fail(ENOTDIR, "initramfs: entry %zu ('%.*s'): '%.*s' is not a directory", entry.index,
                name_length, name_chars, int(component.length()), component.characters());
        }
        directory = child;
    }

    Node* existing = directory->find_child(last);
    if (existing && existing->is_directory() && type == NodeType::Directory) {
        existing->m_mode = entry.mode;
        existing->m_uid = entry.uid;
        existing->m_gid = entry.gid;
        existing->m_mtime = entry.mtime;
        existing->m_explicit = true;
        return {};
    }

    Node* node = TRY(allocate_node(type, entry.mode, last));
    node->m_uid = entry.uid;
    node->m_gid = entry.gid;
    node->m_mtime = entry.mtime;
    node->m_explicit = true;
    if (type != NodeType::Directory && !entry.data.is_empty()) {
        if (data_mode == DataMode::Copy) {
            auto copy = m_allocator->allocate(entry.data.size(), 1);
            if (copy.is_error()) {
                free_node(node);
                return copy.release_error();
            }
            __builtin_memcpy(copy.value(), entry.data.data(), entry.data.size());
            node->m_data = static_cast<const u8*>(copy.value());
            node->m_owns_data = true;
        } else {
            node->m_data = entry.data.data();
        }
        node->m_size = entry.data.size();
    }
    if (existing) free_subtree(existing);
    insert_child(*directory, *node);
    return {};
}

// Moves every child of `source` under `destination`, the source winning each conflict, and frees
// the emptied source. Never allocates and never fails, which is what makes populate atomic.
void RamTree::graft(Node& destination, Node& source, usize depth)
{
    VERIFY(depth <= MaxDepth + 1);
    if (source.m_explicit) {
        destination.m_mode = source.m_mode;
        destination.m_uid = source.m_uid;
        destination.m_gid = source.m_gid;
        destination.m_mtime = source.m_mtime;
        destination.m_explicit = true;
    }
    while (Node* child = source.m_children.take_first()) {
        Node* existing = destination.find_child(child->name());
        if (existing && existing->is_directory() && child->is_directory()) {
            graft(*existing, *child, depth + 1);
            continue;
        }
        if (existing) free_subtree(existing);
        insert_child(destination, *child);
    }
    if (source.m_sibling.is_linked()) decltype(source.m_children)::remove(source);
    free_node(&source);
}

ErrorOr<void> RamTree::populate_from_cpio(ReadonlyBytes archive, DataMode data_mode)
{
    m_error[0] = 0;
    usize const skipped_before = m_skipped;
    auto staging_or_error = allocate_node(NodeType::Directory, m_root->m_mode, "");
    if (staging_or_error.is_error())
        return fail(staging_or_error.error(), "initramfs: no memory to start unpacking (%s)", staging_or_error.error().name());
    Node* staging = staging_or_error.value();

    CpioReader reader(archive);
    CpioEntry entry;
    for (;;) {
        auto more = reader.next(entry);
        ErrorOr<void> result;
        if (more.is_error()) {
            format(m_error, sizeof(m_error), "initramfs: %s", reader.error_message());
            result = more.release_error();
        } else if (!more.value()) {
            break;
        } else {
            result = add_entry(*staging, entry, data_mode);
        }
        if (result.is_error()) {
            if (m_error[0] == 0)
                format(m_error, sizeof(m_error), "initramfs: entry %zu ('%.*s'): %s", entry.index,
                    int(entry.name.length()), entry.name.characters(), result.error().name());
            free_subtree(staging);
            m_skipped = skipped_before;
            return result;
        }
    }
    graft(*m_root, *staging, 0);
    return {};
}

ErrorOr<RamTree::Node*> RamTree::walk(Node* start, StringView path, bool follow_final, u32& follows_left)
{
    bool const wants_directory = !path.is_empty() && path[path.length() - 1] == '/';
    Node* node = (!path.is_empty() && path[0] == '/') ? m_root : start;
    PathComponents components(path);
    while (!components.at_end()) {
        StringView component = components.next();
        bool const is_last = components.at_end();
        if (!node->is_directory()) return ENOTDIR;
        if (is_dot(component)) continue;
        if (is_dot_dot(component)) {
            node = node->parent();
            continue;
        }
        Node* child = node->find_child(component);
        if (!child) return ENOENT;
        if (child->is_symlink() && (!is_last || follow_final || wants_directory)) {
            if (follows_left == 0) return ELOOP;
            --follows_left;
            child = TRY(walk(node, child->symlink_target(), true, follows_left));
        }
        node = child;
    }
    if (wants_directory && !node->is_directory()) return ENOTDIR;
    return node;
}

ErrorOr<RamTree::Node*> RamTree::lookup(StringView path, Follow follow)
{
    u32 follows_left = MaxSymlinkFollows;
    return walk(m_root, path, follow == Follow::Yes, follows_left);
}

ErrorOr<ReadonlyBytes> RamTree::read_file(StringView path)
{
    Node* node = TRY(lookup(path, Follow::Yes));
    if (node->is_directory()) return EISDIR;
    return node->data();
}

RamTree::Stats RamTree::stats() const
{
    Stats stats;
    stats.skipped = m_skipped;
    if (!m_root) return stats;
    // Pre-order walk without recursion: down to the first child, else across, else back up.
    const Node* node = m_root;
    while (node) {
        switch (node->type()) {
        case NodeType::Directory: ++stats.directories; break;
        case NodeType::File: ++stats.files; stats.bytes += node->m_size; break;
        case NodeType::Symlink: ++stats.symlinks; break;
        }
        if (const Node* child = node->first_child()) {
            node = child;
            continue;
        }
        while (node && node != m_root && !node->next_sibling()) node = node->m_parent;
        node = (node && node != m_root) ? node->next_sibling() : nullptr;
    }
    return stats;
}
