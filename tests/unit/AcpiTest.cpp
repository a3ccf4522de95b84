// The library header comes first: ktl/Errno.h defines errno names that <cerrno> would turn into macros.
#include <lib/acpi/Acpi.h>

#include <gtest/gtest.h>
#include <support/Addresses.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

using ByteVec = std::vector<u8>;

void put8(ByteVec& b, u8 v) { b.push_back(v); }
void put16(ByteVec& b, u16 v) { for (int i = 0; i < 2; ++i) b.push_back(u8(v >> (8 * i))); }
void put32(ByteVec& b, u32 v) { for (int i = 0; i < 4; ++i) b.push_back(u8(v >> (8 * i))); }
void put64(ByteVec& b, u64 v) { for (int i = 0; i < 8; ++i) b.push_back(u8(v >> (8 * i))); }
// Table entries that hold addresses: the bytes are the integer.
void put32(ByteVec& b, PhysAddr v) { put32(b, u32(v.value())); }
void put64(ByteVec& b, PhysAddr v) { put64(b, v.value()); }

void fix_checksum(ByteVec& table, usize checksum_offset, usize length)
{
    table[checksum_offset] = 0;
    u8 sum = 0;
    for (usize i = 0; i < length; ++i)
        sum = u8(sum + table[i]);
    table[checksum_offset] = u8(-sum);
}

// A system description table: header with the given signature, then body, checksummed.
ByteVec make_table(const char* signature, const ByteVec& body)
{
    ByteVec t;
    t.insert(t.end(), signature, signature + 4);
    put32(t, u32(36 + body.size()));
    put8(t, 1);        // revision
    put8(t, 0);        // checksum
    for (char c : std::string("HOMEOS")) t.push_back(u8(c));
    for (char c : std::string("TESTTABL")) t.push_back(u8(c));
    put32(t, 1);
    put32(t, 0x4c4c5648);
    put32(t, 1);
    t.insert(t.end(), body.begin(), body.end());
    fix_checksum(t, 9, t.size());
    return t;
}

ByteVec make_rsdp(u8 revision, u32 rsdt, u64 xsdt)
{
    ByteVec r;
    for (char c : std::string("RSD PTR ")) r.push_back(u8(c));
    put8(r, 0);
    for (char c : std::string("HOMEOS")) r.push_back(u8(c));
    put8(r, revision);
    put32(r, rsdt);
    if (revision >= 2) {
        put32(r, 36);
        put64(r, xsdt);
        put8(r, 0);
        r.insert(r.end(), 3, 0);
    }
    // The first checksum covers bytes 0-19, which the extended one covers too: compute it first.
    fix_checksum(r, 8, 20);
    if (revision >= 2)
        fix_checksum(r, 32, 36);
    return r;
}

// Physical memory made of separate regions; a read must lie inside one region.
class FakeMemory final : public AcpiMemory {
public:
    void place(PhysAddr address, ByteVec bytes) { m_regions[address] = std::move(bytes); }
    ByteVec& at(PhysAddr address) { return m_regions.at(address); }
    ErrorOr<ReadonlyBytes> read(PhysAddr address, usize length) override
    {
        ++reads;
        auto it = m_regions.upper_bound(address);
        if (it == m_regions.begin())
            return Error(EFAULT);
        --it;
        u64 offset = address - it->first;
        if (offset > it->second.size() || length > it->second.size() - offset)
            return Error(EFAULT);
        return ReadonlyBytes(it->second.data() + offset, length);
    }
    int reads { 0 };

private:
    std::map<PhysAddr, ByteVec> m_regions;
};

ByteVec madt_body(u32 lapic, u32 flags, const ByteVec& entries)
{
    ByteVec body;
    put32(body, lapic);
    put32(body, flags);
    body.insert(body.end(), entries.begin(), entries.end());
    return body;
}

