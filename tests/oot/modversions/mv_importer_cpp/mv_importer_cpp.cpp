// mv_importer in C++: the C header of mv_exporter inside extern "C", and mv_point named the C++
// way. Its __versions must record the same CRC for mv_scale as the C importer does.
#include <homeos/homeos.h>
extern "C" {
#include "../mv_exporter/mv_exporter.h"
}

namespace {
int mv_importer_cpp_init()
{
    mv_point point { 20, 1 };
    pr_info("mv_scale(20 + 1, 2) = %d\n", (int)mv_scale(&point, 2));
    return 0;
}
void mv_importer_cpp_exit() { }
}

module_init(mv_importer_cpp_init);
module_exit(mv_importer_cpp_exit);
MODULE_LICENSE("MIT");
MODULE_DESCRIPTION("imports mv_scale from C++ (modversions tests)");
MODULE_DEPENDS("mv_exporter");
MODULE_VERSION("1.0");
