/*
 * Module metadata, entry points, parameters, exports and selftests.
 *
 *   #include <homeos/module.h>
 *   static int hello_init(void) { pr_info("hello\n"); return 0; }
 *   static void hello_exit(void) { }
 *   module_init(hello_init);
 *   module_exit(hello_exit);
 *   MODULE_LICENSE("MIT");
 *   MODULE_DESCRIPTION("says hello");
 *
 * The SDK (abi/module.mk) defines HOMEOS_MODULE_NAME from the module's name.
 */
#ifndef HOMEOS_MODULE_H
#define HOMEOS_MODULE_H
#include <homeos/abi.h>
#include <homeos/log.h>
#include <homeos/memory.h>

HOMEOS_EXTERN_C_BEGIN

#define HOMEOS_CONCAT_(a, b) a##b
#define HOMEOS_CONCAT(a, b) HOMEOS_CONCAT_(a, b)
#define HOMEOS_UNIQUE(prefix) HOMEOS_CONCAT(prefix, __COUNTER__)

/* .modinfo holds NUL-separated key=value strings, as in Linux. */
#define MODULE_INFO(key, value)                                                                    \
    static const char HOMEOS_UNIQUE(__homeos_modinfo_)[] __attribute__((section(".modinfo"), used, \
        aligned(1))) = #key "=" value

#define MODULE_LICENSE(text) MODULE_INFO(license, text)
#define MODULE_AUTHOR(text) MODULE_INFO(author, text)
#define MODULE_DESCRIPTION(text) MODULE_INFO(description, text)
#define MODULE_VERSION(text) MODULE_INFO(version, text)
/* A device alias for autoload, e.g. "pci:v00001AF4d00001005sv*sd*bc*sc*i*". */
#define MODULE_ALIAS(text) MODULE_INFO(alias, text)
/* Comma-separated names of modules this one needs loaded first. */
#define MODULE_DEPENDS(text) MODULE_INFO(depends, text)

/* The module's identity, emitted once, by the translation unit that has module_init(). */
#ifdef HOMEOS_MODULE_NAME
#    define HOMEOS_MODULE_IDENTITY                                  \
        MODULE_INFO(name, HOMEOS_STRINGIFY(HOMEOS_MODULE_NAME));    \
        MODULE_INFO(abi, HOMEOS_ABI_VERSION_STRING);                \
        MODULE_INFO(vermagic, HOMEOS_VERMAGIC)
#else
#    define HOMEOS_MODULE_IDENTITY                                  \
        MODULE_INFO(abi, HOMEOS_ABI_VERSION_STRING);                \
        MODULE_INFO(vermagic, HOMEOS_VERMAGIC)
#endif

/* Entry points: pointers in sections the loader reads, so C++ names need no extern "C". */
typedef int (*homeos_initcall)(void);
typedef void (*homeos_exitcall)(void);
#define module_init(fn)                                                                                   \
    HOMEOS_MODULE_IDENTITY;                                                                               \
    static const homeos_initcall __homeos_initcall __attribute__((section(".homeos.init"), used)) = fn
#define module_exit(fn) \
    static const homeos_exitcall __homeos_exitcall __attribute__((section(".homeos.exit"), used)) = fn

/* Parameters: `insmod foo.ko count=3 name=abc`. Values are checked against type and range. */
enum homeos_param_type {
    HOMEOS_PARAM_BOOL = 1,
    HOMEOS_PARAM_INT = 2,
    HOMEOS_PARAM_UINT = 3,
    HOMEOS_PARAM_STRING = 4,
};
struct homeos_module_param {
    const char* name;
    const char* description;
    uint32_t type;
    uint32_t string_capacity; /* for strings: size of the char array at value */
    void* value;              /* bool*, int64_t*, uint64_t* or char[string_capacity] */
    int64_t min;
    int64_t max;
};
#define HOMEOS_PARAM_(var, kind, kind_name, capacity, lo, hi, desc)                                       \
    static const struct homeos_module_param HOMEOS_CONCAT(__homeos_param_, var)                            \
        __attribute__((section(".homeos.params"), used, aligned(8)))                                       \
        = { #var, desc, kind, capacity, (void*)&(var), lo, hi };                                           \
    MODULE_INFO(parm, #var ":" desc);                                                                      \
    MODULE_INFO(parmtype, #var ":" kind_name)
#define MODULE_PARAM_BOOL(var, desc) HOMEOS_PARAM_(var, HOMEOS_PARAM_BOOL, "bool", 0, 0, 1, desc)
#define MODULE_PARAM_INT(var, lo, hi, desc) HOMEOS_PARAM_(var, HOMEOS_PARAM_INT, "int", 0, lo, hi, desc)
#define MODULE_PARAM_UINT(var, lo, hi, desc) HOMEOS_PARAM_(var, HOMEOS_PARAM_UINT, "uint", 0, lo, hi, desc)
#define MODULE_PARAM_STRING(var, desc) HOMEOS_PARAM_(var, HOMEOS_PARAM_STRING, "string", sizeof(var), 0, 0, desc)

/* Symbols a module offers to modules loaded after it (unversioned: CRC 0). */
struct homeos_export {
    const char* name;
    const void* address;
    uint32_t crc;
    uint32_t reserved;
};
#define HOMEOS_EXPORT(symbol)                                                                   \
    static const struct homeos_export HOMEOS_CONCAT(__homeos_export_, symbol)                    \
        __attribute__((section(".homeos.exports"), used, aligned(8))) = { #symbol, (const void*)&symbol, 0, 0 }

/* The module's imports and the CRCs it was built against; the SDK generates this section. */
struct homeos_version_entry {
    uint32_t crc;
    char name[60];
};

/* Module selftests, printed as KTAP when the module loads with selftest=1. */
struct homeos_test;
struct homeos_test_case {
    const char* name;
    void (*run)(struct homeos_test* test);
};
struct homeos_test_suite {
    const char* name;
    const struct homeos_test_case* cases;
    size_t case_count;
    int (*init)(void);
    void (*exit)(void);
};
HOMEOS_API void homeos_test_fail(struct homeos_test* test, const char* file, int line, const char* message);
HOMEOS_API void homeos_test_log(struct homeos_test* test, const char* message);

#define HOMEOS_TEST_SUITE(suite_name, ...)                                                                       \
    static const struct homeos_test_case suite_name##_cases[] = { __VA_ARGS__ };                                  \
    static const struct homeos_test_suite suite_name##_suite = { #suite_name, suite_name##_cases,                \
        sizeof(suite_name##_cases) / sizeof(suite_name##_cases[0]), 0, 0 };                                      \
    static const struct homeos_test_suite* const suite_name##_suite_ptr                                          \
        __attribute__((section(".ktest_suites"), used)) = &suite_name##_suite
#define HOMEOS_TEST_CASE(fn) { #fn, fn }
#define HOMEOS_EXPECT(test, condition)                                                     \
    do {                                                                                   \
        if (!(condition))                                                                  \
            homeos_test_fail(test, __FILE__, __LINE__, "expected " #condition);            \
    } while (0)

HOMEOS_EXTERN_C_END
#endif
