#pragma once
// Arch interface: the page-table format the memory manager builds the kernel's address space
// with (PageTable), and switching to it.
#include <arch/Arch.h>
#include <ktl/Types.h>

namespace arch {
// Whether the direct map may use 1 GiB leaf pages.
bool has_1g_pages();
// Makes `root` the active kernel page table, with global kernel pages where supported.
void activate_kernel_page_table(u64 root_physical);
} // namespace arch

#if defined(HOMEOS_ARCH_X86_64)
#    include <arch/x86_64/lib/PageTable.h>
#endif
