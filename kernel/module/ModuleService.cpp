#include <lib/boot/CommandLine.h>
#include <lib/text/Format.h>
#include <lib/module/ModInfo.h>
#include <log/Log.h>
#include <module/Decompress.h>
#include <module/Initramfs.h>
#include <module/ModuleLoader.h>
#include <module/ModuleRegistry.h>
#include <module/ModuleService.h>
#include <pci/Pci.h>

namespace module_service {

namespace {
constexpr usize MAX_DEPTH = 16;
const CommandLine* g_command_line = nullptr;

// "hello.count=5 hello.verbose" on the kernel command line -> "count=5 verbose" for hello.
void command_line_params(StringView name, char* out, usize capacity)
{
    usize length = 0;
    out[0] = 0;
    if (!g_command_line)
        return;
    for (usize i = 0; i < g_command_line->entry_count(); ++i) {
        auto& entry = g_command_line->entry(i);
        if (entry.key.length() <= name.length() + 1 || !entry.key.starts_with(name) || entry.key[name.length()] != '.')
            continue;
        StringView key = entry.key.substring(name.length() + 1);
        if (entry.has_value)
            length += format(out + length, capacity - length, "%s%.*s=\"%.*s\"", length ? " " : "", (int)key.length(), key.characters(),
                (int)entry.value.length(), entry.value.characters());
        else
            length += format(out + length, capacity - length, "%s%.*s", length ? " " : "", (int)key.length(), key.characters());
        if (length >= capacity)
            length = capacity - 1;
    }
}

// Iterates the lines of a text file.
template<typename Callback>
void for_each_line(ReadonlyBytes text, Callback callback)
{
    usize start = 0;
    for (usize i = 0; i <= text.size(); ++i) {
        if (i == text.size() || text[i] == '\n') {
            if (i > start)
                callback(StringView((const char*)text.data() + start, i - start));
            start = i + 1;
        }
    }
}

StringView trim(StringView s)
{
    usize a = 0, b = s.length();
    while (a < b && (s[a] == ' ' || s[a] == '\t' || s[a] == '\r'))
        ++a;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '\r'))
        --b;
    return s.substring(a, b - a);
}

// "lib/modules/foo.ko.zst" -> "foo"
StringView module_name_of(StringView path)
{
    isize slash = -1;
    for (usize i = 0; i < path.length(); ++i)
        if (path[i] == '/')
            slash = (isize)i;
    StringView base = path.substring((usize)(slash + 1));
    isize dot = base.find('.');
    return dot < 0 ? base : base.substring(0, (usize)dot);
}

ErrorOr<ReadonlyBytes> module_image(StringView name)
{
    char path[128];
    format(path, sizeof(path), "lib/modules/%.*s.ko", (int)name.length(), name.characters());
    auto plain = initramfs::root().read_file(path);
    if (!plain.is_error())
        return plain;
    format(path, sizeof(path), "lib/modules/%.*s.ko.zst", (int)name.length(), name.characters());
    return initramfs::root().read_file(path);
}

ErrorOr<Module*> load_with_dependencies(StringView name, StringView params, usize depth)
{
    if (auto* loaded = modules::find(name))
        return loaded;
    if (depth > MAX_DEPTH) {
        log_err("module: %.*s: dependency chain deeper than %zu (a cycle?)", (int)name.length(), name.characters(), MAX_DEPTH);
        return Error::with_message(ELOOP, "dependency chain too deep (a cycle?)");
    }
    if (!initramfs::is_available())
        return Error::with_message(ENOENT, "no initramfs");
    // modules.dep lists the full dependency closure in load order, as depmod writes it.
    auto dep = initramfs::root().read_file("lib/modules/modules.dep");
    if (!dep.is_error()) {
        ErrorOr<void> status;
        for_each_line(dep.value(), [&](StringView line) {
            if (status.is_error())
                return;
            isize colon = line.find(':');
            if (colon < 0 || module_name_of(line.substring(0, (usize)colon)) != name)
                return;
            StringView rest = line.substring((usize)colon + 1);
            while (!rest.is_empty() && !status.is_error()) {
                rest = trim(rest);
                isize space = rest.find(' ');
                StringView item = space < 0 ? rest : rest.substring(0, (usize)space);
                rest = space < 0 ? StringView() : rest.substring((usize)space + 1);
                if (item.is_empty())
                    continue;
                auto loaded = load_with_dependencies(module_name_of(item), {}, depth + 1);
                if (loaded.is_error())
                    status = loaded.release_error();
            }
        });
        TRY(status);
    }
    auto image = module_image(name);
    if (image.is_error()) {
        log_err("module: %.*s: not found in /lib/modules", (int)name.length(), name.characters());
        return Error::with_message(ENOENT, "not found in /lib/modules");
    }
    char from_command_line[256];
    if (params.is_empty()) {
        command_line_params(name, from_command_line, sizeof(from_command_line));
        params = StringView(from_command_line);
    }
    return ModuleLoader::load(image.value(), params);
}
}

