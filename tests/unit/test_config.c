/* layers: daemon teacher_clients store common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "common/buf.h"
#include "daemon/config.h"
#include "teacher_clients/client.h"
#include "teacher_clients/pool.h"

static char tmpdir[64];
static char cpath[128];

#define T_OK "[teacher.t]\nbase_url = http://127.0.0.1:1/v1\nmodel = m\n"

static const char *write_conf(const char *text)
{
	FILE *f;

	snprintf(cpath, sizeof(cpath), "%s/x.conf", tmpdir);
	f = fopen(cpath, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
	return cpath;
}

static struct config *load_ok(const char *text)
{
	struct config *cfg = NULL;
	char err[512];
	int rc = config_load(write_conf(text), &cfg, err, sizeof(err));

	if (rc != 0)
		fail_msg("unexpected error: %s", err);
	assert_non_null(cfg);
	return cfg;
}

/* Loads text and checks the exact message: the path followed by suffix. */
static void expect_err(const char *text, int want_rc, const char *suffix)
{
	struct config *cfg = (struct config *)1;
	char err[512];
	char want[512];
	int rc = config_load(write_conf(text), &cfg, err, sizeof(err));

	snprintf(want, sizeof(want), "%s%s", cpath, suffix);
	assert_int_equal(rc, want_rc);
	assert_null(cfg);
	assert_string_equal(err, want);
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_config.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	unsetenv("MEDTHINK_SOCKET");
	return 0;
}

