/*
 * Linked into every module by abi/module.mk: the few runtime hooks compilers expect.
 * C++ static objects register their destructors with atexit(); a module "exits" when it is
 * unloaded, so they run from the module's .fini_array, in reverse order, after module_exit.
 */
#include <homeos/abi.h>

#define HOMEOS_MODULE_MAX_ATEXIT 64

static void (*homeos_atexit_functions[HOMEOS_MODULE_MAX_ATEXIT])(void);
static int homeos_atexit_count;

int atexit(void (*function)(void))
{
    if (homeos_atexit_count == HOMEOS_MODULE_MAX_ATEXIT)
        return -1;
    homeos_atexit_functions[homeos_atexit_count++] = function;
    return 0;
}

__attribute__((destructor)) static void homeos_run_atexit(void)
{
    while (homeos_atexit_count > 0)
        homeos_atexit_functions[--homeos_atexit_count]();
}
