// kernel_main: the boot sequence, from GRUB's hand-off to the kernel prompt.
#include <Panic.h>
#include <acpi/AcpiSupport.h>
#include <arch/Cpu.h>
#include <arch/Platform.h>
#include <console/FramebufferConsole.h>
#include <console/Serial.h>
#include <lib/boot/CommandLine.h>
#include <lib/boot/Multiboot2.h>
#include <lib/text/Format.h>
#include <log/Log.h>
#include <mm/Kmalloc.h>
#include <mm/MemoryManager.h>
#include <module/Initramfs.h>
#include <module/ModuleService.h>
#include <pci/Pci.h>
#include <shell/Monitor.h>
#include <test/Benchmarks.h>
#include <test/KTest.h>
#include <time/Clock.h>
#include <time/Hpet.h>
#include <time/Timers.h>

extern "C" u64 boot_tsc_start;
extern "C" void (*__init_array_start[])();
extern "C" void (*__init_array_end[])();

namespace {
constexpr u32 MULTIBOOT2_BOOTLOADER_MAGIC = 0x36D76289;
constexpr usize MAX_BOOT_INFO = 64 * KiB;

// The multiboot2 information is copied here first thing: its memory goes to the allocator later.
alignas(8) u8 g_boot_info_copy[MAX_BOOT_INFO];
BootInfo g_boot_info;
CommandLine g_cmdline;
StringView g_inject;

void serial_console(const char* text, usize length) { serial::write(text, length); }

// Fault injection for the bad-input tests: each corrupts real boot data the way a broken
// bootloader or firmware would, before the parser sees it.
bool inject(StringView what) { return g_inject == what; }

void apply_command_line(StringView text)
{
    if (g_cmdline.parse(text).is_error())
        log_warn("cmdline: cannot parse \"%.*s\"; using defaults", (int)text.length(), text.characters());
    auto level = g_cmdline.get_u64("loglevel");
    if (!level.is_error())
        klog::set_console_level((u8)level.value());
    StringView action = g_cmdline.get("panic");
    if (action == "exit")
        set_panic_action(PanicAction::Exit);
    else if (action == "reboot")
        set_panic_action(PanicAction::Reboot);
    g_inject = g_cmdline.get("inject");
}

void load_boot_info(u32 magic, u32 info_phys)
{
    if (magic != MULTIBOOT2_BOOTLOADER_MAGIC)
        panic("multiboot2: bad bootloader magic 0x%x (expected 0x%x): not started by a multiboot2 loader", magic,
            MULTIBOOT2_BOOTLOADER_MAGIC);
    if (info_phys == 0 || (info_phys & 7))
        panic("multiboot2: boot information at 0x%x is null or misaligned", info_phys);
    if ((u64)info_phys + 8 > mm::EARLY_ALIAS_LIMIT)
        panic("multiboot2: boot information at 0x%x is beyond the first GiB", info_phys);
    u32 total_size;
    __builtin_memcpy(&total_size, mm::early_phys_to_virt(PhysAddr(info_phys)), 4);
    if (total_size < 16 || total_size > MAX_BOOT_INFO || (u64)info_phys + total_size > mm::EARLY_ALIAS_LIMIT)
        panic("multiboot2: boot information total_size %u is implausible (16..%zu bytes)", total_size, MAX_BOOT_INFO);
    __builtin_memcpy(g_boot_info_copy, mm::early_phys_to_virt(PhysAddr(info_phys)), total_size);

    auto parse = [&]() {
        g_boot_info = BootInfo();
        if (parse_multiboot2(ReadonlyBytes(g_boot_info_copy, total_size), g_boot_info).is_error())
            panic("%s", g_boot_info.error ? g_boot_info.error : "multiboot2: malformed boot information");
    };
    parse();
    apply_command_line(g_boot_info.command_line);

    if (inject("mb2-corrupt-tag")) {
        // The first tag claims to run past the end of the structure.
        u32 huge = total_size + 64;
        __builtin_memcpy(g_boot_info_copy + 8 + 4, &huge, 4);
        parse();
    } else if (inject("mb2-missing-mmap")) {
        // Turn the memory map tag into an unknown tag type, as if the loader never sent it.
        for (u32 offset = 8; offset + 8 <= total_size;) {
            u32 type, size;
            __builtin_memcpy(&type, g_boot_info_copy + offset, 4);
            __builtin_memcpy(&size, g_boot_info_copy + offset + 4, 4);
            if (type == 0 || size < 8)
                break;
            if (type == Multiboot2::TagMemoryMap) {
                u32 unknown = 0x7777;
                __builtin_memcpy(g_boot_info_copy + offset, &unknown, 4);
            }
            offset += (size + 7) & ~7u;
        }
        parse();
    } else if (inject("mmap-empty")) {
        g_boot_info.memory_map_count = 0;
    } else if (inject("mmap-overlap") && g_boot_info.memory_map_count >= 2) {
        // The last entry is moved to overlap the first available one.
        for (usize i = 0; i < g_boot_info.memory_map_count; ++i) {
            if (g_boot_info.memory_map_entries[i].type == Multiboot2::MemoryAvailable) {
                auto& last = g_boot_info.memory_map_entries[g_boot_info.memory_map_count - 1];
                last.base = g_boot_info.memory_map_entries[i].base + 0x1000;
                last.type = Multiboot2::MemoryReserved;
                break;
            }
        }
    }

    const char* why = nullptr;
    if (validate_memory_map(g_boot_info, &why).is_error())
        panic("%s", why ? why : "multiboot2: invalid memory map");
}

void log_boot_info(u32 info_phys)
{
    auto& info = g_boot_info;
    log_info("boot: loader \"%.*s\", boot information at 0x%x", (int)info.bootloader_name.length(), info.bootloader_name.characters(),
        info_phys);
    log_info("boot: command line \"%.*s\"", (int)info.command_line.length(), info.command_line.characters());
    static const char* const types[] = { "?", "available", "reserved", "ACPI reclaimable", "ACPI NVS", "bad" };
    u64 available = 0;
    for (auto& entry : info.memory_map()) {
        log_info("  mem [0x%016llx-0x%016llx] %s", (unsigned long long)entry.base, (unsigned long long)(entry.base + entry.length - 1),
            entry.type <= 5 ? types[entry.type] : "unknown");
        if (entry.type == Multiboot2::MemoryAvailable)
            available += entry.length;
    }
    log_info("boot: %llu MiB available RAM in %zu memory map entries", (unsigned long long)(available / MiB), info.memory_map_count);
    for (usize i = 0; i < info.module_count; ++i)
        log_info("boot: module %zu [0x%x-0x%x) \"%.*s\"", i, info.modules[i].start, info.modules[i].end,
            (int)info.modules[i].command_line.length(), info.modules[i].command_line.characters());
    if (info.framebuffer.present)
        log_info("boot: framebuffer %ux%u, %u bpp, pitch %u at 0x%llx", info.framebuffer.width, info.framebuffer.height,
            info.framebuffer.bpp, info.framebuffer.pitch, (unsigned long long)info.framebuffer.address);
}

#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Winfinite-recursion"
[[gnu::noinline]] u64 overflow_the_stack(u64 depth)
{
    volatile u8 pad[512];
    pad[0] = (u8)depth;
    return overflow_the_stack(depth + 1) + pad[0];
}
#pragma clang diagnostic pop

void run_constructors()
{
    for (auto** ctor = __init_array_start; ctor < __init_array_end; ++ctor)
        (*ctor)();
}

// Where boot time goes. Phases are stamped with the raw cycle counter, because the first ones
// run before the clock is calibrated; they are converted when the breakdown is logged.
enum BootPhase { PHASE_EARLY, PHASE_TSC, PHASE_TICK, PHASE_PCI, PHASE_INITRAMFS, PHASE_MODULES, PHASE_COUNT };
const char* const BOOT_PHASE_NAMES[PHASE_COUNT] = { "early", "tsc", "lapic", "pci", "initramfs", "modules" };
u64 g_phase_end[PHASE_COUNT];

void end_phase(BootPhase phase) { g_phase_end[phase] = arch::read_cycle_counter(); }

void log_boot_breakdown(u64 boot_tsc)
{
    char text[192];
    u64 total = clock::tsc_to_ns(g_phase_end[PHASE_COUNT - 1] - boot_tsc);
    usize used = format(text, sizeof(text), "boot: init %llu.%01llu ms (", (unsigned long long)(total / 1000000),
        (unsigned long long)(total / 100000 % 10));
    u64 previous = boot_tsc;
    for (int phase = 0; phase < PHASE_COUNT && used < sizeof(text); ++phase) {
        u64 ns = clock::tsc_to_ns(g_phase_end[phase] - previous);
        previous = g_phase_end[phase];
        used += format(text + used, sizeof(text) - used, "%s%s %llu.%01llu", phase ? ", " : "", BOOT_PHASE_NAMES[phase],
            (unsigned long long)(ns / 1000000), (unsigned long long)(ns / 100000 % 10));
    }
    log_notice("%.*s)", (int)(used < sizeof(text) ? used : sizeof(text) - 1), text);
}
}

