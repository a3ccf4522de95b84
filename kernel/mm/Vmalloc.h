#pragma once
// vmalloc: virtually contiguous kernel memory built from single pages, for buffers larger than
// the buddy allocator's 4 MiB blocks (the unpacked initramfs, decompressed modules). Each
// allocation is followed by an unmapped guard page.
//
//   0xffffe00000000000 .. 0xffffe80000000000   vmalloc range
#include <ktl/ErrorOr.h>

namespace vmalloc {

constexpr u64 RANGE_START = 0xffffe00000000000ull;
constexpr u64 RANGE_END = 0xffffe80000000000ull;

ErrorOr<void*> allocate(usize size);
void free(void* pointer);
// Pages currently mapped by vmalloc, for leak checks.
u64 pages_in_use();

} // namespace vmalloc
