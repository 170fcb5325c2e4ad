/* layers: common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/base64.h"

/* RFC 4648 section 10 vectors, both ways. */
static void test_rfc_vectors(void **state)
{
	static const char *const vec[][2] = { { "", "" },	  { "f", "Zg==" },	   { "fo", "Zm8=" },
					      { "foo", "Zm9v" }, { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
					      { "foobar", "Zm9vYmFy" } };
	char enc[16];
	unsigned char dec[16];

	(void)state;
	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		size_t n = strlen(vec[i][0]);

		assert_int_equal(base64_len(n), strlen(vec[i][1]));
		assert_int_equal(base64_encode(vec[i][0], n, enc), strlen(vec[i][1]));
		assert_string_equal(enc, vec[i][1]);
		assert_int_equal(base64_decode(vec[i][1], strlen(vec[i][1]), dec, NULL), (long)n);
		assert_memory_equal(dec, vec[i][0], n);
	}
}

/* Every byte value survives the round trip. */
static void test_round_trip(void **state)
{
	unsigned char in[256], out[256];
	char enc[400];

	(void)state;
	for (int i = 0; i < 256; i++)
		in[i] = (unsigned char)i;
	for (size_t n = 0; n <= 256; n += 37) {
		size_t e = base64_encode(in, n, enc);

		assert_int_equal(base64_decode(enc, e, out, NULL), (long)n);
		assert_memory_equal(in, out, n);
	}
}

/* Bad input is refused with where it went wrong, never read past len. */
static void test_bad_input(void **state)
{
	unsigned char out[16];
	size_t bad = 99;

	(void)state;
	assert_int_equal(base64_decode("Zm9", 3, out, &bad), -1);
	assert_int_equal(bad, 3);                              /* length not a multiple of 4 */
	assert_int_equal(base64_decode("Zm!v", 4, out, &bad), -1);
	assert_int_equal(bad, 2);                              /* not in the alphabet */
	assert_int_equal(base64_decode("Z=9v", 4, out, &bad), -1);
	assert_int_equal(bad, 1);                              /* "=" inside the data */
	assert_int_equal(base64_decode("Zg==Zm8=", 8, out, &bad), -1);
	assert_int_equal(bad, 2);                              /* padding before the end */
	assert_int_equal(base64_decode("Z===", 4, out, &bad), -1); /* three "=" */
	assert_int_equal(base64_value('='), -1);
	assert_int_equal(base64_value('/'), 63);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc_vectors),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
