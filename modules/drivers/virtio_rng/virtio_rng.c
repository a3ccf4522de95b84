/*
 * virtio-rng: entropy from the hypervisor over a legacy (transitional) virtio PCI device.
 *
 * Legacy virtio-pci puts its registers in I/O BAR 0 (reached through homeos_pci_io_read/write,
 * whatever the architecture does for I/O space) and takes one page-aligned virtqueue per
 * queue index: descriptor table, then the available ring, then (on the next page) the used ring.
 * The driver posts a device-writable buffer, notifies, and waits for the used ring to advance.
 * What arrives goes to the kernel's entropy pool.
 */
#include <homeos/homeos.h>

enum {
    VIRTIO_PCI_HOST_FEATURES = 0x00,
    VIRTIO_PCI_GUEST_FEATURES = 0x04,
    VIRTIO_PCI_QUEUE_PFN = 0x08,
    VIRTIO_PCI_QUEUE_NUM = 0x0C,
    VIRTIO_PCI_QUEUE_SEL = 0x0E,
    VIRTIO_PCI_QUEUE_NOTIFY = 0x10,
    VIRTIO_PCI_STATUS = 0x12,
    VIRTIO_PCI_ISR = 0x13,
};
enum { STATUS_ACKNOWLEDGE = 1, STATUS_DRIVER = 2, STATUS_DRIVER_OK = 4, STATUS_FAILED = 128 };
enum { VRING_DESC_F_WRITE = 2 };
#define VIRTIO_RNG_TIMEOUT_NS (5ull * 1000 * 1000 * 1000)

struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};
struct vring_used_elem {
    uint32_t id;
    uint32_t len;
};

struct virtio_rng {
    struct homeos_pci_device* pci;
    struct homeos_pci_io_region io; /* BAR 0: the legacy virtio registers */
    uint16_t queue_size;
    unsigned order;
    uint8_t* ring_memory;
    struct vring_desc* desc;
    volatile uint16_t* avail; /* flags, idx, ring[queue_size] */
    volatile uint16_t* used;  /* flags, idx, then elements */
    uint16_t last_used;
    uint8_t* buffer;
    uint64_t bytes_read;
};

static uint64_t request_bytes = 64;
MODULE_PARAM_UINT(request_bytes, 1, 4096, "bytes of entropy to fetch at probe");

static struct virtio_rng* the_device;
static struct homeos_wait_queue wait = HOMEOS_WAIT_QUEUE_INIT;

static uint32_t reg_read(struct virtio_rng* rng, uint32_t offset, unsigned width) { return homeos_pci_io_read(&rng->io, offset, width); }
static void reg_write(struct virtio_rng* rng, uint32_t offset, unsigned width, uint32_t value)
{
    (void)homeos_pci_io_write(&rng->io, offset, width, value);
}

static size_t align_up(size_t value, size_t alignment) { return (value + alignment - 1) & ~(alignment - 1); }

static bool used_advanced(void* context)
{
    struct virtio_rng* rng = context;
    return rng->used[1] != rng->last_used;
}

