#pragma once
// VersionTable: a module's __versions section, the CRC it was built against for each symbol it
// imports (like Linux's modversions, kernel/module/version.c), and the check of one import
// against the CRC its exporter declares.
//
// Interface:
//   VersionTable versions(section_bytes);           // any bytes: a partial last entry is ignored
//   versions.find(name)                              // the recorded CRC, or ENOENT
//   TRY(versions.check(name, exporter_crc, policy)); // ok, or EBADMSG / ENOPKG with a reason
//
// The entry layout is homeos_version_entry (abi/homeos/module.h): a u32 CRC, then a 60-byte
// NUL-padded name. A name that fills all 60 bytes is read as its first 59 (the SDK never
// writes one).
//
// Policies: a kernel export must have an entry (ENOPKG otherwise). A module export is checked the
// same way once its exporter declares a CRC; an exporter built without CRCs (crc 0) cannot be
// checked, so an importer with no entry for it is accepted, as unversioned symbols are on Linux.
#include <ktl/ErrorOr.h>
#include <ktl/Span.h>
#include <ktl/StringView.h>

class VersionTable {
public:
    static constexpr usize ENTRY_SIZE = 64;
    static constexpr usize NAME_SIZE = 60;

    enum class Exporter { Kernel, Module };

    explicit VersionTable(ReadonlyBytes section) : m_section(section) { }

    usize entry_count() const { return m_section.size() / ENTRY_SIZE; }
    ErrorOr<u32> find(StringView name) const;
    ErrorOr<void> check(StringView name, u32 exporter_crc, Exporter exporter) const;

private:
    ReadonlyBytes m_section;
};
