/* layers: common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/buf.h"
#include "common/log.h"

static void test_buf_cap(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_append(&b, "12345", 5), 0);
	assert_int_equal(buf_append(&b, "6789", 4), -ENOBUFS);
	assert_int_equal(b.len, 5);
	assert_string_equal(b.base, "12345");
	assert_int_equal(buf_printf(&b, "%d", 678), 0);
	assert_string_equal(b.base, "12345678");
	assert_int_equal(buf_puts(&b, "x"), -ENOBUFS);
	buf_consume(&b, 3);
	assert_string_equal(b.base, "45678");
	buf_free(&b);
	buf_free(&b); /* twice is harmless */
}

static void test_buf_take(void **state)
{
	struct buf b;
	char *s;
	(void)state;
	buf_init(&b, 1 << 20);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(buf_printf(&b, "%04d", i), 0);
	assert_int_equal(b.len, 4000);
	s = buf_take(&b);
	assert_non_null(s);
	assert_int_equal(strlen(s), 4000);
	assert_null(b.base);
	free(s);
}

static void test_log_level_parse(void **state)
{
	enum log_level l;
	(void)state;
	assert_int_equal(log_level_parse("debug", &l), 0);
	assert_int_equal(l, LOG_LVL_DEBUG);
	assert_int_equal(log_level_parse("verbose", &l), -EINVAL);
}

/* Not under journald: a UTC timestamp and the level's name; under it: <N>. */
static void test_log_prefix_styles(void **state)
{
	struct timespec ts = { 1796634000, 123456789 }; /* 2026-12-07T09:00:00.123Z */
	char out[64];
	char js[64];
	struct stat st;
	FILE *f;
	int fd;
	(void)state;

	log_format_prefix(out, sizeof(out), LOG_LVL_INFO, LOG_STYLE_TIME, &ts);
	assert_string_equal(out, "2026-12-07T09:00:00.123Z info ");
	log_format_prefix(out, sizeof(out), LOG_LVL_WARN, LOG_STYLE_TIME, &ts);
	assert_string_equal(out, "2026-12-07T09:00:00.123Z warn ");
	log_format_prefix(out, sizeof(out), LOG_LVL_INFO, LOG_STYLE_JOURNAL, &ts);
	assert_string_equal(out, "<6>");
	log_format_prefix(out, sizeof(out), LOG_LVL_ERROR, LOG_STYLE_JOURNAL, &ts);
	assert_string_equal(out, "<3>");

	/* JOURNAL_STREAM must name the very file on the fd */
	f = tmpfile();
	assert_non_null(f);
	fd = fileno(f);
	assert_int_equal(fstat(fd, &st), 0);
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	assert_int_equal(log_stderr_is_journal(js, fd), 1);
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino + 1);
	assert_int_equal(log_stderr_is_journal(js, fd), 0);
	assert_int_equal(log_stderr_is_journal(NULL, fd), 0);
	assert_int_equal(log_stderr_is_journal("", fd), 0);
	assert_int_equal(log_stderr_is_journal("12:34x", fd), 0);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_cap),
		cmocka_unit_test(test_buf_take),
		cmocka_unit_test(test_log_level_parse),
		cmocka_unit_test(test_log_prefix_styles),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
