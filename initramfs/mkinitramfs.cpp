// mkinitramfs: builds the Home OS initramfs, a zstd-compressed cpio "newc" archive.
//
//   mkinitramfs -o OUT.cpio.zst [--level N] [--root DIR] [--module PATH.ko[.zst]]...
//               [--load NAME]... [--compress-modules]
//
// The archive holds, sorted by path:
//   - the tree under --root (regular files, directories and symlinks, with their permissions);
//   - each module at lib/modules/<name>.ko, <name> from its .modinfo name= (else the file name),
//     or lib/modules/<name>.ko.zst when given compressed or with --compress-modules;
//   - lib/modules/modules.dep, depmod's format: "lib/modules/a.ko: lib/modules/c.ko lib/modules/b.ko",
//     one line per module sorted by name, listing every transitive dependency once, in the order
//     they must be loaded (a dependency's own dependencies come before it). NOTE: Linux's depmod
//     writes the reverse order and modprobe walks the list backwards; we write the order the
//     loader walks forwards, so the kernel needs no reversal.
//   - lib/modules/modules.alias, "alias <pattern> <name>" per alias= entry, as depmod writes it;
//   - etc/modules-load, one --load module name per line.
// A dependency cycle, a missing dependency, two modules with one name or an unknown --load name
// is an error. Files generated here replace same-named files from --root.
//
// Output is reproducible: entries are sorted, mtime/uid/gid are 0, inode numbers follow the sort
// order, and the zstd frame (content size and checksum on) is made single-threaded.
#include <lib/ModInfo.h>

#include <dirent.h>
#include <elf.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void die(const char* fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    fprintf(stderr, "mkinitramfs: error: ");
    vfprintf(stderr, fmt, args);
    fprintf(stderr, "\n");
    va_end(args);
    exit(1);
}

std::string to_string(StringView s) { return std::string(s.characters(), s.length()); }

std::string read_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) die("cannot read %s: %s", path.c_str(), strerror(errno));
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

bool ends_with(const std::string& s, const std::string& suffix)
{
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// ---------------------------------------------------------------------------------------------
// zstd
// ---------------------------------------------------------------------------------------------

std::string zstd_compress(const std::string& input, int level)
{
    ZSTD_CCtx* context = ZSTD_createCCtx();
    if (!context) die("out of memory");
    ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 1);
    ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(context, ZSTD_c_nbWorkers, 0);
    std::string output(ZSTD_compressBound(input.size()), '\0');
    size_t size = ZSTD_compress2(context, output.data(), output.size(), input.data(), input.size());
    ZSTD_freeCCtx(context);
    if (ZSTD_isError(size)) die("zstd compression failed: %s", ZSTD_getErrorName(size));
    output.resize(size);
    return output;
}

std::string zstd_decompress(const std::string& input, const std::string& what)
{
    ZSTD_DCtx* context = ZSTD_createDCtx();
    if (!context) die("out of memory");
    std::string output;
    ZSTD_inBuffer in { input.data(), input.size(), 0 };
    std::vector<char> chunk(ZSTD_DStreamOutSize());
    for (;;) {
        ZSTD_outBuffer out { chunk.data(), chunk.size(), 0 };
        size_t remaining = ZSTD_decompressStream(context, &out, &in);
        if (ZSTD_isError(remaining)) die("%s: zstd: %s", what.c_str(), ZSTD_getErrorName(remaining));
        output.append(chunk.data(), out.pos);
        if (output.size() > (1u << 30)) die("%s: decompresses to more than 1 GiB", what.c_str());
        // 0 means a frame just ended; with no input left, that is the end of the file.
        if (remaining == 0 && in.pos == in.size) break;
        // Input used up, output not full, frame unfinished: nothing more will come.
        if (in.pos == in.size && out.pos < out.size) die("%s: truncated zstd frame", what.c_str());
    }
    ZSTD_freeDCtx(context);
    return output;
}

// ---------------------------------------------------------------------------------------------
// ELF: find .modinfo in an x86-64 relocatable object
// ---------------------------------------------------------------------------------------------

