/* layers: daemon teacher_clients store common */
/* Fuzz target: the config loader (daemon/config.h). The input is written to
 * a file in a private temporary folder and loaded with config_load (the
 * daemon's own path; FUZZ_KEY is set so api_key_env can name a variable).
 * Checks: a failure leaves *out NULL and names the file in one line; a
 * loaded config dumps (config_dump) as INI that loads again and dumps the
 * same; command templates expand. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/config.h"
#include "tests/fuzz/fuzz.h"

static char dir[64];
static char path_in[128], path_again[128];

static void cleanup(void)
{
	unlink(path_in);
	unlink(path_again);
	rmdir(dir);
}

static void setup(void)
{
	if (dir[0])
		return;
	snprintf(dir, sizeof(dir), "/tmp/medthink-fuzz.XXXXXX");
	if (!mkdtemp(dir))
		fuzz_fail("mkdtemp: %s", strerror(errno));
	snprintf(path_in, sizeof(path_in), "%s/in.conf", dir);
	snprintf(path_again, sizeof(path_again), "%s/again.conf", dir);
	atexit(cleanup);
	setenv("FUZZ_KEY", "sk-fuzz", 1);
	unsetenv("MEDTHINK_SOCKET");
	log_set_level(LOG_LVL_ERROR);
}

static void write_file(const char *path, const void *data, size_t size)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		fuzz_fail("cannot write %s", path);
}

static char *dump(const struct config *cfg, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);

	fuzz_assert(f != NULL);
	fuzz_assert(config_dump(cfg, f) == 0);
	fuzz_assert(fclose(f) == 0);
	return text;
}

static void check_failure(int rc, const struct config *cfg, const char *err, const char *path)
{
	fuzz_assert(cfg == NULL);
	fuzz_assert(rc < 0);
	fuzz_assert(strncmp(err, path, strlen(path)) == 0);
	fuzz_assert(strchr(err, '\n') == NULL);
}

static void expand_commands(const struct config *cfg)
{
	const struct config_subst vars[] = {
		{"model_path", "/m"}, {"set", "1"}, {"set_path", "/s.jsonl"}, {"out_dir", "/o"},
		{"job_id", "job_1"}, {"port", "8091"}};
	char err[256];
	char **argv = NULL;
	size_t i;

	for (i = 0; i < cfg->n_students; i++) {
		if (!cfg->students[i].command)
			continue;
		if (config_command_expand(cfg->students[i].command, vars, 6, &argv, err, sizeof(err)) == 0)
			config_argv_free(argv);
		argv = NULL;
	}
	if (cfg->train.present && cfg->train.command &&
	    config_command_expand(cfg->train.command, vars, 6, &argv, err, sizeof(err)) == 0)
		config_argv_free(argv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg = (struct config *)1, *again = (struct config *)1;
	char err[1024];
	char *text = NULL, *text2 = NULL;
	size_t len = 0, len2 = 0, i;
	int rc;

	setup();
	write_file(path_in, data, size);
	memset(err, 'x', sizeof(err));
	rc = config_load(path_in, &cfg, err, sizeof(err));
	if (rc != 0) {
		check_failure(rc, cfg, err, path_in);
		return 0;
	}
	/* no teacher is fine: the daemon starts, jobs naming one are refused */
	fuzz_assert(cfg != NULL && cfg->n_teachers + cfg->n_students <= CONFIG_MAX_ENDPOINTS);
	for (i = 0; i < cfg->n_teachers; i++)
		fuzz_assert(config_teacher_find(cfg, cfg->teachers[i].name) != NULL);
	for (i = 0; i < cfg->n_students; i++)
		fuzz_assert(config_student_find(cfg, cfg->students[i].name) != NULL);
	expand_commands(cfg);

	/* What --check-config prints must load again, to the same config. */
	text = dump(cfg, &len);
	write_file(path_again, text, len);
	rc = config_load(path_again, &again, err, sizeof(err));
	if (rc != 0)
		fuzz_fail("the dump does not load again: %s\n--- dump:\n%s", err, text);
	text2 = dump(again, &len2);
	/* The dump names the file it came from; compare the rest. */
	{
		const char *a = strchr(text, '\n'), *b = strchr(text2, '\n');
		if (!a || !b || strcmp(a, b) != 0)
			fuzz_fail("dump not stable:\n%s\n--- vs:\n%s", text, text2);
	}
	config_free(again);
	free(text2);
	free(text);
	config_free(cfg);
	return 0;
}
