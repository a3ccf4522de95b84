/* Logging, in the kernel's log ring and on its consoles. Levels follow Linux (0 emerg .. 7 debug). */
#ifndef HOMEOS_LOG_H
#define HOMEOS_LOG_H
#include <homeos/abi.h>

HOMEOS_EXTERN_C_BEGIN

enum homeos_log_level {
    HOMEOS_LOG_EMERG = 0,
    HOMEOS_LOG_ALERT = 1,
    HOMEOS_LOG_CRIT = 2,
    HOMEOS_LOG_ERR = 3,
    HOMEOS_LOG_WARNING = 4,
    HOMEOS_LOG_NOTICE = 5,
    HOMEOS_LOG_INFO = 6,
    HOMEOS_LOG_DEBUG = 7,
};

/* printf-style; the kernel prefixes the message with "[module] ". */
HOMEOS_API void homeos_log(int level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
/* Formats into buffer like snprintf. */
HOMEOS_API size_t homeos_snprintf(char* buffer, size_t capacity, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

#define pr_err(...) homeos_log(HOMEOS_LOG_ERR, __VA_ARGS__)
#define pr_warn(...) homeos_log(HOMEOS_LOG_WARNING, __VA_ARGS__)
#define pr_info(...) homeos_log(HOMEOS_LOG_INFO, __VA_ARGS__)
#define pr_debug(...) homeos_log(HOMEOS_LOG_DEBUG, __VA_ARGS__)

HOMEOS_EXTERN_C_END
#endif
