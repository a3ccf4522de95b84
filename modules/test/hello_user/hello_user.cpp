// A C++ module that depends on hello's export: proves module-to-module linking, use counts and
// C++ constructors/destructors in modules.
#include <homeos/homeos.h>

extern "C" int hello_add(int a, int b);

namespace {
struct Counter {
    Counter() { value = 42; }
    ~Counter() { pr_info("hello_user: destructor ran\n"); }
    int value;
};
Counter g_counter;

int hello_user_init()
{
    if (g_counter.value != 42)
        return -22;
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
