#include <arch/x86_64/lib/PageTable.h>

using namespace PageTableEntry;

// NOTE: errors are spelled Error(...) throughout this file. That dates from when PhysAddr was a
// plain u64 and a bare `return ENOENT;` from ErrorOr<PhysAddr> would have become a value; with
// PhysAddr its own type that can no longer happen, but one spelling reads better than two.

namespace {

constexpr int EntriesPerTable = 512;
constexpr int FirstUpperHalfEntry = EntriesPerTable / 2;

constexpr int level_shift(int level) { return 12 + 9 * (level - 1); }
constexpr u64 level_bytes(int level) { return 1ull << level_shift(level); }
constexpr usize index_of(VirtAddr virt, int level) { return (virt.value() >> level_shift(level)) & 511; }

constexpr int leaf_level_of(PageSize size)
{
    return size == PageSize::Size1G ? 3 : size == PageSize::Size2M ? 2 : 1;
}

constexpr PageSize size_of_level(int level)
{
    return level == 3 ? PageSize::Size1G : level == 2 ? PageSize::Size2M : PageSize::Size4K;
}

constexpr u64 intermediate_entry(PhysAddr table, bool user)
{
    return table.value() | Present | Writable | (user ? User : 0);
}

// The table an intermediate entry points to.
constexpr PhysAddr table_of(u64 entry) { return PhysAddr(entry & AddressMask); }

// The frame a leaf maps; a large leaf's low address bits hold PAT and must not leak in.
constexpr PhysAddr leaf_frame(u64 entry, int level) { return PhysAddr(entry & AddressMask & ~(level_bytes(level) - 1)); }

// Entries are written with release stores so the compiler cannot reorder filling a new table
// after the store that makes it reachable; x86 keeps stores in order for the page walker.
void set_entry(u64& entry, u64 value) { __atomic_store_n(&entry, value, __ATOMIC_RELEASE); }

} // namespace

bool PageTable::is_canonical(VirtAddr virt)
{
    return u64(i64(virt.value() << 16) >> 16) == virt.value();
}

ErrorOr<PageTable> PageTable::create(PageTableMemory& memory)
{
    PhysAddr root = TRY(memory.allocate_table());
    return PageTable(memory, root);
}

u64& PageTable::entry_at(PhysAddr table, VirtAddr virt, int level) const
{
    return m_memory->table(table)[index_of(virt, level)];
}

PageTable::Walk PageTable::walk(VirtAddr virt) const
{
    Walk result;
    result.tables[4] = m_root;
    for (int level = 4;; --level) {
        u64 entry = entry_at(result.tables[level], virt, level);
        result.level = level;
        if (!(entry & Present))
            return result;
        // PS is reserved in a PML4 entry; below it, it marks a 1 GiB or 2 MiB leaf.
        if (level == 1 || (level <= 3 && (entry & HugePage))) {
            result.present = true;
            return result;
        }
        result.tables[level - 1] = table_of(entry);
    }
}

bool PageTable::table_is_empty(PhysAddr table) const
{
    u64* entries = m_memory->table(table);
    for (int i = 0; i < EntriesPerTable; ++i)
        if (entries[i])
            return false;
    return true;
}

ErrorOr<void> PageTable::allocate_tables(PhysAddr* tables, int count)
{
    for (int i = 0; i < count; ++i) {
        auto table = m_memory->allocate_table();
        if (table.is_error()) {
            while (i > 0)
                m_memory->free_table(tables[--i]);
            return table.error();
        }
        tables[i] = table.value();
    }
    return {};
}

bool PageTable::make_path_user(VirtAddr virt, int leaf_level)
{
    bool changed = false;
    PhysAddr table = m_root;
    for (int level = 4; level > leaf_level; --level) {
        u64& entry = entry_at(table, virt, level);
        if (!(entry & Present) || (level <= 3 && (entry & HugePage)))
            break;
        if (!(entry & User)) {
            set_entry(entry, entry | User);
            changed = true;
        }
        table = table_of(entry);
    }
    return changed;
}