ByteVec lapic_entry(u8 acpi_id, u8 apic_id, u32 flags) { ByteVec e { 0, 8, acpi_id, apic_id }; put32(e, flags); return e; }
ByteVec ioapic_entry(u8 id, u32 address, u32 gsi_base) { ByteVec e { 1, 12, id, 0 }; put32(e, address); put32(e, gsi_base); return e; }
ByteVec iso_entry(u8 irq, u32 gsi, u16 flags) { ByteVec e { 2, 10, 0, irq }; put32(e, gsi); put16(e, flags); return e; }
ByteVec nmi_entry(u8 acpi_id, u16 flags, u8 lint) { ByteVec e { 4, 6, acpi_id }; put16(e, flags); put8(e, lint); return e; }
ByteVec lapic_override_entry(u64 address) { ByteVec e { 5, 12, 0, 0 }; put64(e, address); return e; }
ByteVec x2apic_entry(u32 apic_id, u32 flags, u32 uid) { ByteVec e { 9, 16, 0, 0 }; put32(e, apic_id); put32(e, flags); put32(e, uid); return e; }

ByteVec cat(std::initializer_list<ByteVec> parts)
{
    ByteVec out;
    for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

ByteVec qemu_madt()
{
    return make_table("APIC", madt_body(0xfee00000, 1, cat({ lapic_entry(0, 0, 1), lapic_entry(1, 1, 1), ioapic_entry(0, 0xfec00000, 0), iso_entry(0, 2, 0), iso_entry(9, 9, 0xd), nmi_entry(0xff, 0, 1) })));
}

ByteVec hpet_body(u64 base)
{
    ByteVec b;
    put32(b, 0x8086a201);
    put8(b, 0); put8(b, 64); put8(b, 0); put8(b, 0);
    put64(b, base);
    put8(b, 0);     // hpet number
    put16(b, 0x80); // min tick
    put8(b, 0);
    return b;
}

ByteVec mcfg_body(std::initializer_list<McfgEntry> entries)
{
    ByteVec b(8, 0);
    for (auto& e : entries) {
        put64(b, e.base_address);
        put16(b, e.segment);
        put8(b, e.bus_start);
        put8(b, e.bus_end);
        put32(b, 0);
    }
    return b;
}

ReadonlyBytes view(const ByteVec& b) { return ReadonlyBytes(b.data(), b.size()); }

// A machine with RSDP -> XSDT -> {APIC, HPET, MCFG}.
struct Machine {
    FakeMemory memory;
    ByteVec rsdp;
    static constexpr PhysAddr xsdt_at { 0x7fe0000 }, madt_at { 0x7fe1000 }, hpet_at { 0x7fe2000 }, mcfg_at { 0x7fe3000 };

    explicit Machine(u8 revision = 2)
    {
        memory.place(madt_at, qemu_madt());
        memory.place(hpet_at, make_table("HPET", hpet_body(0xfed00000)));
        memory.place(mcfg_at, make_table("MCFG", mcfg_body({ { 0xb0000000_pa, 0, 0, 255 } })));
        if (revision >= 2) {
            ByteVec entries;
            put64(entries, madt_at);
            put64(entries, hpet_at);
            put64(entries, mcfg_at);
            memory.place(xsdt_at, make_table("XSDT", entries));
            rsdp = make_rsdp(2, 0, xsdt_at.value());
        } else {
            ByteVec entries;
            put32(entries, madt_at);
            put32(entries, hpet_at);
            put32(entries, mcfg_at);
            memory.place(xsdt_at, make_table("RSDT", entries));
            rsdp = make_rsdp(0, u32(xsdt_at.value()), 0);
        }
    }
    ErrorOr<AcpiTables> create(const char** why) { return AcpiTables::create(memory, view(rsdp), why); }
};

} // namespace

TEST(Acpi, ChecksumSumsBytes)
{
    ByteVec b { 1, 2, 3, 250 };
    EXPECT_EQ(acpi_checksum(view(b)), 0);
    b[0] = 2;
    EXPECT_EQ(acpi_checksum(view(b)), 1);
    EXPECT_EQ(acpi_checksum(ReadonlyBytes()), 0);
}

