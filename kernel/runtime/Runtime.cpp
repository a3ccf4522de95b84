// The freestanding C and C++ runtime the compiler expects: mem* functions, pure-virtual and
// guard hooks. operator new/delete live with kmalloc.
#include <Panic.h>
#include <ktl/Types.h>
#include <new>

const std::nothrow_t std::nothrow {};

extern "C" {

void* memcpy(void* dest, const void* src, size_t n)
{
    void* start = dest;
    asm volatile("rep movsb" : "+D"(dest), "+S"(src), "+c"(n) : : "memory");
    return start;
}

void* memset(void* dest, int value, size_t n)
{
    void* start = dest;
    asm volatile("rep stosb" : "+D"(dest), "+c"(n) : "a"(value) : "memory");
    return start;
}

void* memmove(void* dest, const void* src, size_t n)
{
    u8* d = (u8*)dest;
    const u8* s = (const u8*)src;
    if (d == s || n == 0)
        return dest;
    if (d < s || d >= s + n) {
        for (size_t i = 0; i < n; ++i)
            d[i] = s[i];
    } else {
        for (size_t i = n; i > 0; --i)
            d[i - 1] = s[i - 1];
    }
    return dest;
}

int memcmp(const void* a, const void* b, size_t n)
{
    const u8* x = (const u8*)a;
    const u8* y = (const u8*)b;
    for (size_t i = 0; i < n; ++i)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

size_t strlen(const char* s)
{
    size_t n = 0;
    while (s[n])
        ++n;
    return n;
}

int strcmp(const char* a, const char* b)
{
    while (*a && *a == *b)
        ++a, ++b;
    return (u8)*a - (u8)*b;
}

void __cxa_pure_virtual() { panic("pure virtual function called"); }
// The kernel never exits, so static destructors are never registered to run.
int __cxa_atexit(void (*)(void*), void*, void*) { return 0; }
int atexit(void (*)()) { return 0; }
void* __dso_handle = nullptr;

}
