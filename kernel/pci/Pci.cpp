#include <acpi/AcpiSupport.h>
#include <arch/PciConfig.h>
#include <lib/text/Format.h>
#include <log/Log.h>
#include <mm/MemoryManager.h>
#include <pci/Pci.h>
#include <sync/Spinlock.h>

namespace pci {

namespace {
constexpr usize MAX_DRIVERS = 32;

homeos_pci_device g_devices[MAX_DEVICES];
usize g_device_count = 0;
homeos_pci_driver* g_drivers[MAX_DRIVERS];
usize g_driver_count = 0;
// ECAM of segment 0, buses covered by the first MCFG entry. Each bus's 1 MiB window is mapped
// when the scan first reaches that bus: mapping all 256 MiB up front (65536 pages) cost more
// than the whole scan.
PhysAddr g_ecam_phys;
u8* g_ecam = nullptr;
u8 g_ecam_bus_start = 0, g_ecam_bus_end = 0;
u64 g_ecam_buses_mapped[4];   // bit per bus number
u64 g_ecam_buses_unusable[4]; // mapping failed: that bus reads as empty

bool test_bit(const u64* bits, u8 bus) { return bits[bus / 64] & (1ull << (bus % 64)); }
void set_bit(u64* bits, u8 bus) { bits[bus / 64] |= 1ull << (bus % 64); }

bool ensure_ecam_bus_mapped(u8 bus)
{
    if (test_bit(g_ecam_buses_mapped, bus))
        return true;
    if (test_bit(g_ecam_buses_unusable, bus))
        return false;
    u64 offset = (u64)(bus - g_ecam_bus_start) << 20;
    if (mm::map_mmio(g_ecam_phys + offset, 1 << 20).is_error()) {
        log_warn("pci: cannot map the ECAM window of bus %02x", bus);
        set_bit(g_ecam_buses_unusable, bus);
        return false;
    }
    set_bit(g_ecam_buses_mapped, bus);
    return true;
}

volatile u8* ecam_address(u8 bus, u8 slot, u8 function, u16 offset)
{
    if (!g_ecam || bus < g_ecam_bus_start || bus > g_ecam_bus_end || !ensure_ecam_bus_mapped(bus))
        return nullptr;
    return g_ecam + (((u64)(bus - g_ecam_bus_start) << 20) | ((u64)slot << 15) | ((u64)function << 12) | offset);
}

u32 raw_read(u8 bus, u8 slot, u8 function, u16 offset, unsigned width)
{
    if (auto* p = ecam_address(bus, slot, function, offset)) {
        if (width == 1)
            return *(volatile u8*)p;
        if (width == 2)
            return *(volatile u16*)p;
        return *(volatile u32*)p;
    }
    // A bus inside the ECAM range whose window could not be mapped has no devices for us.
    if (g_ecam && bus >= g_ecam_bus_start && bus <= g_ecam_bus_end)
        return 0xFFFFFFFF;
    if (offset >= 256 || !arch::has_legacy_pci_config())
        return 0xFFFFFFFF;
    return arch::legacy_pci_config_read(bus, slot, function, offset, (u8)width);
}

void raw_write(u8 bus, u8 slot, u8 function, u16 offset, unsigned width, u32 value)
{
    if (auto* p = ecam_address(bus, slot, function, offset)) {
        if (width == 1)
            *(volatile u8*)p = (u8)value;
        else if (width == 2)
            *(volatile u16*)p = (u16)value;
        else
            *(volatile u32*)p = value;
        return;
    }
    if (offset >= 256 || !arch::has_legacy_pci_config())
        return;
    arch::legacy_pci_config_write(bus, slot, function, offset, (u8)width, value);
}

void size_bars(homeos_pci_device& d)
{
    u16 command = (u16)raw_read(d.bus, d.slot, d.function, 0x04, 2);
    // Decoding off while we write all-ones, so the device never answers at a bogus address. Each
    // change of the decode bits is costly under emulation (the machine's address map is rebuilt),
    // so a device that decodes nothing is left alone.
    bool decoding = command & 0x3;
    if (decoding)
        raw_write(d.bus, d.slot, d.function, 0x04, 2, command & ~0x3);
    for (unsigned i = 0; i < 6; ++i) {
        u16 offset = (u16)(0x10 + i * 4);
        u32 original = raw_read(d.bus, d.slot, d.function, offset, 4);
        raw_write(d.bus, d.slot, d.function, offset, 4, 0xFFFFFFFF);
        u32 probe = raw_read(d.bus, d.slot, d.function, offset, 4);
        raw_write(d.bus, d.slot, d.function, offset, 4, original);
        auto& bar = d.bars[i];
        if (probe == 0 || probe == 0xFFFFFFFF)
            continue;
        if (original & 1) {
            bar.is_io = 1;
            bar.address = original & ~0x3u;
            bar.size = (~(probe & ~0x3u) + 1) & 0xFFFF;
            continue;
        }
        bar.prefetchable = (original >> 3) & 1;
        u64 address = original & ~0xFu;
        u64 mask = probe & ~0xFu;
        if (((original >> 1) & 3) == 2 && i < 5) {
            u16 high_offset = (u16)(offset + 4);
            u32 original_high = raw_read(d.bus, d.slot, d.function, high_offset, 4);
            raw_write(d.bus, d.slot, d.function, high_offset, 4, 0xFFFFFFFF);
            u32 probe_high = raw_read(d.bus, d.slot, d.function, high_offset, 4);
            raw_write(d.bus, d.slot, d.function, high_offset, 4, original_high);
            address |= (u64)original_high << 32;
            mask |= (u64)probe_high << 32;
            bar.is_64bit = 1;
            bar.address = address;
            bar.size = ~mask + 1;
            ++i; // the next slot is this BAR's upper half
            continue;
        }
        bar.address = address;
        bar.size = (u32)(~(u32)mask + 1);
    }
    if (decoding)
        raw_write(d.bus, d.slot, d.function, 0x04, 2, command);
}

void find_capabilities(homeos_pci_device& d)
{
    u16 status = (u16)raw_read(d.bus, d.slot, d.function, 0x06, 2);
    if (!(status & (1 << 4)))
        return;
    u8 pointer = (u8)raw_read(d.bus, d.slot, d.function, 0x34, 1) & 0xFC;
    // Bounded walk: a looping capability list must not hang the boot.
    for (int guard = 0; pointer >= 0x40 && guard < 48; ++guard) {
        u8 id = (u8)raw_read(d.bus, d.slot, d.function, pointer, 1);
        if (id == 0x05 && !d.msi_capability)
            d.msi_capability = pointer;
        if (id == 0x11 && !d.msix_capability)
            d.msix_capability = pointer;
        pointer = (u8)raw_read(d.bus, d.slot, d.function, pointer + 1, 1) & 0xFC;
    }
}

// Adds the function whose first config dword (vendor and device) is `id` and whose header type
// byte is `header`, both already read by the scan. Returns the bridge's secondary bus, or 0.
u8 add_function(u8 bus, u8 slot, u8 function, u32 id, u8 header)
{
    if (g_device_count == MAX_DEVICES) {
        log_warn("pci: more than %zu functions; ignoring %02x:%02x.%u", MAX_DEVICES, bus, slot, function);
        return 0;
    }
    auto& d = g_devices[g_device_count++];
    d = homeos_pci_device {};
    d.bus = bus;
    d.slot = slot;
    d.function = function;
    d.vendor = (u16)id;
    d.device = (u16)(id >> 16);
    u32 class_rev = raw_read(bus, slot, function, 0x08, 4);
    d.revision = (u8)class_rev;
    d.class_code = class_rev >> 8;
    u8 header_type = header & 0x7F;
    u8 secondary = 0;
    if (header_type == 0) {
        u32 subsystem = raw_read(bus, slot, function, 0x2C, 4);
        d.subvendor = (u16)subsystem;
        d.subdevice = (u16)(subsystem >> 16);
        size_bars(d);
        u32 interrupt = raw_read(bus, slot, function, 0x3C, 4);
        d.interrupt_line = (u8)interrupt;
        d.interrupt_pin = (u8)(interrupt >> 8);
    } else if (header_type == 1) {
        secondary = (u8)(raw_read(bus, slot, function, 0x18, 4) >> 8);
    }
    find_capabilities(d);
    format_modalias(d, d.modalias, sizeof(d.modalias));
    return secondary;
}

// Depth-first from the root bus through PCI-to-PCI bridges, as Linux's pci_scan_child_bus():
// only buses a bridge leads to are read, each slot costs one read when empty, and functions 1-7
// are probed only on multi-function devices. A bus is scanned at most once (a firmware loop of
// bridges cannot recurse forever), and the depth is bounded by the 256 bus numbers.
u64 g_buses_scanned[4];

void scan_bus(u8 bus)
{
    if (test_bit(g_buses_scanned, bus))
        return;
    set_bit(g_buses_scanned, bus);
    for (u8 slot = 0; slot < 32; ++slot) {
        u32 id = raw_read(bus, slot, 0, 0x00, 4);
        if ((id & 0xFFFF) == 0xFFFF || (id & 0xFFFF) == 0)
            continue;
        u8 header = (u8)(raw_read(bus, slot, 0, 0x0C, 4) >> 16);
        u8 functions = (header & 0x80) ? 8 : 1;
        for (u8 function = 0; function < functions; ++function) {
            u32 function_id = id;
            u8 function_header = header;
            if (function) {
                function_id = raw_read(bus, slot, function, 0x00, 4);
                if ((function_id & 0xFFFF) == 0xFFFF || (function_id & 0xFFFF) == 0)
                    continue;
                function_header = (u8)(raw_read(bus, slot, function, 0x0C, 4) >> 16);
            }
            u8 secondary = add_function(bus, slot, function, function_id, function_header);
            if (secondary > bus)
                scan_bus(secondary);
        }
    }
}

void scan() { scan_bus(g_ecam ? g_ecam_bus_start : 0); }

bool probe_driver(homeos_pci_driver& driver, homeos_pci_device& device)
{
    if (device.bound_driver)
        return false;
    for (auto* id = driver.id_table; id && (id->vendor || id->device || id->class_mask); ++id) {
        if (!id_matches(*id, device))
            continue;
        device.bound_driver = &driver;
        int result = driver.probe ? driver.probe(&device, id) : 0;
        if (result != 0) {
            log_warn("pci: %s failed to probe %02x:%02x.%u (%d)", driver.name, device.bus, device.slot, device.function, result);
            device.bound_driver = nullptr;
            device.driver_data = nullptr;
            return false;
        }
        log_info("pci: %02x:%02x.%u bound to %s", device.bus, device.slot, device.function, driver.name);
        return true;
    }
    return false;
}
}

void format_modalias(const homeos_pci_device& d, char* buffer, usize capacity)
{
    format(buffer, capacity, "pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X", d.vendor, d.device, d.subvendor, d.subdevice,
        (d.class_code >> 16) & 0xFF, (d.class_code >> 8) & 0xFF, d.class_code & 0xFF);
}

bool id_matches(const homeos_pci_device_id& id, const homeos_pci_device& d)
{
    auto field = [](u32 want, u32 have) { return want == HOMEOS_PCI_ANY_ID || want == have; };
    return field(id.vendor, d.vendor) && field(id.device, d.device) && field(id.subvendor, d.subvendor)
        && field(id.subdevice, d.subdevice) && ((id.class_code ^ d.class_code) & id.class_mask) == 0;
}

void init()
{
    if (acpi_support::has_mcfg() && acpi_support::mcfg().entry_count > 0) {
        auto& entry = acpi_support::mcfg().entries[0];
        if (entry.segment == 0 && entry.bus_end >= entry.bus_start) {
            // The window's address; its buses are mapped as the scan reaches them.
            g_ecam_phys = entry.base_address;
            g_ecam = (u8*)mm::phys_to_virt(entry.base_address);
            g_ecam_bus_start = entry.bus_start;
            g_ecam_bus_end = entry.bus_end;
        }
    }
    scan();
    log_info("pci: %zu functions found through %s", g_device_count, g_ecam ? "ECAM (MCFG)" : "port I/O");
    for (usize i = 0; i < g_device_count; ++i) {
        auto& d = g_devices[i];
        log_info("  pci %02x:%02x.%u %04x:%04x class %06x%s%s", d.bus, d.slot, d.function, d.vendor, d.device, d.class_code,
            d.msi_capability ? " msi" : "", d.msix_capability ? " msi-x" : "");
    }
}

bool uses_ecam() { return g_ecam != nullptr; }
Span<homeos_pci_device> devices() { return Span<homeos_pci_device>(g_devices, g_device_count); }

u32 read_config(const homeos_pci_device& d, u16 offset, unsigned width) { return raw_read(d.bus, d.slot, d.function, offset, width); }
void write_config(const homeos_pci_device& d, u16 offset, unsigned width, u32 value)
{
    raw_write(d.bus, d.slot, d.function, offset, width, value);
}

ErrorOr<void> register_driver(homeos_pci_driver& driver)
{
    for (usize i = 0; i < g_driver_count; ++i)
        if (g_drivers[i] == &driver)
            return EEXIST;
    if (g_driver_count == MAX_DRIVERS)
        return ENOSPC;
    g_drivers[g_driver_count++] = &driver;
    for (usize i = 0; i < g_device_count; ++i)
        probe_driver(driver, g_devices[i]);
    return {};
}

void unregister_driver(homeos_pci_driver& driver)
{
    for (usize i = 0; i < g_device_count; ++i) {
        auto& d = g_devices[i];
        if (d.bound_driver != &driver)
            continue;
        if (driver.remove)
            driver.remove(&d);
        // The driver is gone, so are its views of the device: no stale uncached mapping of a
        // BAR outlives it (the next driver maps afresh).
        for (auto& bar : d.bars)
            if (!bar.is_io && bar.size)
                mm::release_device_range(PhysAddr(bar.address), bar.size);
        d.bound_driver = nullptr;
        d.driver_data = nullptr;
        log_info("pci: %02x:%02x.%u unbound from %s", d.bus, d.slot, d.function, driver.name);
    }
    for (usize i = 0; i < g_driver_count; ++i) {
        if (g_drivers[i] == &driver) {
            g_drivers[i] = g_drivers[--g_driver_count];
            break;
        }
    }
}

void unregister_drivers_in(u64 start, u64 end)
{
    for (usize i = g_driver_count; i > 0; --i) {
        auto* driver = g_drivers[i - 1];
        if ((u64)driver >= start && (u64)driver < end) {
            log_warn("pci: driver %s left registered by an unloading module; unregistering", driver->name);
            unregister_driver(*driver);
        }
    }
}

usize driver_count() { return g_driver_count; }

} // namespace pci
