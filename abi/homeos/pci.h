/* PCI drivers: match by id, probe and remove, BARs, MSI. */
#ifndef HOMEOS_PCI_H
#define HOMEOS_PCI_H
#include <homeos/abi.h>

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
    uint64_t address;         /* physical (memory BAR) or port (I/O BAR) */
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
    uint8_t interrupt_line, interrupt_pin;
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
/* Port I/O for I/O BARs. */
HOMEOS_API uint8_t homeos_inb(uint16_t port);
HOMEOS_API uint16_t homeos_inw(uint16_t port);
HOMEOS_API uint32_t homeos_inl(uint16_t port);
HOMEOS_API void homeos_outb(uint16_t port, uint8_t value);
HOMEOS_API void homeos_outw(uint16_t port, uint16_t value);
HOMEOS_API void homeos_outl(uint16_t port, uint32_t value);
/* Programs MSI to deliver `vector` to the boot CPU. 0 or a negative errno (-ENOTSUP without MSI). */
HOMEOS_API int homeos_pci_enable_msi(struct homeos_pci_device* device, int vector);

HOMEOS_EXTERN_C_END
#endif
