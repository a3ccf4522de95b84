#include <lib/archive/Cpio.h>
#include <lib/text/Format.h>

using namespace Cpio;

namespace {

// Header field order after the 6-byte magic; each field is 8 hex digits.
enum Field : usize {
    FieldIno,
    FieldMode,
    FieldUid,
    FieldGid,
    FieldNlink,
    FieldMtime,
    FieldFileSize,
    FieldDevMajor,
    FieldDevMinor,
    FieldRdevMajor,
    FieldRdevMinor,
    FieldNameSize,
    FieldCheck,
    FieldCount,
};

constexpr const char* field_names[FieldCount] = {
    "ino", "mode", "uid", "gid", "nlink", "mtime", "filesize",
    "devmajor", "devminor", "rdevmajor", "rdevminor", "namesize", "check",
};

int hex_value(u8 c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool parse_hex8(const u8* digits, u32& out)
{
    u32 value = 0;
    for (usize i = 0; i < 8; ++i) {
        int digit = hex_value(digits[i]);
        if (digit < 0) return false;
        value = (value << 4) | u32(digit);
    }
    out = value;
    return true;
}

// Rounds offset up to the archive's 4-byte alignment; false if that would overflow.
bool align_offset(usize offset, usize& out)
{
    usize padded;
    if (__builtin_add_overflow(offset, Alignment - 1, &padded)) return false;
    out = padded & ~(Alignment - 1);
    return true;
}

} // namespace

StringView CpioEntry::symlink_target() const
{
    if (!is_symlink()) return {};
    usize length = data.size();
    if (length && data[length - 1] == 0) --length;
    return StringView(reinterpret_cast<const char*>(data.data()), length);
}

bool CpioEntry::verify_checksum() const
{
    // Writers (GNU cpio, Linux's gen_init_cpio) sum regular files only and leave 0 elsewhere.
    if (!has_crc || !is_regular()) return true;
    u32 sum = 0;
    for (u8 byte : data) sum += byte;
    return sum == check;
}

Error CpioReader::fail(const char* summary, const char* fmt, ...)
{
    char detail[128];
    va_list args;
    va_start(args, fmt);
    vformat(detail, sizeof(detail), fmt, args);
    va_end(args);
    format(m_error, sizeof(m_error), "cpio: %s", detail);
    m_state = State::Failed;
    m_failure = Error::with_message(EBADMSG, summary);
    return m_failure;
}

ErrorOr<bool> CpioReader::next(CpioEntry& out)
{
    if (m_state == State::Done) return false;
    if (m_state == State::Failed) return m_failure;

    usize const index = m_index;
    usize const size = m_archive.size();
    if (m_offset == size)
        return fail("cpio: the archive ends without a TRAILER!!! entry", "archive ends after %zu entries without a TRAILER!!! entry", index);
    if (!m_archive.contains_range(m_offset, HeaderSize))
        return fail("cpio: an entry header runs past the end of the archive", "entry %zu: header at offset %zu runs past the end of the archive", index, m_offset);

    const u8* header = m_archive.data() + m_offset;
    bool has_crc;
    if (__builtin_memcmp(header, "070701", 6) == 0)
        has_crc = false;
    else if (__builtin_memcmp(header, "070702", 6) == 0)
        has_crc = true;
    else
        return fail("cpio: bad magic (expected 070701 or 070702)", "entry %zu: bad magic at offset %zu (expected 070701 or 070702)", index, m_offset);

    u32 fields[FieldCount];
    for (usize i = 0; i < FieldCount; ++i) {
        if (!parse_hex8(header + 6 + i * 8, fields[i]))
            return fail("cpio: a header field is not 8 hex digits", "entry %zu: field %s is not 8 hex digits", index, field_names[i]);
    }

    u32 const name_size = fields[FieldNameSize];
    if (name_size == 0)
        return fail("cpio: namesize is 0", "entry %zu: namesize is 0 (the name needs at least its NUL)", index);
    usize const name_offset = m_offset + HeaderSize; // cannot overflow: the header is in the buffer
    if (!m_archive.contains_range(name_offset, name_size))
        return fail("cpio: a name runs past the end of the archive", "entry %zu: name (%u bytes) runs past the end of the archive", index, name_size);
    const char* name_chars = reinterpret_cast<const char*>(m_archive.data() + name_offset);
    StringView name(name_chars, name_size - 1);
    if (name_chars[name_size - 1] != 0)
        return fail("cpio: a name is not NUL-terminated", "entry %zu: name is not NUL-terminated within namesize %u", index, name_size);
    if (name.find('\0') >= 0)
        return fail("cpio: a name has a NUL before its end", "entry %zu: name has a NUL before its end", index);
    if (name.is_empty())
        return fail("cpio: an entry has an empty name", "entry %zu: empty name", index);

    usize data_offset;
    if (!align_offset(name_offset + name_size, data_offset))
        return fail("cpio: an entry offset overflows", "entry %zu ('%.*s') offset overflow", index, int(name.length()), name.characters());

    bool const is_trailer = name == TrailerName;
    u32 const file_size = fields[FieldFileSize];
    if (is_trailer && file_size == 0) {
        // The trailer ends the archive; tolerate a missing pad after its name.
        m_offset = data_offset <= size ? data_offset : size;
        m_index = index + 1;
        m_state = State::Done;
        return false;
    }
    if (data_offset > size)
        return fail("cpio: name padding runs past the end of the archive", "entry %zu ('%.*s') name padding runs past the end of the archive", index,
            int(name.length()), name.characters());
    if (!m_archive.contains_range(data_offset, file_size))
        return fail("cpio: file data runs past the end of the archive", "entry %zu ('%.*s') data runs past the end of the archive", index,
            int(name.length()), name.characters());
    if (is_trailer)
        return fail("cpio: the TRAILER!!! entry has data", "entry %zu: TRAILER!!! entry has %u bytes of data", index, file_size);
    usize next_offset;
    if (!align_offset(data_offset + file_size, next_offset) || next_offset > size)
        return fail("cpio: data padding runs past the end of the archive", "entry %zu ('%.*s') data padding runs past the end of the archive", index,
            int(name.length()), name.characters());

    out.name = name;
    out.ino = fields[FieldIno];
    out.mode = fields[FieldMode];
    out.uid = fields[FieldUid];
    out.gid = fields[FieldGid];
    out.nlink = fields[FieldNlink];
    out.mtime = fields[FieldMtime];
    out.dev_major = fields[FieldDevMajor];
    out.dev_minor = fields[FieldDevMinor];
    out.rdev_major = fields[FieldRdevMajor];
    out.rdev_minor = fields[FieldRdevMinor];
    out.check = fields[FieldCheck];
    out.has_crc = has_crc;
    out.data = m_archive.slice(data_offset, file_size);
    out.index = index;

    m_offset = next_offset;
    m_index = index + 1;
    return true;
}