TEST(Acpi, ParsesRsdpV1)
{
    auto rsdp = parse_rsdp(view(make_rsdp(0, 0x1234, 0)));
    ASSERT_FALSE(rsdp.is_error());
    EXPECT_EQ(rsdp.value().revision, 0);
    EXPECT_EQ(rsdp.value().rsdt_address, 0x1234u);
    EXPECT_EQ(rsdp.value().xsdt_address, 0u);
    EXPECT_EQ(std::string(rsdp.value().oem_id, 6), "HOMEOS");
}

TEST(Acpi, ParsesRsdpV2)
{
    auto rsdp = parse_rsdp(view(make_rsdp(2, 0x1234, 0x123456789)));
    ASSERT_FALSE(rsdp.is_error());
    EXPECT_EQ(rsdp.value().revision, 2);
    EXPECT_EQ(rsdp.value().xsdt_address, 0x123456789u);
    EXPECT_EQ(rsdp.value().length, 36u);
}

TEST(Acpi, RsdpErrors)
{
    const char* why = nullptr;
    auto good = make_rsdp(2, 0x1000, 0x2000);

    ByteVec bad_signature = good;
    bad_signature[0] = 'X';
    EXPECT_TRUE(parse_rsdp(view(bad_signature), &why).is_error());
    EXPECT_STREQ(why, "ACPI: RSDP signature is not \"RSD PTR \"");

    ByteVec bad_checksum = good;
    bad_checksum[16] ^= 1;
    EXPECT_TRUE(parse_rsdp(view(bad_checksum), &why).is_error());
    EXPECT_STREQ(why, "ACPI: RSDP checksum mismatch");

    ByteVec bad_extended = good;
    bad_extended[24] ^= 1;
    EXPECT_TRUE(parse_rsdp(view(bad_extended), &why).is_error());
    EXPECT_STREQ(why, "ACPI: RSDP extended checksum mismatch");

    EXPECT_TRUE(parse_rsdp(ReadonlyBytes(good.data(), 19), &why).is_error());
    EXPECT_STREQ(why, "ACPI: RSDP is shorter than 20 bytes");

    EXPECT_TRUE(parse_rsdp(ReadonlyBytes(good.data(), 30), &why).is_error());
    EXPECT_STREQ(why, "ACPI: RSDP revision 2 is shorter than 36 bytes");

    ByteVec long_length = good;
    long_length[20] = 200;
    fix_checksum(long_length, 8, 20);
    EXPECT_TRUE(parse_rsdp(view(long_length), &why).is_error());
    EXPECT_STREQ(why, "ACPI: RSDP length runs past the end of its data");
}

TEST(Acpi, CreatesFromXsdtAndFindsTables)
{
    Machine machine;
    const char* why = nullptr;
    auto tables = machine.create(&why);
    ASSERT_FALSE(tables.is_error()) << why;
    EXPECT_TRUE(tables.value().uses_xsdt());
    EXPECT_EQ(tables.value().table_count(), 3u);
    EXPECT_EQ(std::string(tables.value().signature_at(1), 4), "HPET");
    EXPECT_EQ(tables.value().address_at(2), Machine::mcfg_at);

    auto madt = tables.value().find("APIC", 0, &why);
    ASSERT_FALSE(madt.is_error()) << why;
    EXPECT_EQ(madt.value().size(), machine.memory.at(Machine::madt_at).size());

    auto missing = tables.value().find("SSDT");
    ASSERT_TRUE(missing.is_error());
    EXPECT_EQ(missing.error().code(), ENOENT);
    EXPECT_TRUE(tables.value().find("APIC", 1).is_error());
}

