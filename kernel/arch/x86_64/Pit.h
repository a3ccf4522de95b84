#pragma once
// The 8254 PIT, used only as a calibration reference when there is no HPET. Channel 2 counts
// down with its gate driven by port 0x61, so no interrupt is needed.
#include <ktl/Types.h>

namespace pit {
// A monotonic nanosecond reading built from channel 2 (valid while called at least every ~50 ms).
u64 now_ns();
void start_reference();
}
