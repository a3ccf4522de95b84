// The kernel side of the module ABI (abi/homeos/*.h): thin C wrappers over kernel services, each
// exported with KEXPORT and the CRC of its declaration. Including the abi headers here makes the
// compiler check every definition against the declaration modules were built with.
#include <Panic.h>
#include <arch/x86_64/Cpu.h>
#include <arch/x86_64/Interrupts.h>
#include <arch/x86_64/IoApic.h>
#include <arch/x86_64/Lapic.h>
#include <crcs.h>
#include <homeos/homeos.h>
#include <lib/text/Format.h>
#include <lib/time/TimerQueue.h>
#include <log/Log.h>
#include <mm/Kmalloc.h>
#include <mm/MemoryManager.h>
#include <module/Exports.h>
#include <module/ModuleRegistry.h>
#include <pci/Pci.h>
#include <sync/Spinlock.h>
#include <test/KTest.h>
#include <time/Clock.h>
#include <time/Timers.h>

static_assert(HOMEOS_ABI_MAJOR == HOMEOS_ABI_KERNEL_MAJOR && HOMEOS_ABI_MINOR == HOMEOS_ABI_KERNEL_MINOR);
// Module selftest suites are read as kernel suites: the layouts must agree.
static_assert(sizeof(homeos_test_suite) == sizeof(ktest::Suite) && sizeof(homeos_test_case) == sizeof(ktest::Case));
static_assert(sizeof(homeos_export) == sizeof(KernelExport));

namespace {
// C ABI calls report errors as negative errno values.
int negative(Error error) { return -error.code(); }
}

