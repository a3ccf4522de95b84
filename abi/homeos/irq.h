/*
 * Interrupts. A driver never names an interrupt-controller input or a CPU vector: it asks for the
 * interrupt of a resource it owns and the kernel's architecture code routes it.
 *   - a PCI device's MSI: homeos_pci_enable_msi / homeos_pci_disable_msi (pci.h);
 *   - a platform device's line, as the firmware describes the platform: homeos_platform_irq gives
 *     the resource, homeos_request_irq / homeos_free_irq use it.
 */
#ifndef HOMEOS_IRQ_H
#define HOMEOS_IRQ_H
#include <homeos/abi.h>

HOMEOS_EXTERN_C_BEGIN

/* Runs in interrupt context, with interrupts disabled on this CPU. */
typedef void (*homeos_irq_handler)(void* context);

/* A platform device's interrupt line. The kernel fills it in; a driver only passes it back. */
struct homeos_irq_resource {
    uint32_t line;            /* the kernel's number for the line (opaque to drivers) */
    uint32_t flags;           /* HOMEOS_IRQ_LEVEL, HOMEOS_IRQ_ACTIVE_LOW, as the platform wires it */
    uint32_t reserved[2];
};
#define HOMEOS_IRQ_LEVEL 1u
#define HOMEOS_IRQ_ACTIVE_LOW 2u

/* The interrupt of instance `instance` (0 = the first) of the platform device with ACPI hardware
 * ID `hardware_id`: "PNP0501" a 16550 UART, "PNP0B00" the RTC, "PNP0303" a PS/2 keyboard,
 * "PNP0F13" a PS/2 mouse. 0, -EINVAL for NULL arguments, -ENODEV if the platform has no such
 * device. */
HOMEOS_API int homeos_platform_irq(const char* hardware_id, unsigned instance, struct homeos_irq_resource* resource);
/* Routes the line to a new interrupt and calls handler on each one. Returns a handle (>= 0) for
 * homeos_free_irq, or a negative errno: -EINVAL for a NULL handler or a resource the kernel did
 * not hand out, -EBUSY if the line is already requested, -ENOSPC when no interrupt is free. */
HOMEOS_API int homeos_request_irq(const struct homeos_irq_resource* resource, homeos_irq_handler handler, void* context);
/* Masks the line and frees the interrupt; a handle that is not live is ignored. */
HOMEOS_API void homeos_free_irq(int irq);

HOMEOS_EXTERN_C_END
#endif
