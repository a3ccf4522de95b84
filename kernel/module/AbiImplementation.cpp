// The kernel side of the module ABI (abi/homeos/*.h): thin C wrappers over kernel services, each
// exported with KEXPORT and the CRC of its declaration. Including the abi headers here makes the
// compiler check every definition against the declaration modules were built with.
#include <Panic.h>
#include <arch/Cpu.h>
#include <arch/Interrupts.h>
#include <arch/IoSpace.h>
#include <arch/Msi.h>
#include <arch/PlatformIrq.h>
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

uint64_t homeos_virt_to_phys(const void* pointer) { return mm::virt_to_phys(pointer).value(); }
KEXPORT(homeos_virt_to_phys);
void* homeos_phys_to_virt(uint64_t physical) { return mm::phys_to_virt(PhysAddr(physical)); }
KEXPORT(homeos_phys_to_virt);

void* homeos_map_mmio(uint64_t physical, size_t size)
{
    auto mapped = mm::map_mmio(PhysAddr(physical), size);
    return mapped.is_error() ? nullptr : mapped.value();
}
KEXPORT(homeos_map_mmio);

// ---- sync.h
uint64_t homeos_spin_lock(homeos_spinlock* lock)
{
    u64 flags = arch::save_and_disable_interrupts();
    while (__atomic_exchange_n(&lock->locked, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&lock->locked, __ATOMIC_RELAXED))
            arch::cpu_relax();
    return flags;
}
KEXPORT(homeos_spin_lock);

void homeos_spin_unlock(homeos_spinlock* lock, uint64_t flags)
{
    __atomic_store_n(&lock->locked, 0, __ATOMIC_RELEASE);
    arch::restore_interrupts(flags);
}
KEXPORT(homeos_spin_unlock);