extern "C" {

// ---- log.h
void homeos_log(int level, const char* fmt, ...)
{
    char text[512];
    va_list args;
    va_start(args, fmt);
    vformat(text, sizeof(text), fmt, args);
    va_end(args);
    const char* module = modules::name_for_address((u64)__builtin_return_address(0));
    if (level < 0 || level > 7)
        level = LOG_INFO;
    printk((u8)level, "[%s] %s", module ? module : "?", text);
}
KEXPORT(homeos_log);

size_t homeos_snprintf(char* buffer, size_t capacity, const char* fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    usize n = vformat(buffer, capacity, fmt, args);
    va_end(args);
    return n;
}
KEXPORT(homeos_snprintf);

// ---- memory.h (kmalloc, kzalloc and kfree are defined in mm/Kmalloc.cpp)
KEXPORT(kmalloc);
KEXPORT(kzalloc);
KEXPORT(kfree);

void* homeos_alloc_pages(unsigned order)
{
    auto phys = mm::allocate_pages(order);
    if (phys.is_error())
        return nullptr;
    void* pages = mm::phys_to_virt(phys.value());
    __builtin_memset(pages, 0, PAGE_SIZE << order);
    return pages;
}
KEXPORT(homeos_alloc_pages);

void homeos_free_pages(void* pages, unsigned order)
{
    if (pages)
        mm::free_pages(mm::virt_to_phys(pages), order);
}
KEXPORT(homeos_free_pages);

uint64_t homeos_virt_to_phys(const void* pointer) { return mm::virt_to_phys(pointer); }
KEXPORT(homeos_virt_to_phys);
void* homeos_phys_to_virt(uint64_t physical) { return mm::phys_to_virt(physical); }
KEXPORT(homeos_phys_to_virt);

void* homeos_map_mmio(uint64_t physical, size_t size)
{
    auto mapped = mm::map_mmio(physical, size);
    return mapped.is_error() ? nullptr : mapped.value();
}
KEXPORT(homeos_map_mmio);

// ---- sync.h
uint64_t homeos_spin_lock(homeos_spinlock* lock)
{
    u64 flags = x86::read_rflags();
    x86::cli();
    while (__atomic_exchange_n(&lock->locked, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&lock->locked, __ATOMIC_RELAXED))
            x86::pause();
    return flags;
}
KEXPORT(homeos_spin_lock);

void homeos_spin_unlock(homeos_spinlock* lock, uint64_t flags)
{
    __atomic_store_n(&lock->locked, 0, __ATOMIC_RELEASE);
    if (flags & (1 << 9))
        x86::sti();
}
KEXPORT(homeos_spin_unlock);

void homeos_mutex_lock(homeos_mutex* mutex)
{
    // No scheduler yet: wait with interrupts on so the holder's interrupt work can finish.
    while (__atomic_exchange_n(&mutex->locked, 1, __ATOMIC_ACQUIRE))
        x86::pause();
}
KEXPORT(homeos_mutex_lock);

void homeos_mutex_unlock(homeos_mutex* mutex) { __atomic_store_n(&mutex->locked, 0, __ATOMIC_RELEASE); }
KEXPORT(homeos_mutex_unlock);

int homeos_wait_event_timeout(homeos_wait_queue* queue, bool (*condition)(void*), void* context, uint64_t timeout_ns)
{
    u64 deadline = clock::monotonic_ns() + timeout_ns;
    while (!condition(context)) {
        if (clock::monotonic_ns() >= deadline)
            return -ETIMEDOUT;
        u64 generation = __atomic_load_n(&queue->generation, __ATOMIC_ACQUIRE);
        // Until a scheduler exists, waiting is halting until the next interrupt (a wake-up or a tick).
        if (x86::interrupts_enabled() && __atomic_load_n(&queue->generation, __ATOMIC_ACQUIRE) == generation)
            x86::hlt();
        else
            x86::pause();
    }
    return 0;
}
KEXPORT(homeos_wait_event_timeout);

void homeos_wake_up(homeos_wait_queue* queue) { __atomic_add_fetch(&queue->generation, 1, __ATOMIC_RELEASE); }
KEXPORT(homeos_wake_up);

struct ModuleTimer {
    Timer timer;
    void (*callback)(homeos_timer*, void*);
    void* context;
};
static_assert(sizeof(ModuleTimer) <= sizeof(homeos_timer));

static void module_timer_trampoline(Timer&, void* context)
{
    auto* wrapper = (ModuleTimer*)context;
    wrapper->callback((homeos_timer*)wrapper, wrapper->context);
}

void homeos_timer_init(homeos_timer* timer, void (*callback)(homeos_timer*, void*), void* context)
{
    auto* wrapper = new (timer) ModuleTimer;
    wrapper->timer.callback = module_timer_trampoline;
    wrapper->timer.context = wrapper;
    wrapper->callback = callback;
    wrapper->context = context;
}
KEXPORT(homeos_timer_init);

void homeos_timer_start(homeos_timer* timer, uint64_t delay_ns, uint64_t period_ns) { timers::add(((ModuleTimer*)timer)->timer, delay_ns, period_ns); }
KEXPORT(homeos_timer_start);

bool homeos_timer_cancel(homeos_timer* timer) { return timers::cancel(((ModuleTimer*)timer)->timer); }
KEXPORT(homeos_timer_cancel);

uint64_t homeos_monotonic_ns(void) { return clock::monotonic_ns(); }
KEXPORT(homeos_monotonic_ns);
void homeos_sleep_ns(uint64_t ns) { timers::sleep_ns(ns); }
KEXPORT(homeos_sleep_ns);

// ---- irq.h
struct IrqSlot {
    homeos_irq_handler handler;
    void* context;
};
static IrqSlot g_irq_slots[256];

static void irq_trampoline(TrapFrame&, void* context)
{
    auto* slot = (IrqSlot*)context;
    slot->handler(slot->context);
}

int homeos_request_vector(homeos_irq_handler handler, void* context)
{
    auto vector = interrupts::allocate_vector();
    if (vector.is_error())
        return negative(vector.error());
    auto& slot = g_irq_slots[vector.value()];
    slot = { handler, context };
    auto result = interrupts::register_handler(vector.value(), irq_trampoline, &slot);
    if (result.is_error())
        return negative(result.error());
    return vector.value();
}
KEXPORT(homeos_request_vector);

int homeos_request_isa_irq(unsigned irq, homeos_irq_handler handler, void* context)
{
    if (irq >= 16)
        return -EINVAL;
    int vector = homeos_request_vector(handler, context);
    if (vector < 0)
        return vector;
    auto routed = ioapic::route_isa_irq((u8)irq, (u8)vector);
    if (routed.is_error()) {
        interrupts::unregister_handler((u8)vector);
        return negative(routed.error());
    }
    return vector;
}
KEXPORT(homeos_request_isa_irq);

void homeos_free_vector(int vector)
{
    if (vector >= interrupts::FIRST_EXTERNAL_VECTOR && vector < 256)
        interrupts::unregister_handler((u8)vector);
}
KEXPORT(homeos_free_vector);

// ---- pci.h
int homeos_pci_register_driver(homeos_pci_driver* driver)
{
    auto result = pci::register_driver(*driver);
    return result.is_error() ? negative(result.error()) : 0;
}
KEXPORT(homeos_pci_register_driver);

void homeos_pci_unregister_driver(homeos_pci_driver* driver) { pci::unregister_driver(*driver); }
KEXPORT(homeos_pci_unregister_driver);

uint32_t homeos_pci_read_config(homeos_pci_device* device, uint16_t offset, unsigned width)
{
    return pci::read_config(*device, offset, width);
}
KEXPORT(homeos_pci_read_config);

void homeos_pci_write_config(homeos_pci_device* device, uint16_t offset, unsigned width, uint32_t value)
{
    pci::write_config(*device, offset, width, value);
}
KEXPORT(homeos_pci_write_config);

void homeos_pci_enable_device(homeos_pci_device* device)
{
    u32 command = pci::read_config(*device, 0x04, 2);
    pci::write_config(*device, 0x04, 2, command | 0x7); // I/O, memory, bus master
}
KEXPORT(homeos_pci_enable_device);

void* homeos_pci_map_bar(homeos_pci_device* device, unsigned bar)
{
    if (bar >= 6 || device->bars[bar].is_io || !device->bars[bar].size)
        return nullptr;
    return homeos_map_mmio(device->bars[bar].address, device->bars[bar].size);
}
KEXPORT(homeos_pci_map_bar);

uint8_t homeos_inb(uint16_t port) { return x86::inb(port); }
KEXPORT(homeos_inb);
uint16_t homeos_inw(uint16_t port)
{
    u16 value;
    asm volatile("inw %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}
KEXPORT(homeos_inw);
uint32_t homeos_inl(uint16_t port) { return x86::inl(port); }
KEXPORT(homeos_inl);
void homeos_outb(uint16_t port, uint8_t value) { x86::outb(port, value); }
KEXPORT(homeos_outb);
void homeos_outw(uint16_t port, uint16_t value) { x86::outw(port, value); }
KEXPORT(homeos_outw);
void homeos_outl(uint16_t port, uint32_t value) { x86::outl(port, value); }
KEXPORT(homeos_outl);

int homeos_pci_enable_msi(homeos_pci_device* device, int vector)
{
    if (!device->msi_capability)
        return -ENOTSUP;
    u16 cap = device->msi_capability;
    u16 control = (u16)pci::read_config(*device, cap + 2, 2);
    bool is_64 = control & (1 << 7);
    pci::write_config(*device, cap + 4, 4, 0xFEE00000u | (lapic::id() << 12));
    if (is_64) {
        pci::write_config(*device, cap + 8, 4, 0);
        pci::write_config(*device, cap + 12, 2, (u32)vector);
    } else {
        pci::write_config(*device, cap + 8, 2, (u32)vector);
    }
    pci::write_config(*device, cap + 2, 2, (control & ~(7u << 4)) | 1); // one vector, enabled
    return 0;
}
KEXPORT(homeos_pci_enable_msi);

// ---- device.h: the subsystems behind these arrive in later issues.
int homeos_register_block_device(homeos_block_device*) { return -ENOSYS; }
KEXPORT(homeos_register_block_device);
void homeos_unregister_block_device(homeos_block_device*) { }
KEXPORT(homeos_unregister_block_device);
int homeos_register_char_device(homeos_char_device*) { return -ENOSYS; }
KEXPORT(homeos_register_char_device);
void homeos_unregister_char_device(homeos_char_device*) { }
KEXPORT(homeos_unregister_char_device);
int homeos_register_filesystem(homeos_filesystem_type*) { return -ENOSYS; }
KEXPORT(homeos_register_filesystem);
void homeos_unregister_filesystem(homeos_filesystem_type*) { }
KEXPORT(homeos_unregister_filesystem);
int homeos_register_net_device(homeos_net_device*) { return -ENOSYS; }
KEXPORT(homeos_register_net_device);
void homeos_unregister_net_device(homeos_net_device*) { }
KEXPORT(homeos_unregister_net_device);
int homeos_register_protocol(homeos_net_protocol*) { return -ENOSYS; }
KEXPORT(homeos_register_protocol);
void homeos_unregister_protocol(homeos_net_protocol*) { }
KEXPORT(homeos_unregister_protocol);

// The entropy pool: a running mix (not yet a CSPRNG) that drivers feed and selftests can read.
static u64 g_entropy_pool[4];
static u64 g_entropy_bytes;
void homeos_add_hardware_randomness(const void* bytes, size_t length)
{
    auto* p = (const u8*)bytes;
    for (size_t i = 0; i < length; ++i) {
        u64& word = g_entropy_pool[(g_entropy_bytes + i) % 4];
        word = (word << 8 | word >> 56) ^ p[i] ^ 0x9E3779B97F4A7C15ull;
    }
    g_entropy_bytes += length;
}
KEXPORT(homeos_add_hardware_randomness);

// ---- module.h: module selftests report through the kernel's KTAP framework.
void homeos_test_fail(homeos_test* test, const char* file, int line, const char* message)
{
    ((ktest::Test*)test)->fail(file, line, "%s", message);
}
KEXPORT(homeos_test_fail);

void homeos_test_log(homeos_test* test, const char* message) { ((ktest::Test*)test)->log("%s", message); }
KEXPORT(homeos_test_log);

} // extern "C"

namespace abi_cleanup {

namespace {
struct Range {
    u64 start, end;
    bool contains(const void* p) const { return (u64)p >= start && (u64)p < end; }
};
}

usize cancel_timers_in(u64 start, u64 end)
{
    Range range { start, end };
    return timers::cancel_matching(
        [](const Timer& timer, void* context) {
            auto& r = *(Range*)context;
            if (r.contains(&timer) || r.contains((const void*)timer.callback))
                return true;
            // A module timer: the kernel trampoline calls the module's callback.
            return timer.callback == module_timer_trampoline && r.contains((const void*)((const ModuleTimer&)timer).callback);
        },
        &range);
}

usize free_vectors_in(u64 start, u64 end)
{
    usize freed = 0;
    for (int vector = interrupts::FIRST_EXTERNAL_VECTOR; vector < 256; ++vector) {
        auto& slot = g_irq_slots[vector];
        if (slot.handler && (u64)slot.handler >= start && (u64)slot.handler < end) {
            interrupts::unregister_handler((u8)vector);
            slot = {};
            ++freed;
        }
    }
    return freed;
}

} // namespace abi_cleanup

namespace entropy {
u64 bytes_added() { return g_entropy_bytes; }
}
