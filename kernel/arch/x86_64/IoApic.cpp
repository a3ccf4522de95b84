#include <arch/x86_64/IoApic.h>
#include <arch/x86_64/Lapic.h>
#include <lib/acpi/Acpi.h>
#include <log/Log.h>
#include <mm/MemoryManager.h>

namespace ioapic {

namespace {
volatile u32* g_mmio = nullptr;
u32 g_gsi_base = 0;
u32 g_entries = 0;
MadtInterruptOverride g_overrides[MadtInfo::MaxOverrides];
usize g_override_count = 0;

u32 read(u32 reg)
{
    g_mmio[0] = reg;
    return g_mmio[4];
}
void write(u32 reg, u32 value)
{
    g_mmio[0] = reg;
    g_mmio[4] = value;
}

struct Route {
    u32 gsi;
    bool active_low;
    bool level;
};

Route route_for_isa(u8 irq)
{
    // ISA IRQs are edge-triggered, active-high unless the MADT says otherwise.
    Route route { irq, false, false };
    for (usize i = 0; i < g_override_count; ++i) {
        auto& o = g_overrides[i];
        if (o.bus != 0 || o.source_irq != irq)
            continue;
        route.gsi = o.gsi;
        route.active_low = (o.flags & MadtPolarityMask) == MadtPolarityActiveLow;
        route.level = (o.flags & MadtTriggerMask) == MadtTriggerLevel;
    }
    return route;
}
}

ErrorOr<void> init(const MadtInfo& madt)
{
    if (madt.io_apic_count == 0)
        return ENODEV;
    auto& chip = madt.io_apics[0];
    g_mmio = (volatile u32*)TRY(mm::map_mmio(chip.address, PAGE_SIZE));
    g_gsi_base = chip.gsi_base;
    g_entries = ((read(1) >> 16) & 0xFF) + 1;
    for (usize i = 0; i < madt.override_count && i < MadtInfo::MaxOverrides; ++i)
        g_overrides[i] = madt.overrides[i];
    g_override_count = madt.override_count;
    // Everything starts masked: a driver unmasks the lines it owns.
    for (u32 i = 0; i < g_entries; ++i) {
        write(0x10 + 2 * i, 1 << 16);
        write(0x11 + 2 * i, 0);
    }
    log_info("ioapic: id %u at 0x%llx, GSIs %u-%u, %zu source overrides", chip.id, chip.address.ull(), g_gsi_base,
        g_gsi_base + g_entries - 1, g_override_count);
    return {};
}

bool is_initialized() { return g_mmio != nullptr; }
u32 redirection_entries() { return g_entries; }

ErrorOr<void> route_isa_irq(u8 irq, u8 vector)
{
    if (!g_mmio)
        return ENODEV;
    Route route = route_for_isa(irq);
    if (route.gsi < g_gsi_base || route.gsi >= g_gsi_base + g_entries)
        return EINVAL;
    u32 index = route.gsi - g_gsi_base;
    u32 low = vector | (route.active_low ? (1 << 13) : 0) | (route.level ? (1 << 15) : 0);
    write(0x11 + 2 * index, lapic::id() << 24);
    write(0x10 + 2 * index, low);
    return {};
}

ErrorOr<void> mask_isa_irq(u8 irq)
{
    if (!g_mmio)
        return ENODEV;
    Route route = route_for_isa(irq);
    if (route.gsi < g_gsi_base || route.gsi >= g_gsi_base + g_entries)
        return EINVAL;
    u32 index = route.gsi - g_gsi_base;
    write(0x10 + 2 * index, read(0x10 + 2 * index) | (1 << 16));
    return {};
}

} // namespace ioapic
