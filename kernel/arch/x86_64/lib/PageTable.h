#pragma once
// x86-64 4-level page-table builder.
//
// Interface:
//   auto table = TRY(PageTable::create(memory));                // allocates an empty PML4
//   TRY(table.map(0xffff800000200000, 0x200000, PageFlags::Writable | PageFlags::NoExecute, PageSize::Size2M));
//   TRY(table.map_range(virt, phys, length, flags, /* allow_large_pages */ true));
//   auto t = TRY(table.translate(virt));                          // t.phys, t.flags, t.size
//   TRY(table.protect(virt, PageFlags::None));                    // read-only, 4 KiB granularity
//   TRY(table.unmap_range(virt, length));
//   TRY(kernel.populate_upper_half_pdpts());                      // the kernel's table, at boot
//   kernel.set_upper_half_pdpts_pinned(true);                     // ... and on every object for it
//
// A virtual address is split into four 9-bit table indices and a page offset:
//
//   63      48 47    39 38    30 29    21 20    12 11         0
//  +----------+--------+--------+--------+--------+------------+
//  | sign ext |  PML4  |  PDPT  |   PD   |   PT   |   offset   |
//  +----------+--------+--------+--------+--------+------------+
//                  |        |        |        |
//   root -> [PML4] -+        |        |        |
//           entry -> [PDPT] -+        |        |
//                    entry -> [PD] ---+        |      PDPT entry with PS: 1 GiB page
//                             entry -> [PT] ---+      PD entry with PS:   2 MiB page
//                                      entry -> 4 KiB page + offset
//
// The builder is pure: it reaches tables only through PageTableMemory, never loads CR3 and
// takes no lock (the caller serializes access to one address space). Intermediate entries are
// always Present|Writable, plus User when any leaf below them is User, and never NoExecute or
// Global, so the leaf alone decides a page's permissions.
//
// Every operation checks its arguments before changing anything, allocates all the tables it
// needs before linking any of them, and on failure leaves the translation unchanged (splitting a
// large page into equivalent smaller pages is the only change an error may leave behind).
// PageTableMemory::invalidate(va) is called after every change to an existing entry, and before
// a table that the entry pointed to is freed.
//
// The kernel half is shared. Every address space copies the kernel's PML4 entries 256-511, so
// those entries, and the PDPTs they point to, must outlive every copy:
//
//   kernel PML4          process A PML4       process B PML4
//   +-----------+        +-----------+        +-----------+
//   |   0-255   |        | 0-255 own |        | 0-255 own |
//   +-----------+        +-----------+        +-----------+
//   |  256-511  |---+----|  256-511  |---+----|  256-511  |    copied when the space is created
//   +-----------+   |    +-----------+   |    +-----------+
//                   v                    v
//          256 kernel PDPTs (created at boot by populate_upper_half_pdpts(), pinned:
//          never unlinked or freed); the PDs and PTs below them come and go as usual
//
// NOTE: a User leaf in the upper half would set User on the kernel's PML4 entry only, never on
// the copies. User mappings belong in the lower half.
//
// NOTE: 1 GiB pages need CPUID.80000001H:EDX.Page1GB. The kernel must call
// set_largest_page_size(PageSize::Size2M) on CPUs without it (QEMU's default qemu64 model).
#include <ktl/ErrorOr.h>
#include <ktl/Types.h>

class PageTableMemory {
public:
    virtual ~PageTableMemory() = default;
    // A zeroed 4 KiB page for a table.
    virtual ErrorOr<PhysAddr> allocate_table() = 0;
    virtual void free_table(PhysAddr) = 0;
    // Pointer to the 512 entries of the table at this physical address.
    virtual u64* table(PhysAddr) = 0;
    // Called after every change to an existing translation: the kernel does invlpg.
    virtual void invalidate(VirtAddr) { }
};

// Permission and caching bits, at their hardware positions. Present is implied.
enum class PageFlags : u64 {
    None = 0,
    Writable = 1ull << 1,
    User = 1ull << 2,
    WriteThrough = 1ull << 3,
    CacheDisable = 1ull << 4,
    Global = 1ull << 8,
    NoExecute = 1ull << 63,
};
constexpr PageFlags operator|(PageFlags a, PageFlags b) { return PageFlags(u64(a) | u64(b)); }
constexpr PageFlags operator&(PageFlags a, PageFlags b) { return PageFlags(u64(a) & u64(b)); }
constexpr PageFlags operator~(PageFlags a) { return PageFlags(~u64(a)); }
constexpr bool has_flag(PageFlags flags, PageFlags flag) { return (u64(flags) & u64(flag)) == u64(flag); }

enum class PageSize : u8 {
    Size4K,
    Size2M,
    Size1G,
};
constexpr u64 page_size_bytes(PageSize size)
{
    return size == PageSize::Size1G ? 1 * GiB : size == PageSize::Size2M ? 2 * MiB : 4 * KiB;
}

struct Translation {
    PhysAddr phys { 0 }; // exact: the page's frame plus the offset of the address in the page
    PageFlags flags { PageFlags::None }; // the leaf's PageFlags bits
    PageSize size { PageSize::Size4K };
};