/* Reads up to `length` bytes (<= one page) into rng->buffer; returns the count or a negative errno. */
static long virtio_rng_read(struct virtio_rng* rng, size_t length)
{
    if (length > HOMEOS_PAGE_SIZE)
        length = HOMEOS_PAGE_SIZE;
    rng->desc[0].addr = homeos_virt_to_phys(rng->buffer);
    rng->desc[0].len = (uint32_t)length;
    rng->desc[0].flags = VRING_DESC_F_WRITE;
    rng->desc[0].next = 0;
    uint16_t index = rng->avail[1];
    rng->avail[2 + index % rng->queue_size] = 0;
    __atomic_thread_fence(__ATOMIC_SEQ_CST); /* descriptor before index, as the device reads them */
    rng->avail[1] = (uint16_t)(index + 1);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    reg_write(rng, VIRTIO_PCI_QUEUE_NOTIFY, 2, 0);

    if (homeos_wait_event_timeout(&wait, used_advanced, rng, VIRTIO_RNG_TIMEOUT_NS) != 0) {
        pr_err("virtio-rng: no answer from the device within 5 s\n");
        return -110; /* -ETIMEDOUT */
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    const struct vring_used_elem* elements = (const struct vring_used_elem*)(rng->used + 2);
    uint32_t got = elements[rng->last_used % rng->queue_size].len;
    rng->last_used++;
    (void)reg_read(rng, VIRTIO_PCI_ISR, 1); /* acknowledge */
    if (got > length)
        got = (uint32_t)length;
    rng->bytes_read += got;
    homeos_add_hardware_randomness(rng->buffer, got);
    return got;
}

static void virtio_rng_remove(struct homeos_pci_device* device);

static int virtio_rng_probe(struct homeos_pci_device* device, const struct homeos_pci_device_id* id)
{
    if (!device->bars[0].is_io) {
        pr_err("virtio-rng: BAR 0 is not an I/O BAR (a modern-only device?)\n");
        return -19; /* -ENODEV */
    }
    struct virtio_rng* rng = kzalloc(sizeof(*rng));
    if (!rng)
        return -12;
    rng->pci = device;
    int mapped = homeos_pci_io_map(device, 0, &rng->io);
    if (mapped < 0) {
        pr_err("virtio-rng: cannot reach BAR 0 (%d)\n", mapped);
        kfree(rng);
        return mapped;
    }
    homeos_pci_enable_device(device);

    reg_write(rng, VIRTIO_PCI_STATUS, 1, 0); /* reset */
    reg_write(rng, VIRTIO_PCI_STATUS, 1, STATUS_ACKNOWLEDGE);
    reg_write(rng, VIRTIO_PCI_STATUS, 1, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    reg_write(rng, VIRTIO_PCI_GUEST_FEATURES, 4, 0); /* no optional features */

    reg_write(rng, VIRTIO_PCI_QUEUE_SEL, 2, 0);
    rng->queue_size = (uint16_t)reg_read(rng, VIRTIO_PCI_QUEUE_NUM, 2);
    if (rng->queue_size == 0 || rng->queue_size > 1024) {
        pr_err("virtio-rng: queue 0 has unusable size %u\n", rng->queue_size);
        reg_write(rng, VIRTIO_PCI_STATUS, 1, STATUS_FAILED);
        kfree(rng);
        return -19;
    }
    size_t avail_end = 16u * rng->queue_size + 6u + 2u * rng->queue_size;
    size_t used_offset = align_up(avail_end, HOMEOS_PAGE_SIZE);
    size_t total = used_offset + align_up(6u + 8u * rng->queue_size, HOMEOS_PAGE_SIZE);
    while ((size_t)HOMEOS_PAGE_SIZE << rng->order < total)
        rng->order++;
    rng->ring_memory = homeos_alloc_pages(rng->order);
    rng->buffer = homeos_alloc_pages(0);
    if (!rng->ring_memory || !rng->buffer) {
        homeos_free_pages(rng->ring_memory, rng->order);
        homeos_free_pages(rng->buffer, 0);
        kfree(rng);
        return -12;
    }
    rng->desc = (struct vring_desc*)rng->ring_memory;
    rng->avail = (volatile uint16_t*)(rng->ring_memory + 16u * rng->queue_size);
    rng->used = (volatile uint16_t*)(rng->ring_memory + used_offset);
    reg_write(rng, VIRTIO_PCI_QUEUE_PFN, 4, (uint32_t)(homeos_virt_to_phys(rng->ring_memory) >> 12));
    reg_write(rng, VIRTIO_PCI_STATUS, 1, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK);

    device->driver_data = rng;
    the_device = rng;
    long got = virtio_rng_read(rng, (size_t)request_bytes);
    if (got < 0) {
        /* remove() is not called for a failed probe: tear down here. */
        virtio_rng_remove(device);
        return (int)got;
    }
    pr_info("virtio-rng: %04x:%04x queue size %u, read %ld bytes of entropy: %02x%02x%02x%02x%02x%02x%02x%02x...\n",
        device->vendor, device->device, rng->queue_size, got, rng->buffer[0], rng->buffer[1], rng->buffer[2], rng->buffer[3],
        rng->buffer[4], rng->buffer[5], rng->buffer[6], rng->buffer[7]);
    return 0;
}

static void virtio_rng_remove(struct homeos_pci_device* device)
{
    struct virtio_rng* rng = device->driver_data;
    if (!rng)
        return;
    reg_write(rng, VIRTIO_PCI_STATUS, 1, 0); /* reset: the device forgets the queue */
    reg_write(rng, VIRTIO_PCI_QUEUE_PFN, 4, 0);
    homeos_free_pages(rng->ring_memory, rng->order);
    homeos_free_pages(rng->buffer, 0);
    pr_info("virtio-rng: removed after %u bytes\n", (unsigned)rng->bytes_read);
    device->driver_data = 0;
    if (the_device == rng)
        the_device = 0;
    kfree(rng);
}

static const struct homeos_pci_device_id ids[] = {
    { 0x1AF4, 0x1005, HOMEOS_PCI_ANY_ID, HOMEOS_PCI_ANY_ID, 0, 0, 0 },
    { 0, 0, 0, 0, 0, 0, 0 },
};

static struct homeos_pci_driver driver = {
    .name = "virtio_rng",
    .id_table = ids,
    .probe = virtio_rng_probe,
    .remove = virtio_rng_remove,
};

static int virtio_rng_init(void) { return homeos_pci_register_driver(&driver); }
static void virtio_rng_exit(void) { homeos_pci_unregister_driver(&driver); }

module_init(virtio_rng_init);
module_exit(virtio_rng_exit);
MODULE_LICENSE("MIT");
MODULE_DESCRIPTION("virtio entropy source (legacy virtio-pci)");
MODULE_VERSION("1.0");
MODULE_ALIAS("pci:v00001AF4d00001005sv*sd*bc*sc*i*");

static void test_reads_entropy(struct homeos_test* test)
{
    HOMEOS_EXPECT(test, the_device != 0);
    if (!the_device)
        return;
    uint8_t first[16];
    long got = virtio_rng_read(the_device, sizeof(first));
    HOMEOS_EXPECT(test, got == (long)sizeof(first));
    for (int i = 0; i < 16; ++i)
        first[i] = the_device->buffer[i];
    got = virtio_rng_read(the_device, sizeof(first));
    HOMEOS_EXPECT(test, got == (long)sizeof(first));
    int same = 0;
    for (int i = 0; i < 16; ++i)
        same += first[i] == the_device->buffer[i];
    HOMEOS_EXPECT(test, same < 16); /* two reads of 16 random bytes agreeing is 2^-128 */
}

static void test_large_read(struct homeos_test* test)
{
    HOMEOS_EXPECT(test, the_device != 0);
    if (the_device)
        HOMEOS_EXPECT(test, virtio_rng_read(the_device, 4096) > 0);
}
HOMEOS_TEST_SUITE(virtio_rng, HOMEOS_TEST_CASE(test_reads_entropy), HOMEOS_TEST_CASE(test_large_read));
