/* layers: common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_cap),
		cmocka_unit_test(test_buf_take),
		cmocka_unit_test(test_log_level_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
