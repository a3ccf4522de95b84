// mkinitramfs: builds the Home OS initramfs, a zstd-compressed cpio "newc" archive.
//
//   mkinitramfs -o OUT.cpio.zst [--level N] [--root DIR] [--module PATH.ko[.zst]]...
//               [--load NAME]... [--compress-modules] [--package MANIFEST]... [--kernel-abi M.m]
//
// --package installs a third-party module package (abi/module.mk's `package` target): the
// manifest names a .ko.zst beside it; its size and sha256 must match, the manifest's name and
// abi must agree with the module's own .modinfo, and with --kernel-abi the module's ABI must be
// loadable by that kernel (same major, minor not newer). A package that fails any check is refused.
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
#include <lib/module/ModInfo.h>

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

// SHA-256 (FIPS 180-4), for package manifests.
std::string sha256_hex(const std::string& data)
{
    static const u32 k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
        0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
        0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
        0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
        0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
        0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2 };
    u32 h[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    std::string message = data;
    u64 bits = u64(data.size()) * 8;
    message += char(0x80);
    while (message.size() % 64 != 56) message += char(0);
    for (int i = 7; i >= 0; --i) message += char((bits >> (i * 8)) & 0xff);
    auto rotr = [](u32 x, int n) { return (x >> n) | (x << (32 - n)); };
    for (size_t chunk = 0; chunk < message.size(); chunk += 64) {
        u32 w[64];
        for (int i = 0; i < 16; ++i)
            w[i] = (u32(u8(message[chunk + i * 4])) << 24) | (u32(u8(message[chunk + i * 4 + 1])) << 16)
                | (u32(u8(message[chunk + i * 4 + 2])) << 8) | u32(u8(message[chunk + i * 4 + 3]));
        for (int i = 16; i < 64; ++i) {
            u32 s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            u32 s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        u32 a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
        for (int i = 0; i < 64; ++i) {
            u32 t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
            u32 t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
    }
    char out[65];
    for (int i = 0; i < 8; ++i) snprintf(out + i * 8, 9, "%08x", h[i]);
    return std::string(out, 64);
}

std::string read_whole_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) die("cannot read %s: %s", path.c_str(), strerror(errno));
    std::ostringstream data;
    data << in.rdbuf();
    return data.str();
}

std::pair<int, int> parse_abi(const std::string& text, const std::string& where)
{
    int major = 0, minor = 0;
    char extra = 0;
    if (sscanf(text.c_str(), "%d.%d%c", &major, &minor, &extra) != 2) die("%s: ABI version '%s' is not M.m", where.c_str(), text.c_str());
    return { major, minor };
}

// Checks a package manifest and returns the path of its module file.
std::string check_package(const std::string& manifest_path, const std::string& kernel_abi)
{
    std::map<std::string, std::string> fields;
    std::istringstream lines(read_whole_file(manifest_path));
    for (std::string line; std::getline(lines, line);) {
        auto eq = line.find('=');
        if (line.empty() || eq == std::string::npos) continue;
        fields.emplace(line.substr(0, eq), line.substr(eq + 1));
    }
    auto need = [&](const char* key) -> const std::string& {
        auto it = fields.find(key);
        if (it == fields.end()) die("package %s: manifest has no %s=", manifest_path.c_str(), key);
        return it->second;
    };
    if (need("format") != "homeos-module-package-1") die("package %s: unknown manifest format '%s'", manifest_path.c_str(), need("format").c_str());
    const std::string& file = need("file");
    if (file.find('/') != std::string::npos) die("package %s: file= must name a file beside the manifest", manifest_path.c_str());
    auto slash = manifest_path.rfind('/');
    std::string module_path = (slash == std::string::npos ? std::string() : manifest_path.substr(0, slash + 1)) + file;
    std::string bytes = read_whole_file(module_path);
    if (std::to_string(bytes.size()) != need("size"))
        die("package %s: %s is %zu bytes, the manifest says %s", manifest_path.c_str(), file.c_str(), bytes.size(), need("size").c_str());
    if (sha256_hex(bytes) != need("sha256"))
        die("package %s: sha256 of %s does not match the manifest (corrupt or tampered)", manifest_path.c_str(), file.c_str());
    auto [major, minor] = parse_abi(need("abi"), manifest_path);
    if (!kernel_abi.empty()) {
        auto [kernel_major, kernel_minor] = parse_abi(kernel_abi, "--kernel-abi");
        if (major != kernel_major || minor > kernel_minor)
            die("package %s: module ABI %d.%d cannot load on kernel ABI %d.%d", manifest_path.c_str(), major, minor, kernel_major, kernel_minor);
    }
    return module_path;
}

[[noreturn]] void usage(int status)
{
    fprintf(status ? stderr : stdout,
        "usage: mkinitramfs -o OUT.cpio.zst [--level N] [--root DIR] [--module PATH.ko[.zst]]...\n"
        "                   [--load NAME]... [--compress-modules] [--package MANIFEST]... [--kernel-abi M.m]\n");
    exit(status);
}

} // namespace

int main(int argc, char** argv)
{
    std::string output, root;
    std::vector<std::string> module_paths, load, packages;
    std::string kernel_abi;
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
        else if (arg == "--package") packages.push_back(value());
        else if (arg == "--kernel-abi") kernel_abi = value();
        else if (arg == "-h" || arg == "--help") usage(0);
        else {
            fprintf(stderr, "mkinitramfs: unknown argument '%s'\n", arg.c_str());
            usage(2);
        }
    }
    if (output.empty()) usage(2);

    std::map<std::string, Entry> entries;
    if (!root.empty()) add_root(entries, root, "");

    // Packages are checked before anything is built; their modules must agree with the manifest.
    std::map<std::string, std::string> package_names;
    for (auto& manifest : packages) {
        std::string path = check_package(manifest, kernel_abi);
        module_paths.push_back(path);
        std::istringstream lines(read_whole_file(manifest));
        for (std::string line; std::getline(lines, line);)
            if (line.rfind("name=", 0) == 0) package_names[path] = line.substr(5);
    }

    std::map<std::string, Module> modules;
    for (auto& path : module_paths) {
        Module module = load_module(path, compress_modules, level);
        if (package_names.count(path) && package_names[path] != module.name)
            die("package for %s: manifest name '%s' differs from the module's .modinfo name '%s'", path.c_str(), package_names[path].c_str(),
                module.name.c_str());
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