void homeos_mutex_lock(homeos_mutex* mutex)
{
    // No scheduler yet: wait with interrupts on so the holder's interrupt work can finish.
    while (__atomic_exchange_n(&mutex->locked, 1, __ATOMIC_ACQUIRE))
        arch::cpu_relax();
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
        if (arch::interrupts_enabled() && __atomic_load_n(&queue->generation, __ATOMIC_ACQUIRE) == generation)
            arch::wait_for_interrupt();
        else
            arch::cpu_relax();
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

// ---- irq.h: interrupts a module asked for, by the resource that raises them (a device's MSI or
// a platform line). A slot lives exactly as long as its vector's registration: release_irq_slot()
// clears both, so the unload sweep never matches a slot whose vector has since gone to someone else.
struct IrqSlot {
    homeos_irq_handler handler;
    void* context;
    const homeos_pci_device* device; // whose MSI raises it, or
    bool has_line;                   // a platform line raises it
    u32 line;
};
// NOTE: no lock. Slots change only in thread context on the one CPU there is (a driver's probe
// or remove, module exit and the unload sweep, all under the module mutex, or the selftests);
// the trampoline reads a slot only while its vector is registered, and a slot is filled before
// its vector is registered and cleared after it is unregistered. SMP will need a lock here.
static IrqSlot g_irq_slots[256];

static void irq_trampoline(TrapFrame&, void* context)
{
    auto* slot = (IrqSlot*)context;
    slot->handler(slot->context);
}

static ErrorOr<u8> claim_irq_slot(const IrqSlot& wanted)
{
    auto vector = interrupts::allocate_vector();
    if (vector.is_error())
        return Error::with_message(ENOSPC, "no free interrupt vector");
    auto& slot = g_irq_slots[vector.value()];
    slot = wanted;
    if (auto result = interrupts::register_handler(vector.value(), irq_trampoline, &slot); result.is_error()) {
        slot = {};
        interrupts::unregister_handler(vector.value());
        return result.release_error();
    }
    return vector.value();
}

static void release_irq_slot(u8 vector)
{
    interrupts::unregister_handler(vector);
    g_irq_slots[vector] = {};
}

static int msi_vector_of(const homeos_pci_device* device)
{
    for (int vector = interrupts::FIRST_EXTERNAL_VECTOR; vector < 256; ++vector)
        if (g_irq_slots[vector].handler && g_irq_slots[vector].device == device)
            return vector;
    return -1;
}

static bool line_requested(u32 line)
{
    for (int vector = interrupts::FIRST_EXTERNAL_VECTOR; vector < 256; ++vector)
        if (g_irq_slots[vector].handler && g_irq_slots[vector].has_line && g_irq_slots[vector].line == line)
            return true;
    return false;
}

int homeos_platform_irq(const char* hardware_id, unsigned instance, homeos_irq_resource* resource)
{
    if (!hardware_id || !resource)
        return -EINVAL;
    auto found = arch::find_platform_irq(StringView(hardware_id), instance);
    if (found.is_error())
        return negative(found.error());
    u32 flags = ((found.value().flags & arch::PLATFORM_IRQ_LEVEL) ? HOMEOS_IRQ_LEVEL : 0)
        | ((found.value().flags & arch::PLATFORM_IRQ_ACTIVE_LOW) ? HOMEOS_IRQ_ACTIVE_LOW : 0);
    *resource = { found.value().line, flags, { 0, 0 } };
    return 0;
}
KEXPORT(homeos_platform_irq);

int homeos_request_irq(const homeos_irq_resource* resource, homeos_irq_handler handler, void* context)
{
    if (!resource || !handler || !arch::is_platform_irq_line(resource->line))
        return -EINVAL;
    if (line_requested(resource->line))
        return -EBUSY;
    auto vector = claim_irq_slot({ handler, context, nullptr, true, resource->line });
    if (vector.is_error())
        return negative(vector.error());
    if (auto routed = arch::route_platform_irq(resource->line, vector.value()); routed.is_error()) {
        release_irq_slot(vector.value());
        return negative(routed.error());
    }
    return vector.value();
}
KEXPORT(homeos_request_irq);

void homeos_free_irq(int irq)
{
    if (irq < interrupts::FIRST_EXTERNAL_VECTOR || irq >= 256)
        return;
    auto& slot = g_irq_slots[irq];
    if (!slot.handler || !slot.has_line)
        return; // not a live platform interrupt (MSI goes with homeos_pci_disable_msi)
    arch::mask_platform_irq(slot.line); // the line goes quiet before its vector goes away
    release_irq_slot((u8)irq);
}
KEXPORT(homeos_free_irq);

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
    if (!device || bar >= 6 || device->bars[bar].is_io || !device->bars[bar].size)
        return nullptr;
    return homeos_map_mmio(device->bars[bar].address, device->bars[bar].size);
}
KEXPORT(homeos_pci_map_bar);

// The kernel's side of struct homeos_pci_io_region: how its cookie is reached.
enum : u32 { IO_REGION_PORTS = 1, IO_REGION_MMIO = 2 };

int homeos_pci_io_map(homeos_pci_device* device, unsigned bar, homeos_pci_io_region* region)
{
    if (!device || !region || bar >= 6 || !device->bars[bar].size)
        return -EINVAL;
    const auto& b = device->bars[bar];
    if (b.is_io) {
        // FIXME: an architecture without port instructions reaches I/O space through a memory
        // window its PCI host bridge describes; until one is supported, say so.
        if (!arch::HAS_PORT_IO)
            return -ENOTSUP;
        if (b.address > arch::IO_SPACE_LIMIT || b.size > arch::IO_SPACE_LIMIT + 1 - b.address)
            return -EINVAL;
        *region = { b.address, b.size, IO_REGION_PORTS, 0 };
        return 0;
    }
    void* mapped = homeos_map_mmio(b.address, b.size);
    if (!mapped)
        return -ENOMEM;
    *region = { (u64)mapped, b.size, IO_REGION_MMIO, 0 };
    return 0;
}
KEXPORT(homeos_pci_io_map);

static bool io_access_ok(const homeos_pci_io_region* region, uint32_t offset, unsigned width)
{
    if (!region || (width != 1 && width != 2 && width != 4) || (offset & (width - 1)) || offset >= region->size
        || width > region->size - offset || (region->kind != IO_REGION_PORTS && region->kind != IO_REGION_MMIO)) {
        log_warn("pci: refused a %u-byte register access at offset 0x%x of a %llu-byte region", width, offset,
            region ? (unsigned long long)region->size : 0ull);
        return false;
    }
    return true;
}