ErrorOr<void> PageTable::map(VirtAddr virt, PhysAddr phys, PageFlags flags, PageSize size)
{
    u64 bytes = page_size_bytes(size);
    if (!is_canonical(virt) || (u64(flags) & ~FlagMask) || size > m_largest)
        return Error(EINVAL);
    if (!is_aligned(virt, bytes) || !is_aligned(phys, bytes) || phys.value() >= MaxPhysicalAddress)
        return Error(EINVAL);

    int leaf = leaf_level_of(size);
    bool user = has_flag(flags, PageFlags::User);

    // Find the deepest existing table on the path, refusing to map over anything present.
    PhysAddr table = m_root;
    int level = 4;
    for (; level > leaf; --level) {
        u64 entry = entry_at(table, virt, level);
        if (!(entry & Present))
            break;
        if (level <= 3 && (entry & HugePage))
            return Error(EEXIST);
        table = table_of(entry);
    }
    if (level == leaf && (entry_at(table, virt, leaf) & Present))
        return Error(EEXIST);

    // fresh[i] becomes the table at level (level - 1 - i). All are allocated before any is linked.
    int missing = level - leaf;
    PhysAddr fresh[3];
    TRY(allocate_tables(fresh, missing));

    bool path_changed = user && make_path_user(virt, leaf);
    u64 leaf_entry = phys.value() | u64(flags) | Present | (leaf > 1 ? HugePage : 0);
    if (missing == 0) {
        set_entry(entry_at(table, virt, leaf), leaf_entry);
    } else {
        // Fill bottom-up; the final store into the existing table publishes the whole chain.
        set_entry(entry_at(fresh[missing - 1], virt, leaf), leaf_entry);
        for (int i = missing - 1; i >= 1; --i)
            set_entry(entry_at(fresh[i - 1], virt, level - i), intermediate_entry(fresh[i], user));
        set_entry(entry_at(table, virt, level), intermediate_entry(fresh[0], user));
    }
    // A new translation needs no flush, but an intermediate that gained User is a change.
    if (path_changed)
        m_memory->invalidate(virt);
    return {};
}

ErrorOr<void> PageTable::map_range(VirtAddr virt, PhysAddr phys, u64 length, PageFlags flags, bool allow_large_pages)
{
    if (length == 0)
        return {};
    if (!is_aligned(virt, PAGE_SIZE) || !is_aligned(phys, PAGE_SIZE) || !is_aligned(length, PAGE_SIZE))
        return Error(EINVAL);
    VirtAddr virt_last;
    PhysAddr phys_last;
    if (add_overflows(virt, length - 1, &virt_last) || add_overflows(phys, length - 1, &phys_last))
        return Error(EINVAL);
    // Both ends canonical and in the same half, so the range does not cross the hole.
    if (!is_canonical(virt) || !is_canonical(virt_last) || (virt.value() >> 47) != (virt_last.value() >> 47))
        return Error(EINVAL);
    if (phys_last.value() >= MaxPhysicalAddress || (u64(flags) & ~FlagMask))
        return Error(EINVAL);

    u64 done = 0;
    while (done < length) {
        VirtAddr va = virt + done;
        PhysAddr pa = phys + done;
        u64 remaining = length - done;
        PageSize size = PageSize::Size4K;
        if (allow_large_pages) {
            if (m_largest >= PageSize::Size1G && is_aligned(va, 1 * GiB) && is_aligned(pa, 1 * GiB) && remaining >= 1 * GiB)
                size = PageSize::Size1G;
            else if (m_largest >= PageSize::Size2M && is_aligned(va, 2 * MiB) && is_aligned(pa, 2 * MiB) && remaining >= 2 * MiB)
                size = PageSize::Size2M;
        }
        auto result = map(va, pa, flags, size);
        if (result.is_error()) {
            // Everything in [virt, virt + done) is whole leaves this call created: removing them
            // needs no split, hence no allocation, and cannot fail.
            if (done)
                MUST(unmap_range(virt, done));
            return result;
        }
        done += page_size_bytes(size);
    }
    return {};
}

