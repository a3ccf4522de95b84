/* Imports mv_exporter's mv_scale: its __versions records the CRC of the declaration in the
 * mv_exporter.h it was compiled with. */
#include <homeos/homeos.h>
#include "../mv_exporter/mv_exporter.h"

static int mv_importer_init(void)
{
    struct mv_point point = { 20, 1 };
    pr_info("mv_scale(20 + 1, 2) = %d\n", (int)mv_scale(&point, 2));
    return 0;
}
static void mv_importer_exit(void) { }
module_init(mv_importer_init);
module_exit(mv_importer_exit);
MODULE_LICENSE("MIT");
MODULE_DESCRIPTION("imports mv_scale from mv_exporter (modversions tests)");
MODULE_DEPENDS("mv_exporter");
MODULE_VERSION("1.0");
