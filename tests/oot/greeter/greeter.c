/* An out-of-tree module: built outside modules/ with nothing but abi/ and abi/module.mk, packaged
 * as greeter.ko.zst plus a manifest, and installed into an initramfs with mkinitramfs --package. */
#include <homeos/homeos.h>

static char who[24] = "world";
MODULE_PARAM_STRING(who, "whom to greet");

static int greeter_init(void)
{
    char line[64];
    homeos_snprintf(line, sizeof(line), "greetings, %s, from out of tree", who);
    pr_info("%s (ABI %s)\n", line, HOMEOS_ABI_VERSION_STRING);
    return 0;
}

static void greeter_exit(void) { pr_info("greeter leaving\n"); }

module_init(greeter_init);
module_exit(greeter_exit);
MODULE_LICENSE("MIT");
MODULE_AUTHOR("A third party");
MODULE_DESCRIPTION("An out-of-tree module built against abi/ alone");
MODULE_VERSION("2.1");
