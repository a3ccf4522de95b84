/*
 * Home OS module ABI: common definitions.
 *
 * The headers under abi/ are the only ones a module may include. They have C linkage, so a
 * module can be C or C++. Every function marked HOMEOS_API is exported by the kernel with a CRC
 * of its declaration (prototype plus the layout of every struct it reaches); a module records the
 * CRCs it was built against and the loader refuses a mismatch. Nothing here is specific to one
 * architecture except HOMEOS_VERMAGIC, which names the machine code a module contains.
 *
 * Versioning: a module built for ABI M.n loads on a kernel of ABI M.k when k >= n. abi/README.md
 * records why each major version was needed.
 */
#ifndef HOMEOS_ABI_H
#define HOMEOS_ABI_H

#define HOMEOS_ABI_MAJOR 2
#define HOMEOS_ABI_MINOR 0

#define HOMEOS_STRINGIFY_(x) #x
#define HOMEOS_STRINGIFY(x) HOMEOS_STRINGIFY_(x)
#define HOMEOS_ABI_VERSION_STRING HOMEOS_STRINGIFY(HOMEOS_ABI_MAJOR) "." HOMEOS_STRINGIFY(HOMEOS_ABI_MINOR)

/* vermagic: what besides the ABI version must match for machine code to be compatible: the
 * architecture and the code-generation rules the kernel's module loader relies on. */
#if defined(__x86_64__)
#    define HOMEOS_VERMAGIC_ARCH "x86_64 SMP mcmodel=kernel no-red-zone general-regs-only"
#elif defined(__aarch64__)
#    define HOMEOS_VERMAGIC_ARCH "aarch64 SMP general-regs-only"
#else
#    error "Home OS modules are built for x86_64 or aarch64"
#endif
#define HOMEOS_VERMAGIC "homeos-abi-" HOMEOS_STRINGIFY(HOMEOS_ABI_MAJOR) " " HOMEOS_VERMAGIC_ARCH

#ifdef __cplusplus
#    define HOMEOS_EXTERN_C_BEGIN extern "C" {
#    define HOMEOS_EXTERN_C_END }
#else
#    define HOMEOS_EXTERN_C_BEGIN
#    define HOMEOS_EXTERN_C_END
#endif

/* Marks a kernel function that modules may call. The ABI tool (abi/abi-crc.py) reads these. */
#ifdef HOMEOS_ABI_TOOL
#    define HOMEOS_API __homeos_export
#else
#    define HOMEOS_API
#endif

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#endif