static int group_teardown(void **state)
{
	char p[160];

	(void)state;
	snprintf(p, sizeof(p), "%s/x.conf", tmpdir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/dump.conf", tmpdir);
	unlink(p);
	rmdir(tmpdir);
	return 0;
}

static void test_shipped_conf_loads(void **state)
{
	struct config *cfg = NULL;
	char err[512];
	const struct config_endpoint *t, *s;

	(void)state;
	assert_int_equal(config_load("conf/medthinkd.conf", &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->daemon.socket, "./var/medthinkd.sock");
	assert_string_equal(cfg->daemon.state_dir, "./var");
	assert_int_equal(cfg->daemon.log_level, LOG_LVL_INFO);
	assert_int_equal(cfg->n_teachers, 1);
	assert_int_equal(cfg->n_students, 1);
	t = config_teacher_find(cfg, "sim");
	assert_non_null(t);
	assert_int_equal(t->kind, CONFIG_TEACHER);
	assert_string_equal(t->base_url, "http://127.0.0.1:8090/v1");
	assert_string_equal(t->model, "sim-teacher");
	assert_null(t->api_key_env);
	assert_null(config_endpoint_api_key(t));
	assert_null(config_teacher_find(cfg, "gpt4o")); /* commented out */
	s = config_student_find(cfg, "local");
	assert_non_null(s);
	assert_int_equal(s->kind, CONFIG_STUDENT);
	assert_string_equal(s->base_url, "http://127.0.0.1:8090/v1");
	assert_string_equal(s->model, "sim-student");
	assert_int_equal(s->max_concurrency, 8);
	assert_null(s->command);
	assert_false(cfg->train.present);
	config_free(cfg);
}

static void test_defaults(void **state)
{
	struct config *cfg;
	const struct config_endpoint *t, *s;

	(void)state;
	cfg = load_ok(T_OK "[student.s]\nbase_url = http://127.0.0.1:2/v1/\nmodel = st\n");
	assert_string_equal(cfg->daemon.socket, "./var/medthinkd.sock");
	assert_false(cfg->daemon.socket_from_env);
	assert_string_equal(cfg->daemon.state_dir, "./var");
	assert_null(cfg->daemon.prompts_dir); /* the built-in templates */
	assert_int_equal(cfg->daemon.log_level, LOG_LVL_INFO);
	assert_int_equal(cfg->daemon.max_body_mb, 1024);
	assert_int_equal(cfg->daemon.max_connections, 256);
	assert_int_equal(cfg->daemon.request_timeout_s, 30);
	assert_int_equal(cfg->daemon.idle_timeout_s, 60);
	assert_int_equal(cfg->daemon.stream_buffer_kb, 4096);
	t = &cfg->teachers[0];
	assert_string_equal(t->name, "t");
	assert_int_equal(t->max_concurrency, 64);
	assert_int_equal(t->rpm, 0);
	assert_int_equal(t->tpm, 0);
	assert_int_equal(t->timeout_s, 120);
	assert_int_equal(t->max_retries, 6);
	assert_true(t->price_in_per_mtok == 0.0);
	assert_true(t->price_out_per_mtok == 0.0);
	assert_false(t->json_schema);
	assert_int_equal(t->line, 1);
	s = &cfg->students[0];
	assert_int_equal(s->max_concurrency, 8);
	assert_string_equal(s->base_url, "http://127.0.0.1:2/v1"); /* trailing '/' removed */
	assert_null(s->command);
	assert_null(s->model_path);
	assert_false(cfg->train.present);
	assert_null(cfg->train.command);
	config_free(cfg);
}

static void test_daemon_limits(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok("[daemon]\nmax_connections = 16\nrequest_timeout_s = 2\nidle_timeout_s = 3\n"
		      "stream_buffer_kb = 64\n" T_OK);
	assert_int_equal(cfg->daemon.max_connections, 16);
	assert_int_equal(cfg->daemon.request_timeout_s, 2);
	assert_int_equal(cfg->daemon.idle_timeout_s, 3);
	assert_int_equal(cfg->daemon.stream_buffer_kb, 64);
	config_free(cfg);
}

/* [embedder.NAME]: the endpoint keys, found by name, dumped; a student's
 * command is refused there. */
static void test_embedder_section(void **state)
{
	struct config *cfg;
	const struct config_endpoint *e;

	(void)state;
	cfg = load_ok("[embedder.e5]\nbase_url = http://127.0.0.1:9/v1/\nmodel = e5-small\n"
		      "max_concurrency = 3\n");
	e = config_embedder_find(cfg, "e5");
	assert_non_null(e);
	assert_int_equal(e->kind, CONFIG_EMBEDDER);
	assert_string_equal(e->base_url, "http://127.0.0.1:9/v1");
	assert_string_equal(e->model, "e5-small");
	assert_int_equal(e->max_concurrency, 3);
	assert_null(config_student_find(cfg, "e5"));
	assert_int_equal(cfg->n_embedders, 1);
	config_free(cfg);
	expect_err("[embedder.e5]\nbase_url = http://127.0.0.1:9/v1\nmodel = e\ncommand = x\n", -EINVAL,
		   ":4: [embedder.e5] command: unknown key");
	expect_err("[embedder.e5]\nmodel = e\n", -EINVAL, ":1: [embedder.e5] base_url: required key is missing");
}

static void test_all_keys(void **state)
{
	struct config *cfg;
	const struct config_endpoint *t, *s;

	(void)state;
	cfg = load_ok("# a comment\n"
		      "[daemon]\r\n"
		      "  socket = /tmp/x.sock ; trailing comment\r\n"
		      "state_dir=/tmp/st\n"
		      "log_level = debug\n"
		      "max_body_mb = 16\n"
		      "prompts_dir = /tmp/p\n"
		      "\n"
		      "[ teacher.gpt-4o_x.1 ]  ; spaces inside brackets are trimmed\n"
		      "base_url = https://api.example.com/v1\n"
		      "model = gpt-4o\n"
		      "max_concurrency = 100000\n"
		      "rpm = 500\n"
		      "tpm = 200000\n"
		      "timeout_s = 30\n"
		      "max_retries = 0\n"
		      "price_in_per_mtok = 2.50\n"
		      "price_out_per_mtok = .125\n"
		      "json_schema = Yes\n"
		      "[student.s]\n"
		      "base_url = http://127.0.0.1:8091/v1\n"
		      "model = st\n"
		      "model_path = /m/a b.gguf\n"
		      "command = llama-server -m {model_path} --alias \"my model\" -e \"a\\\"b\" x{{y}}\n"
		      "[train]\n"
		      "command = ./train.sh {set} {set_path} {out_dir} {model_path}\n"
		      "timeout_s = 3600\n");
	assert_string_equal(cfg->daemon.socket, "/tmp/x.sock");
	assert_string_equal(cfg->daemon.state_dir, "/tmp/st");
	assert_string_equal(cfg->daemon.prompts_dir, "/tmp/p");
	assert_int_equal(cfg->daemon.log_level, LOG_LVL_DEBUG);
	assert_int_equal(cfg->daemon.max_body_mb, 16);
	t = config_teacher_find(cfg, "gpt-4o_x.1");
	assert_non_null(t);
	assert_int_equal(t->line, 9);
	assert_int_equal(t->max_concurrency, 100000);
	assert_int_equal(t->rpm, 500);
	assert_int_equal(t->tpm, 200000);
	assert_int_equal(t->timeout_s, 30);
	assert_int_equal(t->max_retries, 0);
	assert_true(t->price_in_per_mtok > 2.4999 && t->price_in_per_mtok < 2.5001);
	assert_true(t->price_out_per_mtok > 0.1249 && t->price_out_per_mtok < 0.1251);
	assert_true(t->json_schema);
	s = config_student_find(cfg, "s");
	assert_non_null(s);
	assert_string_equal(s->model_path, "/m/a b.gguf");
	assert_non_null(s->command);
	assert_string_equal(s->command[0], "llama-server");
	assert_string_equal(s->command[1], "-m");
	assert_string_equal(s->command[2], "{model_path}");
	assert_string_equal(s->command[3], "--alias");
	assert_string_equal(s->command[4], "my model");
	assert_string_equal(s->command[5], "-e");
	assert_string_equal(s->command[6], "a\"b");
	assert_string_equal(s->command[7], "x{{y}}");
	assert_null(s->command[8]);
	assert_true(cfg->train.present);
	assert_int_equal(cfg->train.timeout_s, 3600);
	assert_int_equal(cfg->train.kill_grace_s, CONFIG_TRAIN_KILL_GRACE_S); /* default */
	assert_string_equal(cfg->train.command[4], "{model_path}");
	assert_null(config_student_find(cfg, "t"));
	assert_null(config_teacher_find(cfg, "s"));
	config_free(cfg);
}

static void test_errors(void **state)
{
	static const struct {
		const char *text;
		const char *suffix;
	} cases[] = {
		{ T_OK "[bogus]\nx = 1\n",
		  ":4: [bogus]: unknown section (expected [daemon], [teacher.NAME], [student.NAME], [embedder.NAME], [train] or [web])" },
		{ T_OK "[teacher]\n",
		  ":4: [teacher]: unknown section (expected [daemon], [teacher.NAME], [student.NAME], [embedder.NAME], [train] or [web])" },
		{ "[daemon]\nsockett = x\n" T_OK, ":2: [daemon] sockett: unknown key" },
		{ T_OK "command = x\n", ":4: [teacher.t] command: unknown key" },
		{ T_OK "rpm = fast\n", ":4: [teacher.t] rpm: \"fast\" is not a whole number >= 0" },
		{ T_OK "rpm = -5\n", ":4: [teacher.t] rpm: \"-5\" is not a whole number >= 0" },
		{ T_OK "timeout_s = 10s\n", ":4: [teacher.t] timeout_s: \"10s\" is not a whole number >= 1" },
		{ T_OK "tpm = 1.5\n", ":4: [teacher.t] tpm: \"1.5\" is not a whole number >= 0" },
		{ T_OK "max_concurrency = 0\n",
		  ":4: [teacher.t] max_concurrency: \"0\" is out of range (1..100000)" },
		{ T_OK "max_retries = 99999999999999999999\n",
		  ":4: [teacher.t] max_retries: \"99999999999999999999\" is out of range (0..100)" },
		{ T_OK "price_in_per_mtok = 2,50\n",
		  ":4: [teacher.t] price_in_per_mtok: \"2,50\" is not a decimal number >= 0 (e.g. 2.50)" },
		{ T_OK "price_out_per_mtok = -1\n",
		  ":4: [teacher.t] price_out_per_mtok: \"-1\" is not a decimal number >= 0 (e.g. 2.50)" },
		{ T_OK "json_schema = maybe\n",
		  ":4: [teacher.t] json_schema: \"maybe\" is not a boolean (true|false|yes|no|1|0)" },
		{ "[teacher.t]\nbase_url = http://h/v1\n", ":1: [teacher.t] model: required key is missing" },
		{ T_OK "\n[student.s]\nmodel = m\n", ":5: [student.s] base_url: required key is missing" },
		{ T_OK "[train]\ntimeout_s = 5\n", ":4: [train] command: required key is missing" },
		{ "[daemon]\nlog_level = verbose\n" T_OK,
		  ":2: [daemon] log_level: \"verbose\" is not one of error|warn|info|debug" },
		{ T_OK "rpm = 1\nrpm = 2\n", ":5: [teacher.t] rpm: duplicate key (first set on line 4)" },
		{ T_OK "[teacher.t]\n", ":4: [teacher.t]: duplicate section (first on line 1)" },
		{ "[daemon]\n[daemon]\n" T_OK, ":2: [daemon]: duplicate section (first on line 1)" },
		{ "[teacher.t]\nbase_url = ftp://h/v1\nmodel = m\n",
		  ":2: [teacher.t] base_url: \"ftp://h/v1\" is not an http:// or https:// base URL "
		  "(e.g. http://127.0.0.1:8080/v1)" },
		{ "[teacher.t]\nbase_url = http://\nmodel = m\n",
		  ":2: [teacher.t] base_url: \"http://\" is not an http:// or https:// base URL "
		  "(e.g. http://127.0.0.1:8080/v1)" },
		{ T_OK "api_key_env = MT_TEST_SURELY_UNSET_VAR\n",
		  ":4: [teacher.t] api_key_env: environment variable MT_TEST_SURELY_UNSET_VAR is not set or empty "
		  "(it must hold the API key of teacher \"t\")" },
		{ T_OK "api_key_env = sk-proj-abc123\n",
		  ":4: [teacher.t] api_key_env: not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*, "
		  "at most 64 characters): give the NAME of the variable that holds the key, not the key" },
		{ T_OK "[student.s]\nbase_url = http://h/v1\nmodel = m\nmodel_path = /m\n"
		       "command = llama-server -m {model}\n",
		  ":8: [student.s] command: unknown placeholder {model} (allowed: {model_path})" },
		{ T_OK "[train]\ncommand = t.sh {set} {dir}\n",
		  ":5: [train] command: unknown placeholder {dir} (allowed: {set}, {set_path}, {out_dir}, "
		  "{model_path})" },
		{ T_OK "[train]\ncommand = t.sh {set\n",
		  ":5: [train] command: \"{\" without a closing \"}\" in \"{set\" (write {{ for a literal {)" },
		{ T_OK "[train]\ncommand = t.sh \"a b\n", ":5: [train] command: unterminated double quote" },
		{ T_OK "[train]\ncommand = \"\" x\n", ":5: [train] command: the program (first word) is empty" },
		{ T_OK "[student.s]\nbase_url = http://h/v1\nmodel = m\ncommand = llama-server -m {model_path}\n",
		  ":7: [student.s] command: uses {model_path} but model_path is not set" },
		{ "socket = x\n" T_OK, ":1: key \"socket\" is outside any section" },
		{ "[teacher.t]\nbase_url = http://a/v1 http://b/v1\nmodel = m\n",
		  ":2: [teacher.t] base_url: lists 2 URLs: a pool of replicas is for a [student.NAME] section only; "
		  "give one URL" },
		{ T_OK "[student.s]\nmodel = m\nbase_url = http://a/v1 ftp://b/v1\n",
		  ":6: [student.s] base_url: URL 2 of 2: \"ftp://b/v1\" is not an http:// or https:// base URL "
		  "(e.g. http://127.0.0.1:8080/v1)" },
		{ T_OK "[student.s]\nmodel = m\nbase_url = http://a/v1/ http://b/v1 http://a/v1\n",
		  ":6: [student.s] base_url: URL 3 of 3: \"http://a/v1\" is listed twice" },
		{ T_OK "[student.s]\nmodel = m\nbase_url = http://a/v1 http://b/v1\nmodel_path = /m\n"
		       "command = llama-server -m {model_path}\n",
		  ":8: [student.s] command: starts one engine, but base_url lists a pool of 2 URLs: start the "
		  "replicas outside medthinkd (docs/student-pool.md) or give one URL" },
		{ T_OK "just words\n",
		  ":4: syntax error: expected \"key = value\", \"[section]\" or a comment" },
		{ T_OK "= 5\n", ":4: [teacher.t]: syntax error: no key name before \"=\"" },
		{ T_OK "[student.s\n", ":4: syntax error: \"[\" without a closing \"]\"" },
		{ T_OK "[student.s] x\n", ":4: syntax error: unexpected text after \"]\"" },
		{ T_OK "[]\n", ":4: syntax error: empty section name \"[]\"" },
		{ T_OK "[student.a b]\n",
		  ":4: [student.a b]: bad endpoint name \"a b\" (1-64 characters of A-Z a-z 0-9 _ . -)" },
		{ T_OK "[student.]\n", ":4: [student.]: bad endpoint name \"\" (1-64 characters of A-Z a-z 0-9 _ . -)" },
		{ T_OK "rpm =\n", ":4: [teacher.t] rpm: empty value (remove the line to use the default)" },
		{ T_OK "model_path = ; only a comment\n", ":4: [teacher.t] model_path: unknown key" },
		{ "[daemon]\nsocket = /tmp/0123456789012345678901234567890123456789012345678901234567890123456789"
		  "012345678901234567890123456789.sock\n" T_OK,
		  ":2: [daemon] socket: \"/tmp/0123456789012345678901234567890123456789012345678901234567890123456789"
		  "012345678901234567890123456789.sock\" is too long for a Unix socket path (110 bytes, max 107)" },
		{ "[daemon]\nmax_body_mb = 0\n" T_OK, ":2: [daemon] max_body_mb: \"0\" is out of range (1..65536)" },
		{ "[daemon]\nmax_connections = 0\n" T_OK,
		  ":2: [daemon] max_connections: \"0\" is out of range (1..65536)" },
		{ "[daemon]\n\nrequest_timeout_s = 1h\n" T_OK,
		  ":3: [daemon] request_timeout_s: \"1h\" is not a whole number >= 1" },
		{ "[daemon]\nidle_timeout_s = 0\n" T_OK, ":2: [daemon] idle_timeout_s: \"0\" is out of range (1..86400)" },
		{ "[daemon]\nstream_buffer_kb = 8\n" T_OK,
		  ":2: [daemon] stream_buffer_kb: \"8\" is out of range (64..1048576)" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("case %zu: %s\n", i, cases[i].suffix);
		expect_err(cases[i].text, -EINVAL, cases[i].suffix);
	}
}

static void test_first_error_wins(void **state)
{
	(void)state;
	expect_err(T_OK "rpm = x\nbogus = 1\n[nope]\n", -EINVAL,
		   ":4: [teacher.t] rpm: \"x\" is not a whole number >= 0");
}

static void test_long_lines(void **state)
{
	char *text = malloc(20000);
	size_t n;

	(void)state;
	assert_non_null(text);
	/* A long line below the cap loads (inih's own buffer is 200 bytes). */
	n = (size_t)snprintf(text, 20000, T_OK "[student.s]\nbase_url = http://h/v1\nmodel = m\ncommand = x");
	for (int i = 0; i < 3900; i++)
		text[n++] = i % 100 == 99 ? ' ' : 'a';
	text[n++] = '\n';
	text[n] = '\0';
	{
		struct config *cfg = load_ok(text);
		assert_int_equal(strlen(cfg->students[0].command[1]), 99);
		config_free(cfg);
	}
	n = (size_t)snprintf(text, 20000, T_OK "model_path = ");
	for (int i = 0; i < 5000; i++)
		text[n++] = 'b';
	text[n++] = '\n';
	text[n] = '\0';
	expect_err(text, -EINVAL, ":4: line too long (5013 characters, max 4000)");
	free(text);
}

static void test_missing_file(void **state)
{
	struct config *cfg = (struct config *)1;
	char err[256];
	char want[256];
	char p[160];

	(void)state;
	snprintf(p, sizeof(p), "%s/nope.conf", tmpdir);
	assert_int_equal(config_load(p, &cfg, err, sizeof(err)), -ENOENT);
	assert_null(cfg);
	snprintf(want, sizeof(want), "%s: cannot open the configuration file: No such file or directory", p);
	assert_string_equal(err, want);
	assert_int_equal(config_load(tmpdir, &cfg, err, sizeof(err)), -EISDIR);
	assert_int_equal(config_load(p, &cfg, NULL, 0), -ENOENT);
}

static void test_socket_env_override(void **state)
{
	struct config *cfg;
	char err[256];

	(void)state;
	cfg = load_ok(T_OK);
	assert_int_equal(config_apply_env(cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->daemon.socket, "./var/medthinkd.sock");
	setenv("MEDTHINK_SOCKET", "/tmp/other.sock", 1);
	assert_int_equal(config_apply_env(cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->daemon.socket, "/tmp/other.sock");
	assert_true(cfg->daemon.socket_from_env);
	setenv("MEDTHINK_SOCKET",
	       "/tmp/0123456789012345678901234567890123456789012345678901234567890123456789"
	       "0123456789012345678901234567890123456789.sock",
	       1);
	assert_int_equal(config_apply_env(cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "MEDTHINK_SOCKET: "));
	assert_non_null(strstr(err, "is too long for a Unix socket path (120 bytes, max 107)"));
	assert_string_equal(cfg->daemon.socket, "/tmp/other.sock"); /* unchanged */
	unsetenv("MEDTHINK_SOCKET");
	config_free(cfg);
}

static char *read_all(FILE *f)
{
	long n;
	char *s;

	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	s = calloc(1, (size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	return s;
}

static void test_api_key_never_dumped(void **state)
{
	const char *secret = "sk-test-SECRET-0123456789";
	struct config *cfg;
	FILE *f;
	char *dump;

	(void)state;
	setenv("MT_TEST_API_KEY", secret, 1);
	cfg = load_ok(T_OK "api_key_env = MT_TEST_API_KEY\n");
	assert_string_equal(config_endpoint_api_key(&cfg->teachers[0]), secret);
	assert_string_equal(cfg->teachers[0].api_key_env, "MT_TEST_API_KEY");
	f = tmpfile();
	assert_non_null(f);
	assert_int_equal(config_dump(cfg, f), 0);
	dump = read_all(f);
	fclose(f);
	assert_null(strstr(dump, "SECRET"));
	assert_non_null(strstr(dump, "api_key_env = MT_TEST_API_KEY ; api key: (from $MT_TEST_API_KEY, set)"));
	free(dump);
	config_free(cfg);

	/* set but empty is the same error as unset */
	setenv("MT_TEST_API_KEY", "", 1);
	expect_err(T_OK "api_key_env = MT_TEST_API_KEY\n", -EINVAL,
		   ":4: [teacher.t] api_key_env: environment variable MT_TEST_API_KEY is not set or empty "
		   "(it must hold the API key of teacher \"t\")");
	/* a key with a newline would inject an HTTP header; refused, not echoed */
	setenv("MT_TEST_API_KEY", "sk-SECRET\r\nX-Evil: 1", 1);
	expect_err(T_OK "api_key_env = MT_TEST_API_KEY\n", -EINVAL,
		   ":4: [teacher.t] api_key_env: environment variable MT_TEST_API_KEY does not hold a usable API "
		   "key (control characters or over 8192 bytes)");
	unsetenv("MT_TEST_API_KEY");
}

/* No [teacher.NAME] section: the daemon starts (datasets can be imported
 * and inspected); a job naming a teacher is refused at submit. */
static void test_no_teacher(void **state)
{
	struct config *cfg, *b = NULL;
	char dpath[160], err[512];
	FILE *f;
	char *dump;

	(void)state;
	cfg = load_ok("[daemon]\nsocket = x\n");
	assert_int_equal(cfg->n_teachers, 0);
	assert_int_equal(cfg->n_students, 0);
	assert_null(config_teacher_find(cfg, "sim"));
	assert_null(cfg->daemon.prompts_dir);
	snprintf(dpath, sizeof(dpath), "%s/dump.conf", tmpdir);
	f = fopen(dpath, "w+");
	assert_non_null(f);
	assert_int_equal(config_dump(cfg, f), 0);
	dump = read_all(f);
	fclose(f);
	assert_non_null(strstr(dump, "; no [teacher.NAME] section"));
	assert_non_null(strstr(dump, "; prompts_dir not set: the built-in prompt templates"));
	if (config_load(dpath, &b, err, sizeof(err)) != 0)
		fail_msg("dump does not load: %s\n%s", err, dump);
	assert_int_equal(b->n_teachers, 0);
	free(dump);
	config_free(b);
	config_free(cfg);
	/* a student alone, and an empty file, load too */
	cfg = load_ok("[student.s]\nbase_url = http://h/v1\nmodel = m\n");
	assert_int_equal(cfg->n_teachers, 0);
	assert_int_equal(cfg->n_students, 1);
	config_free(cfg);
	cfg = load_ok("");
	assert_int_equal(cfg->n_teachers, 0);
	config_free(cfg);
}

/* The dump loads again and dumps the same. */
static void test_dump_round_trip(void **state)
{
	struct config *a, *b = NULL;
	char dpath[160];
	char err[512];
	FILE *f;
	char *d1, *d2;

	(void)state;
	setenv("MT_TEST_API_KEY", "k", 1);
	a = load_ok("[daemon]\nlog_level = warn\n" T_OK "api_key_env = MT_TEST_API_KEY\nprice_in_per_mtok = 0.15\n"
		    "[student.s]\nbase_url = http://h/v1\nmodel = m\nmodel_path = /m\n"
		    "command = srv -m {model_path} --name \"a b\" \"\" c\\d \"e\\\\f\"\n"
		    "[train]\ncommand = t.sh {set}\n");
	snprintf(dpath, sizeof(dpath), "%s/dump.conf", tmpdir);
	f = fopen(dpath, "w+");
	assert_non_null(f);
	assert_int_equal(config_dump(a, f), 0);
	d1 = read_all(f);
	fclose(f);
	if (config_load(dpath, &b, err, sizeof(err)) != 0)
		fail_msg("dump does not load: %s\n%s", err, d1);
	f = tmpfile();
	assert_non_null(f);
	assert_int_equal(config_dump(b, f), 0);
	d2 = read_all(f);
	fclose(f);
	/* the first line names the file */
	assert_string_equal(strchr(d1, '\n'), strchr(d2, '\n'));
	assert_string_equal(b->students[0].command[4], "a b");
	assert_string_equal(b->students[0].command[5], "");
	assert_string_equal(b->students[0].command[6], "c\\d");
	assert_string_equal(b->students[0].command[7], "e\\f");
	assert_true(b->teachers[0].price_in_per_mtok == a->teachers[0].price_in_per_mtok);
	free(d1);
	free(d2);
	config_free(a);
	config_free(b);
	unsetenv("MT_TEST_API_KEY");
}

static void test_command_expand(void **state)
{
	struct config *cfg;
	char **argv = NULL;
	char err[256];
	const struct config_subst vars[] = {
		{ "set", "2" }, { "set_path", "/o/set2.jsonl" }, { "out_dir", "/o/run 2" }, { "model_path", "/m/x" },
	};

	(void)state;
	cfg = load_ok(T_OK "[train]\ncommand = t.sh --set={set} {set_path} \"{out_dir}\" {{lit}} {model_path}\n");
	assert_int_equal(config_command_expand(cfg->train.command, vars, 4, &argv, err, sizeof(err)), 0);
	assert_string_equal(argv[0], "t.sh");
	assert_string_equal(argv[1], "--set=2");
	assert_string_equal(argv[2], "/o/set2.jsonl");
	assert_string_equal(argv[3], "/o/run 2");
	assert_string_equal(argv[4], "{lit}");
	assert_string_equal(argv[5], "/m/x");
	assert_null(argv[6]);
	config_argv_free(argv);
	argv = (char **)1;
	assert_int_equal(config_command_expand(cfg->train.command, vars, 3, &argv, err, sizeof(err)), -EINVAL);
	assert_null(argv);
	assert_string_equal(err, "command template: no value for {model_path}");
	config_argv_free(NULL);
	config_free(cfg);
}

static void test_inih_options_restored(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok(T_OK);
	assert_true(ini_allow_multiline);
	assert_true(ini_use_stack);
	assert_int_equal(ini_max_line, 200);
	config_free(cfg);
	config_free(NULL);
}

/* A config of nt teachers and ns students, one section each. */
static const char *endpoints_conf(struct buf *b, int nt, int ns)
{
	int i;

	buf_init(b, 1 << 20);
	for (i = 0; i < nt + ns; i++)
		assert_int_equal(buf_printf(b, "[%s.e%d]\nbase_url = http://127.0.0.1:1/v1\nmodel = m\n",
					    i < nt ? "teacher" : "student", i), 0);
	assert_int_equal(buf_append(b, "", 1), 0);
	return b->base;
}

/* Every endpoint a loaded config holds is accepted by the client. */
static void add_all(const struct config *cfg)
{
	uv_loop_t loop;
	struct client *c = NULL;
	size_t i, n = cfg->n_teachers + cfg->n_students;

	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(client_new(&loop, NULL, NULL, &c), 0);
	for (i = 0; i < n; i++) {
		const struct config_endpoint *ce = i < cfg->n_teachers ? &cfg->teachers[i]
								       : &cfg->students[i - cfg->n_teachers];
		struct client_endpoint_cfg ec = { .name = ce->name, .base_url = ce->base_url, .model = ce->model,
						  .kind = ce->kind == CONFIG_TEACHER ? CLIENT_TEACHER
										     : CLIENT_STUDENT };
		assert_int_equal(client_endpoint_add(c, &ec), 0);
	}
	assert_int_equal(client_endpoint_count(c), n);
	client_close(c, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* Regression: the config allowed 64 endpoints per kind while the client
 * took 64 in all, so 64 teachers + 1 student passed --check-config and
 * failed at start. Both now use one cap over all endpoints. */
/* A student's base_url may list several URLs (a pool, SPEC 9): stored
 * normalized (one space between, trailing '/' removed); at most
 * POOL_MAX_REPLICAS of them. */
static void test_pool_urls(void **state)
{
	struct config *cfg;
	struct buf b;
	char err[512];

	(void)state;
	cfg = load_ok(T_OK "[student.s]\nbase_url =  http://h1:8000/v1/   https://h2/v1\thttp://h3:1/v1\nmodel = m\n");
	assert_string_equal(cfg->students[0].base_url, "http://h1:8000/v1 https://h2/v1 http://h3:1/v1");
	config_free(cfg);
	buf_init(&b, 1 << 16);
	assert_int_equal(buf_puts(&b, T_OK "[student.s]\nmodel = m\nbase_url ="), 0);
	for (int i = 0; i <= POOL_MAX_REPLICAS; i++)
		assert_int_equal(buf_printf(&b, " http://10.0.0.%d:8000/v1", i), 0);
	assert_int_equal(buf_puts(&b, "\n"), 0);
	cfg = NULL;
	assert_int_not_equal(config_load(write_conf(b.base), &cfg, err, sizeof(err)), 0);
	assert_null(cfg);
	assert_non_null(strstr(err, ":6: [student.s] base_url: lists 33 URLs: a pool has at most 32 replicas"));
	buf_free(&b);
}

static void test_endpoint_cap_matches_client(void **state)
{
	struct config *cfg;
	struct buf b;
	char suffix[160];

	(void)state;
	assert_int_equal(CONFIG_MAX_ENDPOINTS, CLIENT_MAX_ENDPOINTS);
	cfg = load_ok(endpoints_conf(&b, 64, 1));
	assert_int_equal(cfg->n_teachers, 64);
	assert_int_equal(cfg->n_students, 1);
	add_all(cfg);
	config_free(cfg);
	buf_free(&b);

	cfg = load_ok(endpoints_conf(&b, CLIENT_MAX_ENDPOINTS - 1, 1));
	add_all(cfg);
	config_free(cfg);
	buf_free(&b);

	/* one more is refused at the section that goes over, in either kind */
	snprintf(suffix, sizeof(suffix),
		 ":%d: [student.e%d]: too many endpoint sections (max %d [teacher.NAME] and [student.NAME] together)",
		 3 * CLIENT_MAX_ENDPOINTS + 1, CLIENT_MAX_ENDPOINTS, CLIENT_MAX_ENDPOINTS);
	expect_err(endpoints_conf(&b, CLIENT_MAX_ENDPOINTS - 1, 2), -EINVAL, suffix);
	buf_free(&b);
	snprintf(suffix, sizeof(suffix),
		 ":%d: [teacher.e%d]: too many endpoint sections (max %d [teacher.NAME] and [student.NAME] together)",
		 3 * CLIENT_MAX_ENDPOINTS + 1, CLIENT_MAX_ENDPOINTS, CLIENT_MAX_ENDPOINTS);
	expect_err(endpoints_conf(&b, CLIENT_MAX_ENDPOINTS + 1, 0), -EINVAL, suffix);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shipped_conf_loads),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_daemon_limits),
		cmocka_unit_test(test_all_keys),
		cmocka_unit_test(test_embedder_section),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_first_error_wins),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_socket_env_override),
		cmocka_unit_test(test_api_key_never_dumped),
		cmocka_unit_test(test_dump_round_trip),
		cmocka_unit_test(test_no_teacher),
		cmocka_unit_test(test_command_expand),
		cmocka_unit_test(test_inih_options_restored),
		cmocka_unit_test(test_endpoint_cap_matches_client),
		cmocka_unit_test(test_pool_urls),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
