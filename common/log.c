#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static enum log_level threshold = LOG_LVL_INFO;
static pthread_once_t style_once = PTHREAD_ONCE_INIT;
static int style = -1; /* a LOG_STYLE_*, forced, or -1: from the environment */
static int style_env;  /* what the environment says, set once */

void log_set_level(enum log_level level) { threshold = level; }
enum log_level log_get_level(void) { return threshold; }

int log_level_parse(const char *s, enum log_level *out)
{
	static const struct { const char *name; enum log_level lvl; } names[] = {
		{ "error", LOG_LVL_ERROR }, { "warn", LOG_LVL_WARN },
		{ "info", LOG_LVL_INFO },   { "debug", LOG_LVL_DEBUG },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*out = names[i].lvl;
			return 0;
		}
	}
	return -EINVAL;
}

static const char *level_name(enum log_level level)
{
	switch (level) {
	case LOG_LVL_ERROR: return "error";
	case LOG_LVL_WARN: return "warn";
	case LOG_LVL_INFO: return "info";
	default: return "debug";
	}
}

int log_stderr_is_journal(const char *journal_stream, int fd)
{
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	if (!journal_stream || sscanf(journal_stream, "%llu:%llu%c", &dev, &ino, &tail) != 2)
		return 0;
	if (fstat(fd, &st) != 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static void style_detect(void)
{
	/* systemd sets JOURNAL_STREAM to the dev:ino of the stream it connects
	 * to stdout/stderr; stderr may since have been redirected elsewhere. */
	style_env = log_stderr_is_journal(getenv("JOURNAL_STREAM"), STDERR_FILENO) ? LOG_STYLE_JOURNAL
										  : LOG_STYLE_TIME;
}

void log_set_style(int s) { style = s; }

int log_get_style(void)
{
	if (style >= 0)
		return style;
	pthread_once(&style_once, style_detect);
	return style_env;
}

int log_format_prefix(char *out, size_t outlen, enum log_level level, int s, const struct timespec *ts)
{
	struct tm tm;
	time_t t;

	if (s == LOG_STYLE_JOURNAL)
		return snprintf(out, outlen, "<%d>", (int)level);
	t = ts->tv_sec;
	if (!gmtime_r(&t, &tm))
		memset(&tm, 0, sizeof(tm));
	return snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ", tm.tm_year + 1900,
			tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts->tv_nsec / 1000000L,
			level_name(level));
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts = { 0, 0 };
	va_list ap;
	int n;

	if (level > threshold)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	n = log_format_prefix(line, sizeof(line), level, log_get_style(), &ts);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	/* One write per line so concurrent threads do not interleave. */
	fprintf(stderr, "%s\n", line);
}
