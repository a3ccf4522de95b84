#pragma once
// kmalloc: slab caches for 16 B .. 8 KiB, the buddy allocator beyond. Errors, never crashes:
// kmalloc(0) is EINVAL and an impossible size is ENOMEM.
#include <ktl/ErrorOr.h>
#include <lib/SlabHeap.h>

ErrorOr<void*> kmalloc(usize size);
ErrorOr<void*> kzalloc(usize size);
void kfree(void* pointer);

namespace kheap {

void init();
SlabHeapStats stats();
SlabHeap& heap_for_tests();
// Debug accounting: allocations per calling function.
void set_caller_tracking(bool enabled);
void dump_callers();
void dump_stats();

} // namespace kheap