namespace PageTableEntry {
constexpr u64 Present = 1ull << 0;
constexpr u64 Writable = 1ull << 1;
constexpr u64 User = 1ull << 2;
constexpr u64 WriteThrough = 1ull << 3;
constexpr u64 CacheDisable = 1ull << 4;
constexpr u64 Accessed = 1ull << 5;
constexpr u64 Dirty = 1ull << 6;
constexpr u64 HugePage = 1ull << 7; // PS in a PDPT or PD entry; PAT in a PT entry
constexpr u64 Global = 1ull << 8;
constexpr u64 LargePat = 1ull << 12; // PAT in a PDPT or PD entry that has PS
constexpr u64 NoExecute = 1ull << 63;
constexpr u64 AddressMask = 0x000FFFFFFFFFF000ull;
constexpr u64 FlagMask = Writable | User | WriteThrough | CacheDisable | Global | NoExecute;
constexpr u64 MaxPhysicalAddress = 1ull << 52;
} // namespace PageTableEntry

class PageTable {
public:
    enum class DestroyScope {
        // Frees the tables reached from PML4 entries 0-255 and the PML4 itself. The upper half is
        // the kernel's, shared by every address space, and stays alive.
        UserHalf,
        // Frees every table, the upper half included: for a table nobody else shares.
        Everything,
    };

    static ErrorOr<PageTable> create(PageTableMemory& memory);
    // Adopts an existing hierarchy, for example the one the boot code built.
    PageTable(PageTableMemory& memory, PhysAddr root) : m_memory(&memory), m_root(root) { }

    PhysAddr root() const { return m_root; }

    // Caps the page size map_range() picks and map() accepts (1 GiB by default).
    void set_largest_page_size(PageSize size) { m_largest = size; }

    // With pinning on, a PDPT linked from PML4 entries 256-511 stays linked once it exists:
    // unmap() and unmap_range() still free the PDs and PTs they leave empty, but stop below the
    // PML4 in the upper half. The lower half is pruned completely either way. Off by default;
    // destroy() ignores it.
    void set_upper_half_pdpts_pinned(bool pinned) { m_upper_half_pdpts_pinned = pinned; }
    bool upper_half_pdpts_pinned() const { return m_upper_half_pdpts_pinned; }
    // Links an empty PDPT into every one of PML4 entries 256-511 that has none, so the kernel half
    // can be copied into other address spaces before anything is mapped there. Idempotent.
    // ENOMEM: a table allocation failed; whatever this call allocated is freed, nothing is linked.
    ErrorOr<void> populate_upper_half_pdpts();

    // EINVAL: non-canonical or misaligned address, physical address beyond 52 bits, unknown
    // flags, or a page size above the cap. EEXIST: any part of the page is already mapped.
    // ENOMEM: a table allocation failed; nothing was linked.
    ErrorOr<void> map(VirtAddr virt, PhysAddr phys, PageFlags flags, PageSize size = PageSize::Size4K);
    // Maps [virt, virt + length) to [phys, phys + length), choosing 2 MiB and 1 GiB pages where both
    // addresses are aligned and large pages are allowed. All three must be 4 KiB aligned. On
    // failure, everything this call mapped is unmapped again.
    ErrorOr<void> map_range(VirtAddr virt, PhysAddr phys, u64 length, PageFlags flags, bool allow_large_pages);

    // Unmaps the 4 KiB page at virt, splitting a large page around it, and returns the physical
    // address it mapped. ENOENT if nothing is mapped there. Tables left empty are freed, except
    // pinned PDPTs (see set_upper_half_pdpts_pinned()).
    ErrorOr<PhysAddr> unmap(VirtAddr virt);
    // Unmaps a 4 KiB-aligned range that must be entirely mapped (ENOENT otherwise, with no change).
    // Large pages wholly inside the range are removed whole; ones straddling an end are split.
    ErrorOr<void> unmap_range(VirtAddr virt, u64 length);

    // Replaces the flags of the 4 KiB page at virt, splitting a large page unless its flags are
    // already the requested ones. ENOENT if nothing is mapped there.
    ErrorOr<void> protect(VirtAddr virt, PageFlags flags);

    ErrorOr<Translation> translate(VirtAddr virt) const;

    // Frees the tables (never the pages they map). The object must not be used afterwards.
    void destroy(DestroyScope scope = DestroyScope::UserHalf);

    static bool is_canonical(VirtAddr virt);

private:
    // Where a walk for one address stopped: tables[level] is the table at that level (4 = PML4),
    // and `level` is where the walk ended, at a leaf when `present`, else at an empty entry.
    struct Walk {
        PhysAddr tables[5] {};
        int level { 4 };
        bool present { false };
    };

    Walk walk(VirtAddr virt) const;
    u64& entry_at(PhysAddr table, VirtAddr virt, int level) const;
    ErrorOr<void> allocate_tables(PhysAddr* tables, int count);
    // Splits the large page covering virt (if any) down to 4 KiB pages around virt.
    ErrorOr<void> split_to_4k(VirtAddr virt);
    // Sets User on the intermediate entries above `leaf_level` on virt's path. Returns whether any
    // entry changed.
    bool make_path_user(VirtAddr virt, int leaf_level);
    // Clears the leaf found by `walk` and invalidates virt. With `prune`, first unlinks the tables
    // this leaves empty, and frees them after the invalidation.
    void clear_leaf(const Walk& walk, VirtAddr virt, bool prune);
    // Whether the table at `level` on virt's path must stay linked even when it is empty.
    bool is_pinned(VirtAddr virt, int level) const;
    void free_subtree(PhysAddr table, int level);
    bool table_is_empty(PhysAddr table) const;

    PageTableMemory* m_memory;
    PhysAddr m_root;
    PageSize m_largest { PageSize::Size1G };
    bool m_upper_half_pdpts_pinned { false };
};
