// The state boot leaves behind: CPU protections, descriptor tables, interrupt controllers, the
// log ring and the embedded symbol table, checked on the running kernel.
#include <acpi/AcpiSupport.h>
#include <arch/x86_64/Cpu.h>
#include <arch/x86_64/CpuFeatures.h>
#include <arch/x86_64/Gdt.h>
#include <arch/x86_64/KernelStacks.h>
#include <arch/x86_64/PerCpu.h>
#include <debug/Symbols.h>
#include <lib/text/Format.h>
#include <lib/debug/SymbolTable.h>
#include <log/Log.h>
#include <mm/MemoryManager.h>
#include <test/KTest.h>

extern "C" [[noreturn]] void kernel_main(u32, u32);
extern "C" u8 boot_stack_guard[];

namespace {

bool starts_with(const char* text, const char* prefix) { return __builtin_memcmp(text, prefix, __builtin_strlen(prefix)) == 0; }

void test_write_protect_enabled(ktest::Test& t) { KEXPECT_TRUE(t, x86::read_cr0() & x86::CR0_WP); }

void test_nx_enabled_when_supported(ktest::Test& t)
{
    if (!cpu::features().nx) {
        t.skip("CPU has no NX");
        return;
    }
    KEXPECT_TRUE(t, x86::rdmsr(x86::MSR_EFER) & x86::EFER_NXE);
}

void test_smep_smap_follow_cpuid(ktest::Test& t)
{
    u64 cr4 = x86::read_cr4();
    KEXPECT_EQ(t, (bool)(cr4 & x86::CR4_SMEP), cpu::features().smep);
    KEXPECT_EQ(t, (bool)(cr4 & x86::CR4_SMAP), cpu::features().smap);
}

void test_long_mode_active(ktest::Test& t)
{
    u64 efer = x86::rdmsr(x86::MSR_EFER);
    KEXPECT_TRUE(t, efer & (1 << 10)); // LMA
    KEXPECT_TRUE(t, x86::read_cr0() & (1ull << 31));
}

void test_code_segment_is_kernel(ktest::Test& t)
{
    u16 cs, ss;
    asm volatile("mov %%cs, %0; mov %%ss, %1" : "=r"(cs), "=r"(ss));
    KEXPECT_EQ(t, cs, gdt::KERNEL_CODE);
    KEXPECT_EQ(t, ss, gdt::KERNEL_DATA);
}

void test_task_register_loaded(ktest::Test& t)
{
    u16 tr;
    asm volatile("str %0" : "=r"(tr));
    KEXPECT_EQ(t, tr, gdt::TSS);
}

void test_ist_stacks_registered(ktest::Test& t)
{
    for (u8 ist = 1; ist <= 3; ++ist) {
        u64 top = kernel_stacks::ist_stack_top(ist);
        KEXPECT_TRUE(t, kernel_stacks::contains(top - 64, 64));
        KEXPECT_TRUE(t, (top & 15) == 0);
    }
}

void test_every_stack_has_unmapped_guard(ktest::Test& t)
{
    for (usize i = 0; i < kernel_stacks::count(); ++i) {
        auto& stack = kernel_stacks::at(i);
        KEXPECT_TRUE(t, mm::translate(VirtAddr(stack.guard)).is_error());
        KEXPECT_FALSE(t, mm::translate(VirtAddr(stack.bottom)).is_error());
        KEXPECT_EQ(t, stack.bottom, stack.guard + PAGE_SIZE);
    }
}

void test_current_stack_is_known(ktest::Test& t)
{
    u64 rsp;
    asm volatile("mov %%rsp, %0" : "=r"(rsp));
    KEXPECT_TRUE(t, kernel_stacks::contains(rsp, 8));
}

void test_per_cpu_self_pointer(ktest::Test& t)
{
    auto& cpu = PerCpu::current();
    KEXPECT_EQ(t, cpu.self, &cpu);
    KEXPECT_EQ(t, x86::rdmsr(x86::MSR_GS_BASE), (u64)&cpu);
}

void test_legacy_pic_masked(ktest::Test& t)
{
    KEXPECT_EQ(t, x86::inb(0x21), (u8)0xFF);
    KEXPECT_EQ(t, x86::inb(0xA1), (u8)0xFF);
}

void test_lapic_enabled(ktest::Test& t) { KEXPECT_TRUE(t, x86::rdmsr(x86::MSR_APIC_BASE) & (1 << 11)); }

void test_interrupts_enabled_after_boot(ktest::Test& t) { KEXPECT_TRUE(t, x86::interrupts_enabled()); }

void test_timer_interrupts_counted(ktest::Test& t)
{
    u64 before = PerCpu::current().interrupt_count;
    for (int i = 0; i < 5; ++i)
        x86::hlt();
    KEXPECT_TRUE(t, PerCpu::current().interrupt_count > before);
}

void test_madt_parsed(ktest::Test& t)
{
    auto& madt = acpi_support::madt();
    KEXPECT_TRUE(t, madt.processor_count >= 1);
    KEXPECT_TRUE(t, madt.io_apic_count >= 1);
    KEXPECT_EQ(t, madt.lapic_address, PhysAddr(0xFEE00000ull));
}

void test_acpi_tables_have_valid_checksums(ktest::Test& t)
{
    auto& tables = acpi_support::tables();
    KASSERT_TRUE(t, tables.table_count() > 0);
    for (usize i = 0; i < tables.table_count(); ++i) {
        auto table = tables.table_at(i);
        KEXPECT_FALSE(t, table.is_error());
        if (!table.is_error())
            KEXPECT_EQ(t, acpi_checksum(table.value()), (u8)0);
    }
}

void test_symbol_table_resolves_kernel_main(ktest::Test& t)
{
    auto& table = symbols::kernel_table();
    KASSERT_TRUE(t, table.is_valid());
    KEXPECT_TRUE(t, table.count() > 100);
    SymbolTable::Match match;
    KASSERT_TRUE(t, table.lookup((u64)kernel_main + 4, match));
    KEXPECT_TRUE(t, match.name == "kernel_main");
    KEXPECT_EQ(t, match.offset, 4ull);
}

void test_symbolize_formats_offset(ktest::Test& t)
{
    char buffer[128];
    symbols::describe((u64)kernel_main + 0x10, buffer, sizeof(buffer));
    KEXPECT_TRUE(t, starts_with(buffer, "kernel_main+0x10"));
    symbols::describe(0x1234, buffer, sizeof(buffer));
    KEXPECT_TRUE(t, starts_with(buffer, "?"));
}

void test_log_ring_records_messages(ktest::Test& t)
{
    u64 before = klog::records_written();
    log_debug("boot selftest: a debug record");
    log_info("boot selftest: an info record");
    KEXPECT_EQ(t, klog::records_written(), before + 2);
}

void test_log_timestamps_advance(ktest::Test& t)
{
    u64 a = klog::now_ns();
    x86::hlt();
    KEXPECT_TRUE(t, klog::now_ns() > a);
}

void test_console_level_clamped(ktest::Test& t)
{
    u8 saved = klog::console_level();
    klog::set_console_level(200);
    KEXPECT_EQ(t, klog::console_level(), (u8)LOG_DEBUG);
    klog::set_console_level(saved);
    KEXPECT_EQ(t, klog::console_level(), saved);
}

void test_format_in_kernel_matches_expectations(ktest::Test& t)
{
    char buffer[64];
    usize n = format(buffer, sizeof(buffer), "%s-%05d-%#llx-%c", "ab", 42, 0xbeefull, 'z');
    KEXPECT_EQ(t, n, (usize)17);
    KEXPECT_EQ(t, __builtin_memcmp(buffer, "ab-00042-0xbeef-z", 18), 0);
}

void test_kernel_image_in_higher_half(ktest::Test& t)
{
    KEXPECT_TRUE(t, (u64)kernel_main >= mm::KERNEL_VMA);
    auto translation = mm::translate(VirtAddr((u64)kernel_main));
    KASSERT_TRUE(t, !translation.is_error());
    KEXPECT_EQ(t, translation.value().phys, PhysAddr((u64)kernel_main - mm::KERNEL_VMA));
}

void test_low_identity_map_removed(ktest::Test& t)
{
    // The boot page tables mapped the first GiB at 0; the kernel's own tables do not.
    KEXPECT_TRUE(t, mm::translate(VirtAddr(0x100000)).is_error());
    KEXPECT_TRUE(t, mm::translate(VirtAddr(0)).is_error());
}

} // namespace

