/* layers: common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/childenv.h"

static size_t count(char **env)
{
	size_t n = 0;

	while (env[n] != NULL)
		n++;
	return n;
}

static int has(char **env, const char *entry)
{
	for (size_t i = 0; env[i] != NULL; i++)
		if (strcmp(env[i], entry) == 0)
			return 1;
	return 0;
}

static void test_filter(void **state)
{
	char *envp[] = { "PATH=/bin", "MY_TEACHER_KEY=t", "MY_TEACHER_KEY_SUFFIX=kept",
			 "OPENAI_API_KEY=o", "ANTHROPIC_API_KEY=a", "OWN_KEY=own", "HF_TOKEN=hf",
			 "NOEQUALS", "MY_TEACHER=kept", NULL };
	const char *hide[] = { "MY_TEACHER_KEY", "OWN_KEY" };
	char **env = NULL;
	(void)state;

	assert_int_equal(childenv_build(envp, hide, 2, NULL, &env), 0);
	assert_int_equal(count(env), 5);
	assert_true(has(env, "PATH=/bin"));
	assert_true(has(env, "MY_TEACHER_KEY_SUFFIX=kept")); /* whole names only */
	assert_true(has(env, "MY_TEACHER=kept"));
	assert_true(has(env, "HF_TOKEN=hf"));
	assert_true(has(env, "NOEQUALS"));
	assert_false(has(env, "OPENAI_API_KEY=o")); /* provider names, unconfigured */
	free(env);

	/* keep: an engine's own key, even when it is a provider name */
	assert_int_equal(childenv_build(envp, hide, 2, "OWN_KEY", &env), 0);
	assert_true(has(env, "OWN_KEY=own"));
	assert_false(has(env, "MY_TEACHER_KEY=t"));
	free(env);
	assert_int_equal(childenv_build(envp, NULL, 0, "OPENAI_API_KEY", &env), 0);
	assert_true(has(env, "OPENAI_API_KEY=o"));
	assert_true(has(env, "MY_TEACHER_KEY=t"));
	assert_false(has(env, "ANTHROPIC_API_KEY=a"));
	free(env);
}

static void test_edges(void **state)
{
	char *empty[] = { NULL };
	char **env = NULL;
	(void)state;

	assert_int_equal(childenv_build(empty, NULL, 0, NULL, &env), 0);
	assert_non_null(env);
	assert_null(env[0]);
	free(env);
	assert_int_equal(childenv_build(NULL, NULL, 0, NULL, &env), 0);
	assert_null(env[0]);
	free(env);
	assert_true(childenv_is_hidden("GEMINI_API_KEY=x", NULL, 0, NULL));
	assert_false(childenv_is_hidden("GEMINI_API_KEY_X=x", NULL, 0, NULL));
	for (size_t i = 0; childenv_provider_keys[i] != NULL; i++)
		assert_non_null(strstr(childenv_provider_keys[i], "_API_KEY"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter),
		cmocka_unit_test(test_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
