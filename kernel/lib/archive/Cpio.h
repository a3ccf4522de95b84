#pragma once
// Reader for cpio "newc" archives (the initramfs format): magic "070701", or "070702" for the
// variant that carries a checksum. Read-only; the host tool writes its own archives.
//
// Interface:
//   CpioReader reader(archive);
//   CpioEntry entry;
//   while (TRY(reader.next(entry))) { use(entry.name, entry.data); }
//   // next() returned false: the "TRAILER!!!" entry was reached.
//   // On error: the Error's message() says what is wrong ("cpio: bad magic (expected ...)"),
//   // and reader.error_message() adds which entry and where.
//
// Layout of one entry, every offset relative to the start of the archive:
//
//   +--------------------------------+ offset (4-aligned)
//   | "070701" + 13 fields, each 8   | 110 bytes: ino mode uid gid nlink mtime filesize
//   | ASCII hex digits               |   devmajor devminor rdevmajor rdevminor namesize check
//   +--------------------------------+
//   | name, namesize bytes incl. NUL |
//   +--------------------------------+ padded with zeros to a multiple of 4
//   | data, filesize bytes           | (a symlink's data is its target, without a NUL)
//   +--------------------------------+ padded with zeros to a multiple of 4: the next entry
//
// Every malformed or truncated archive fails with EBADMSG ("bad message": the bytes are not a
// valid archive), never EINVAL, which callers keep for bad arguments. The reader never trusts a
// field: all arithmetic is overflow-checked and every range is checked against the buffer. The
// trailer's own padding may be missing (nothing follows it that needs alignment); bytes after the
// trailer are not read, and offset() tells where they start.
//
// Entry names and data are views into the archive: it must outlive the entries.
#include <ktl/ErrorOr.h>
#include <ktl/Span.h>
#include <ktl/StringView.h>
#include <ktl/Types.h>

namespace Cpio {

constexpr usize HeaderSize = 110;
constexpr usize Alignment = 4;
constexpr StringView TrailerName = "TRAILER!!!";

// File type bits of `mode`, as in <sys/stat.h>.
constexpr u32 TypeMask = 0170000;
constexpr u32 TypeSocket = 0140000;
constexpr u32 TypeSymlink = 0120000;
constexpr u32 TypeRegular = 0100000;
constexpr u32 TypeBlockDevice = 0060000;
constexpr u32 TypeDirectory = 0040000;
constexpr u32 TypeCharDevice = 0020000;
constexpr u32 TypeFifo = 0010000;
constexpr u32 PermissionMask = 07777;

} // namespace Cpio

struct CpioEntry {
    StringView name; // without the trailing NUL; never empty
    u32 mode { 0 };  // file type and permission bits
    u32 uid { 0 };
    u32 gid { 0 };
    u32 mtime { 0 };
    u32 nlink { 0 };
    u32 ino { 0 };
    u32 dev_major { 0 };
    u32 dev_minor { 0 };
    u32 rdev_major { 0 };
    u32 rdev_minor { 0 };
    u32 check { 0 };     // the sum of the data bytes in a "070702" archive, else 0
    bool has_crc { false }; // "070702"; the reader does not verify the sum (see verify_checksum)
    ReadonlyBytes data;
    usize index { 0 }; // 0-based position in the archive, for messages

    u32 file_type() const { return mode & Cpio::TypeMask; }
    u32 permissions() const { return mode & Cpio::PermissionMask; }
    bool is_regular() const { return file_type() == Cpio::TypeRegular; }
    bool is_directory() const { return file_type() == Cpio::TypeDirectory; }
    bool is_symlink() const { return file_type() == Cpio::TypeSymlink; }
    // The target of a symlink: its data, minus a trailing NUL some writers add. Empty otherwise.
    StringView symlink_target() const;
    // For a regular file in a "070702" archive: whether `check` equals the byte sum of its data.
    // True for "070701" entries and other file types, whose sum writers leave at 0.
    bool verify_checksum() const;
};

class CpioReader {
public:
    explicit CpioReader(ReadonlyBytes archive) : m_archive(archive) { m_error[0] = 0; }

    // Reads the next entry into `out`: true for an entry, false once the trailer has been read
    // (and on every later call). An EBADMSG carries a static reason, and error_message() the
    // detail; later calls fail the same way.
    ErrorOr<bool> next(CpioEntry& out);

    // Where the next entry would start; after the trailer, the end of the archive proper.
    usize offset() const { return m_offset; }
    usize entries_read() const { return m_index; }
    bool reached_trailer() const { return m_state == State::Done; }
    // A sentence naming the entry and the problem, or "" while no error has occurred.
    const char* error_message() const { return m_error; }

private:
    enum class State { Reading, Done, Failed };
    // Returns EBADMSG carrying the static `summary`; the formatted detail goes to error_message().
    Error fail(const char* summary, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

    ReadonlyBytes m_archive;
    usize m_offset { 0 };
    usize m_index { 0 };
    State m_state { State::Reading };
    Error m_failure { EBADMSG };
    char m_error[192];
};

// Calls callback(const CpioEntry&) -> ErrorOr<void> for every entry before the trailer, stopping
// at the first error. Use a CpioReader directly to get the reason for a format error.
template<typename Callback>
ErrorOr<void> for_each_cpio_entry(ReadonlyBytes archive, Callback callback)
{
    CpioReader reader(archive);
    CpioEntry entry;
    while (TRY(reader.next(entry)))
        TRY(callback(entry));
    return {};
}
