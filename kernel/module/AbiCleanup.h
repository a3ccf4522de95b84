#pragma once
// Resources a module may leave behind when it goes away, found by address: timers and interrupt
// handlers that would call into freed module code. The loader sweeps them at unload (with a
// warning, since a correct module releases them in module_exit).
#include <ktl/Types.h>

namespace abi_cleanup {

usize cancel_timers_in(u64 start, u64 end);
usize free_vectors_in(u64 start, u64 end);

} // namespace abi_cleanup
