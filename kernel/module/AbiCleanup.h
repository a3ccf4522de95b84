#pragma once
// Resources a module may leave behind when it goes away, found by address: timers and interrupt
// handlers that would call into freed module code. The loader sweeps them at unload (with a
// warning, since a correct module releases them in module_exit).
#include <ktl/Types.h>

struct homeos_pci_device;

namespace abi_cleanup {

usize cancel_timers_in(u64 start, u64 end);
// Interrupts whose handler lies in [start, end): MSI is switched off in the device and the
// vector freed.
usize free_vectors_in(u64 start, u64 end);

// For the selftests: the vector behind a device's MSI (homeos_pci_enable_msi), or -1.
int msi_vector_for_tests(const homeos_pci_device* device);

} // namespace abi_cleanup
