/* PCI drivers: match by id, probe and remove, BARs and their registers, MSI. */
#ifndef HOMEOS_PCI_H
#define HOMEOS_PCI_H
#include <homeos/abi.h>
#include <homeos/irq.h>

HOMEOS_EXTERN_C_BEGIN

#define HOMEOS_PCI_ANY_ID 0xFFFFFFFFu

struct homeos_pci_device_id {
    uint32_t vendor;
    uint32_t device;
    uint32_t subvendor;
    uint32_t subdevice;
    uint32_t class_code;      /* (class << 16) | (subclass << 8) | prog_if */
    uint32_t class_mask;
    uintptr_t driver_data;
};

struct homeos_pci_bar {
    uint64_t address;         /* PCI address: physical (memory BAR) or I/O space (I/O BAR) */
    uint64_t size;
    uint32_t is_io;
    uint32_t is_64bit;
    uint32_t prefetchable;
    uint32_t reserved;
};

struct homeos_pci_device {
    uint16_t segment;
    uint8_t bus, slot, function;
    uint8_t revision;
    uint16_t vendor, device;
    uint16_t subvendor, subdevice;
    uint32_t class_code;
    uint8_t interrupt_line;   /* config register 0x3C as firmware left it: platform-specific, not an IRQ to request */
    uint8_t interrupt_pin;
    uint8_t msi_capability;   /* config-space offset, 0 if absent */
    uint8_t msix_capability;
    struct homeos_pci_bar bars[6];
    char modalias[64];        /* pci:vVVVVVVVVdDDDDDDDDsvSSSSSSSSsdSSSSSSSSbcCCscSSiII */
    void* driver_data;        /* for the bound driver */
    const void* bound_driver;
};

struct homeos_pci_driver {
    const char* name;
    const struct homeos_pci_device_id* id_table; /* ends with an all-zero entry */
    int (*probe)(struct homeos_pci_device* device, const struct homeos_pci_device_id* id);
    void (*remove)(struct homeos_pci_device* device);
    void* reserved[4];
};

/* Registers the driver and probes every unbound matching device. 0 or a negative errno. */
HOMEOS_API int homeos_pci_register_driver(struct homeos_pci_driver* driver);
/* Calls remove() on every device the driver is bound to, then forgets the driver. */
HOMEOS_API void homeos_pci_unregister_driver(struct homeos_pci_driver* driver);

HOMEOS_API uint32_t homeos_pci_read_config(struct homeos_pci_device* device, uint16_t offset, unsigned width);
HOMEOS_API void homeos_pci_write_config(struct homeos_pci_device* device, uint16_t offset, unsigned width, uint32_t value);
/* Turns on memory/I-O decoding and bus mastering. */
HOMEOS_API void homeos_pci_enable_device(struct homeos_pci_device* device);
/* Maps a memory BAR uncached and returns its address, or NULL. */
HOMEOS_API void* homeos_pci_map_bar(struct homeos_pci_device* device, unsigned bar);

/*
 * A BAR's registers, reached the same way whatever the BAR is: an I/O BAR is port I/O on x86-64
 * and memory-mapped elsewhere, a memory BAR is MMIO. Fill one with homeos_pci_io_map; the fields
 * are the kernel's and a driver only passes the region back.
 */
struct homeos_pci_io_region {
    uint64_t cookie;          /* the kernel's handle: a port base or a mapped address */
    uint64_t size;            /* bytes; accesses at or past it are refused */
    uint32_t kind;            /* the kernel's: how cookie is reached */
    uint32_t reserved;
};
/* Fills *region for BAR `bar` (mapping it if it is a memory BAR). 0, -EINVAL for a bad BAR or a
 * BAR without size, -ENOMEM if it cannot be mapped, -ENOTSUP for an I/O BAR on a platform whose
 * I/O space the kernel cannot reach yet. */
HOMEOS_API int homeos_pci_io_map(struct homeos_pci_device* device, unsigned bar, struct homeos_pci_io_region* region);
/* Reads `width` bytes (1, 2 or 4) at `offset`. An access outside the region or of another width
 * reads all ones, like a PCI master abort, and is logged. */
HOMEOS_API uint32_t homeos_pci_io_read(const struct homeos_pci_io_region* region, uint32_t offset, unsigned width);
/* Writes `width` bytes (1, 2 or 4) at `offset`. 0, or -EINVAL (and nothing written) for a bad access. */
HOMEOS_API int homeos_pci_io_write(const struct homeos_pci_io_region* region, uint32_t offset, unsigned width, uint32_t value);

/*
 * MSI: allocates an interrupt, asks the architecture for the message that delivers it (address
 * and data) and programs the device's MSI capability with one vector. `handler` runs on every
 * interrupt. 0 or a negative errno: -ENOTSUP without an MSI capability, -EBUSY if MSI is already
 * on for the device, -EINVAL for a NULL handler, -ENOSPC when no interrupt is free.
 */
HOMEOS_API int homeos_pci_enable_msi(struct homeos_pci_device* device, homeos_irq_handler handler, void* context);
/* Turns MSI off in the device and frees its interrupt; nothing if MSI is not on. */
HOMEOS_API void homeos_pci_disable_msi(struct homeos_pci_device* device);

HOMEOS_EXTERN_C_END
#endif
