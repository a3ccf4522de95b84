/* mv_exporter's interface to other modules: what mv_importer is compiled against. */
#ifndef MV_EXPORTER_H
#define MV_EXPORTER_H
#include <homeos/abi.h>

struct mv_point {
    int32_t x;
    int32_t y;
};

/* Returns x + y of *point, times factor. */
int32_t mv_scale(const struct mv_point* point, int32_t factor);

#endif
