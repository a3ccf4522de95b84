#pragma once
// kmalloc: slab caches for 16 B .. 8 KiB, the buddy allocator beyond. Errors, never crashes:
// try_kmalloc(0) is EINVAL and an impossible size is ENOMEM.
//
// The kernel uses the try_ forms. kmalloc/kzalloc/kfree are the C functions of the module ABI
// (abi/homeos/memory.h): NULL on failure.
#include <ktl/ErrorOr.h>
#include <lib/mm/SlabHeap.h>

ErrorOr<void*> try_kmalloc(usize size);
ErrorOr<void*> try_kzalloc(usize size);
extern "C" void* kmalloc(size_t size);
extern "C" void* kzalloc(size_t size);
extern "C" void kfree(void* pointer);

namespace kheap {

void init();
SlabHeapStats stats();
SlabHeap& heap_for_tests();
// Debug accounting: allocations per calling function.
void set_caller_tracking(bool enabled);
void dump_callers();
void dump_stats();

} // namespace kheap
