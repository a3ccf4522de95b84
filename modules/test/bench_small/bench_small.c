/* The smallest useful module, for measuring the loader's fixed cost (make bench). */
#include <homeos/homeos.h>

static int calls;
static int bench_small_init(void) { return calls++ < 0; }
module_init(bench_small_init);
MODULE_LICENSE("MIT");
MODULE_DESCRIPTION("Loader benchmark: a minimal module");