// Returns the .modinfo section's bytes, or nullopt if the object has none.
std::optional<std::string> find_modinfo(const std::string& elf, const std::string& what)
{
    if (elf.size() < sizeof(Elf64_Ehdr) || memcmp(elf.data(), ELFMAG, SELFMAG) != 0) die("%s: not an ELF file", what.c_str());
    Elf64_Ehdr header;
    memcpy(&header, elf.data(), sizeof(header));
    if (header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_ident[EI_DATA] != ELFDATA2LSB)
        die("%s: not a little-endian ELF64 object", what.c_str());
    if (header.e_type != ET_REL) die("%s: not a relocatable object (e_type %u)", what.c_str(), header.e_type);
    if (header.e_machine != EM_X86_64) die("%s: not an x86-64 object (e_machine %u)", what.c_str(), header.e_machine);
    if (header.e_shentsize != sizeof(Elf64_Shdr)) die("%s: unexpected section header size %u", what.c_str(), header.e_shentsize);
    u64 table_size = u64(header.e_shnum) * sizeof(Elf64_Shdr);
    if (header.e_shoff > elf.size() || table_size > elf.size() - header.e_shoff)
        die("%s: section headers run past the end of the file", what.c_str());
    if (header.e_shstrndx >= header.e_shnum) die("%s: bad section name table index", what.c_str());

    auto section = [&](usize index) {
        Elf64_Shdr s;
        memcpy(&s, elf.data() + header.e_shoff + index * sizeof(Elf64_Shdr), sizeof(s));
        return s;
    };
    auto contents = [&](const Elf64_Shdr& s) {
        if (s.sh_type == SHT_NOBITS) return std::string();
        if (s.sh_offset > elf.size() || s.sh_size > elf.size() - s.sh_offset)
            die("%s: a section runs past the end of the file", what.c_str());
        return elf.substr(s.sh_offset, s.sh_size);
    };
    std::string names = contents(section(header.e_shstrndx));
    for (usize i = 0; i < header.e_shnum; ++i) {
        Elf64_Shdr s = section(i);
        if (s.sh_name >= names.size()) die("%s: section %zu has a bad name offset", what.c_str(), i);
        if (strcmp(names.c_str() + s.sh_name, ".modinfo") == 0) return contents(s);
    }
    return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Modules
// ---------------------------------------------------------------------------------------------

struct Module {
    std::string name;
    std::string source;      // the path given on the command line
    std::string stored;      // the bytes that go into the archive
    bool compressed { false };
    std::vector<std::string> depends;
    std::vector<std::string> aliases;
    std::string archive_path() const { return "lib/modules/" + name + (compressed ? ".ko.zst" : ".ko"); }
};

Module load_module(const std::string& path, bool compress, int level)
{
    Module module;
    module.source = path;
    std::string raw = read_file(path);
    bool const given_compressed = ends_with(path, ".ko.zst");
    if (!given_compressed && !ends_with(path, ".ko")) die("%s: a module file must end in .ko or .ko.zst", path.c_str());
    std::string elf = given_compressed ? zstd_decompress(raw, path) : raw;

    std::string base = path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
    base = base.substr(0, base.size() - (given_compressed ? 7 : 3));

    std::string section = find_modinfo(elf, path).value_or("");
    // A module without name= is named after its file.
    bool has_name = false;
    for (usize start = 0; start < section.size();) {
        usize end = section.find('\0', start);
        if (end == std::string::npos) end = section.size();
        if (section.compare(start, 5, "name=") == 0) has_name = true;
        start = end + 1;
    }
    if (!has_name) {
        if (!section.empty() && section.back() != '\0') section.push_back('\0');
        section += "name=" + base;
        section.push_back('\0');
    }

    ModInfo info;
    if (info.parse(ReadonlyBytes(reinterpret_cast<const u8*>(section.data()), section.size())).is_error())
        die("%s: %s", path.c_str(), info.error_message());
    module.name = to_string(info.name());
    info.for_each_dependency([&](StringView name) { module.depends.push_back(to_string(name)); });
    info.for_each_alias([&](StringView alias) { module.aliases.push_back(to_string(alias)); });
    for (auto& alias : module.aliases)
        for (char c : alias)
            if (c == ' ' || c == '\n' || c == '\t') die("%s: alias '%s' contains whitespace", path.c_str(), alias.c_str());

    if (compress) {
        module.compressed = true;
        module.stored = zstd_compress(elf, level);
    } else {
        module.compressed = given_compressed;
        module.stored = raw;
    }
    return module;
}

// Every module's transitive dependencies in load order (post-order DFS, dependencies in the order
// depends= lists them), each once. Dies on a cycle or a missing module.
std::map<std::string, std::vector<std::string>> resolve_dependencies(const std::map<std::string, Module>& modules)
{
    std::map<std::string, std::vector<std::string>> result;
    for (auto& module_entry : modules) {
        const std::string& name = module_entry.first;
        std::vector<std::string> order;
        std::set<std::string> done;
        std::vector<std::string> stack; // the current DFS path, for cycle messages
        std::function<void(const std::string&)> visit = [&](const std::string& current) {
            for (usize i = 0; i < stack.size(); ++i) {
                if (stack[i] != current) continue;
                std::string cycle;
                for (usize j = i; j < stack.size(); ++j) cycle += stack[j] + " -> ";
                die("dependency cycle: %s%s", cycle.c_str(), current.c_str());
            }
            if (done.count(current)) return;
            auto it = modules.find(current);
            if (it == modules.end())
                die("module '%s' depends on '%s', which is not in the initramfs (add it with --module)",
                    stack.back().c_str(), current.c_str());
            stack.push_back(current);
            for (auto& dependency : it->second.depends) visit(dependency);
            stack.pop_back();
            done.insert(current);
            if (current != name) order.push_back(current);
        };
        visit(name);
        result[name] = order;
    }
    return result;
}

// ---------------------------------------------------------------------------------------------
// The archive
// ---------------------------------------------------------------------------------------------

struct Entry {
    u32 mode;
    std::string data; // file contents or symlink target
};

void add_root(std::map<std::string, Entry>& entries, const std::string& root, const std::string& relative)
{
    std::string directory = relative.empty() ? root : root + "/" + relative;
    DIR* dir = opendir(directory.c_str());
    if (!dir) die("cannot open directory %s: %s", directory.c_str(), strerror(errno));
    std::vector<std::string> names;
    while (dirent* d = readdir(dir)) {
        if (strcmp(d->d_name, ".") && strcmp(d->d_name, "..")) names.push_back(d->d_name);
    }
    closedir(dir);
    for (auto& name : names) {
        std::string path = relative.empty() ? name : relative + "/" + name;
        std::string full = root + "/" + path;
        struct stat st;
        if (lstat(full.c_str(), &st) != 0) die("cannot stat %s: %s", full.c_str(), strerror(errno));
        u32 permissions = st.st_mode & 07777;
        if (S_ISDIR(st.st_mode)) {
            entries[path] = { u32(S_IFDIR) | permissions, "" };
            add_root(entries, root, path);
        } else if (S_ISREG(st.st_mode)) {
            entries[path] = { u32(S_IFREG) | permissions, read_file(full) };
        } else if (S_ISLNK(st.st_mode)) {
            std::vector<char> target(PATH_MAX + 1);
            ssize_t n = readlink(full.c_str(), target.data(), PATH_MAX);
            if (n < 0) die("cannot read link %s: %s", full.c_str(), strerror(errno));
            entries[path] = { u32(S_IFLNK) | 0777, std::string(target.data(), usize(n)) };
        } else {
            fprintf(stderr, "mkinitramfs: warning: skipping %s (not a file, directory or symlink)\n", full.c_str());
        }
    }
}

void append_padding(std::string& out)
{
    while (out.size() % 4) out.push_back('\0');
}

void append_entry(std::string& out, const std::string& name, u32 mode, const std::string& data, u32 ino)
{
    char header[111];
    u32 nlink = (mode & S_IFMT) == S_IFDIR ? 2 : 1;
    snprintf(header, sizeof(header), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino, mode, 0u, 0u,
        nlink, 0u, u32(data.size()), 0u, 0u, 0u, 0u, u32(name.size() + 1), 0u);
    out.append(header, 110);
    out.append(name);
    out.push_back('\0');
    append_padding(out);
    out.append(data);
    append_padding(out);
}

std::string build_archive(const std::map<std::string, Entry>& entries)
{
    std::string out;
    u32 ino = 1;
    for (auto& [name, entry] : entries) {
        if (entry.data.size() > 0xffffffffu) die("%s is too large for a newc archive", name.c_str());
        append_entry(out, name, entry.mode, entry.data, ino++);
    }
    append_entry(out, "TRAILER!!!", 0, "", 0);
    return out;
}

void write_file(const std::string& path, const std::string& bytes)
{
    std::string temporary = path + ".tmp";
    FILE* file = fopen(temporary.c_str(), "wb");
    if (!file) die("cannot create %s: %s", temporary.c_str(), strerror(errno));
    bool ok = fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
    ok = (fclose(file) == 0) && ok;
    if (!ok || rename(temporary.c_str(), path.c_str()) != 0) {
        unlink(temporary.c_str());
        die("cannot write %s: %s", path.c_str(), strerror(errno));
    }
}

[[noreturn]] void usage(int status)
{
    fprintf(status ? stderr : stdout,
        "usage: mkinitramfs -o OUT.cpio.zst [--level N] [--root DIR] [--module PATH.ko[.zst]]...\n"
        "                   [--load NAME]... [--compress-modules]\n");
    exit(status);
}

} // namespace

