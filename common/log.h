#ifndef MT_LOG_H
#define MT_LOG_H
/* Logging to stderr, one line per message. When stderr is the systemd
 * journal (JOURNAL_STREAM names stderr's dev:ino, as systemd documents)
 * lines carry syslog-style "<N>" level prefixes, which journald reads as
 * priorities and stamps itself; otherwise each line starts with a UTC
 * timestamp and the level name: "2026-12-07T09:00:00.123Z info ...".
 * Thread-safe (one fprintf per line). Never log secrets. */

#include <stddef.h>
#include <time.h>

enum log_level { LOG_LVL_ERROR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

/* Line styles: "<N>message" for the journal, "TIME LEVEL message" else. */
#define LOG_STYLE_JOURNAL 0
#define LOG_STYLE_TIME 1

/* Sets the threshold; lines above it are dropped. Default: info. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error|warn|info|debug"; returns 0, or -EINVAL for anything else. */
int log_level_parse(const char *s, enum log_level *out);

/* The style in use: forced by log_set_style, else detected once from
 * JOURNAL_STREAM and stderr. log_set_style(-1) returns to detection; call
 * it before other threads log. */
int log_get_style(void);
void log_set_style(int style);
/* 1 when journal_stream ("DEV:INO", may be NULL) names the file open on fd,
 * else 0. */
int log_stderr_is_journal(const char *journal_stream, int fd);
/* Writes a line's prefix for level in style s at time ts into out (NUL-
 * terminated); returns its length as snprintf does. */
int log_format_prefix(char *out, size_t outlen, enum log_level level, int s, const struct timespec *ts);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
