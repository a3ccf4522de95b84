// Host-side hooks the shared libraries expect from their environment.
#include <ktl/Assertions.h>
#include <cstdio>
#include <cstdlib>

[[noreturn]] void ktl_verify_failed(const char* expr, const char* file, int line)
{
    fprintf(stderr, "VERIFY(%s) failed at %s:%d\n", expr, file, line);
    abort();
}