TEST(Acpi, CreatesFromRsdtForRevision0)
{
    Machine machine(0);
    const char* why = nullptr;
    auto tables = machine.create(&why);
    ASSERT_FALSE(tables.is_error()) << why;
    EXPECT_FALSE(tables.value().uses_xsdt());
    EXPECT_EQ(tables.value().table_count(), 3u);
    ASSERT_FALSE(tables.value().find("MCFG").is_error());
}

TEST(Acpi, FallsBackToRsdtWhenXsdtAddressIsZero)
{
    Machine machine(0);
    machine.rsdp = make_rsdp(2, u32(Machine::xsdt_at.value()), 0);
    const char* why = nullptr;
    auto tables = machine.create(&why);
    ASSERT_FALSE(tables.is_error()) << why;
    EXPECT_FALSE(tables.value().uses_xsdt());
}

TEST(Acpi, FindsSecondTableWithSameSignature)
{
    Machine machine;
    ByteVec entries;
    put64(entries, Machine::madt_at);
    put64(entries, 0); // null entries are skipped
    put64(entries, 0x7fe4000);
    machine.memory.place(0x7fe4000_pa, make_table("SSDT", { 1, 2, 3 }));
    machine.memory.place(0x7fe5000_pa, make_table("SSDT", { 4, 5 }));
    put64(entries, 0x7fe5000);
    machine.memory.place(Machine::xsdt_at, make_table("XSDT", entries));
    const char* why = nullptr;
    auto tables = machine.create(&why);
    ASSERT_FALSE(tables.is_error()) << why;
    EXPECT_EQ(tables.value().table_count(), 3u);
    auto second = tables.value().find("SSDT", 1);
    ASSERT_FALSE(second.is_error());
    EXPECT_EQ(second.value().size(), 38u);
}

TEST(Acpi, RejectsBadXsdtChecksum)
{
    Machine machine;
    machine.memory.at(Machine::xsdt_at)[40] ^= 0x10;
    const char* why = nullptr;
    EXPECT_TRUE(machine.create(&why).is_error());
    EXPECT_STREQ(why, "ACPI: XSDT checksum mismatch");
}

TEST(Acpi, RejectsBadRsdtSignature)
{
    Machine machine(0);
    machine.memory.at(Machine::xsdt_at)[0] = 'X';
    const char* why = nullptr;
    EXPECT_TRUE(machine.create(&why).is_error());
    EXPECT_STREQ(why, "ACPI: RSDT signature is not \"RSDT\"");
}

TEST(Acpi, RejectsXsdtOutOfMemory)
{
    Machine machine;
    machine.rsdp = make_rsdp(2, 0, 0xdead0000);
    const char* why = nullptr;
    auto tables = machine.create(&why);
    ASSERT_TRUE(tables.is_error());
    EXPECT_EQ(tables.error().code(), EFAULT);
    EXPECT_STREQ(why, "ACPI: XSDT address is outside readable memory");
}

TEST(Acpi, RejectsXsdtLengthPastEnd)
{
    Machine machine;
    auto& xsdt = machine.memory.at(Machine::xsdt_at);
    xsdt[4] = u8(xsdt.size() + 8); // one more entry than there are bytes
    fix_checksum(xsdt, 9, xsdt.size());
    const char* why = nullptr;
    EXPECT_TRUE(machine.create(&why).is_error());
    EXPECT_STREQ(why, "ACPI: XSDT length runs past readable memory");
}

TEST(Acpi, RejectsXsdtLengthSmallerThanHeader)
{
    Machine machine;
    auto& xsdt = machine.memory.at(Machine::xsdt_at);
    xsdt[4] = 20;
    const char* why = nullptr;
    EXPECT_TRUE(machine.create(&why).is_error());
    EXPECT_STREQ(why, "ACPI: XSDT length is smaller than its header");
}

TEST(Acpi, RejectsXsdtPartialEntry)
{
    Machine machine;
    auto& xsdt = machine.memory.at(Machine::xsdt_at);
    xsdt[4] = u8(xsdt.size() - 4);
    const char* why = nullptr;
    EXPECT_TRUE(machine.create(&why).is_error());
    EXPECT_STREQ(why, "ACPI: XSDT length is not a whole number of 8-byte entries");
}

