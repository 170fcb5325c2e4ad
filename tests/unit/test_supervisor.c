/* layers: daemon teacher_clients store common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/supervisor.h"

/* The fake engine: a python3 HTTP server that answers GET /v1/models with 200
 * (anything else 404) and appends its argv to ARGFILE at start. No braces in
 * the code: the template would take them for placeholders.
 * argv: PORT ARGFILE [words...] */
static const char FAKE[] =
	"import sys, http.server\n"
	"open(sys.argv[2], 'a').write(' '.join(sys.argv[3:]) + '\\n')\n"
	"class H(http.server.BaseHTTPRequestHandler):\n"
	"    def do_GET(s):\n"
	"        b = b'ok'\n"
	"        s.send_response(200 if s.path == '/v1/models' else 404)\n"
	"        s.send_header('Content-Length', str(len(b)))\n"
	"        s.end_headers()\n"
	"        s.wfile.write(b)\n"
	"    def log_message(s, *a): pass\n"
	"print('fake engine up', flush=True)\n"
	"http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n";

struct fx {
	uv_loop_t loop;
	struct supervisor *sup;
	char dir[64];
	char argfile[128];
	char logfile[128];
	char port[16];
	char url[128];
	char *tmpl[12];
	bool closed;
	int ready_calls;
	int ready_status;
	int saved_stderr;
	int fds; /* open at setup: none may leak */
};

static int free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static void tick(uv_timer_t *t) { (void)t; }

/* Runs the loop until pred(f) or ms pass; returns pred(f). */
static bool run_until(struct fx *f, bool (*pred)(struct fx *f), uint64_t ms)
{
	uv_timer_t t;
	uint64_t end;
	bool ok;

	uv_timer_init(&f->loop, &t);
	uv_timer_start(&t, tick, 10, 10);
	uv_update_time(&f->loop);
	end = uv_now(&f->loop) + ms;
	for (;;) {
		ok = pred(f);
		if (ok || uv_now(&f->loop) >= end)
			break;
		uv_run(&f->loop, UV_RUN_ONCE);
	}
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	return ok;
}

static bool never(struct fx *f) { (void)f; return false; }
static void run_for(struct fx *f, uint64_t ms) { (void)run_until(f, never, ms); }
static bool healthy(struct fx *f) { return supervisor_is_healthy(f->sup, "student.local"); }
static bool not_healthy(struct fx *f) { return !healthy(f); }
static bool got_ready(struct fx *f) { return f->ready_calls > 0; }
static bool closed(struct fx *f) { return f->closed; }

static void on_ready(void *ud, int status)
{
	struct fx *f = ud;

	f->ready_calls++;
	f->ready_status = status;
}

static void on_closed(void *ud) { ((struct fx *)ud)->closed = true; }

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *s = calloc(1, 1 << 20);
	size_t n;

	assert_non_null(s);
	if (fp == NULL)
		return s;
	n = fread(s, 1, (1 << 20) - 1, fp);
	s[n] = '\0';
	fclose(fp);
	return s;
}

