/*
 * Registration hooks for the device classes later subsystems provide. The structures are fixed
 * now, so modules built today keep loading; until a subsystem lands, registration returns
 * -ENOSYS (-38).
 */
#ifndef HOMEOS_DEVICE_H
#define HOMEOS_DEVICE_H
#include <homeos/abi.h>

HOMEOS_EXTERN_C_BEGIN

struct homeos_block_device_ops {
    int (*read)(void* context, uint64_t sector, uint32_t count, void* buffer);
    int (*write)(void* context, uint64_t sector, uint32_t count, const void* buffer);
    int (*flush)(void* context);
    void* reserved[4];
};
struct homeos_block_device {
    const char* name;
    uint64_t sector_count;
    uint32_t sector_size;
    uint32_t reserved;
    const struct homeos_block_device_ops* ops;
    void* context;
};
HOMEOS_API int homeos_register_block_device(struct homeos_block_device* device);
HOMEOS_API void homeos_unregister_block_device(struct homeos_block_device* device);

struct homeos_char_device_ops {
    long (*read)(void* context, void* buffer, size_t size, uint64_t offset);
    long (*write)(void* context, const void* buffer, size_t size, uint64_t offset);
    long (*ioctl)(void* context, unsigned long request, unsigned long argument);
    void* reserved[4];
};
struct homeos_char_device {
    const char* name;
    uint32_t major, minor;
    const struct homeos_char_device_ops* ops;
    void* context;
};
HOMEOS_API int homeos_register_char_device(struct homeos_char_device* device);
HOMEOS_API void homeos_unregister_char_device(struct homeos_char_device* device);

struct homeos_filesystem_type {
    const char* name;
    int (*mount)(void* block_device, const char* options, void** superblock);
    void (*unmount)(void* superblock);
    void* reserved[6];
};
HOMEOS_API int homeos_register_filesystem(struct homeos_filesystem_type* type);
HOMEOS_API void homeos_unregister_filesystem(struct homeos_filesystem_type* type);

struct homeos_net_device_ops {
    int (*open)(void* context);
    int (*stop)(void* context);
    int (*transmit)(void* context, const void* frame, size_t length);
    void* reserved[4];
};
struct homeos_net_device {
    const char* name;
    uint8_t mac[6];
    uint16_t mtu;
    const struct homeos_net_device_ops* ops;
    void* context;
};
HOMEOS_API int homeos_register_net_device(struct homeos_net_device* device);
HOMEOS_API void homeos_unregister_net_device(struct homeos_net_device* device);

struct homeos_net_protocol {
    const char* name;
    uint16_t ethertype;     /* for link-layer protocols; 0 otherwise */
    uint8_t ip_protocol;    /* for IP protocols; 0 otherwise */
    uint8_t reserved0;
    int (*receive)(void* device, const void* packet, size_t length);
    void* reserved[4];
};
HOMEOS_API int homeos_register_protocol(struct homeos_net_protocol* protocol);
HOMEOS_API void homeos_unregister_protocol(struct homeos_net_protocol* protocol);

/* Entropy from hardware RNG drivers feeds the kernel's pool. */
HOMEOS_API void homeos_add_hardware_randomness(const void* bytes, size_t length);

HOMEOS_EXTERN_C_END
#endif
