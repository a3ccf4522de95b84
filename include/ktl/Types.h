#pragma once
// Fixed-width integer names used across the kernel and the host-testable libraries.
#include <stddef.h>
#include <stdint.h>

using u8 = uint8_t;
using u16 = uint16_t;
using u32 = uint32_t;
using u64 = uint64_t;
using i8 = int8_t;
using i16 = int16_t;
using i32 = int32_t;
using i64 = int64_t;
using usize = size_t;
using isize = ptrdiff_t;
using uptr = uintptr_t;

// A physical address. Kept as a plain integer: the pure libraries never dereference it.
using PhysAddr = u64;
using VirtAddr = u64;

constexpr u64 KiB = 1024;
constexpr u64 MiB = 1024 * KiB;
constexpr u64 GiB = 1024 * MiB;
constexpr u64 PAGE_SIZE = 4096;
constexpr u64 PAGE_SHIFT = 12;

constexpr u64 align_down(u64 value, u64 align) { return value & ~(align - 1); }
constexpr u64 align_up(u64 value, u64 align) { return (value + align - 1) & ~(align - 1); }
constexpr bool is_aligned(u64 value, u64 align) { return (value & (align - 1)) == 0; }
constexpr bool is_power_of_two(u64 value) { return value && !(value & (value - 1)); }

// Overflow-checked helpers for parsers that must never trust their input.
inline bool add_overflows(u64 a, u64 b, u64* out) { return __builtin_add_overflow(a, b, out); }
inline bool mul_overflows(u64 a, u64 b, u64* out) { return __builtin_mul_overflow(a, b, out); }
