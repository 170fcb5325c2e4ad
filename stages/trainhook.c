#include "stages/trainhook.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/childenv.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "formats/export.h"
#include "stages/sets.h"
#include "store/store.h"

#define HOOK_LINE_MAX 2000     /* longest output line kept in the log */
#define HOOK_LINES_MAX 5000    /* output lines kept per run */
#define HOOK_GRACE_DEFAULT_S 10
#define HOOK_DRAIN_MS 500      /* after the exit, how long the pipes may stay open */

extern char **environ;

struct trainhook {
	uv_process_t proc;
	uv_pipe_t out, err;
	uv_timer_t timer;      /* the timeout */
	uv_timer_t grace;      /* SIGKILL after the grace; after the exit, the drain */
	int open;              /* handles not yet closed */
	bool pipe_open[2];     /* out, err not yet uv_close'd */
	bool exited;
	bool term_sent;
	bool grace_closed;
	pid_t pid;
	uint64_t grace_ms;
	struct store *st;
	int64_t job;
	struct buf line[2];
	int64_t lines;
	int64_t exit_status;
	int term_signal;
	int timed_out;
	void (*done)(void *, int, const char *);
	void *ud;
	char **argv;
};

static int write_line(void *ud, const char *line, size_t len)
{
	return fwrite(line, 1, len, ud) == len ? 0 : -EIO;
}

/* Writes the set file. The set is read page by page; this runs between two
 * phases, once per retrain, and writes to the daemon's own state dir. */
