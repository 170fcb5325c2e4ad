/* layers: common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/err.h"
#include "common/hash.h"
#include "common/utf8.h"

/* 胃 is 3 bytes (E8 83 83); 😀 is 4 (F0 9F 98 80). */
static void test_prefix_boundaries(void **state)
{
	const char *s = "ab\xE8\x83\x83\xF0\x9F\x98\x80z";
	(void)state;
	assert_int_equal(utf8_prefix(s, strlen(s), 100), strlen(s));
	assert_int_equal(utf8_prefix(s, strlen(s), 2), 2);
	assert_int_equal(utf8_prefix(s, strlen(s), 3), 2); /* inside 胃 */
	assert_int_equal(utf8_prefix(s, strlen(s), 4), 2);
	assert_int_equal(utf8_prefix(s, strlen(s), 5), 5);
	assert_int_equal(utf8_prefix(s, strlen(s), 8), 5); /* inside the emoji */
	assert_int_equal(utf8_prefix(s, strlen(s), 9), 9);
	assert_int_equal(utf8_prefix(s, strlen(s), 0), 0);
}

static void test_copy_cuts_and_marks(void **state)
{
	char out[8];
	(void)state;
	/* 3 Chinese characters = 9 bytes; room for 7 bytes: 2 characters. */
	assert_int_equal(utf8_copy(out, sizeof(out), "\xE8\x83\x83\xE7\x97\x9B\xE7\x97\x85", NULL), 6);
	assert_string_equal(out, "\xE8\x83\x83\xE7\x97\x9B");
	assert_int_equal(utf8_check(out, strlen(out)), strlen(out));
	/* with an ellipsis: 7 - 3 = 4 bytes of text, one character */
	utf8_copy(out, sizeof(out), "\xE8\x83\x83\xE7\x97\x9B\xE7\x97\x85", "...");
	assert_string_equal(out, "\xE8\x83\x83...");
	/* short input is copied whole */
	utf8_copy(out, sizeof(out), "ok", "...");
	assert_string_equal(out, "ok");
	/* invalid bytes become '?' */
	utf8_copy(out, sizeof(out), "a\xFF" "b\xC0", NULL);
	assert_string_equal(out, "a?b?");
}

static void test_check_rejects(void **state)
{
	(void)state;
	assert_int_equal(utf8_check("\xC0\xAF", 2), 0);         /* overlong */
	assert_int_equal(utf8_check("a\xED\xA0\x80", 4), 1);    /* surrogate */
	assert_int_equal(utf8_check("ab\xF4\x90\x80\x80", 6), 2); /* > U+10FFFF */
	assert_int_equal(utf8_check("\xE8\x83", 2), 0);         /* truncated */
	assert_int_equal(utf8_check("\xF0\x9F\x98\x80", 4), 4);
	/* past ASCII runs (read eight bytes at a time): the offset of the
	 * first bad byte or NUL, wherever it falls in a word */
	for (size_t at = 1; at < 40; at++) {
		char s[48];

		memset(s, 'a', sizeof(s));
		s[at] = '\xFF';
		assert_int_equal(utf8_check(s, sizeof(s)), at);
		s[at] = '\0';
		assert_int_equal(utf8_check(s, sizeof(s)), at);
		s[at] = 'a';
		assert_int_equal(utf8_check(s, sizeof(s)), sizeof(s));
		assert_int_equal(utf8_check(s, at), at);
		memcpy(s + at, "\xE8\x83\x83", 3); /* a valid sequence inside the run */
		assert_int_equal(utf8_check(s, sizeof(s)), sizeof(s));
		assert_int_equal(utf8_check(s, at + 2), at); /* cut inside it */
	}
}

static void test_err_message_cut_on_boundary(void **state)
{
	struct mt_err e;
	char big[600];
	size_t n = 0;
	(void)state;
	while (n + 3 < sizeof(big)) {
		memcpy(big + n, "\xE8\x83\x83", 3);
		n += 3;
	}
	big[n] = '\0';
	assert_int_equal(mt_err_set(&e, -22, "invalid_spec", "name", "x%s", big), -22);
	assert_string_equal(e.code, "invalid_spec");
	assert_string_equal(e.field, "name");
	assert_true(strlen(e.message) < sizeof(e.message));
	assert_int_equal(utf8_check(e.message, strlen(e.message)), strlen(e.message));
	assert_non_null(strstr(e.message, "..."));
}

static void test_fnv(void **state)
{
	(void)state;
	/* Published FNV-1a 64 test vectors. */
	assert_true(fnv1a64(FNV1A64_INIT, "", 0) == UINT64_C(0xcbf29ce484222325));
	assert_true(fnv1a64(FNV1A64_INIT, "a", 1) == UINT64_C(0xaf63dc4c8601ec8c));
	assert_true(fnv1a64(FNV1A64_INIT, "foobar", 6) == UINT64_C(0x85944171f73967e8));
	assert_true(hash_mix64(0) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix_boundaries),
		cmocka_unit_test(test_copy_cuts_and_marks),
		cmocka_unit_test(test_check_rejects),
		cmocka_unit_test(test_err_message_cut_on_boundary),
		cmocka_unit_test(test_fnv),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
