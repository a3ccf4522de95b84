#pragma once
// On the host, <errno.h> defines these names as macros; take it first and drop the macros, so the
// shared libraries see the same typed constants in both builds, whatever order headers come in.
#if !defined(HOMEOS_KERNEL) && __has_include(<errno.h>)
#    include <errno.h>
#    undef EPERM
#    undef ENOENT
#    undef ESRCH
#    undef EINTR
#    undef EIO
#    undef ENXIO
#    undef E2BIG
#    undef ENOEXEC
#    undef EBADF
#    undef ECHILD
#    undef EAGAIN
#    undef ENOMEM
#    undef EACCES
#    undef EFAULT
#    undef ENOTBLK
#    undef EBUSY
#    undef EEXIST
#    undef EXDEV
#    undef ENODEV
#    undef ENOTDIR
#    undef EISDIR
#    undef EINVAL
#    undef ENFILE
#    undef EMFILE
#    undef ENOTTY
#    undef ETXTBSY
#    undef EFBIG
#    undef ENOSPC
#    undef ESPIPE
#    undef EROFS
#    undef EMLINK
#    undef EPIPE
#    undef EDOM
#    undef ERANGE
#    undef EDEADLK
#    undef ENAMETOOLONG
#    undef ENOLCK
#    undef ENOSYS
#    undef ENOTEMPTY
#    undef ELOOP
#    undef ENOMSG
#    undef EIDRM
#    undef ENODATA
#    undef ETIME
#    undef EOVERFLOW
#    undef EBADMSG
#    undef EILSEQ
#    undef ENOTSUP
#    undef EOPNOTSUPP
#    undef EADDRINUSE
#    undef ETIMEDOUT
#    undef EKEYREJECTED
#    undef ENOPKG
#    undef EPROTO
#    undef EPROTONOSUPPORT
#endif

// Linux x86-64 errno values: the kernel's errors are these numbers, so a syscall returns -errno as is.
namespace Errno {
// A named type, so `return ENOMEM;` from an ErrorOr<u64> function is an error, never the value 12.
enum ErrnoCode : int {
    EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, ENXIO = 6, E2BIG = 7, ENOEXEC = 8, EBADF = 9,
    ECHILD = 10, EAGAIN = 11, ENOMEM = 12, EACCES = 13, EFAULT = 14, ENOTBLK = 15, EBUSY = 16, EEXIST = 17,
    EXDEV = 18, ENODEV = 19, ENOTDIR = 20, EISDIR = 21, EINVAL = 22, ENFILE = 23, EMFILE = 24, ENOTTY = 25,
    ETXTBSY = 26, EFBIG = 27, ENOSPC = 28, ESPIPE = 29, EROFS = 30, EMLINK = 31, EPIPE = 32, EDOM = 33,
    ERANGE = 34, EDEADLK = 35, ENAMETOOLONG = 36, ENOLCK = 37, ENOSYS = 38, ENOTEMPTY = 39, ELOOP = 40,
    ENOMSG = 42, EIDRM = 43, ENODATA = 61, ETIME = 62, ENOPKG = 65, EPROTO = 71, EBADMSG = 74, EOVERFLOW = 75,
    EILSEQ = 84, EPROTONOSUPPORT = 93, ENOTSUP = 95, EOPNOTSUPP = 95, EADDRINUSE = 98, ETIMEDOUT = 110,
    EKEYREJECTED = 129,
};
}
using namespace Errno;

// Short symbolic name of an errno value ("ENOMEM"), for logs and test output. Every constant above
// has one (tests/unit/ErrnoTest.cpp reads this header to check); EOPNOTSUPP shares ENOTSUP's value.
inline const char* errno_name(int code)
{
    switch (code) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case E2BIG: return "E2BIG";
    case ENOEXEC: return "ENOEXEC";
    case EBADF: return "EBADF";
    case ECHILD: return "ECHILD";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case ENOTBLK: return "ENOTBLK";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EXDEV: return "EXDEV";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ENOTTY: return "ENOTTY";
    case ETXTBSY: return "ETXTBSY";
    case EFBIG: return "EFBIG";
    case ENOSPC: return "ENOSPC";
    case ESPIPE: return "ESPIPE";
    case EROFS: return "EROFS";
    case EMLINK: return "EMLINK";
    case EPIPE: return "EPIPE";
    case EDOM: return "EDOM";
    case ERANGE: return "ERANGE";
    case EDEADLK: return "EDEADLK";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOLCK: return "ENOLCK";
    case ENOSYS: return "ENOSYS";
    case ENOTEMPTY: return "ENOTEMPTY";
    case ELOOP: return "ELOOP";
    case ENOMSG: return "ENOMSG";
    case EIDRM: return "EIDRM";
    case ENODATA: return "ENODATA";
    case ETIME: return "ETIME";
    case ENOPKG: return "ENOPKG";
    case EPROTO: return "EPROTO";
    case EBADMSG: return "EBADMSG";
    case EOVERFLOW: return "EOVERFLOW";
    case EILSEQ: return "EILSEQ";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case ENOTSUP: return "ENOTSUP";
    case EADDRINUSE: return "EADDRINUSE";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EKEYREJECTED: return "EKEYREJECTED";
    default: return "E?";
    }
}
