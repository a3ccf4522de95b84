#pragma once
// HPET main counter: the reference clock for calibrating the TSC and the LAPIC timer.
#include <ktl/ErrorOr.h>

struct HpetInfo;

namespace hpet {

ErrorOr<void> init(const HpetInfo&);
bool is_available();
u64 now_ns();
u64 period_fs();

} // namespace hpet