ErrorOr<void> PageTable::split_to_4k(VirtAddr virt)
{
    Walk path = walk(virt);
    if (!path.present)
        return Error(ENOENT);
    if (path.level == 1)
        return {};

    int needed = path.level - 1; // a 1 GiB page needs a PD and a PT, a 2 MiB page a PT
    PhysAddr fresh[2];
    TRY(allocate_tables(fresh, needed));

    u64& large = entry_at(path.tables[path.level], virt, path.level);
    PhysAddr frame = leaf_frame(large, path.level);
    bool user = large & User;
    // Attributes shared by all the smaller pages: everything but the address and the PAT bit,
    // whose position differs between large and 4 KiB entries.
    u64 attributes = large & ~AddressMask;
    bool pat = large & LargePat;

    auto fill_page_table = [&](PhysAddr table, PhysAddr base) {
        u64* entries = m_memory->table(table);
        u64 small = (attributes & ~HugePage) | (pat ? HugePage : 0); // bit 7 is PAT in a PTE
        for (int i = 0; i < EntriesPerTable; ++i)
            set_entry(entries[i], (base + u64(i) * 4 * KiB).value() | small);
    };

    if (path.level == 3) {
        u64* directory = m_memory->table(fresh[0]);
        for (int i = 0; i < EntriesPerTable; ++i)
            set_entry(directory[i], (frame + u64(i) * 2 * MiB).value() | attributes | (pat ? LargePat : 0));
        usize index = index_of(virt, 2);
        fill_page_table(fresh[1], frame + index * 2 * MiB);
        set_entry(directory[index], intermediate_entry(fresh[1], user));
        set_entry(large, intermediate_entry(fresh[0], user));
    } else {
        fill_page_table(fresh[0], frame);
        set_entry(large, intermediate_entry(fresh[0], user));
    }
    // The translation is unchanged, but the TLB may hold the large page: the SDM wants it gone
    // before the smaller entries are changed.
    m_memory->invalidate(virt);
    return {};
}

bool PageTable::is_pinned(VirtAddr virt, int level) const
{
    // Bit 63 of a canonical address selects the upper half, PML4 entries 256-511.
    return m_upper_half_pdpts_pinned && level == 3 && (virt.value() >> 63);
}

ErrorOr<void> PageTable::populate_upper_half_pdpts()
{
    u64* root = m_memory->table(m_root);
    int missing = 0;
    for (int i = FirstUpperHalfEntry; i < EntriesPerTable; ++i)
        missing += !(root[i] & Present);
    // All of them before linking any: an ENOMEM then leaves the PML4 exactly as it was.
    // NOTE: 2 KiB of stack, once per kernel table at boot.
    PhysAddr fresh[EntriesPerTable - FirstUpperHalfEntry];
    TRY(allocate_tables(fresh, missing));
    int next = 0;
    for (int i = FirstUpperHalfEntry; i < EntriesPerTable; ++i) {
        // A new entry over a non-present one, so there is nothing to invalidate.
        if (!(root[i] & Present))
            set_entry(root[i], intermediate_entry(fresh[next++], false));
    }
    return {};
}

void PageTable::clear_leaf(const Walk& path, VirtAddr virt, bool prune)
{
    set_entry(entry_at(path.tables[path.level], virt, path.level), 0);
    PhysAddr unlinked[3];
    int count = 0;
    for (int level = path.level; prune && level < 4; ++level) {
        if (is_pinned(virt, level) || !table_is_empty(path.tables[level]))
            break;
        set_entry(entry_at(path.tables[level + 1], virt, level + 1), 0);
        unlinked[count++] = path.tables[level];
    }
    // INVLPG also flushes every paging-structure cache entry (whatever its address, SDM 4.10.4.1),
    // so one invalidation makes all the unlinked tables safe to free.
    m_memory->invalidate(virt);
    for (int i = 0; i < count; ++i)
        m_memory->free_table(unlinked[i]);
}

