#pragma once
// The allocator interface pure libraries take when they must allocate: kmalloc in the kernel,
// malloc (or a failure-injecting arena) in host tests. Sizes are passed back on free so an
// implementation need not store them.
#include <ktl/ErrorOr.h>

class Allocator {
public:
    virtual ErrorOr<void*> allocate(usize size, usize alignment = 16) = 0;
    virtual void deallocate(void* pointer, usize size) = 0;

protected:
    ~Allocator() = default;
};