KTEST_SUITE(boot,
    KTEST_CASE(test_write_protect_enabled),
    KTEST_CASE(test_nx_enabled_when_supported),
    KTEST_CASE(test_smep_smap_follow_cpuid),
    KTEST_CASE(test_long_mode_active),
    KTEST_CASE(test_code_segment_is_kernel),
    KTEST_CASE(test_task_register_loaded),
    KTEST_CASE(test_ist_stacks_registered),
    KTEST_CASE(test_every_stack_has_unmapped_guard),
    KTEST_CASE(test_current_stack_is_known),
    KTEST_CASE(test_per_cpu_self_pointer),
    KTEST_CASE(test_legacy_pic_masked),
    KTEST_CASE(test_lapic_enabled),
    KTEST_CASE(test_interrupts_enabled_after_boot),
    KTEST_CASE(test_timer_interrupts_counted),
    KTEST_CASE(test_madt_parsed),
    KTEST_CASE(test_acpi_tables_have_valid_checksums),
    KTEST_CASE(test_symbol_table_resolves_kernel_main),
    KTEST_CASE(test_symbolize_formats_offset),
    KTEST_CASE(test_log_ring_records_messages),
    KTEST_CASE(test_log_timestamps_advance),
    KTEST_CASE(test_console_level_clamped),
    KTEST_CASE(test_format_in_kernel_matches_expectations),
    KTEST_CASE(test_kernel_image_in_higher_half),
    KTEST_CASE(test_low_identity_map_removed));
