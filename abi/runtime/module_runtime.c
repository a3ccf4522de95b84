/*
 * Linked into every module by abi/module.mk: the few runtime hooks compilers expect.
 * C++ static objects register their destructors with atexit(); a module "exits" when it is
 * unloaded, so they run from the module's .fini_array, in reverse order, after module_exit.
 * It also makes every module import homeos_module_layout (below).
 */
#include <homeos/abi.h>
#include <homeos/module.h>

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

/* Imports homeos_module_layout, so the loader checks its CRC against the kernel's: the layouts of
 * the structs the kernel reads out of this module's sections (see homeos/module.h). */
__attribute__((used)) static void (*const homeos_layout_reference)(const struct homeos_module_param*, const struct homeos_export*,
    const struct homeos_version_entry*, const struct homeos_test_suite* const*, homeos_initcall, homeos_exitcall)
    = homeos_module_layout;