void set_command_line(const CommandLine* line) { g_command_line = line; }

ErrorOr<Module*> load_by_name(StringView name, StringView params) { return load_with_dependencies(name, params, 0); }

void load_boot_modules(StringView command_line_list)
{
    if (!initramfs::is_available())
        return;
    auto list = initramfs::root().read_file("etc/modules-load");
    if (!list.is_error()) {
        for_each_line(list.value(), [](StringView line) {
            line = trim(line);
            if (line.is_empty() || line[0] == '#')
                return;
            (void)load_by_name(line);
        });
    }
    StringView rest = command_line_list;
    while (!rest.is_empty()) {
        isize comma = rest.find(',');
        StringView item = trim(comma < 0 ? rest : rest.substring(0, (usize)comma));
        rest = comma < 0 ? StringView() : rest.substring((usize)comma + 1);
        if (!item.is_empty())
            (void)load_by_name(item);
    }
}

bool module_for_alias(StringView modalias, char* out, usize capacity)
{
    if (!initramfs::is_available())
        return false;
    auto aliases = initramfs::root().read_file("lib/modules/modules.alias");
    if (aliases.is_error())
        return false;
    bool found = false;
    for_each_line(aliases.value(), [&](StringView line) {
        // "alias <pattern> <module>"
        if (found || !line.starts_with("alias "))
            return;
        StringView rest = line.substring(6);
        isize space = rest.find(' ');
        if (space < 0)
            return;
        StringView pattern = rest.substring(0, (usize)space);
        StringView module = trim(rest.substring((usize)space + 1));
        if (modalias_match(pattern, modalias)) {
            usize n = module.length() < capacity - 1 ? module.length() : capacity - 1;
            __builtin_memcpy(out, module.characters(), n);
            out[n] = 0;
            found = true;
        }
    });
    return found;
}

usize autoload_pci()
{
    usize loaded = 0;
    for (auto& device : pci::devices()) {
        if (device.bound_driver)
            continue;
        char name[64];
        if (!module_for_alias(StringView(device.modalias), name, sizeof(name)))
            continue;
        if (modules::find(StringView(name)))
            continue;
        log_info("module: autoloading %s for %02x:%02x.%u (%s)", name, device.bus, device.slot, device.function, device.modalias);
        if (!load_by_name(StringView(name)).is_error())
            ++loaded;
    }
    return loaded;
}

} // namespace module_service

long sys_init_module(const void* image, unsigned long length, const char* params)
{
    if (!image || length == 0)
        return -EINVAL;
    auto result = ModuleLoader::load(ReadonlyBytes((const u8*)image, length), params ? StringView(params) : StringView());
    return result.is_error() ? -result.error().code() : 0;
}

long sys_finit_module_path(const char* path, const char* params, int flags)
{
    if (flags & ~(int)(MODULE_INIT_IGNORE_MODVERSIONS | MODULE_INIT_IGNORE_VERMAGIC | MODULE_INIT_COMPRESSED_FILE))
        return -EINVAL;
    // Home OS never ignores versions or vermagic: the ABI check is the point.
    if (flags & (MODULE_INIT_IGNORE_MODVERSIONS | MODULE_INIT_IGNORE_VERMAGIC))
        return -EPERM;
    if (!initramfs::is_available())
        return -ENOENT;
    auto image = initramfs::root().read_file(path);
    if (image.is_error())
        return -image.error().code();
    bool compressed = DecompressedImage::is_compressed(image.value());
    // As on Linux, a compressed image must be declared, and a declared one must be compressed.
    if (compressed != (bool)(flags & MODULE_INIT_COMPRESSED_FILE))
        return -EINVAL;
    auto result = ModuleLoader::load(image.value(), params ? StringView(params) : StringView());
    return result.is_error() ? -result.error().code() : 0;
}

long sys_delete_module(const char* name, unsigned flags)
{
    if (!name)
        return -EFAULT;
    if (flags & ~(O_NONBLOCK_FLAG | O_TRUNC_FLAG))
        return -EINVAL;
    auto result = ModuleLoader::unload(StringView(name));
    return result.is_error() ? -result.error().code() : 0;
}
