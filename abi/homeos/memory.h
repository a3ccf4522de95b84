/* Kernel memory: kmalloc/kfree, whole pages, and physical addresses for DMA. */
#ifndef HOMEOS_MEMORY_H
#define HOMEOS_MEMORY_H
#include <homeos/abi.h>

HOMEOS_EXTERN_C_BEGIN

#define HOMEOS_PAGE_SIZE 4096

/* NULL on failure (size 0 or out of memory). */
HOMEOS_API void* kmalloc(size_t size);
HOMEOS_API void* kzalloc(size_t size);
HOMEOS_API void kfree(void* pointer);

/* 2^order physically contiguous pages, zeroed; returns the kernel virtual address or NULL. */
HOMEOS_API void* homeos_alloc_pages(unsigned order);
HOMEOS_API void homeos_free_pages(void* pages, unsigned order);
HOMEOS_API uint64_t homeos_virt_to_phys(const void* pointer);
HOMEOS_API void* homeos_phys_to_virt(uint64_t physical);
/* Maps device registers uncached; NULL on failure. */
HOMEOS_API void* homeos_map_mmio(uint64_t physical, size_t size);

HOMEOS_EXTERN_C_END
#endif
