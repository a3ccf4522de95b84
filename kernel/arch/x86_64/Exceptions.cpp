#include <Panic.h>
#include <arch/x86_64/Cpu.h>
#include <arch/x86_64/Exceptions.h>
#include <arch/x86_64/Gdt.h>
#include <arch/x86_64/KernelStacks.h>
#include <arch/x86_64/PerCpu.h>
#include <debug/Symbols.h>
#include <lib/text/Format.h>
#include <log/Log.h>

namespace exceptions {

namespace {
struct VectorInfo {
    const char* mnemonic;
    const char* name;
    bool error_code;
};
constexpr VectorInfo g_vectors[32] = {
    { "#DE", "divide error", false },
    { "#DB", "debug", false },
    { "NMI", "non-maskable interrupt", false },
    { "#BP", "breakpoint", false },
    { "#OF", "overflow", false },
    { "#BR", "bound range exceeded", false },
    { "#UD", "invalid opcode", false },
    { "#NM", "device not available", false },
    { "#DF", "double fault", true },
    { "#CSO", "coprocessor segment overrun", false },
    { "#TS", "invalid TSS", true },
    { "#NP", "segment not present", true },
    { "#SS", "stack-segment fault", true },
    { "#GP", "general protection fault", true },
    { "#PF", "page fault", true },
    { "#15", "reserved", false },
    { "#MF", "x87 floating-point error", false },
    { "#AC", "alignment check", true },
    { "#MC", "machine check", false },
    { "#XM", "SIMD floating-point exception", false },
    { "#VE", "virtualization exception", false },
    { "#CP", "control protection exception", true },
    { "#22", "reserved", false }, { "#23", "reserved", false }, { "#24", "reserved", false },
    { "#25", "reserved", false }, { "#26", "reserved", false }, { "#27", "reserved", false },
    { "#HV", "hypervisor injection exception", false },
    { "#VC", "VMM communication exception", true },
    { "#SX", "security exception", true },
    { "#31", "reserved", false },
};

ExceptionCatch* g_armed = nullptr;
char g_report[4096];

struct Writer {
    char* buffer;
    usize capacity;
    usize length;
    void append(const char* fmt, ...) __attribute__((format(printf, 2, 3)))
    {
        if (length >= capacity)
            return;
        va_list args;
        va_start(args, fmt);
        usize n = vformat(buffer + length, capacity - length, fmt, args);
        va_end(args);
        length += n;
        if (length >= capacity)
            length = capacity - 1;
    }
};

void describe_error_code(Writer& w, const TrapFrame& frame, u64 cr2)
{
    u64 e = frame.error_code;
    switch (frame.vector) {
    case VECTOR_PF:
        w.append("  error code 0x%llx: %s, %s, %s%s%s%s\n", (unsigned long long)e,
            (e & 1) ? "protection violation (P=1)" : "not-present page (P=0)", (e & 2) ? "write (W=1)" : "read (W=0)",
            (e & 4) ? "user mode (U=1)" : "supervisor mode (U=0)", (e & 8) ? ", reserved bit set (R=1)" : "",
            (e & 16) ? ", instruction fetch (I=1)" : "", (e & 32) ? ", protection key (PK=1)" : "");
        w.append("  CR2 0x%016llx (faulting address)\n", (unsigned long long)cr2);
        break;
    case VECTOR_TS:
    case VECTOR_NP:
    case VECTOR_SS:
    case VECTOR_GP:
    case VECTOR_AC:
    case VECTOR_DF:
        if (e == 0) {
            w.append("  error code 0x0\n");
        } else {
            static const char* const tables[] = { "GDT", "IDT", "LDT", "IDT" };
            w.append("  error code 0x%llx: selector index %llu in the %s%s\n", (unsigned long long)e,
                (unsigned long long)((e >> 3) & 0x1FFF), tables[(e >> 1) & 3], (e & 1) ? ", external event" : "");
        }
        break;
    case VECTOR_CP: {
        static const char* const causes[] = { "?", "near RET", "far RET/IRET", "ENDBRANCH", "RSTORSSP", "SETSSBSY" };
        u64 cause = e & 0x7FFF;
        w.append("  error code 0x%llx: %s%s\n", (unsigned long long)e, cause < 6 ? causes[cause] : "unknown cause",
            (e & 0x8000) ? " (in enclave)" : "");
        break;
    }
    default:
        if (has_error_code((u8)frame.vector))
            w.append("  error code 0x%llx\n", (unsigned long long)e);
        break;
    }
}
}

// A #PF whose address is a guard page, or a #DF because the #PF could not even be delivered on
// the exhausted stack (CR2 still names the guard page; RSP is at or just below the stack bottom).
const kernel_stacks::Stack* overflowed_stack(const TrapFrame& f, u64 cr2)
{
    if (f.vector != VECTOR_PF && f.vector != VECTOR_DF)
        return nullptr;
    if (auto* stack = kernel_stacks::guard_hit(cr2))
        return stack;
    return f.vector == VECTOR_DF ? kernel_stacks::guard_hit(f.rsp - 8) : nullptr;
}

const char* mnemonic(u8 vector) { return vector < 32 ? g_vectors[vector].mnemonic : "IRQ"; }
const char* name(u8 vector) { return vector < 32 ? g_vectors[vector].name : "interrupt"; }
bool has_error_code(u8 vector) { return vector < 32 && g_vectors[vector].error_code; }

void arm(ExceptionCatch& c, int vector)
{
    c.vector = vector;
    c.caught = false;
    c.caught_vector = -1;
    c.report_length = 0;
    c.report[0] = 0;
    c.saved_rflags = x86::read_rflags();
    __atomic_store_n(&g_armed, &c, __ATOMIC_SEQ_CST);
}

void disarm() { __atomic_store_n(&g_armed, (ExceptionCatch*)nullptr, __ATOMIC_SEQ_CST); }

usize format_backtrace(u64 rip, u64 rbp, char* buffer, usize capacity)
{
    Writer w { buffer, capacity, 0 };
    char symbol[160];
    symbols::describe(rip, symbol, sizeof(symbol));
    w.append("  #0  0x%016llx %s\n", (unsigned long long)rip, symbol);
    // Frame records are [saved rbp][return address]; only follow them inside known stacks.
    for (int depth = 1; depth < 32 && rbp && (rbp & 7) == 0 && kernel_stacks::contains(rbp, 16); ++depth) {
        u64 next = ((u64*)rbp)[0];
        u64 ret = ((u64*)rbp)[1];
        if (!ret)
            break;
        symbols::describe(ret, symbol, sizeof(symbol));
        w.append("  #%-2d 0x%016llx %s\n", depth, (unsigned long long)ret, symbol);
        if (next <= rbp)
            break;
        rbp = next;
    }
    return w.length;
}

usize format_report(const TrapFrame& f, u64 cr2, char* buffer, usize capacity)
{
    Writer w { buffer, capacity, 0 };
    u8 vector = (u8)f.vector;
    w.append("EXCEPTION %s (%s, vector %u) in %s mode\n", mnemonic(vector), name(vector), vector, f.from_user() ? "user" : "kernel");
    describe_error_code(w, f, cr2);
    char symbol[160];
    symbols::describe(f.rip, symbol, sizeof(symbol));
    w.append("  RIP %04llx:%016llx %s\n", (unsigned long long)f.cs, (unsigned long long)f.rip, symbol);
    w.append("  RSP %04llx:%016llx RFLAGS %016llx\n", (unsigned long long)f.ss, (unsigned long long)f.rsp, (unsigned long long)f.rflags);
    w.append("  RAX %016llx RBX %016llx RCX %016llx\n", (unsigned long long)f.rax, (unsigned long long)f.rbx, (unsigned long long)f.rcx);
    w.append("  RDX %016llx RSI %016llx RDI %016llx\n", (unsigned long long)f.rdx, (unsigned long long)f.rsi, (unsigned long long)f.rdi);
    w.append("  RBP %016llx R8  %016llx R9  %016llx\n", (unsigned long long)f.rbp, (unsigned long long)f.r8, (unsigned long long)f.r9);
    w.append("  R10 %016llx R11 %016llx R12 %016llx\n", (unsigned long long)f.r10, (unsigned long long)f.r11, (unsigned long long)f.r12);
    w.append("  R13 %016llx R14 %016llx R15 %016llx\n", (unsigned long long)f.r13, (unsigned long long)f.r14, (unsigned long long)f.r15);
    w.append("  CR0 %016llx CR2 %016llx CR3 %016llx CR4 %016llx\n", (unsigned long long)x86::read_cr0(), (unsigned long long)cr2,
        (unsigned long long)x86::read_cr3(), (unsigned long long)x86::read_cr4());
    if (auto* stack = overflowed_stack(f, cr2))
        w.append("  kernel stack overflow: the fault hit the guard page of the %s stack\n", stack->name);
    w.append("  Backtrace:\n");
    w.length += format_backtrace(f.rip, f.rbp, buffer + w.length, capacity - w.length);
    return w.length;
}

void handle(TrapFrame& frame)
{
    u64 cr2 = (frame.vector == VECTOR_PF || frame.vector == VECTOR_DF) ? x86::read_cr2() : 0;
    auto* cpu = PerCpu::current_or_null();
    if (cpu)
        cpu->exception_count++;

    ExceptionCatch* c = __atomic_load_n(&g_armed, __ATOMIC_SEQ_CST);
    if (c && (c->vector < 0 || c->vector == (int)frame.vector)) {
        disarm();
        c->caught = true;
        c->caught_vector = (int)frame.vector;
        c->frame = frame;
        c->cr2 = cr2;
        c->report_length = format_report(frame, cr2, c->report, sizeof(c->report));
        // Resume in ksetjmp (returning 1), on the test's own stack, in kernel mode.
        frame.rip = c->jump.rip;
        frame.rsp = c->jump.rsp;
        frame.rbx = c->jump.rbx;
        frame.rbp = c->jump.rbp;
        frame.r12 = c->jump.r12;
        frame.r13 = c->jump.r13;
        frame.r14 = c->jump.r14;
        frame.r15 = c->jump.r15;
        frame.rax = 1;
        frame.cs = gdt::KERNEL_CODE;
        frame.ss = gdt::KERNEL_DATA;
        frame.rflags = c->saved_rflags & ~((1ull << 8) | (1ull << 18)); // never resume with TF or AC set
        return;
    }

    usize length = format_report(frame, cr2, g_report, sizeof(g_report));
    klog::force_unlock();
    klog::console_write(g_report, length);
    if (auto* stack = overflowed_stack(frame, cr2))
        panic_with_frame(&frame, "kernel stack overflow: %s on the guard page of the %s stack", mnemonic((u8)frame.vector), stack->name);
    panic_with_frame(&frame, "unhandled %s (%s) at 0x%llx", mnemonic((u8)frame.vector), name((u8)frame.vector), (unsigned long long)frame.rip);
}

} // namespace exceptions
