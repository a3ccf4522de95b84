// A C++ module that depends on hello's export: proves module-to-module linking, use counts and
// C++ constructors/destructors in modules.
#include <homeos/homeos.h>

extern "C" int hello_add(int a, int b);

// For the loader's tests: make module_init fail after the constructors ran, and tag the
// destructors' log lines so a test can tell this load's from an earlier one's.
static bool fail_init = false;
MODULE_PARAM_BOOL(fail_init, "make module_init fail with -EIO after the constructors ran");
static char tag[32] = "";
MODULE_PARAM_STRING(tag, "a word the destructors add to their log lines");

namespace {
// Its destructor is registered with atexit() (-fno-use-cxa-atexit) and runs through the SDK
// runtime's .fini_array entry.
struct Counter {
    Counter() { value = 42; }
    ~Counter() { pr_info("hello_user: destructor ran%s%s\n", tag[0] ? " tag=" : "", tag); }
    int value;
};
Counter g_counter;

// A plain .fini_array entry, beside the atexit() path.
__attribute__((destructor)) void hello_user_fini() { pr_info("hello_user: fini_array ran%s%s\n", tag[0] ? " tag=" : "", tag); }

int hello_user_init()
{
    if (g_counter.value != 42)
        return -22;
    if (fail_init)
        return -5; // -EIO
    pr_info("hello_user: hello_add(40, 2) = %d, constructor value %d\n", hello_add(40, 2), g_counter.value);
    return 0;
}
void hello_user_exit() { pr_info("hello_user: exit\n"); }
}

module_init(hello_user_init);
module_exit(hello_user_exit);
MODULE_LICENSE("MIT");
MODULE_DESCRIPTION("Uses hello's export");
MODULE_DEPENDS("hello");
MODULE_VERSION("1.0");