static int write_set(const struct trainhook_params *p, const char *path)
{
	char tmp[1200];
	FILE *f;
	int64_t cursor = -1;
	int n, rc = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	do {
		n = sets_export_page(p->store, p->job, p->dataset, atoi(p->set), &export_format_openai, true,
				     &cursor, 1000, write_line, f);
	} while (n > 0);
	if (n < 0)
		rc = n;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

static char *subst(const char *tmpl, const char *const vars[][2], size_t nvars)
{
	struct buf b;

	buf_init(&b, 8192);
	for (const char *s = tmpl; *s;) {
		size_t i;

		if (*s == '{' && s[1] == '{') {
			buf_append(&b, "{", 1);
			s += 2;
			continue;
		}
		if (*s == '}' && s[1] == '}') {
			buf_append(&b, "}", 1);
			s += 2;
			continue;
		}
		for (i = 0; i < nvars; i++) {
			size_t n = strlen(vars[i][0]);

			if (strncmp(s, vars[i][0], n) == 0) {
				buf_puts(&b, vars[i][1] ? vars[i][1] : "");
				s += n;
				break;
			}
		}
		if (i == nvars)
			buf_append(&b, s++, 1);
	}
	if (!b.base)
		buf_append(&b, "", 0);
	return buf_take(&b);
}

void trainhook_free(struct trainhook *h);

static void hook_closed(uv_handle_t *h)
{
	struct trainhook *t = h->data;
	char why[200];

	if (--t->open > 0)
		return;
	if (!t->done) {
		trainhook_free(t);
		return;
	}
	if (t->timed_out)
		snprintf(why, sizeof(why), "train hook timed out and was stopped");
	else if (t->term_signal)
		snprintf(why, sizeof(why), "train hook was killed by signal %d", t->term_signal);
	else
		snprintf(why, sizeof(why), "train hook exited with status %" PRId64, t->exit_status);
	t->done(t->ud, (t->exit_status == 0 && !t->term_signal && !t->timed_out) ? 0 : 1, why);
}

static void log_output(struct trainhook *t, const char *line)
{
	json_t *data;

	if (t->lines++ >= HOOK_LINES_MAX)
		return;
	data = json_pack("{s:s}", "message", line);
	if (data)
		store_event_add(t->st, t->job, "train", data, NULL);
	json_decref(data);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	(void)h;
	b->base = malloc(suggested);
	b->len = b->base ? suggested : 0;
}

/* After the exit and both pipes, the grace timer goes too. */
static void grace_maybe_close(struct trainhook *t)
{
	if (!t->exited || t->pipe_open[0] || t->pipe_open[1] || t->grace_closed)
		return;
	t->grace_closed = true;
	uv_close((uv_handle_t *)&t->grace, hook_closed);
}

static void pipe_close(struct trainhook *t, int i)
{
	struct buf *line = &t->line[i];

	if (!t->pipe_open[i])
		return;
	t->pipe_open[i] = false;
	if (line->len)
		log_output(t, line->base);
	buf_reset(line);
	uv_close((uv_handle_t *)(i ? &t->err : &t->out), hook_closed);
	grace_maybe_close(t);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct trainhook *t = s->data;
	int i = (uv_pipe_t *)s == &t->err;
	struct buf *line = &t->line[i];

	for (ssize_t k = 0; k < n; k++) {
		if (b->base[k] == '\n') {
			log_output(t, line->base ? line->base : "");
			buf_reset(line);
		} else if (buf_append(line, &b->base[k], 1) == -ENOBUFS) {
			log_output(t, line->base);
			buf_reset(line);
		}
	}
	free(b->base);
	if (n < 0)
		pipe_close(t, i);
}

/* The hook leads its own process group (UV_PROCESS_DETACHED = setsid):
 * a signal to the group reaches whatever it started. */
static void hook_signal(struct trainhook *t, int sig)
{
	if (kill(-t->pid, sig) != 0 && !t->exited)
		uv_process_kill(&t->proc, sig);
}

static void on_grace(uv_timer_t *tm)
{
	struct trainhook *t = tm->data;

	if (!t->exited) {
		log_warn("job_%" PRId64 ": train hook pid %d did not exit within %.1f s of SIGTERM; "
			 "sending SIGKILL to its process group",
			 t->job, (int)t->pid, (double)t->grace_ms / 1000.0);
		hook_signal(t, SIGKILL);
		return;
	}
	/* Drain over: something still holds the pipes open. */
	pipe_close(t, 0);
	pipe_close(t, 1);
}

static void hook_term(struct trainhook *t)
{
	if (t->exited || t->term_sent)
		return;
	t->term_sent = true;
	hook_signal(t, SIGTERM);
	uv_timer_start(&t->grace, on_grace, t->grace_ms, 0);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
	struct trainhook *t = p->data;

	t->exited = true;
	t->exit_status = status;
	t->term_signal = sig;
	/* Whatever is left of its group must not outlive it; the group id
	 * cannot be reused while a member lives. */
	kill(-t->pid, SIGKILL);
	uv_timer_stop(&t->timer);
	uv_close((uv_handle_t *)&t->timer, hook_closed);
	uv_close((uv_handle_t *)p, hook_closed);
	uv_timer_stop(&t->grace);
	if (t->pipe_open[0] || t->pipe_open[1])
		uv_timer_start(&t->grace, on_grace, HOOK_DRAIN_MS, 0);
	else
		grace_maybe_close(t);
}

static void on_timeout(uv_timer_t *tm)
{
	struct trainhook *t = tm->data;

	t->timed_out = 1;
	hook_term(t);
}

int trainhook_start(const struct trainhook_params *p,
		    void (*done)(void *ud, int status, const char *why), void *ud,
		    struct trainhook **out, char *err, size_t errlen)
{
	struct trainhook *t = NULL;
	char dir[1024], set_path[1100], out_dir[1100];
	uv_process_options_t o = { 0 };
	uv_stdio_container_t stdio[3];
	char **env = NULL;
	size_t argc = 0;
	int rc;

	*out = NULL;
	if (!p->argv || !p->argv[0]) {
		snprintf(err, errlen, "no [train] command configured");
		return -EINVAL;
	}
	snprintf(dir, sizeof(dir), "%s/jobs/job_%" PRId64, p->state_dir, p->job);
	snprintf(set_path, sizeof(set_path), "%s/set%s.jsonl", dir, p->set);
	snprintf(out_dir, sizeof(out_dir), "%s/train%s", dir, p->set);
	rc = fs_mkdir_p(out_dir);
	if (rc) {
		snprintf(err, errlen, "train hook: cannot create %s: %s", out_dir, strerror(-rc));
		return rc;
	}
	rc = write_set(p, set_path);
	if (rc) {
		snprintf(err, errlen, "train hook: cannot write %s: %s", set_path, strerror(-rc));
		return rc;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	while (p->argv[argc])
		argc++;
	t->argv = calloc(argc + 1, sizeof(char *));
	if (!t->argv) {
		free(t);
		return -ENOMEM;
	}
	{
		const char *vars[][2] = { { "{set}", p->set }, { "{set_path}", set_path },
					  { "{out_dir}", out_dir }, { "{model_path}", p->model_path } };

		for (size_t i = 0; i < argc; i++)
			t->argv[i] = subst(p->argv[i], vars, 4);
	}
	rc = childenv_build(environ, p->env_hide, p->n_env_hide, NULL, &env);
	if (rc) {
		trainhook_free(t);
		return rc;
	}
	t->st = p->store;
	t->job = p->job;
	t->grace_ms = (uint64_t)(p->kill_grace_s > 0 ? p->kill_grace_s : HOOK_GRACE_DEFAULT_S) * 1000;
	t->done = done;
	t->ud = ud;
	buf_init(&t->line[0], HOOK_LINE_MAX);
	buf_init(&t->line[1], HOOK_LINE_MAX);
	uv_pipe_init(p->loop, &t->out, 0);
	uv_pipe_init(p->loop, &t->err, 0);
	uv_timer_init(p->loop, &t->timer);
	uv_timer_init(p->loop, &t->grace);
	t->out.data = t->err.data = t->timer.data = t->grace.data = t->proc.data = t;
	t->pipe_open[0] = t->pipe_open[1] = true;
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&t->out;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&t->err;
	o.file = t->argv[0];
	o.args = t->argv;
	o.stdio = stdio;
	o.stdio_count = 3;
	o.env = env;
	o.exit_cb = on_exit_cb;
	o.flags = UV_PROCESS_DETACHED; /* own session and group: stops reach its children */
	rc = uv_spawn(p->loop, &t->proc, &o);
	free(env);
	if (rc) {
		snprintf(err, errlen, "train hook: cannot start %s: %s", t->argv[0], uv_strerror(rc));
		/* Nothing runs: close what was opened; t frees itself once closed. */
		t->done = NULL;
		t->open = 5;
		uv_close((uv_handle_t *)&t->out, hook_closed);
		uv_close((uv_handle_t *)&t->err, hook_closed);
		uv_close((uv_handle_t *)&t->timer, hook_closed);
		uv_close((uv_handle_t *)&t->grace, hook_closed);
		uv_close((uv_handle_t *)&t->proc, hook_closed);
		return rc;
	}
	t->pid = t->proc.pid;
	t->open = 5;
	uv_read_start((uv_stream_t *)&t->out, on_alloc, on_read);
	uv_read_start((uv_stream_t *)&t->err, on_alloc, on_read);
	if (p->timeout_s > 0)
		uv_timer_start(&t->timer, on_timeout, (uint64_t)p->timeout_s * 1000, 0);
	log_info("job_%" PRId64 ": train hook started: %s (set %s at %s)", p->job, t->argv[0], p->set,
		 set_path);
	*out = t;
	return 0;
}

void trainhook_kill(struct trainhook *h)
{
	if (h)
		hook_term(h);
}

void trainhook_free(struct trainhook *h)
{
	if (!h)
		return;
	for (size_t i = 0; h->argv && h->argv[i]; i++)
		free(h->argv[i]);
	free(h->argv);
	buf_free(&h->line[0]);
	buf_free(&h->line[1]);
	free(h);
}
