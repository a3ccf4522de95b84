#pragma once
// VERIFY is an invariant check that stays on in release builds. The kernel panics; host tests abort.
// Each side provides ktl_verify_failed(): kernel/lib must not pick one.
[[noreturn]] void ktl_verify_failed(const char* expr, const char* file, int line);

#define VERIFY(expr)                                                   \
    do {                                                               \
        if (!(expr)) [[unlikely]]                                      \
            ktl_verify_failed(#expr, __FILE__, __LINE__);              \
    } while (0)
#define VERIFY_NOT_REACHED() ktl_verify_failed("not reached", __FILE__, __LINE__)
