#pragma once
// Physical and kernel virtual memory.
//
//   0xffff800000000000  direct map of all physical RAM (and MMIO, mapped uncached on demand)
//   0xffffffff80000000  kernel image (text RX, rodata R, data/bss RW; stack guard pages unmapped)
//
// Boot: an early bump allocator (in the first GiB, reached through the boot page tables' alias of
// it) supplies the new page tables and the page-frame array; then CR3 switches to the new tables,
// the bump allocator is frozen, and everything else in the memory map goes to the buddy allocator.
//
// The kernel half, PML4 entries 256-511, is shared by every address space: its 256 PDPTs are
// created at boot and pinned, so they are never freed and each entry never changes.
#include <ktl/ErrorOr.h>
#include <lib/mm/BuddyAllocator.h>
#include <arch/Mmu.h>

struct BootInfo;

namespace mm {

constexpr u64 KERNEL_VMA = 0xffffffff80000000ull;
constexpr u64 DIRECT_MAP_BASE = 0xffff800000000000ull;
// The boot page tables alias only the first GiB at KERNEL_VMA.
constexpr u64 EARLY_ALIAS_LIMIT = 1 * GiB;

// The direct map's view of a physical address: the one place the two spaces meet.
inline VirtAddr direct_map(PhysAddr phys) { return VirtAddr(phys.value() + DIRECT_MAP_BASE); }
inline void* phys_to_virt(PhysAddr phys) { return direct_map(phys).as_ptr(); }
PhysAddr virt_to_phys(const void*);
// Before mm::init() switches page tables, only the boot alias of the first GiB is mapped.
void* early_phys_to_virt(PhysAddr phys);

// Reserved physical ranges the caller knows about (boot modules, the multiboot info).
void init(const BootInfo&, PhysAddr boot_info_start, PhysAddr boot_info_end);
bool is_initialized();

// Physical pages.
ErrorOr<PhysAddr> allocate_pages(unsigned order);
void free_pages(PhysAddr, unsigned order);
BuddyStats page_stats();
BuddyAllocator& buddy_for_tests();

// Kernel mappings. Each change is followed by invlpg of the address.
PageTable& kernel_page_table();
ErrorOr<void> map(VirtAddr, PhysAddr, PageFlags);
ErrorOr<PhysAddr> unmap(VirtAddr);
ErrorOr<void> protect(VirtAddr, PageFlags);
ErrorOr<Translation> translate(VirtAddr);
// Maps device memory uncached into the direct-map range and returns its virtual address.
// All or nothing: a failure leaves the page tables as they were. Each call is counted against
// its page range; unmap_device() with the same address and size gives it back.
ErrorOr<void*> map_mmio(PhysAddr, u64 size);
// Maps the framebuffer write-through and returns its address.
ErrorOr<void*> map_framebuffer(PhysAddr, u64 size);
// Undoes one map_mmio()/map_framebuffer() of exactly (address, size): the pages go when no other
// device mapping covers them. EINVAL for a range that was never mapped so.
ErrorOr<void> unmap_device(const void* address, u64 size);
// Drops every device mapping wholly inside [phys, phys + size), whoever made it, however often:
// for a device that is being released (its BARs). Returns how many were dropped.
usize release_device_range(PhysAddr phys, u64 size);
u32 device_mapping_refs_for_tests(PhysAddr phys, u64 size);
// The nth page-table allocation from now fails with ENOMEM (0: none).
void fail_table_allocation_for_tests(u32 nth);

struct Layout {
    PhysAddr kernel_phys_start, kernel_phys_end;
    PhysAddr bump_start, bump_end, bump_used_end;
    u64 usable_bytes;
    u64 direct_mapped_bytes;
    u64 page_tables_at_boot;
};
const Layout& layout();

} // namespace mm