/* Stderr (the log) goes to f->logfile between cap_begin and cap_end. */
static void cap_begin(struct fx *f)
{
	int fd = open(f->logfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	fflush(stderr);
	f->saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
}

static void cap_end(struct fx *f)
{
	if (f->saved_stderr < 0)
		return;
	fflush(stderr);
	dup2(f->saved_stderr, 2);
	close(f->saved_stderr);
	f->saved_stderr = -1;
	if (getenv("SHOWLOG") != NULL) { /* SHOWLOG=1 shows the captured log */
		char *s = slurp(f->logfile);
		fputs(s, stderr);
		free(s);
	}
}

static int count_lines(const char *path)
{
	char *s = slurp(path);
	int n = 0;

	for (char *p = s; *p != '\0'; p++)
		n += *p == '\n';
	free(s);
	return n;
}

static void fast_opts(struct fx *f)
{
	struct supervisor_opts o;

	supervisor_opts_default(&o);
	o.start_timeout_ms = 10000;
	o.start_poll_ms = 50;
	o.check_interval_ms = 200;
	o.check_timeout_ms = 300;
	o.backoff_min_ms = 100;
	o.backoff_max_ms = 400;
	o.stop_grace_ms = 500;
	assert_int_equal(supervisor_set_opts(f->sup, &o), 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->saved_stderr = -1;
	f->fds = count_fds();
	snprintf(f->dir, sizeof(f->dir), "/tmp/mt-sup.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->argfile, sizeof(f->argfile), "%s/argv", f->dir);
	snprintf(f->logfile, sizeof(f->logfile), "%s/log", f->dir);
	snprintf(f->port, sizeof(f->port), "%d", free_port());
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%s/v1/models", f->port);
	f->tmpl[0] = "python3";
	f->tmpl[1] = "-c";
	f->tmpl[2] = (char *)FAKE;
	f->tmpl[3] = f->port;
	f->tmpl[4] = f->argfile;
	f->tmpl[5] = "--model";
	f->tmpl[6] = "{model_path}";
	f->tmpl[7] = NULL;
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(supervisor_new(&f->loop, &f->sup), 0);
	fast_opts(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];
	int fds;

	cap_end(f);
	if (f->sup != NULL) {
		supervisor_close(f->sup, on_closed, f);
		assert_true(run_until(f, closed, 15000));
	}
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	fds = f->fds;
	free(f);
	assert_int_equal(count_fds(), fds);
	return 0;
}

/* Gone or a zombie (a reparented grandchild may wait for its reaper). */
static bool pid_gone(pid_t pid)
{
	char path[64], st[512];
	FILE *fp;
	char *p;
	bool zombie = false;

	if (kill(pid, 0) != 0 && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fp = fopen(path, "r");
	if (fp == NULL)
		return true;
	if (fgets(st, sizeof(st), fp) != NULL) {
		p = strrchr(st, ')');
		zombie = p != NULL && p[1] == ' ' && p[2] == 'Z';
	}
	fclose(fp);
	return zombie;
}

/* ---- tests ------------------------------------------------------------------- */

static void test_start_healthy(void **state)
{
	struct fx *f = *state;
	char *args;

	assert_int_equal(supervisor_add(f->sup, "student.local", f->tmpl, "/models/a.gguf", f->url), 0);
	assert_false(healthy(f));
	assert_int_equal(supervisor_pid(f->sup, "student.local"), 0);
	cap_begin(f);
	assert_int_equal(supervisor_start_all(f->sup), 0);
	assert_true(supervisor_pid(f->sup, "student.local") > 0);
	assert_true(run_until(f, healthy, 10000));
	cap_end(f);
	args = slurp(f->argfile);
	assert_non_null(strstr(args, "--model /models/a.gguf\n"));
	free(args);
	args = slurp(f->logfile);
	assert_non_null(strstr(args, "student.local: started pid "));
	assert_non_null(strstr(args, "student.local: fake engine up")); /* stdout captured */
	assert_non_null(strstr(args, "student.local: healthy after"));
	free(args);
	assert_string_equal(supervisor_model_path(f->sup, "student.local"), "/models/a.gguf");
	assert_false(supervisor_is_healthy(f->sup, "student.other"));
}

static void test_killed_restarts(void **state)
{
	struct fx *f = *state;
	pid_t pid, pid2;
	char *log;

	assert_int_equal(supervisor_add(f->sup, "student.local", f->tmpl, "/m1", f->url), 0);
	assert_int_equal(supervisor_start_all(f->sup), 0);
	assert_true(run_until(f, healthy, 10000));
	pid = supervisor_pid(f->sup, "student.local");
	cap_begin(f);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_true(run_until(f, not_healthy, 3000));
	assert_true(run_until(f, healthy, 10000));
	cap_end(f);
	pid2 = supervisor_pid(f->sup, "student.local");
	assert_true(pid2 > 0 && pid2 != pid);
	assert_true(pid_gone(pid));
	assert_int_equal(count_lines(f->argfile), 2);
	log = slurp(f->logfile);
	assert_non_null(strstr(log, "killed by signal 9"));
	assert_non_null(strstr(log, "restarting in 0.1 s"));
	free(log);
}

static void test_restart_new_model(void **state)
{
	struct fx *f = *state;
	pid_t pid;
	char *args;

	assert_int_equal(supervisor_add(f->sup, "student.local", f->tmpl, "/m/old.gguf", f->url), 0);
	assert_int_equal(supervisor_start_all(f->sup), 0);
	assert_true(run_until(f, healthy, 10000));
	pid = supervisor_pid(f->sup, "student.local");

	assert_int_equal(supervisor_restart(f->sup, "nope", NULL, on_ready, f), -ENOENT);
	assert_int_equal(supervisor_restart(f->sup, "student.local", "/m/new.gguf", on_ready, f), 0);
	/* a second one while the first waits for its ready */
	assert_int_equal(supervisor_restart(f->sup, "student.local", "/m/x", on_ready, f), -EBUSY);
	assert_string_equal(supervisor_model_path(f->sup, "student.local"), "/m/new.gguf");
	assert_false(healthy(f));
	assert_true(run_until(f, got_ready, 10000));
	assert_int_equal(f->ready_calls, 1);
	assert_int_equal(f->ready_status, 0);
	assert_true(healthy(f));
	assert_true(supervisor_pid(f->sup, "student.local") != pid);
	assert_true(pid_gone(pid));
	args = slurp(f->argfile);
	assert_string_equal(args, "--model /m/old.gguf\n--model /m/new.gguf\n");
	free(args);

	/* NULL keeps the path */
	f->ready_calls = 0;
	assert_int_equal(supervisor_restart(f->sup, "student.local", NULL, on_ready, f), 0);
	assert_true(run_until(f, got_ready, 10000));
	assert_int_equal(f->ready_status, 0);
	args = slurp(f->argfile);
	assert_non_null(strstr(args, "--model /m/new.gguf\n--model /m/new.gguf\n"));
	free(args);
}

/* A command that exits at once: restarted with growing delays, not in a loop. */
static void test_exits_at_once_backoff(void **state)
{
	struct fx *f = *state;
	char script[256], *log;
	char *tmpl[] = { "sh", "-c", script, NULL };
	struct supervisor_opts o;
	int n;

	supervisor_opts_default(&o); /* the real backoff: 1 s, 2 s, 4 s */
	o.start_poll_ms = 50;
	assert_int_equal(supervisor_set_opts(f->sup, &o), 0);
	snprintf(script, sizeof(script),
		 "echo start >> '%s'; echo \"secret=${{MT_SUP_SECRET:-hidden}}\"; echo dying >&2; exit 3",
		 f->argfile);
	setenv("MT_SUP_SECRET", "s3cret", 1);
	assert_int_equal(supervisor_env_hide(f->sup, "MT_SUP_SECRET"), 0);
	assert_int_equal(supervisor_env_hide(f->sup, "A=B"), -EINVAL);
	assert_int_equal(supervisor_add(f->sup, "student.local", tmpl, NULL, f->url), 0);
	cap_begin(f);
	assert_int_equal(supervisor_start_all(f->sup), 0);
	run_for(f, 3500); /* starts at 0, 1 and 3 s */
	cap_end(f);
	unsetenv("MT_SUP_SECRET");
	n = count_lines(f->argfile);
	assert_true(n >= 2 && n <= 4);
	assert_false(healthy(f));
	log = slurp(f->logfile);
	assert_non_null(strstr(log, "exited with status 3"));
	assert_non_null(strstr(log, "restarting in 1.0 s"));
	assert_non_null(strstr(log, "restarting in 2.0 s"));
	assert_non_null(strstr(log, "student.local: secret=hidden"));
	assert_non_null(strstr(log, "student.local: dying"));
	assert_null(strstr(log, "s3cret"));
	free(log);
}

/* A frozen engine (SIGSTOP) fails its checks; SIGTERM cannot reach it, so
 * SIGKILL after the grace, then a new engine. */
static void test_hung_engine_restarted(void **state)
{
	struct fx *f = *state;
	pid_t pid;
	char *log;

	assert_int_equal(supervisor_add(f->sup, "student.local", f->tmpl, "/m", f->url), 0);
	assert_int_equal(supervisor_start_all(f->sup), 0);
	assert_true(run_until(f, healthy, 10000));
	pid = supervisor_pid(f->sup, "student.local");
	cap_begin(f);
	assert_int_equal(kill(pid, SIGSTOP), 0);
	assert_true(run_until(f, not_healthy, 5000));
	assert_true(run_until(f, healthy, 15000));
	cap_end(f);
	assert_true(supervisor_pid(f->sup, "student.local") != pid);
	assert_true(pid_gone(pid));
	log = slurp(f->logfile);
	assert_non_null(strstr(log, "health check 1/3 failed"));
	assert_non_null(strstr(log, "health check 3/3 failed"));
	assert_non_null(strstr(log, "sending SIGKILL"));
	free(log);
}

/* Listening but 404: never healthy; ready gets UV_ETIMEDOUT. */
static void test_start_timeout(void **state)
{
	struct fx *f = *state;
	struct supervisor_opts o;
	char url[160], *log;

	supervisor_opts_default(&o);
	o.start_timeout_ms = 6000; /* python may take seconds to start on a loaded machine */
	o.start_poll_ms = 50;
	o.backoff_min_ms = 10000;
	assert_int_equal(supervisor_set_opts(f->sup, &o), 0);
	snprintf(url, sizeof(url), "http://localhost:%s/v1/nothing", f->port);
	assert_int_equal(supervisor_add(f->sup, "student.local", f->tmpl, "/m", url), 0);
	cap_begin(f);
	assert_int_equal(supervisor_restart(f->sup, "student.local", NULL, on_ready, f), 0); /* starts it */
	assert_true(run_until(f, got_ready, 15000));
	run_for(f, 300);
	cap_end(f);
	assert_int_equal(f->ready_status, UV_ETIMEDOUT);
	assert_false(healthy(f));
	log = slurp(f->logfile);
	assert_non_null(strstr(log, "not healthy within 6 s of start (last check: HTTP 404"));
	free(log);
}

static void test_close_kills_child(void **state)
{
	struct fx *f = *state;
	pid_t pid;

	assert_int_equal(supervisor_add(f->sup, "student.local", f->tmpl, "/m", f->url), 0);
	assert_int_equal(supervisor_start_all(f->sup), 0);
	assert_true(run_until(f, healthy, 10000));
	pid = supervisor_pid(f->sup, "student.local");
	/* a pending ready is cancelled by the close */
	assert_int_equal(supervisor_restart(f->sup, "student.local", NULL, on_ready, f), 0);
	supervisor_close(f->sup, on_closed, f);
	assert_int_equal(f->ready_calls, 1);
	assert_int_equal(f->ready_status, UV_ECANCELED);
	f->sup = NULL;
	assert_true(run_until(f, closed, 5000));
	assert_true(pid_gone(pid));
}

static void test_close_empty_and_idle(void **state)
{
	struct fx *f = *state;

	assert_int_equal(supervisor_add(f->sup, "student.local", f->tmpl, "/m", f->url), 0);
	supervisor_close(f->sup, on_closed, f);
	assert_false(f->closed); /* asynchronous */
	f->sup = NULL;
	assert_true(run_until(f, closed, 2000));
	supervisor_close(NULL, on_closed, f);
}

static void test_bad_input(void **state)
{
	struct fx *f = *state;
	char *empty[] = { NULL };
	char *nosuch[] = { "/nonexistent/engine-binary", "{model_path}", NULL };
	struct supervisor_opts o;

	cap_begin(f);
	assert_int_equal(supervisor_add(f->sup, "a", f->tmpl, "/m", "https://127.0.0.1:1/v1/models"), -EINVAL);
	assert_int_equal(supervisor_add(f->sup, "a", f->tmpl, "/m", "http://example.com/v1/models"), -EINVAL);
	assert_int_equal(supervisor_add(f->sup, "a", f->tmpl, "/m", "http://127.0.0.1:99999/v1"), -EINVAL);
	assert_int_equal(supervisor_add(f->sup, "a", f->tmpl, "/m", "http://127.0.0.1:1/a b"), -EINVAL);
	assert_int_equal(supervisor_add(f->sup, "a", f->tmpl, NULL, f->url), -EINVAL); /* {model_path} */
	assert_int_equal(supervisor_add(f->sup, "a", empty, "/m", f->url), -EINVAL);
	assert_int_equal(supervisor_add(f->sup, "a", f->tmpl, "/m", "http://[::1]:8080/v1/models"), 0);
	assert_int_equal(supervisor_add(f->sup, "a", f->tmpl, "/m", f->url), -EEXIST);
	assert_int_equal(supervisor_add(f->sup, "b", nosuch, "/m", "http://127.0.0.1/v1/models"), 0);
	supervisor_opts_default(&o);
	o.backoff_min_ms = 0;
	assert_int_equal(supervisor_set_opts(f->sup, &o), -EINVAL);
	/* "a" starts (and never gets healthy on [::1]:8080), "b" cannot spawn */
	assert_int_equal(supervisor_start_all(f->sup), UV_ENOENT);
	run_for(f, 200);
	cap_end(f);
	assert_true(supervisor_pid(f->sup, "a") > 0);
	assert_int_equal(supervisor_pid(f->sup, "b"), 0);
}

static void test_long_lines_cut(void **state)
{
	struct fx *f = *state;
	char script[256], *log, *p;
	char *tmpl[] = { "sh", "-c", script, NULL };
	struct supervisor_opts o;

	supervisor_opts_default(&o);
	o.line_max = 100;
	o.backoff_min_ms = 60000;
	assert_int_equal(supervisor_set_opts(f->sup, &o), 0);
	snprintf(script, sizeof(script),
		 "head -c 5000 /dev/zero | tr '\\000' x; echo; printf 'a\\033[31mb\\r\\n'; printf 'tail'");
	assert_int_equal(supervisor_add(f->sup, "student.local", tmpl, NULL, f->url), 0);
	cap_begin(f);
	assert_int_equal(supervisor_start_all(f->sup), 0);
	run_for(f, 700);
	cap_end(f);
	log = slurp(f->logfile);
	p = strstr(log, "student.local: xxx");
	assert_non_null(p);
	assert_true(strchr(p, '\n') - p < 100 + 40);
	assert_non_null(strstr(p, "[line cut]"));
	assert_non_null(strstr(log, "student.local: a?[31mb\n"));
	assert_non_null(strstr(log, "student.local: tail\n")); /* last line without newline */
	free(log);
}

/* A wrapper that leaves a child behind holding the pipes: the group is
 * killed when the wrapper exits, so the port and the pipes are freed. */
static void test_group_killed(void **state)
{
	struct fx *f = *state;
	char script[256], *s;
	char *tmpl[] = { "sh", "-c", script, NULL };
	struct supervisor_opts o;
	pid_t child;

	supervisor_opts_default(&o);
	o.backoff_min_ms = 60000;
	assert_int_equal(supervisor_set_opts(f->sup, &o), 0);
	snprintf(script, sizeof(script), "sleep 30 & echo $! > '%s'; exit 5", f->argfile);
	assert_int_equal(supervisor_add(f->sup, "student.local", tmpl, NULL, f->url), 0);
	cap_begin(f);
	assert_int_equal(supervisor_start_all(f->sup), 0);
	run_for(f, 800);
	cap_end(f);
	s = slurp(f->argfile);
	child = (pid_t)atoi(s);
	free(s);
	assert_true(child > 0);
	assert_true(pid_gone(child));
}

/* Polls until file holds a line, or ms pass. */
static bool file_ready(struct fx *f, const char *path, uint64_t ms)
{
	uint64_t waited = 0;

	for (;;) {
		char *s = slurp(path);
		bool ok = strchr(s, '\n') != NULL;

		free(s);
		if (ok || waited >= ms)
			return ok;
		run_for(f, 50);
		waited += 50;
	}
}

/* An engine sees no endpoint's key and no common provider key, only its
 * own: the filter is common/childenv.h, the same as the train hook's. */
static void test_env_filtered(void **state)
{
	struct fx *f = *state;
	char script[1024], *env;
	char *tmpl[] = { "sh", "-c", script, NULL };

	setenv("MT_SUP_TEACHER_KEY", "sk-teacher", 1);
	setenv("MT_SUP_OTHER_STUDENT_KEY", "sk-other", 1);
	setenv("MT_SUP_OWN_KEY", "sk-own", 1);
	setenv("OPENAI_API_KEY", "sk-unconfigured", 1);
	setenv("ANTHROPIC_API_KEY", "sk-unconfigured", 1);
	setenv("MT_SUP_PLAIN", "kept", 1);
	snprintf(script, sizeof(script), "env > '%s.tmp' && mv '%s.tmp' '%s'; exec sleep 30", f->argfile,
		 f->argfile, f->argfile);
	assert_int_equal(supervisor_env_hide(f->sup, "MT_SUP_TEACHER_KEY"), 0);
	assert_int_equal(supervisor_env_hide(f->sup, "MT_SUP_OTHER_STUDENT_KEY"), 0);
	assert_int_equal(supervisor_env_hide(f->sup, "MT_SUP_OWN_KEY"), 0);
	assert_int_equal(supervisor_env_hide(f->sup, "BAD=NAME"), -EINVAL);
	assert_int_equal(supervisor_add(f->sup, "student.local", tmpl, NULL, f->url), 0);
	assert_int_equal(supervisor_env_keep(f->sup, "student.local", "MT_SUP_OWN_KEY"), 0);
	assert_int_equal(supervisor_env_keep(f->sup, "student.none", "MT_SUP_OWN_KEY"), -ENOENT);
	assert_int_equal(supervisor_env_keep(f->sup, "student.local", ""), -EINVAL);
	cap_begin(f);
	assert_int_equal(supervisor_start_all(f->sup), 0);
	assert_true(file_ready(f, f->argfile, 10000));
	cap_end(f);
	env = slurp(f->argfile);
	assert_null(strstr(env, "MT_SUP_TEACHER_KEY="));
	assert_null(strstr(env, "MT_SUP_OTHER_STUDENT_KEY="));
	assert_null(strstr(env, "OPENAI_API_KEY="));
	assert_null(strstr(env, "ANTHROPIC_API_KEY="));
	assert_non_null(strstr(env, "MT_SUP_OWN_KEY=sk-own\n"));
	assert_non_null(strstr(env, "MT_SUP_PLAIN=kept\n"));
	free(env);
	unsetenv("MT_SUP_TEACHER_KEY");
	unsetenv("MT_SUP_OTHER_STUDENT_KEY");
	unsetenv("MT_SUP_OWN_KEY");
	unsetenv("OPENAI_API_KEY");
	unsetenv("ANTHROPIC_API_KEY");
	unsetenv("MT_SUP_PLAIN");
}

/* An engine that ignores SIGTERM, and the child it started (which ignores
 * it too: ignored signals are inherited), are SIGKILLed as a group after
 * stop_grace_ms when the supervisor closes; the close waits for that. */
static void test_close_kills_stubborn_group(void **state)
{
	struct fx *f = *state;
	char script[1024], pidfile[160], *s;
	char *tmpl[] = { "sh", "-c", script, NULL };
	pid_t leader, child;

	snprintf(pidfile, sizeof(pidfile), "%s.leader", f->argfile);
	snprintf(script, sizeof(script),
		 "trap '' TERM; sleep 1000 & echo $! > '%s'; echo $$ > '%s.tmp' && mv '%s.tmp' '%s'; wait",
		 f->argfile, pidfile, pidfile, pidfile);
	assert_int_equal(supervisor_add(f->sup, "student.local", tmpl, NULL, f->url), 0);
	cap_begin(f);
	assert_int_equal(supervisor_start_all(f->sup), 0);
	assert_true(file_ready(f, pidfile, 10000));
	s = slurp(pidfile);
	leader = (pid_t)atoi(s);
	free(s);
	s = slurp(f->argfile);
	child = (pid_t)atoi(s);
	free(s);
	assert_true(leader > 0 && child > 0);
	supervisor_close(f->sup, on_closed, f);
	f->sup = NULL;
	run_for(f, 100);
	/* SIGTERM is ignored: both still run within the grace (500 ms) */
	assert_false(f->closed);
	assert_false(pid_gone(leader));
	assert_false(pid_gone(child));
	assert_true(run_until(f, closed, 10000));
	cap_end(f);
	assert_true(pid_gone(leader));
	/* The group got its SIGKILL before the close completed; the child may
	 * still be on its way out on a loaded machine (a hang guard, not a
	 * timing assertion). */
	for (int i = 0; i < 500 && !pid_gone(child); i++)
		usleep(10000);
	assert_true(pid_gone(child));
	s = slurp(f->logfile);
	assert_non_null(strstr(s, "did not exit within 0.5 s of SIGTERM; sending SIGKILL"));
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_start_healthy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_restarts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_new_model, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exits_at_once_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hung_engine_restarted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_kills_child, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_empty_and_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_lines_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_filtered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_kills_stubborn_group, setup, teardown),
	};

	uv_loop_t l;
	uv_signal_t sg;

	signal(SIGPIPE, SIG_IGN);
	/* libuv opens a process-wide signal pipe once, at the first signal
	 * watcher (the first spawn): open it now so the fd counts compare. */
	uv_loop_init(&l);
	uv_signal_init(&l, &sg);
	uv_close((uv_handle_t *)&sg, NULL);
	uv_run(&l, UV_RUN_DEFAULT);
	uv_loop_close(&l);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
