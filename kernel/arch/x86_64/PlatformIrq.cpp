// PC platform devices and their ISA interrupt lines. Without an AML interpreter the kernel cannot
// read each device's _CRS, so it uses the assignments every PC-compatible keeps (the ones Linux's
// 8250 and i8042 drivers fall back to); the IOAPIC applies the MADT's source overrides when routing.
#include <arch/PlatformIrq.h>
#include <arch/x86_64/IoApic.h>

namespace arch {

namespace {
struct LegacyDevice {
    const char* hardware_id;
    unsigned instance;
    u8 isa_irq;
};
constexpr LegacyDevice LEGACY_DEVICES[] = {
    { "PNP0501", 0, 4 },  // COM1
    { "PNP0501", 1, 3 },  // COM2
    { "PNP0501", 2, 4 },  // COM3 shares COM1's line
    { "PNP0501", 3, 3 },  // COM4 shares COM2's line
    { "PNP0303", 0, 1 },  // PS/2 keyboard
    { "PNP0F13", 0, 12 }, // PS/2 mouse
    { "PNP0B00", 0, 8 },  // RTC
    { "PNP0400", 0, 7 },  // parallel port
};
} // namespace

ErrorOr<PlatformIrq> find_platform_irq(StringView hardware_id, unsigned instance)
{
    for (auto& device : LEGACY_DEVICES)
        if (hardware_id == StringView(device.hardware_id) && instance == device.instance)
            return PlatformIrq { device.isa_irq, 0 }; // ISA lines are edge triggered, active high
    return Error::with_message(ENODEV, "no such platform device");
}

bool is_platform_irq_line(u32 line)
{
    for (auto& device : LEGACY_DEVICES)
        if (line == device.isa_irq)
            return true;
    return false;
}

ErrorOr<void> route_platform_irq(u32 line, u8 vector)
{
    if (!is_platform_irq_line(line))
        return Error::with_message(EINVAL, "not a platform interrupt line");
    return ioapic::route_isa_irq((u8)line, vector);
}

void mask_platform_irq(u32 line)
{
    if (is_platform_irq_line(line))
        (void)ioapic::mask_isa_irq((u8)line);
}

} // namespace arch