extern "C" [[noreturn]] void kernel_main(u32 magic, u32 info_phys)
{
    // boot_tsc_start lives in the identity-mapped boot section, which mm::init unmaps: copy it now.
    const u64 boot_tsc = boot_tsc_start;
    clock::record_boot_tsc(boot_tsc);
    serial::init();
    klog::register_console(serial_console);
    arch::early_init();
    run_constructors();
    log_notice("Home OS 0.1 (" HOMEOS_ARCH_NAME ") booting");

    load_boot_info(magic, info_phys);
    log_boot_info(info_phys);

    arch::init_cpu_features();

    mm::init(g_boot_info, PhysAddr(info_phys), PhysAddr(info_phys) + *(u32*)g_boot_info_copy);
    kheap::init();
    auto& layout = mm::layout();
    auto pages = mm::page_stats();
    log_info("mm: kernel image [0x%llx-0x%llx), early allocator used %llu KiB, %llu boot page tables, %llu MiB direct-mapped",
        layout.kernel_phys_start.ull(), layout.kernel_phys_end.ull(),
        (unsigned long long)((layout.bump_used_end - layout.bump_start) / KiB), (unsigned long long)layout.page_tables_at_boot,
        (unsigned long long)(layout.direct_mapped_bytes / MiB));
    log_info("mm: buddy allocator: %llu pages free of %llu (%llu MiB free)", (unsigned long long)pages.free_pages,
        (unsigned long long)pages.total_pages, (unsigned long long)(pages.free_pages * PAGE_SIZE / MiB));

    if (g_boot_info.framebuffer.present)
        fbcon::init(g_boot_info.framebuffer);

    acpi_support::init(g_boot_info, inject("acpi-checksum"));
    arch::init_interrupt_controllers(acpi_support::madt());
    if (acpi_support::has_hpet()) {
        if (auto result = hpet::init(acpi_support::hpet()); result.is_error())
            log_warn("hpet: unusable (%s); falling back to the PIT", result.error().name());
    }
    end_phase(PHASE_EARLY);
    clock::init();
    klog::set_clock(clock::monotonic_ns);
    end_phase(PHASE_TSC);
    timers::init();
    arch::enable_interrupts();
    end_phase(PHASE_TICK);

    pci::init();
    end_phase(PHASE_PCI);
    if (auto unpacked = initramfs::init(g_boot_info); unpacked.is_error() && unpacked.error().code() != ENOENT)
        log_err("initramfs: not usable (%s); booting without modules", unpacked.error().name());
    end_phase(PHASE_INITRAMFS);
    module_service::set_command_line(&g_cmdline);
    module_service::load_boot_modules(g_cmdline.get("modules"));
    module_service::autoload_pci();
    end_phase(PHASE_MODULES);
    log_boot_breakdown(boot_tsc);

    if (inject("stack-overflow")) {
        log_info("inject: overflowing the boot stack");
        overflow_the_stack(0);
    }
    if (inject("irq-nesting") || inject("triple-fault"))
        arch::inject_fault(g_inject);

    u64 boot_ns = clock::since_boot_entry_ns();
    log_notice("boot: init complete %llu.%03llu ms after the bootloader hand-off", (unsigned long long)(boot_ns / 1000000),
        (unsigned long long)(boot_ns / 1000 % 1000));

    if (g_cmdline.get_bool("bench"))
        benchmarks::run();

    StringView selftest = g_cmdline.get("selftest");
    if (!selftest.is_empty()) {
        char filter[256];
        usize n = selftest.length() < sizeof(filter) - 1 ? selftest.length() : sizeof(filter) - 1;
        __builtin_memcpy(filter, selftest.characters(), n);
        filter[n] = 0;
        int failures = ktest::run_suites(filter);
        log_notice("selftest: %s", failures ? "FAILED" : "all passed");
        if (g_cmdline.get("selftest_exit") != "no")
            qemu_exit::exit(failures ? qemu_exit::SELFTEST_FAIL : qemu_exit::SELFTEST_PASS);
    }

    monitor::run();
}
