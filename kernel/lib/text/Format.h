#pragma once
// The kernel's only formatter: printf-style, C snprintf semantics, no floating point.
//
// Interface:
//   format(buffer, capacity, "%s: %#llx", name, value)  - like snprintf: always NUL-terminates when
//       capacity > 0 and returns the length the full output would have had.
//   vformat_to(emit, ctx, fmt, args)  - streams each character to emit(), for consoles and logs
//       that have no buffer of their own.
//
// Conversions: d i u x X o p s c %. Length modifiers: hh h l ll z t j. Flags: - 0 + space #.
// Width and precision, including `*`. Output matches glibc, including "(null)" for a null %s
// and "(nil)" for a null %p. An unknown conversion is printed as written.
//
// NOTE: the v* forms work on a va_copy of `args`, so the caller's list is still usable afterwards
// (a log can format one message to the console and to the ring).
#include <ktl/Types.h>
#include <stdarg.h>

using FormatEmitFunction = void (*)(char c, void* ctx);

void vformat_to(FormatEmitFunction emit, void* ctx, const char* fmt, va_list args);
void format_to(FormatEmitFunction emit, void* ctx, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

usize vformat(char* buffer, usize capacity, const char* fmt, va_list args);
usize format(char* buffer, usize capacity, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