TEST(Acpi, RejectsXsdtEntryOutOfMemory)
{
    Machine machine;
    ByteVec entries;
    put64(entries, Machine::madt_at);
    put64(entries, 0xffffffffffffff00);
    machine.memory.place(Machine::xsdt_at, make_table("XSDT", entries));
    const char* why = nullptr;
    EXPECT_TRUE(machine.create(&why).is_error());
    EXPECT_STREQ(why, "ACPI: XSDT entry points outside readable memory");
}

TEST(Acpi, RejectsListedTableWithBadLength)
{
    Machine machine;
    auto& hpet = machine.memory.at(Machine::hpet_at);
    hpet[4] = 10;
    const char* why = nullptr;
    EXPECT_TRUE(machine.create(&why).is_error());
    EXPECT_STREQ(why, "ACPI: table listed in the XSDT is shorter than its header");

    hpet[4] = 200;
    EXPECT_TRUE(machine.create(&why).is_error());
    EXPECT_STREQ(why, "ACPI: table listed in the XSDT runs past readable memory");
}

TEST(Acpi, FindReportsBadTableChecksum)
{
    Machine machine;
    machine.memory.at(Machine::madt_at)[50] ^= 0xff;
    const char* why = nullptr;
    auto tables = machine.create(&why);
    ASSERT_FALSE(tables.is_error()) << why; // lazily checked: other tables still usable
    auto madt = tables.value().find("APIC", 0, &why);
    ASSERT_TRUE(madt.is_error());
    EXPECT_EQ(madt.error().code(), EINVAL);
    EXPECT_STREQ(why, "ACPI: APIC table at 0x7fe1000: checksum mismatch (bytes sum to 0xff, not 0)");
    EXPECT_FALSE(tables.value().find("HPET").is_error());
}

TEST(Acpi, ParsesMadt)
{
    auto table = qemu_madt();
    const char* why = nullptr;
    auto madt = parse_madt(view(table), &why);
    ASSERT_FALSE(madt.is_error()) << why;
    auto& info = madt.value();
    EXPECT_EQ(info.lapic_address, 0xfee00000_pa);
    EXPECT_TRUE(info.pc_at_compatible);
    ASSERT_EQ(info.processor_count, 2u);
    EXPECT_EQ(info.processors[1].apic_id, 1u);
    EXPECT_TRUE(info.processors[1].enabled);
    ASSERT_EQ(info.io_apic_count, 1u);
    EXPECT_EQ(info.io_apics[0].address, 0xfec00000_pa);
    EXPECT_EQ(info.io_apics[0].gsi_base, 0u);
    ASSERT_EQ(info.override_count, 2u);
    EXPECT_EQ(info.overrides[0].source_irq, 0);
    EXPECT_EQ(info.overrides[0].gsi, 2u);
    EXPECT_EQ(info.overrides[1].flags & MadtTriggerMask, MadtTriggerLevel);
    EXPECT_EQ(info.overrides[1].flags & MadtPolarityMask, MadtPolarityActiveHigh);
    ASSERT_EQ(info.lapic_nmi_count, 1u);
    EXPECT_EQ(info.lapic_nmis[0].acpi_processor_id, 0xffu);
    EXPECT_EQ(info.lapic_nmis[0].lint, 1);
}

