#include <Panic.h>
#include <arch/Cpu.h>
#include <arch/PerCpu.h>
#include <arch/Platform.h>
#include <console/Serial.h>
#include <ktl/StringView.h>
#include <log/Log.h>
#include <lib/text/Format.h>
#include <mm/Kmalloc.h>
#include <module/Initramfs.h>
#include <module/ModuleLoader.h>
#include <module/ModuleRegistry.h>
#include <module/ModuleService.h>
#include <lib/module/ModInfo.h>
#include <lib/elf/ElfObject.h>
#include <shell/Monitor.h>
#include <test/Benchmarks.h>
#include <test/KTest.h>
#include <time/Clock.h>
#include <time/Timers.h>

namespace monitor {

namespace {
constexpr usize LINE_MAX = 256;

void print(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// Streams to the consoles: output of any length arrives whole (`help` is longer than a buffer).
void print(const char* fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    klog::console_vprintf(fmt, args);
    va_end(args);
}

StringView trim(StringView s)
{
    usize start = 0, end = s.length();
    while (start < end && (s[start] == ' ' || s[start] == '\t'))
        ++start;
    while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t' || s[end - 1] == '\r'))
        --end;
    return s.substring(start, end - start);
}

void read_line(char* line, usize capacity)
{
    usize length = 0;
    for (;;) {
        int c = serial::read_char();
        if (c < 0) {
            // Nothing waiting: sleep until the next timer tick rather than spin.
            arch::wait_for_interrupt();
            continue;
        }
        if (c == '\r' || c == '\n') {
            print("\n");
            line[length] = 0;
            return;
        }
        if ((c == 0x7F || c == 0x08) && length > 0) {
            --length;
            print("\b \b");
            continue;
        }
        if (c >= 0x20 && c < 0x7F && length + 1 < capacity) {
            line[length++] = (char)c;
            char echo = (char)c;
            klog::console_write(&echo, 1);
        }
    }
}
}

void list_directory(StringView path)
{
    if (!initramfs::is_available()) {
        print("ls: no initramfs\n");
        return;
    }
    auto node = initramfs::root().lookup(path);
    if (node.is_error()) {
        print("ls: %.*s: %s\n", (int)path.length(), path.characters(), node.error().name());
        return;
    }
    if (!node.value()->is_directory()) {
        print("%.*s\n", (int)path.length(), path.characters());
        return;
    }
    node.value()->for_each_child([](const RamTree::Node& child) {
        print("%.*s%s\n", (int)child.name().length(), child.name().characters(), child.is_directory() ? "/" : "");
    });
}

// "insmod: hello: EINVAL (parameter value outside its allowed range)": the reason is the one the
// failed call returned, never an earlier call's.
void print_refusal(const char* command, StringView name, Error error)
{
    if (error.has_message())
        print("%s: %.*s: %s (%s)\n", command, (int)name.length(), name.characters(), error.name(), error.message());
    else
        print("%s: %.*s: %s\n", command, (int)name.length(), name.characters(), error.name());
}

void show_modinfo(StringView name)
{
    char path[128];
    format(path, sizeof(path), "lib/modules/%.*s.ko", (int)name.length(), name.characters());
    if (!initramfs::is_available()) {
        print("modinfo: no initramfs\n");
        return;
    }
    auto image = initramfs::root().read_file(path);
    if (image.is_error()) {
        print("modinfo: %s: %s\n", path, image.error().name());
        return;
    }
    // Print the raw key=value strings of .modinfo, found by scanning for the section's content.
    ElfError detail;
    auto object = ElfObject::parse(image.value(), detail);
    if (object.is_error()) {
        print("modinfo: %s: %s (%s: %s)\n", path, object.error().name(), object.error().message(), detail.c_str());
        return;
    }
    auto index = object.value().find_section(".modinfo");
    if (index.is_error()) {
        print("modinfo: %s has no .modinfo\n", path);
        return;
    }
    print("filename:       /%s\n", path);
    auto data = object.value().section_data(index.value());
    usize start = 0;
    for (usize i = 0; i <= data.size(); ++i) {
        if (i == data.size() || data[i] == 0) {
            if (i > start) {
                StringView entry((const char*)data.data() + start, i - start);
                isize eq = entry.find('=');
                if (eq > 0) {
                    char key[40];
                    format(key, sizeof(key), "%.*s:", (int)eq, entry.characters());
                    print("%-15s %.*s\n", key, (int)(entry.length() - eq - 1), entry.characters() + eq + 1);
                }
            }
            start = i + 1;
        }
    }
}
}

namespace monitor {

bool execute(const char* text)
{
    StringView line = trim(StringView(text));
    isize space = line.find(' ');
    StringView command = space < 0 ? line : line.substring(0, (usize)space);
    StringView argument = space < 0 ? StringView() : trim(line.substring((usize)space + 1));

    if (command.is_empty())
        return true;
    if (command == "help") {
        print("commands:\n"
              "  help               this list\n"
              "  mem                page and kmalloc statistics\n"
              "  callers            kmalloc allocations by calling function\n"
              "  dmesg              the kernel log ring\n"
              "  cpu                CPU identification and features\n"
              "  uptime             time since the bootloader hand-off\n"
              "  suites             the registered selftest suites\n"
              "  selftest <suite>   run a suite, a comma list, or all (KTAP output)\n"
              "  lsmod              loaded modules, sizes and users\n"
              "  insmod <name> [k=v...]  load /lib/modules/<name>.ko and its dependencies\n"
              "  rmmod <name>       unload a module\n"
              "  modinfo <name>     a module's .modinfo\n"
              "  kallsyms           kernel exports and module symbols\n"
              "  ls [dir]           list the initramfs root\n"
              "  poweroff, reboot\n");
    } else if (command == "mem") {
        kheap::dump_stats();
    } else if (command == "callers") {
        kheap::dump_callers();
    } else if (command == "dmesg") {
        klog::dump_ring();
    } else if (command == "cpu") {
        arch::log_cpu_features();
    } else if (command == "uptime") {
        u64 ns = clock::monotonic_ns();
        print("up %llu.%03llu s, %llu timer ticks, %llu interrupts\n", (unsigned long long)(ns / 1000000000),
            (unsigned long long)(ns / 1000000 % 1000), (unsigned long long)timers::ticks(),
            (unsigned long long)PerCpu::current().interrupt_count);
    } else if (command == "suites") {
        for (usize i = 0; i < ktest::suite_count(); ++i)
            print("  %-24s %zu cases\n", ktest::suite_at(i)->name, ktest::suite_at(i)->case_count);
    } else if (command == "selftest") {
        char filter[128];
        StringView f = argument.is_empty() ? StringView("all") : argument;
        usize n = f.length() < sizeof(filter) - 1 ? f.length() : sizeof(filter) - 1;
        __builtin_memcpy(filter, f.characters(), n);
        filter[n] = 0;
        int failures = ktest::run_suites(filter);
        print("selftest: %d failed\n", failures);
    } else if (command == "lsmod") {
        modules::print_lsmod();
    } else if (command == "insmod") {
        isize space = argument.find(' ');
        StringView name = space < 0 ? argument : argument.substring(0, (usize)space);
        StringView params = space < 0 ? StringView() : trim(argument.substring((usize)space + 1));
        auto result = module_service::load_by_name(name, params);
        if (result.is_error())
            print_refusal("insmod", name, result.error());
        else
            print("insmod: %.*s loaded\n", (int)name.length(), name.characters());
    } else if (command == "rmmod") {
        auto result = ModuleLoader::unload(argument);
        if (result.is_error())
            print_refusal("rmmod", argument, result.error());
        else
            print("rmmod: %.*s unloaded\n", (int)argument.length(), argument.characters());
    } else if (command == "modinfo") {
        show_modinfo(argument);
    } else if (command == "bench") {
        benchmarks::run();
    } else if (command == "kallsyms") {
        modules::print_kallsyms();
    } else if (command == "ls") {
        list_directory(argument.is_empty() ? StringView("/") : argument);
    } else if (command == "poweroff") {
        print("powering off\n");
        qemu_exit::exit(0);
    } else if (command == "reboot") {
        print("rebooting\n");
        arch::reboot();
    } else {
        print("unknown command '%.*s'; try 'help'\n", (int)command.length(), command.characters());
        return false;
    }
    return true;
}

void run()
{
    print("\nHome OS kernel prompt. Type 'help' for commands.\n");
    char line[LINE_MAX];
    for (;;) {
        print("homeos> ");
        read_line(line, sizeof(line));
        execute(line);
    }
}

} // namespace monitor
