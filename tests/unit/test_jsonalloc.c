/* layers: common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonalloc.h"

/* A freed chunk comes back for a request of its size class, with room for
 * it; larger requests and chunks pass through to malloc and free. */
static void test_reuse(void **state)
{
	void *a, *b, *big;
	size_t before = jsonalloc_cached();

	(void)state;
	a = jsonalloc_malloc(40);
	assert_non_null(a);
	assert_true(malloc_usable_size(a) >= 40);
	memset(a, 1, 40);
	jsonalloc_free(a);
	assert_int_equal(jsonalloc_cached(), before + 1);
	b = jsonalloc_malloc(33); /* the same class (48-byte chunks) */
	assert_ptr_equal(a, b);
	assert_int_equal(jsonalloc_cached(), before);
	memset(b, 2, 33);
	jsonalloc_free(b);
	b = jsonalloc_malloc(100); /* another class: a new chunk */
	assert_ptr_not_equal(a, b);
	assert_true(malloc_usable_size(b) >= 100);
	jsonalloc_free(b);
	big = jsonalloc_malloc(JSONALLOC_MAX_CHUNK * 2);
	assert_non_null(big);
	memset(big, 3, JSONALLOC_MAX_CHUNK * 2);
	before = jsonalloc_cached();
	jsonalloc_free(big); /* not kept */
	assert_int_equal(jsonalloc_cached(), before);
	/* a chunk from plain malloc is taken as well, and one from the cache
	 * may go to plain free */
	a = malloc(24);
	jsonalloc_free(a);
	assert_int_equal(jsonalloc_cached(), before + 1);
	b = jsonalloc_malloc(20);
	assert_ptr_equal(a, b);
	free(b);
	jsonalloc_free(NULL);
}

/* At most JSONALLOC_KEEP chunks a class are kept. */
static void test_cap(void **state)
{
	enum { N = JSONALLOC_KEEP + 50 };
	void **p = calloc(N, sizeof(*p));
	size_t before = jsonalloc_cached(), k;

	(void)state;
	assert_non_null(p);
	for (k = 0; k < N; k++)
		p[k] = jsonalloc_malloc(200);
	for (k = 0; k < N; k++)
		jsonalloc_free(p[k]);
	assert_true(jsonalloc_cached() - before <= JSONALLOC_KEEP);
	assert_true(jsonalloc_cached() - before >= JSONALLOC_KEEP - 1);
	free(p);
}

static void *thread_main(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100; i++)
		jsonalloc_free(jsonalloc_malloc((size_t)(16 + i % 300)));
	return (void *)(uintptr_t)jsonalloc_cached();
}

/* Another thread has its own cache, flushed when it ends. */
static void test_threads(void **state)
{
	pthread_t th;
	void *held = NULL;
	size_t before = jsonalloc_cached();

	(void)state;
	assert_int_equal(pthread_create(&th, NULL, thread_main, NULL), 0);
	assert_int_equal(pthread_join(th, &held), 0);
	assert_true((uintptr_t)held > 0);
	assert_int_equal(jsonalloc_cached(), before);
}

/* Installed, jansson works as before, and what it hands out is free()d. */
static void test_installed(void **state)
{
	json_t *v;
	char *s;

	(void)state;
	jsonalloc_install();
	jsonalloc_install();
	for (int i = 0; i < 200; i++) {
		v = json_pack("{s:s, s:[i, f, b], s:{s:s}}", "text", "some text", "n", i, 0.5, 1, "o",
			      "k", "v");
		assert_non_null(v);
		s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
		assert_non_null(s);
		assert_non_null(strstr(s, "\"text\":\"some text\""));
		free(s);
		json_decref(v);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reuse),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_installed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