TEST(Acpi, MadtLapicOverrideAndX2apic)
{
    auto table = make_table("APIC", madt_body(0xfee00000, 0, cat({ lapic_override_entry(0x1fee00000), x2apic_entry(300, 1, 7), lapic_entry(2, 2, 0), lapic_entry(3, 3, 2), ByteVec { 0x7f, 3, 0 } })));
    auto madt = parse_madt(view(table));
    ASSERT_FALSE(madt.is_error());
    auto& info = madt.value();
    EXPECT_EQ(info.lapic_address, 0x1fee00000_pa);
    EXPECT_FALSE(info.pc_at_compatible);
    ASSERT_EQ(info.processor_count, 2u); // the disabled, not online-capable CPU is dropped
    EXPECT_TRUE(info.processors[0].x2apic);
    EXPECT_EQ(info.processors[0].apic_id, 300u);
    EXPECT_EQ(info.processors[0].acpi_id, 7u);
    EXPECT_FALSE(info.processors[1].enabled);
    EXPECT_TRUE(info.processors[1].online_capable);
}

TEST(Acpi, MadtIgnoresProcessorsBeyondCapacity)
{
    ByteVec entries;
    for (int i = 0; i < 70; ++i) {
        auto e = lapic_entry(u8(i), u8(i), 1);
        entries.insert(entries.end(), e.begin(), e.end());
    }
    auto table = make_table("APIC", madt_body(0xfee00000, 0, entries));
    auto madt = parse_madt(view(table));
    ASSERT_FALSE(madt.is_error());
    EXPECT_EQ(madt.value().processor_count, 64u);
    EXPECT_EQ(madt.value().processors_ignored, 6u);
}

TEST(Acpi, MadtRejectsTooManyIoApicsAndOverrides)
{
    ByteVec io, iso;
    for (int i = 0; i < 9; ++i) {
        auto e = ioapic_entry(u8(i), 0xfec00000 + i * 0x1000, i * 24);
        io.insert(io.end(), e.begin(), e.end());
    }
    for (int i = 0; i < 25; ++i) {
        auto e = iso_entry(u8(i), i, 0);
        iso.insert(iso.end(), e.begin(), e.end());
    }
    const char* why = nullptr;
    auto a = parse_madt(view(make_table("APIC", madt_body(0, 0, io))), &why);
    ASSERT_TRUE(a.is_error());
    EXPECT_EQ(a.error().code(), E2BIG);
    EXPECT_STREQ(why, "ACPI: MADT lists more I/O APICs than supported (8)");
    auto b = parse_madt(view(make_table("APIC", madt_body(0, 0, iso))), &why);
    ASSERT_TRUE(b.is_error());
    EXPECT_STREQ(why, "ACPI: MADT lists more interrupt source overrides than supported (24)");
}

TEST(Acpi, MadtRejectsBadChecksum)
{
    auto table = qemu_madt();
    table[40] ^= 2;
    const char* why = nullptr;
    EXPECT_TRUE(parse_madt(view(table), &why).is_error());
    EXPECT_STREQ(why, "ACPI: MADT checksum mismatch");
}

TEST(Acpi, MadtRejectsBadSignatureAndLengths)
{
    const char* why = nullptr;
    auto table = qemu_madt();
    auto wrong = make_table("APIX", madt_body(0, 0, {}));
    EXPECT_TRUE(parse_madt(view(wrong), &why).is_error());
    EXPECT_STREQ(why, "ACPI: MADT signature is not \"APIC\"");

    EXPECT_TRUE(parse_madt(ReadonlyBytes(table.data(), 30), &why).is_error());
    EXPECT_STREQ(why, "ACPI: MADT is shorter than its header");

    EXPECT_TRUE(parse_madt(ReadonlyBytes(table.data(), table.size() - 1), &why).is_error());
    EXPECT_STREQ(why, "ACPI: MADT length runs past the end of the table data");

    auto short_table = make_table("APIC", { 0, 0, 0, 0 });
    EXPECT_TRUE(parse_madt(view(short_table), &why).is_error());
    EXPECT_STREQ(why, "ACPI: MADT length is smaller than its fixed fields");
}