uint32_t homeos_pci_io_read(const homeos_pci_io_region* region, uint32_t offset, unsigned width)
{
    if (!io_access_ok(region, offset, width))
        return width == 1 ? 0xFFu : width == 2 ? 0xFFFFu : 0xFFFFFFFFu; // what a master abort reads
    if (region->kind == IO_REGION_PORTS)
        return arch::io_space_read(region->cookie + offset, width);
    auto address = region->cookie + offset;
    if (width == 1)
        return *(volatile u8*)address;
    if (width == 2)
        return *(volatile u16*)address;
    return *(volatile u32*)address;
}
KEXPORT(homeos_pci_io_read);

int homeos_pci_io_write(const homeos_pci_io_region* region, uint32_t offset, unsigned width, uint32_t value)
{
    if (!io_access_ok(region, offset, width))
        return -EINVAL;
    if (region->kind == IO_REGION_PORTS) {
        arch::io_space_write(region->cookie + offset, width, value);
        return 0;
    }
    auto address = region->cookie + offset;
    if (width == 1)
        *(volatile u8*)address = (u8)value;
    else if (width == 2)
        *(volatile u16*)address = (u16)value;
    else
        *(volatile u32*)address = value;
    return 0;
}
KEXPORT(homeos_pci_io_write);

// MSI capability (PCI Local Bus 3.0, 6.8.1): control at +2 (bit 0 enable, bits 6:4 vectors
// enabled, bit 7 64-bit address), then the address and the data.
static void msi_program(homeos_pci_device* device, const arch::MsiMessage& message)
{
    u16 cap = device->msi_capability;
    u16 control = (u16)pci::read_config(*device, cap + 2, 2);
    pci::write_config(*device, cap + 4, 4, (u32)message.address);
    if (control & (1 << 7)) {
        pci::write_config(*device, cap + 8, 4, (u32)(message.address >> 32));
        pci::write_config(*device, cap + 12, 2, message.data);
    } else {
        pci::write_config(*device, cap + 8, 2, message.data);
    }
    pci::write_config(*device, cap + 2, 2, (control & ~(7u << 4)) | 1); // one vector, enabled
}

static void msi_switch_off(const homeos_pci_device* device)
{
    u16 cap = device->msi_capability;
    pci::write_config(*device, cap + 2, 2, pci::read_config(*device, cap + 2, 2) & ~1u);
}

int homeos_pci_enable_msi(homeos_pci_device* device, homeos_irq_handler handler, void* context)
{
    if (!device || !handler)
        return -EINVAL;
    if (!device->msi_capability)
        return -ENOTSUP;
    if (msi_vector_of(device) >= 0)
        return -EBUSY;
    auto vector = claim_irq_slot({ handler, context, device, false, 0 });
    if (vector.is_error())
        return negative(vector.error());
    auto message = arch::compose_msi_message(vector.value());
    if (message.is_error()) {
        release_irq_slot(vector.value());
        return negative(message.error());
    }
    msi_program(device, message.value());
    return 0;
}
KEXPORT(homeos_pci_enable_msi);

void homeos_pci_disable_msi(homeos_pci_device* device)
{
    int vector = device ? msi_vector_of(device) : -1;
    if (vector < 0)
        return;
    msi_switch_off(device); // the device stops writing before its vector goes away
    release_irq_slot((u8)vector);
}
KEXPORT(homeos_pci_disable_msi);

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

// Never called: modules import it so that its CRC (the layouts of the structs in their sections)
// is checked at load, as Linux's module_layout is.
void homeos_module_layout(const homeos_module_param*, const homeos_export*, const homeos_version_entry*, const homeos_test_suite* const*,
    homeos_initcall, homeos_exitcall)
{
}
KEXPORT(homeos_module_layout);

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
            if (slot.device && slot.device->msi_capability)
                msi_switch_off(slot.device);
            if (slot.has_line)
                arch::mask_platform_irq(slot.line);
            release_irq_slot((u8)vector);
            ++freed;
        }
    }
    return freed;
}

int msi_vector_for_tests(const homeos_pci_device* device) { return msi_vector_of(device); }

} // namespace abi_cleanup

namespace entropy {
u64 bytes_added() { return g_entropy_bytes; }
}
