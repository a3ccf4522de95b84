#include <lib/elf/VersionTable.h>

ErrorOr<u32> VersionTable::find(StringView name) const
{
    for (usize offset = 0; offset + ENTRY_SIZE <= m_section.size(); offset += ENTRY_SIZE) {
        const u8* entry = m_section.data() + offset;
        const char* entry_name = (const char*)entry + sizeof(u32);
        usize length = 0;
        while (length < NAME_SIZE - 1 && entry_name[length])
            ++length;
        if (StringView(entry_name, length) != name)
            continue;
        u32 crc;
        __builtin_memcpy(&crc, entry, sizeof(crc));
        return crc;
    }
    return ENOENT;
}

ErrorOr<void> VersionTable::check(StringView name, u32 exporter_crc, Exporter exporter) const
{
    auto recorded = find(name);
    if (recorded.is_error()) {
        if (exporter == Exporter::Kernel)
            return Error::with_message(ENOPKG, "no CRC for an imported kernel symbol in __versions");
        if (exporter_crc != 0)
            return Error::with_message(ENOPKG, "no CRC for a versioned module export in __versions");
        return {};
    }
    if (recorded.value() != exporter_crc)
        return Error::with_message(EBADMSG, exporter == Exporter::Kernel ? "import disagrees about the version of a kernel symbol"
                                                                         : "import disagrees about the version of a module export");
    return {};
}