ErrorOr<void> PageTable::unmap_range(VirtAddr virt, u64 length)
{
    if (length == 0)
        return {};
    if (!is_aligned(virt, PAGE_SIZE) || !is_aligned(length, PAGE_SIZE))
        return Error(EINVAL);
    VirtAddr last;
    if (add_overflows(virt, length - 1, &last) || !is_canonical(virt) || !is_canonical(last)
        || (virt.value() >> 47) != (last.value() >> 47))
        return Error(EINVAL);

    // 1. The whole range must be mapped; check before changing anything.
    for (u64 done = 0; done < length;) {
        VirtAddr va = virt + done;
        Walk path = walk(va);
        if (!path.present)
            return Error(ENOENT);
        u64 bytes = level_bytes(path.level);
        done += bytes - (va - align_down(va, bytes));
    }

    // 2. Split large pages that straddle either end. Splitting preserves the translation, so a
    //    failure here (ENOMEM) leaves nothing unmapped.
    auto split_if_straddling = [&](VirtAddr va) -> ErrorOr<void> {
        Walk path = walk(va);
        VERIFY(path.present);
        if (path.level == 1)
            return {};
        u64 bytes = level_bytes(path.level);
        VirtAddr leaf_first = align_down(va, bytes);
        VirtAddr leaf_last = leaf_first + (bytes - 1);
        if (leaf_first < virt || leaf_last > last)
            TRY(split_to_4k(va));
        return {};
    };
    TRY(split_if_straddling(virt));
    TRY(split_if_straddling(align_down(last, PAGE_SIZE)));

    // 3. Every leaf now lies wholly inside the range; clearing needs no allocation.
    for (u64 done = 0; done < length;) {
        VirtAddr va = virt + done;
        Walk path = walk(va);
        VERIFY(path.present);
        u64 bytes = level_bytes(path.level);
        VERIFY(is_aligned(va, bytes) && length - done >= bytes);
        done += bytes;
        // Scanning a table for emptiness costs 512 reads: do it once, when the walk leaves the
        // leaf's table (its next index wraps to 0) or the range ends.
        bool leaving_table = done == length || index_of(va + bytes, path.level) == 0;
        clear_leaf(path, va, leaving_table);
    }
    return {};
}

ErrorOr<PhysAddr> PageTable::unmap(VirtAddr virt)
{
    if (!is_canonical(virt) || !is_aligned(virt, PAGE_SIZE))
        return Error(EINVAL);
    auto translation = TRY(translate(virt));
    TRY(unmap_range(virt, PAGE_SIZE));
    return translation.phys;
}

ErrorOr<void> PageTable::protect(VirtAddr virt, PageFlags flags)
{
    if (!is_canonical(virt) || !is_aligned(virt, PAGE_SIZE) || (u64(flags) & ~FlagMask))
        return Error(EINVAL);
    Walk path = walk(virt);
    if (!path.present)
        return Error(ENOENT);
    if (path.level > 1) {
        if ((entry_at(path.tables[path.level], virt, path.level) & FlagMask) == u64(flags))
            return {};
        TRY(split_to_4k(virt));
        path = walk(virt);
        VERIFY(path.present && path.level == 1);
    }

    bool changed = has_flag(flags, PageFlags::User) && make_path_user(virt, 1);
    u64& entry = entry_at(path.tables[1], virt, 1);
    u64 updated = (entry & ~FlagMask) | u64(flags);
    if (updated != entry) {
        set_entry(entry, updated);
        changed = true;
    }
    if (changed)
        m_memory->invalidate(virt);
    return {};
}

ErrorOr<Translation> PageTable::translate(VirtAddr virt) const
{
    if (!is_canonical(virt))
        return Error(EINVAL);
    Walk path = walk(virt);
    if (!path.present)
        return Error(ENOENT);
    u64 entry = entry_at(path.tables[path.level], virt, path.level);
    Translation translation;
    translation.phys = leaf_frame(entry, path.level) + (virt - align_down(virt, level_bytes(path.level)));
    translation.flags = PageFlags(entry & FlagMask);
    translation.size = size_of_level(path.level);
    return translation;
}

void PageTable::free_subtree(PhysAddr table, int level)
{
    if (level > 1) {
        u64* entries = m_memory->table(table);
        for (int i = 0; i < EntriesPerTable; ++i) {
            u64 entry = entries[i];
            if ((entry & Present) && !(entry & HugePage))
                free_subtree(table_of(entry), level - 1);
        }
    }
    m_memory->free_table(table);
}

void PageTable::destroy(DestroyScope scope)
{
    // NOTE: no invalidation: an address space being destroyed must no longer be loaded anywhere.
    VERIFY(!m_root.is_null());
    u64* root = m_memory->table(m_root);
    // Pinned PDPTs are freed too under Everything: pinning only guards against unmapping.
    int limit = scope == DestroyScope::UserHalf ? FirstUpperHalfEntry : EntriesPerTable;
    for (int i = 0; i < limit; ++i) {
        if (root[i] & Present)
            free_subtree(table_of(root[i]), 3);
    }
    m_memory->free_table(m_root);
    m_root = PhysAddr();
}
