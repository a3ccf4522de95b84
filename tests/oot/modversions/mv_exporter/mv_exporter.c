/* Exports a symbol whose CRC covers struct mv_point, for the modversions tests: an importer built
 * against another layout of mv_point is refused. */
#include <homeos/homeos.h>
#include "mv_exporter.h"

int32_t mv_scale(const struct mv_point* point, int32_t factor) { return (point->x + point->y) * factor; }
HOMEOS_EXPORT(mv_scale);

static int mv_exporter_init(void) { return 0; }
static void mv_exporter_exit(void) { }
module_init(mv_exporter_init);
module_exit(mv_exporter_exit);
MODULE_LICENSE("MIT");
MODULE_DESCRIPTION("exports mv_scale (modversions tests)");
MODULE_VERSION("1.0");
