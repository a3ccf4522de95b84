#include <arch/x86_64/KernelStacks.h>

extern "C" u8 boot_stack_guard[];
extern "C" u8 boot_stack_bottom[];
extern "C" u8 boot_stack_top[];

namespace kernel_stacks {

namespace {
constexpr usize IST_STACK_SIZE = 16 * KiB;
constexpr usize TEST_STACK_SIZE = 16 * KiB;

// Each static stack is [guard page][stack]; the kernel page tables leave the guard unmapped.
struct alignas(4096) GuardedIstStack {
    u8 guard[4096];
    u8 stack[IST_STACK_SIZE];
};
struct alignas(4096) GuardedTestStack {
    u8 guard[4096];
    u8 stack[TEST_STACK_SIZE];
};
[[gnu::section(".bss.page_aligned")]] GuardedIstStack g_ist_stacks[3];
[[gnu::section(".bss.page_aligned")]] GuardedTestStack g_test_stack;

constexpr usize MAX_STACKS = 16;
Stack g_stacks[MAX_STACKS];
usize g_count = 0;

void add(const char* name, u8* guard, u8* bottom, u8* top) { g_stacks[g_count++] = { name, (u64)guard, (u64)bottom, (u64)top }; }
}

void init()
{
    g_count = 0;
    add("boot", boot_stack_guard, boot_stack_bottom, boot_stack_top);
    static const char* const ist_names[] = { "double-fault IST", "NMI IST", "machine-check IST" };
    for (int i = 0; i < 3; ++i)
        add(ist_names[i], g_ist_stacks[i].guard, g_ist_stacks[i].stack, g_ist_stacks[i].stack + IST_STACK_SIZE);
    add("selftest", g_test_stack.guard, g_test_stack.stack, g_test_stack.stack + TEST_STACK_SIZE);
}

u64 ist_stack_top(u8 ist) { return (u64)(g_ist_stacks[ist - 1].stack + IST_STACK_SIZE); }
const Stack& test_stack() { return g_stacks[4]; }
usize count() { return g_count; }
const Stack& at(usize index) { return g_stacks[index]; }

const Stack* guard_hit(u64 address)
{
    for (usize i = 0; i < g_count; ++i)
        if (address >= g_stacks[i].guard && address < g_stacks[i].guard + 4096)
            return &g_stacks[i];
    return nullptr;
}

bool contains(u64 address, u64 length)
{
    for (usize i = 0; i < g_count; ++i)
        if (address >= g_stacks[i].bottom && address <= g_stacks[i].top && length <= g_stacks[i].top - address)
            return true;
    return false;
}

} // namespace kernel_stacks