TEST(Acpi, MadtRejectsZeroLengthEntry)
{
    const char* why = nullptr;
    auto table = make_table("APIC", madt_body(0xfee00000, 0, cat({ lapic_entry(0, 0, 1), ByteVec { 0, 0, 0, 0 } })));
    EXPECT_TRUE(parse_madt(view(table), &why).is_error());
    EXPECT_STREQ(why, "ACPI: MADT entry has a length smaller than 2");
    auto one = make_table("APIC", madt_body(0xfee00000, 0, ByteVec { 1, 1 }));
    EXPECT_TRUE(parse_madt(view(one), &why).is_error());
}

TEST(Acpi, MadtRejectsTruncatedEntries)
{
    const char* why = nullptr;
    // An I/O APIC entry claiming 12 bytes with only 6 left in the table.
    auto past_end = make_table("APIC", madt_body(0, 0, ByteVec { 1, 12, 0, 0, 0, 0 }));
    EXPECT_TRUE(parse_madt(view(past_end), &why).is_error());
    EXPECT_STREQ(why, "ACPI: MADT entry runs past the end of the table");
    // A lone type byte at the very end.
    auto header_cut = make_table("APIC", madt_body(0, 0, ByteVec { 1 }));
    EXPECT_TRUE(parse_madt(view(header_cut), &why).is_error());
    EXPECT_STREQ(why, "ACPI: MADT entry header runs past the end of the table");
    // An I/O APIC entry that says it is only 6 bytes long.
    auto too_short = make_table("APIC", madt_body(0, 0, ByteVec { 1, 6, 0, 0, 0, 0 }));
    EXPECT_TRUE(parse_madt(view(too_short), &why).is_error());
    EXPECT_STREQ(why, "ACPI: MADT I/O APIC entry is shorter than 12 bytes");
    auto short_lapic = make_table("APIC", madt_body(0, 0, ByteVec { 0, 4, 0, 0 }));
    EXPECT_TRUE(parse_madt(view(short_lapic), &why).is_error());
    EXPECT_STREQ(why, "ACPI: MADT local APIC entry is shorter than 8 bytes");
}

TEST(Acpi, ParsesHpet)
{
    auto table = make_table("HPET", hpet_body(0xfed00000));
    auto hpet = parse_hpet(view(table));
    ASSERT_FALSE(hpet.is_error());
    EXPECT_EQ(hpet.value().base_address, 0xfed00000_pa);
    EXPECT_EQ(hpet.value().address_space_id, 0);
    EXPECT_EQ(hpet.value().register_bit_width, 64);
    EXPECT_EQ(hpet.value().min_tick, 0x80);
    EXPECT_EQ(hpet.value().event_timer_block_id, 0x8086a201u);
}

TEST(Acpi, HpetErrors)
{
    const char* why = nullptr;
    auto table = make_table("HPET", hpet_body(0xfed00000));
    table[45] ^= 1;
    EXPECT_TRUE(parse_hpet(view(table), &why).is_error());
    EXPECT_STREQ(why, "ACPI: HPET checksum mismatch");

    auto short_table = make_table("HPET", ByteVec(10, 0));
    EXPECT_TRUE(parse_hpet(view(short_table), &why).is_error());
    EXPECT_STREQ(why, "ACPI: HPET length is smaller than its fixed fields");

    auto null_base = make_table("HPET", hpet_body(0));
    EXPECT_TRUE(parse_hpet(view(null_base), &why).is_error());
    EXPECT_STREQ(why, "ACPI: HPET has a null base address");

    EXPECT_TRUE(parse_hpet(view(qemu_madt()), &why).is_error());
    EXPECT_STREQ(why, "ACPI: HPET signature is not \"HPET\"");
}