int main(int argc, char** argv)
{
    std::string output, root;
    std::vector<std::string> module_paths, load;
    int level = ZSTD_CLEVEL_DEFAULT;
    bool compress_modules = false;

    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) die("%s needs a value", arg.c_str());
            return argv[++i];
        };
        if (arg == "-o" || arg == "--output") output = value();
        else if (arg == "--level") {
            std::string text = value();
            char* end = nullptr;
            long parsed = strtol(text.c_str(), &end, 10);
            if (text.empty() || *end || parsed < ZSTD_minCLevel() || parsed > ZSTD_maxCLevel())
                die("--level must be a number from %d to %d", ZSTD_minCLevel(), ZSTD_maxCLevel());
            level = int(parsed);
        } else if (arg == "--root") root = value();
        else if (arg == "--module") module_paths.push_back(value());
        else if (arg == "--load") load.push_back(value());
        else if (arg == "--compress-modules") compress_modules = true;
        else if (arg == "-h" || arg == "--help") usage(0);
        else {
            fprintf(stderr, "mkinitramfs: unknown argument '%s'\n", arg.c_str());
            usage(2);
        }
    }
    if (output.empty()) usage(2);

    std::map<std::string, Entry> entries;
    if (!root.empty()) add_root(entries, root, "");

    std::map<std::string, Module> modules;
    for (auto& path : module_paths) {
        Module module = load_module(path, compress_modules, level);
        auto [it, inserted] = modules.emplace(module.name, module);
        if (!inserted) die("two modules are named '%s': %s and %s", module.name.c_str(), it->second.source.c_str(), path.c_str());
    }
    auto dependencies = resolve_dependencies(modules);

    for (auto& name : load) {
        if (!modules.count(name)) die("--load %s: no module of that name was given with --module", name.c_str());
    }

    auto ensure_directory = [&](const std::string& path) {
        auto it = entries.find(path);
        if (it == entries.end() || (it->second.mode & S_IFMT) != S_IFDIR) entries[path] = { u32(S_IFDIR) | 0755, "" };
    };
    ensure_directory("lib");
    ensure_directory("lib/modules");
    ensure_directory("etc");

    std::string dep_text, alias_text = "# Aliases extracted from modules themselves.\n";
    for (auto& [name, module] : modules) {
        entries[module.archive_path()] = { u32(S_IFREG) | 0644, module.stored };
        dep_text += module.archive_path() + ":";
        for (auto& dependency : dependencies[name]) dep_text += " " + modules[dependency].archive_path();
        dep_text += "\n";
        for (auto& alias : module.aliases) alias_text += "alias " + alias + " " + name + "\n";
    }
    entries["lib/modules/modules.dep"] = { u32(S_IFREG) | 0644, dep_text };
    entries["lib/modules/modules.alias"] = { u32(S_IFREG) | 0644, alias_text };
    std::string load_text;
    for (auto& name : load) load_text += name + "\n";
    entries["etc/modules-load"] = { u32(S_IFREG) | 0644, load_text };

    std::string archive = build_archive(entries);
    write_file(output, zstd_compress(archive, level));
    return 0;
}
