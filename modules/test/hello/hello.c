/* A small module that exercises the ABI: logging, kmalloc, parameters, an export, a timer,
 * constructors and module selftests. */
#include <homeos/homeos.h>

static int64_t count = 3;
static bool verbose = false;
static bool fail_init = false;
static bool leak_timer = false;
MODULE_PARAM_BOOL(leak_timer, "leave a periodic timer armed at exit (for the loader's cleanup test)");
static struct homeos_timer leaked;
static int leaked_ticks;
MODULE_PARAM_BOOL(fail_init, "make module_init fail with -EIO (for the loader's tests)");
static char greeting[32] = "hello";
MODULE_PARAM_INT(count, 0, 100, "how many allocations to make at init");
MODULE_PARAM_BOOL(verbose, "log every allocation");
MODULE_PARAM_STRING(greeting, "the word to log at init");

static void* blocks[100];
static int ticks;

int hello_add(int a, int b) { return a + b; }
HOMEOS_EXPORT(hello_add);

/* Faults on purpose (ud2), for the kernel's test that backtraces through module code are
 * symbolized with the module's own symbols. */
__attribute__((noinline)) void hello_trap(void) { __builtin_trap(); }
HOMEOS_EXPORT(hello_trap);

static void on_tick(struct homeos_timer* timer, void* context) { ++*(int*)context; }

/* A C constructor: gives hello an .init_array, which the loader must run before module_init.
 * volatile, or the compiler evaluates the constructor at build time and drops it. */
static volatile int constructed;
__attribute__((constructor)) static void hello_construct(void) { constructed = 1; }

static int hello_init(void)
{
    if (!constructed)
        return -22; /* -EINVAL: the loader skipped .init_array */
    if (fail_init)
        return -5; /* -EIO */
    for (int64_t i = 0; i < count; ++i) {
        blocks[i] = kmalloc(64 + 64 * (size_t)i);
        if (!blocks[i])
            return -12; /* -ENOMEM */
        if (verbose)
            pr_info("allocated block %d\n", (int)i);
    }
    struct homeos_timer timer;
    homeos_timer_init(&timer, on_tick, &ticks);
    homeos_timer_start(&timer, 1000000, 1000000);
    uint64_t deadline = homeos_monotonic_ns() + 2000000000ull;
    while (ticks < 2 && homeos_monotonic_ns() < deadline)
        homeos_sleep_ns(1000000);
    homeos_timer_cancel(&timer);
    pr_info("%s from a module: count=%d, timer ticked %d times\n", greeting, (int)count, ticks);
    return 0;
}

static void hello_exit(void)
{
    if (leak_timer) {
        homeos_timer_init(&leaked, on_tick, &leaked_ticks);
        homeos_timer_start(&leaked, 1000000, 1000000);
    }
    for (int64_t i = 0; i < count; ++i)
        kfree(blocks[i]);
    pr_info("goodbye\n");
}

module_init(hello_init);
module_exit(hello_exit);
MODULE_LICENSE("MIT");
MODULE_AUTHOR("Home OS");
MODULE_DESCRIPTION("A greeting module that exercises the module ABI");
MODULE_VERSION("1.0");

static void test_add(struct homeos_test* test) { HOMEOS_EXPECT(test, hello_add(2, 3) == 5); }
static void test_kmalloc_roundtrip(struct homeos_test* test)
{
    char* p = kmalloc(100);
    HOMEOS_EXPECT(test, p != 0);
    for (int i = 0; i < 100; ++i)
        p[i] = (char)i;
    HOMEOS_EXPECT(test, p[99] == 99);
    kfree(p);
}
static void test_params_applied(struct homeos_test* test) { HOMEOS_EXPECT(test, count >= 0 && count <= 100); }
HOMEOS_TEST_SUITE(hello_module, HOMEOS_TEST_CASE(test_add), HOMEOS_TEST_CASE(test_kmalloc_roundtrip), HOMEOS_TEST_CASE(test_params_applied));