TEST(Acpi, ParsesMcfg)
{
    auto table = make_table("MCFG", mcfg_body({ { 0xb0000000_pa, 0, 0, 255 }, { 0xc0000000_pa, 1, 0, 63 } }));
    auto mcfg = parse_mcfg(view(table));
    ASSERT_FALSE(mcfg.is_error());
    ASSERT_EQ(mcfg.value().entry_count, 2u);
    EXPECT_EQ(mcfg.value().entries[0].base_address, 0xb0000000_pa);
    EXPECT_EQ(mcfg.value().entries[0].bus_end, 255);
    EXPECT_EQ(mcfg.value().entries[1].segment, 1);
    EXPECT_EQ(mcfg.value().entries[1].bus_end, 63);

    auto empty = make_table("MCFG", mcfg_body({}));
    ASSERT_FALSE(parse_mcfg(view(empty)).is_error());
    EXPECT_EQ(parse_mcfg(view(empty)).value().entry_count, 0u);
}

TEST(Acpi, McfgErrors)
{
    const char* why = nullptr;
    auto reversed = make_table("MCFG", mcfg_body({ { 0xb0000000_pa, 0, 10, 5 } }));
    EXPECT_TRUE(parse_mcfg(view(reversed), &why).is_error());
    EXPECT_STREQ(why, "ACPI: MCFG entry has bus_start after bus_end");

    auto body = mcfg_body({ { 0xb0000000_pa, 0, 0, 255 } });
    body.resize(body.size() - 4);
    auto partial = make_table("MCFG", body);
    EXPECT_TRUE(parse_mcfg(view(partial), &why).is_error());
    EXPECT_STREQ(why, "ACPI: MCFG length is not a whole number of 16-byte entries");

    ByteVec many(8, 0);
    for (int i = 0; i < 17; ++i) {
        put64(many, 0xb0000000);
        put16(many, u16(i));
        put8(many, 0);
        put8(many, 255);
        put32(many, 0);
    }
    auto too_many = make_table("MCFG", many);
    auto result = parse_mcfg(view(too_many), &why);
    ASSERT_TRUE(result.is_error());
    EXPECT_EQ(result.error().code(), E2BIG);

    auto table = make_table("MCFG", mcfg_body({ { 0xb0000000_pa, 0, 0, 255 } }));
    table[44] ^= 1;
    EXPECT_TRUE(parse_mcfg(view(table), &why).is_error());
    EXPECT_STREQ(why, "ACPI: MCFG checksum mismatch");
}

TEST(Acpi, EndToEndThroughTables)
{
    Machine machine;
    const char* why = nullptr;
    auto tables = machine.create(&why);
    ASSERT_FALSE(tables.is_error()) << why;
    auto madt = parse_madt(MUST(tables.value().find("APIC")), &why);
    ASSERT_FALSE(madt.is_error()) << why;
    EXPECT_EQ(madt.value().processor_count, 2u);
    auto hpet = parse_hpet(MUST(tables.value().find("HPET")), &why);
    ASSERT_FALSE(hpet.is_error()) << why;
    EXPECT_EQ(hpet.value().base_address, 0xfed00000_pa);
    auto mcfg = parse_mcfg(MUST(tables.value().find("MCFG")), &why);
    ASSERT_FALSE(mcfg.is_error()) << why;
    EXPECT_EQ(mcfg.value().entry_count, 1u);
    for (usize i = 0; i < tables.value().table_count(); ++i)
        EXPECT_FALSE(tables.value().table_at(i).is_error());
}

TEST(Acpi, TruncatedTablesNeverOverread)
{
    // Exact-size heap copies of every prefix: ASan flags any read past the end.
    for (auto& table : { qemu_madt(), make_table("HPET", hpet_body(0xfed00000)), make_table("MCFG", mcfg_body({ { 0xb0000000_pa, 0, 0, 255 } })) }) {
        for (usize size = 0; size < table.size(); ++size) {
            auto copy = std::make_unique<u8[]>(size ? size : 1);
            std::memcpy(copy.get(), table.data(), size);
            ReadonlyBytes bytes(copy.get(), size);
            EXPECT_TRUE(parse_madt(bytes).is_error());
            EXPECT_TRUE(parse_hpet(bytes).is_error());
            EXPECT_TRUE(parse_mcfg(bytes).is_error());
        }
    }
}
