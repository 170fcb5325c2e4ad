#include "daemon/supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/childenv.h"
#include "common/log.h"
#include "daemon/config.h"

extern char **environ;

#define SUP_URL_MAX 2048    /* bytes of a health URL */
#define SUP_STATUS_MAX 512  /* bytes read from a health reply to find its status line */
#define SUP_DRAIN_MS 500    /* after an exit, how long to wait for the rest of the output */
#define SUP_READ_CHUNK 16384
#define SUP_CMDLINE_LOG 1000 /* bytes of a command line in the "started" log line */

/* The life of one engine. STOPPING: SIGTERM sent, waiting for the exit;
 * BACKOFF: waiting to start again after a failure. */
enum ep_state { EP_IDLE, EP_STARTING, EP_HEALTHY, EP_STOPPING, EP_BACKOFF };

struct sup_ep;

/* One spawned child. It outlives its endpoint's interest in it: after the
 * exit the endpoint moves on (restarts) while the proc drains the last output
 * and closes its handles, then frees itself. */
struct sup_proc {
	struct supervisor *sup;
	struct sup_ep *ep;       /* for the name; endpoints outlive procs */
	struct sup_proc *next;   /* in sup->procs */
	uv_process_t process;
	uv_pipe_t pipes[2];      /* the child's stdout, stderr */
	uv_timer_t timer;        /* SIGKILL after the grace, then the drain */
	struct buf line[2];      /* the partial line of each pipe */
	bool dropping[2];        /* the current line is over line_max */
	bool pipe_open[2];       /* not yet uv_close'd */
	int open;                /* handles not yet closed */
	pid_t pid;
	bool exited;
	bool term_sent;
	bool timer_closed;
};

struct sup_ep {
	struct supervisor *sup;
	struct sup_ep *next;
	char *name;
	char **tmpl;
	char *model_path;
	char *url;               /* for the log */
	char *env_keep;          /* the one hidden variable this engine sees, or NULL */
	struct sockaddr_storage addr;
	char *request;           /* the whole health GET */
	size_t request_len;

	enum ep_state state;
	struct sup_proc *proc;   /* the running child, NULL when none */
	unsigned gen;            /* bumped at every spawn */
	unsigned fails;          /* consecutive failed checks while healthy */
	bool restart_now;        /* after the stop, start again without backoff */
	uint64_t backoff_ms;     /* the next backoff delay */
	uint64_t started_at;     /* uv_now of the spawn */
	int last_check_status;   /* HTTP status of the last check, 0 none */
	int last_check_err;      /* its error, 0 none */

	uv_timer_t health;       /* the poll while starting, then the interval check */
	uv_timer_t start_to;     /* start timeout */
	uv_timer_t backoff;
	uv_timer_t ready_to;     /* the deadline of a restart's ready callback */
	uv_timer_t check_to;     /* the deadline of one check */

	void (*ready)(void *ud, int status);
	void *ready_ud;

	/* One health check at a time; conn and wr complete before tcp's close
	 * callback, so a new check waits for !tcp_open. */
	uv_tcp_t tcp;
	uv_connect_t conn;
	uv_write_t wr;
	bool tcp_open;
	bool check_busy;
	unsigned check_gen;
	char rbuf[SUP_STATUS_MAX];
	size_t rlen;
};

struct supervisor {
	uv_loop_t *loop;
	struct supervisor_opts o;
	struct sup_ep *eps;      /* in add order */
	struct sup_proc *procs;
	char **env_hide;
	size_t n_env_hide;
	uv_timer_t self;         /* only so that close always completes asynchronously */
	int handles;             /* endpoint and self handles not yet closed */
	bool closing;
	bool done;
	void (*close_cb)(void *ud);
	void *close_ud;
	char readbuf[SUP_READ_CHUNK];
};

static int ep_spawn_or_backoff(struct sup_ep *ep);
static void ep_stop(struct sup_ep *ep);

void supervisor_opts_default(struct supervisor_opts *o)
{
	o->start_timeout_ms = 120000;
	o->start_poll_ms = 500;
	o->check_interval_ms = 5000;
	o->check_timeout_ms = 2000;
	o->fail_threshold = 3;
	o->backoff_min_ms = 1000;
	o->backoff_max_ms = 60000;
	o->stop_grace_ms = 10000;
	o->line_max = 1000;
}

/* ---- small helpers ------------------------------------------------------- */

static struct sup_ep *ep_find(const struct supervisor *sup, const char *name)
{
	for (struct sup_ep *ep = sup->eps; ep != NULL; ep = ep->next)
		if (strcmp(ep->name, name) == 0)
			return ep;
	return NULL;
}

static char **argv_dup(char *const *v)
{
	size_t n = 0;
	char **out;

	while (v[n] != NULL)
		n++;
	out = calloc(n + 1, sizeof(*out));
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		out[i] = strdup(v[i]);
		if (out[i] == NULL) {
			config_argv_free(out);
			return NULL;
		}
	}
	return out;
}

/* Expands tmpl with model_path (may be NULL). Returns 0, -EINVAL (logged
 * with name) or -ENOMEM. */
static int expand(const char *name, char *const *tmpl, const char *model_path, char ***out)
{
	struct config_subst vars[1] = { { "model_path", model_path } };
	char err[256] = "";
	int rc = config_command_expand(tmpl, vars, model_path != NULL ? 1 : 0, out, err, sizeof(err));

	if (rc == -EINVAL)
		log_error("%s: command: %s", name, err);
	return rc;
}

static double secs(uint64_t ms) { return (double)ms / 1000.0; }

static void describe_exit(char *dst, size_t n, int64_t status, int sig)
{
	if (sig != 0)
		snprintf(dst, n, "killed by signal %d (%s)", sig, strsignal(sig));
	else
		snprintf(dst, n, "exited with status %lld", (long long)status);
}

/* Parses http://HOST[:PORT][/PATH] with HOST an IP literal or "localhost"
 * (no DNS on the loop). Fills ep->addr, ep->request. Returns 0 or -EINVAL
 * (logged) / -ENOMEM. */
static int ep_parse_url(struct sup_ep *ep, const char *url)
{
	const char *p, *host_end, *hp_end;
	char host[64], hostport[128];
	const char *path;
	unsigned long port = 80;
	size_t hl;
	struct buf req;
	int rc;

	if (strlen(url) > SUP_URL_MAX) {
		log_error("%s: health URL longer than %d bytes", ep->name, SUP_URL_MAX);
		return -EINVAL;
	}
	if (strncasecmp(url, "http://", 7) != 0) {
		log_error("%s: health URL %s: only http:// is supported (the engine runs on loopback)",
			  ep->name, url);
		return -EINVAL;
	}
	p = url + 7;
	if (*p == '[') {
		host_end = strchr(p, ']');
		if (host_end == NULL)
			goto bad;
		hl = (size_t)(host_end - p - 1);
		if (hl == 0 || hl >= sizeof(host))
			goto bad;
		memcpy(host, p + 1, hl);
		host_end++;
	} else {
		host_end = p + strcspn(p, ":/");
		hl = (size_t)(host_end - p);
		if (hl == 0 || hl >= sizeof(host))
			goto bad;
		memcpy(host, p, hl);
	}
	host[hl] = '\0';
	hp_end = host_end;
	if (*hp_end == ':') {
		char *end;
		hp_end++;
		if (*hp_end < '0' || *hp_end > '9')
			goto bad;
		port = strtoul(hp_end, &end, 10);
		if (port == 0 || port > 65535 || (*end != '\0' && *end != '/'))
			goto bad;
		hp_end = end;
	}
	path = *hp_end == '\0' ? "/" : hp_end;
	for (const char *c = path; *c != '\0'; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			goto bad;
	if ((size_t)(hp_end - p) >= sizeof(hostport))
		goto bad;
	memcpy(hostport, p, (size_t)(hp_end - p));
	hostport[hp_end - p] = '\0';

	if (strcasecmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (strchr(host, ':') != NULL)
		rc = uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&ep->addr);
	else
		rc = uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&ep->addr);
	if (rc != 0) {
		log_error("%s: health URL %s: host %s is not an IP address or localhost "
			  "(no DNS lookups on the event loop)", ep->name, url, host);
		return -EINVAL;
	}

	buf_init(&req, SUP_URL_MAX + 512);
	rc = buf_printf(&req,
			"GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: medthinkd\r\nAccept: */*\r\n"
			"Connection: close\r\n\r\n",
			path, hostport);
	if (rc != 0) {
		buf_free(&req);
		return -ENOMEM;
	}
	ep->request_len = req.len;
	ep->request = buf_take(&req);
	return 0;
bad:
	log_error("%s: health URL %s: expected http://HOST[:PORT]/PATH", ep->name, url);
	return -EINVAL;
}

/* ---- closing and freeing ---------------------------------------------------- */

static void sup_maybe_done(struct supervisor *sup)
{
	void (*cb)(void *ud);
	void *ud;

	if (!sup->closing || sup->done || sup->handles > 0 || sup->procs != NULL)
		return;
	sup->done = true;
	cb = sup->close_cb;
	ud = sup->close_ud;
	while (sup->eps != NULL) {
		struct sup_ep *ep = sup->eps;
		sup->eps = ep->next;
		free(ep->name);
		config_argv_free(ep->tmpl);
		free(ep->model_path);
		free(ep->url);
		free(ep->env_keep);
		free(ep->request);
		free(ep);
	}
	for (size_t i = 0; i < sup->n_env_hide; i++)
		free(sup->env_hide[i]);
	free(sup->env_hide);
	free(sup);
	if (cb != NULL)
		cb(ud);
}

static void sup_handle_closed(uv_handle_t *h)
{
	struct supervisor *sup = h->data;

	sup->handles--;
	sup_maybe_done(sup);
}

static void ep_handle_closed(uv_handle_t *h)
{
	struct sup_ep *ep = h->data;

	if (h == (uv_handle_t *)&ep->tcp)
		ep->tcp_open = false;
	ep->sup->handles--;
	sup_maybe_done(ep->sup);
}

static void proc_handle_closed(uv_handle_t *h)
{
	struct sup_proc *proc = h->data;
	struct supervisor *sup = proc->sup;

	if (--proc->open > 0)
		return;
	for (struct sup_proc **pp = &sup->procs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == proc) {
			*pp = proc->next;
			break;
		}
	}
	buf_free(&proc->line[0]);
	buf_free(&proc->line[1]);
	free(proc);
	sup_maybe_done(sup);
}

/* ---- engine output -> log ----------------------------------------------------- */

static void proc_line_emit(struct sup_proc *proc, int i)
{
	struct buf *b = &proc->line[i];

	while (b->len > 0 && (b->base[b->len - 1] == '\r' || b->base[b->len - 1] == '\n'))
		b->base[--b->len] = '\0';
	/* Control characters could forge log lines or terminal escapes. */
	for (size_t k = 0; k < b->len; k++)
		if ((unsigned char)b->base[k] < ' ' && b->base[k] != '\t')
			b->base[k] = '?';
	if (b->len > 0 || proc->dropping[i])
		log_info("%s: %s%s", proc->ep->name, b->len > 0 ? b->base : "",
			 proc->dropping[i] ? " [line cut]" : "");
	buf_reset(b);
	proc->dropping[i] = false;
}

/* After the exit and both pipes, the timer goes too. */
static void proc_timer_maybe_close(struct sup_proc *proc)
{
	if (!proc->exited || proc->pipe_open[0] || proc->pipe_open[1] || proc->timer_closed)
		return;
	proc->timer_closed = true;
	uv_close((uv_handle_t *)&proc->timer, proc_handle_closed);
}

static void proc_pipe_close(struct sup_proc *proc, int i)
{
	if (!proc->pipe_open[i])
		return;
	proc->pipe_open[i] = false;
	if (proc->line[i].len > 0 || proc->dropping[i])
		proc_line_emit(proc, i);
	uv_close((uv_handle_t *)&proc->pipes[i], proc_handle_closed);
	proc_timer_maybe_close(proc);
}

static void proc_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct sup_proc *proc = h->data;

	(void)suggested;
	b->base = proc->sup->readbuf;
	b->len = sizeof(proc->sup->readbuf);
}

static void proc_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct sup_proc *proc = s->data;
	int i = s == (uv_stream_t *)&proc->pipes[0] ? 0 : 1;
	const char *p = b->base, *end;
	size_t max = proc->sup->o.line_max;

	if (nread < 0) {
		proc_pipe_close(proc, i);
		return;
	}
	end = p + nread;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t seg = (size_t)((nl != NULL ? nl : end) - p);
		size_t room = max - proc->line[i].len;
		size_t take = seg < room ? seg : room;

		if (take > 0 && buf_append(&proc->line[i], p, take) != 0)
			proc->dropping[i] = true; /* out of memory: keep going, cut */
		if (take < seg)
			proc->dropping[i] = true;
		if (nl == NULL)
			break;
		proc_line_emit(proc, i);
		p = nl + 1;
	}
}

/* ---- the child process ------------------------------------------------------- */

static void proc_signal(struct sup_proc *proc, int sig)
{
	/* The child leads its own process group (UV_PROCESS_DETACHED = setsid). */
	if (kill(-proc->pid, sig) != 0)
		uv_process_kill(&proc->process, sig);
}

static void proc_timer(uv_timer_t *t)
{
	struct sup_proc *proc = t->data;

	if (!proc->exited) {
		log_warn("%s: pid %d did not exit within %.1f s of SIGTERM; sending SIGKILL", proc->ep->name,
			 (int)proc->pid, secs(proc->sup->o.stop_grace_ms));
		proc_signal(proc, SIGKILL);
		return;
	}
	/* Drain over: something (a grandchild?) still holds the pipes. */
	proc_pipe_close(proc, 0);
	proc_pipe_close(proc, 1);
}

static void proc_term(struct sup_proc *proc)
{
	if (proc->exited || proc->term_sent)
		return;
	proc->term_sent = true;
	proc_signal(proc, SIGTERM);
	uv_timer_start(&proc->timer, proc_timer, proc->sup->o.stop_grace_ms, 0);
}

static void ep_on_exit(struct sup_ep *ep, struct sup_proc *proc, int64_t status, int sig);

static void proc_exit(uv_process_t *p, int64_t status, int sig)
{
	struct sup_proc *proc = p->data;
	struct sup_ep *ep = proc->ep;

	proc->exited = true;
	/* Whatever is left of its group (a wrapper's children) would hold the
	 * port or the pipes; the group id cannot be reused while members live. */
	kill(-proc->pid, SIGKILL);
	uv_close((uv_handle_t *)&proc->process, proc_handle_closed);
	uv_timer_stop(&proc->timer);
	if (proc->pipe_open[0] || proc->pipe_open[1])
		uv_timer_start(&proc->timer, proc_timer, SUP_DRAIN_MS, 0);
	else
		proc_timer_maybe_close(proc);
	if (ep->proc == proc) {
		ep->proc = NULL;
		ep_on_exit(ep, proc, status, sig);
	}
}

static void ep_log_started(struct sup_ep *ep, char **argv)
{
	struct buf line;

	buf_init(&line, SUP_CMDLINE_LOG);
	for (size_t i = 0; argv[i] != NULL; i++)
		if (buf_printf(&line, "%s%s", i > 0 ? " " : "", argv[i]) != 0)
			break;
	for (size_t k = 0; k < line.len; k++)
		if ((unsigned char)line.base[k] < ' ')
			line.base[k] = ' ';
	log_info("%s: started pid %d: %s%s", ep->name, (int)ep->proc->pid, line.base != NULL ? line.base : "",
		 argv[0] != NULL && line.len == 0 ? "..." : "");
	buf_free(&line);
}

/* Spawns the engine. Returns 0 (state STARTING) or an error (logged); the
 * caller decides what to do on error. */
static int ep_spawn(struct sup_ep *ep)
{
	struct supervisor *sup = ep->sup;
	uv_process_options_t opts;
	uv_stdio_container_t stdio[3];
	struct sup_proc *proc = NULL;
	char **argv = NULL, **env = NULL;
	int rc;

	rc = expand(ep->name, ep->tmpl, ep->model_path, &argv);
	if (rc != 0)
		goto out;
	rc = childenv_build(environ, (const char *const *)sup->env_hide, sup->n_env_hide, ep->env_keep, &env);
	if (rc != 0)
		goto out;
	proc = calloc(1, sizeof(*proc));
	if (proc == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	proc->sup = sup;
	proc->ep = ep;
	buf_init(&proc->line[0], sup->o.line_max);
	buf_init(&proc->line[1], sup->o.line_max);
	for (int i = 0; i < 2; i++) {
		uv_pipe_init(sup->loop, &proc->pipes[i], 0);
		proc->pipes[i].data = proc;
		proc->pipe_open[i] = true;
	}
	uv_timer_init(sup->loop, &proc->timer);
	proc->timer.data = proc;
	proc->process.data = proc;
	proc->open = 4;
	proc->next = sup->procs;
	sup->procs = proc;

	memset(&opts, 0, sizeof(opts));
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&proc->pipes[0];
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&proc->pipes[1];
	opts.exit_cb = proc_exit;
	opts.file = argv[0];
	opts.args = argv;
	opts.env = env;
	opts.stdio = stdio;
	opts.stdio_count = 3;
	opts.flags = UV_PROCESS_DETACHED; /* own session: signals reach the group */
	rc = uv_spawn(sup->loop, &proc->process, &opts);
	if (rc != 0) {
		log_error("%s: cannot start %s: %s", ep->name, argv[0], uv_strerror(rc));
		proc->exited = true;
		uv_close((uv_handle_t *)&proc->process, proc_handle_closed);
		proc_pipe_close(proc, 0);
		proc_pipe_close(proc, 1); /* and the timer */
		proc = NULL;
		goto out;
	}
	proc->pid = proc->process.pid;
	ep->proc = proc;
	ep->gen++;
	ep->fails = 0;
	ep->state = EP_STARTING;
	ep->started_at = uv_now(sup->loop);
	for (int i = 0; i < 2; i++)
		if (uv_read_start((uv_stream_t *)&proc->pipes[i], proc_alloc, proc_read) != 0)
			proc_pipe_close(proc, i);
	ep_log_started(ep, argv);
	rc = 0;
out:
	config_argv_free(argv);
	free(env);
	return rc;
}

/* ---- health checks ------------------------------------------------------------ */

static void ep_check_result(struct sup_ep *ep, int http_status, int err);

static void check_finish(struct sup_ep *ep, int http_status, int err)
{
	bool current = ep->check_gen == ep->gen;

	ep->check_busy = false;
	uv_timer_stop(&ep->check_to);
	if (ep->tcp_open && !uv_is_closing((uv_handle_t *)&ep->tcp))
		uv_close((uv_handle_t *)&ep->tcp, ep_handle_closed);
	if (current)
		ep_check_result(ep, http_status, err);
}

static void check_cancel(struct sup_ep *ep)
{
	if (!ep->check_busy)
		return;
	ep->check_gen = ep->gen - 1; /* not current: the result is dropped */
	check_finish(ep, 0, UV_ECANCELED);
}

static void check_timeout(uv_timer_t *t)
{
	struct sup_ep *ep = t->data;

	if (ep->check_busy)
		check_finish(ep, 0, UV_ETIMEDOUT);
}

static void check_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct sup_ep *ep = h->data;

	(void)suggested;
	b->base = ep->rbuf + ep->rlen;
	b->len = sizeof(ep->rbuf) - 1 - ep->rlen;
}

/* "HTTP/1.x NNN ..." -> NNN, or 0. */
static int parse_status_line(const char *s)
{
	if (strncmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' ')
		return 0;
	for (int i = 9; i < 12; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	if (s[12] != ' ' && s[12] != '\r' && s[12] != '\n')
		return 0;
	return (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
}

static void check_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct sup_ep *ep = s->data;

	(void)b;
	if (!ep->check_busy)
		return;
	if (nread < 0) {
		check_finish(ep, 0, nread == UV_EOF ? UV_EPROTO : (int)nread);
		return;
	}
	ep->rlen += (size_t)nread;
	ep->rbuf[ep->rlen] = '\0';
	if (memchr(ep->rbuf, '\n', ep->rlen) != NULL) {
		int st = parse_status_line(ep->rbuf);
		check_finish(ep, st, st == 0 ? UV_EPROTO : 0);
	} else if (ep->rlen >= sizeof(ep->rbuf) - 1) {
		check_finish(ep, 0, UV_EPROTO);
	}
}

static void check_written(uv_write_t *w, int status)
{
	struct sup_ep *ep = w->data;

	if (status < 0 && ep->check_busy)
		check_finish(ep, 0, status);
}

static void check_connected(uv_connect_t *c, int status)
{
	struct sup_ep *ep = c->data;
	uv_buf_t b = uv_buf_init(ep->request, (unsigned)ep->request_len);
	int rc;

	if (!ep->check_busy)
		return;
	if (status < 0) {
		check_finish(ep, 0, status);
		return;
	}
	ep->wr.data = ep;
	rc = uv_write(&ep->wr, (uv_stream_t *)&ep->tcp, &b, 1, check_written);
	if (rc == 0)
		rc = uv_read_start((uv_stream_t *)&ep->tcp, check_alloc, check_read);
	if (rc != 0)
		check_finish(ep, 0, rc);
}

static void check_start(struct sup_ep *ep)
{
	int rc;

	if (ep->check_busy || ep->tcp_open)
		return; /* one at a time; the last one is still closing */
	rc = uv_tcp_init(ep->sup->loop, &ep->tcp);
	if (rc != 0) {
		ep_check_result(ep, 0, rc);
		return;
	}
	ep->tcp.data = ep;
	ep->tcp_open = true;
	ep->sup->handles++;
	ep->check_busy = true;
	ep->check_gen = ep->gen;
	ep->rlen = 0;
	ep->conn.data = ep;
	uv_timer_start(&ep->check_to, check_timeout, ep->sup->o.check_timeout_ms, 0);
	rc = uv_tcp_connect(&ep->conn, &ep->tcp, (const struct sockaddr *)&ep->addr, check_connected);
	if (rc != 0)
		check_finish(ep, 0, rc);
}

static void health_tick(uv_timer_t *t)
{
	struct sup_ep *ep = t->data;

	if (ep->state == EP_STARTING || ep->state == EP_HEALTHY)
		check_start(ep);
}

static void ep_ready_fire(struct sup_ep *ep, int status)
{
	void (*cb)(void *ud, int status) = ep->ready;
	void *ud = ep->ready_ud;

	if (cb == NULL)
		return;
	ep->ready = NULL;
	ep->ready_ud = NULL;
	uv_timer_stop(&ep->ready_to);
	cb(ud, status);
}

static void check_describe(const struct sup_ep *ep, char *dst, size_t n, int http_status, int err)
{
	if (http_status != 0)
		snprintf(dst, n, "HTTP %d", http_status);
	else if (err == UV_ETIMEDOUT)
		snprintf(dst, n, "no answer within %.1f s", secs(ep->sup->o.check_timeout_ms));
	else if (err == UV_EPROTO)
		snprintf(dst, n, "not an HTTP/1.x reply");
	else
		snprintf(dst, n, "%s", uv_strerror(err));
}

static void ep_check_result(struct sup_ep *ep, int http_status, int err)
{
	const struct supervisor_opts *o = &ep->sup->o;
	bool ok = http_status == 200;
	char why[128];

	ep->last_check_status = http_status;
	ep->last_check_err = err;
	if (ep->state == EP_STARTING) {
		if (!ok)
			return; /* still loading; the start timeout decides */
		ep->state = EP_HEALTHY;
		ep->fails = 0;
		ep->backoff_ms = o->backoff_min_ms;
		uv_timer_stop(&ep->start_to);
		uv_timer_start(&ep->health, health_tick, o->check_interval_ms, o->check_interval_ms);
		log_info("%s: healthy after %.1f s (pid %d, %s)", ep->name,
			 secs(uv_now(ep->sup->loop) - ep->started_at), ep->proc != NULL ? (int)ep->proc->pid : 0,
			 ep->url);
		ep_ready_fire(ep, 0);
		return;
	}
	if (ep->state != EP_HEALTHY)
		return;
	if (ok) {
		if (ep->fails > 0)
			log_info("%s: health check answers again", ep->name);
		ep->fails = 0;
		return;
	}
	ep->fails++;
	check_describe(ep, why, sizeof(why), http_status, err);
	log_warn("%s: health check %u/%u failed: %s (%s)", ep->name, ep->fails, o->fail_threshold, why, ep->url);
	if (ep->fails >= o->fail_threshold) {
		log_warn("%s: not answering; restarting the engine", ep->name);
		ep_stop(ep);
	}
}

/* ---- the endpoint state machine ----------------------------------------------- */

static void ep_backoff_tick(uv_timer_t *t)
{
	struct sup_ep *ep = t->data;

	if (ep->state == EP_BACKOFF && !ep->sup->closing)
		(void)ep_spawn_or_backoff(ep);
}

static void ep_schedule_backoff(struct sup_ep *ep)
{
	const struct supervisor_opts *o = &ep->sup->o;
	uint64_t delay = ep->backoff_ms;

	ep->state = EP_BACKOFF;
	ep->backoff_ms = delay * 2 > o->backoff_max_ms ? o->backoff_max_ms : delay * 2;
	uv_timer_start(&ep->backoff, ep_backoff_tick, delay, 0);
	log_warn("%s: restarting in %.1f s", ep->name, secs(delay));
}

static void ep_start_timeout(uv_timer_t *t)
{
	struct sup_ep *ep = t->data;
	char why[128];

	if (ep->state != EP_STARTING)
		return;
	check_describe(ep, why, sizeof(why), ep->last_check_status, ep->last_check_err);
	log_error("%s: not healthy within %.0f s of start (last check: %s, %s); restarting", ep->name,
		  secs(ep->sup->o.start_timeout_ms), ep->last_check_status || ep->last_check_err ? why : "none",
		  ep->url);
	ep_stop(ep);
}

static void ep_ready_timeout(uv_timer_t *t)
{
	struct sup_ep *ep = t->data;

	log_warn("%s: not healthy within %.0f s of the restart", ep->name, secs(ep->sup->o.start_timeout_ms));
	ep_ready_fire(ep, UV_ETIMEDOUT);
}

/* Returns the spawn error (already logged and a backoff scheduled) or 0. */
static int ep_spawn_or_backoff(struct sup_ep *ep)
{
	const struct supervisor_opts *o = &ep->sup->o;
	int rc = ep_spawn(ep);

	if (rc != 0) {
		ep_schedule_backoff(ep);
		return rc;
	}
	ep->last_check_status = 0;
	ep->last_check_err = 0;
	uv_timer_start(&ep->health, health_tick, o->start_poll_ms, o->start_poll_ms);
	uv_timer_start(&ep->start_to, ep_start_timeout, o->start_timeout_ms, 0);
	return 0;
}

/* SIGTERM to the running child; its exit continues in ep_on_exit. */
static void ep_stop(struct sup_ep *ep)
{
	ep->state = EP_STOPPING;
	uv_timer_stop(&ep->health);
	uv_timer_stop(&ep->start_to);
	check_cancel(ep);
	if (ep->proc != NULL)
		proc_term(ep->proc);
}

static void ep_on_exit(struct sup_ep *ep, struct sup_proc *proc, int64_t status, int sig)
{
	struct supervisor *sup = ep->sup;
	uint64_t ran = uv_now(sup->loop) - ep->started_at;
	char how[96];

	uv_timer_stop(&ep->health);
	uv_timer_stop(&ep->start_to);
	check_cancel(ep);
	describe_exit(how, sizeof(how), status, sig);
	if (sup->closing) {
		log_info("%s: pid %d %s", ep->name, (int)proc->pid, how);
		ep->state = EP_IDLE;
		return;
	}
	if (ep->state == EP_STOPPING) {
		log_info("%s: pid %d stopped (%s) after %.1f s", ep->name, (int)proc->pid, how, secs(ran));
		if (ep->restart_now) {
			ep->restart_now = false;
			(void)ep_spawn_or_backoff(ep);
		} else {
			ep_schedule_backoff(ep);
		}
		return;
	}
	log_warn("%s: pid %d %s after %.1f s%s", ep->name, (int)proc->pid, how, secs(ran),
		 ep->state == EP_STARTING ? ", before it was healthy" : "");
	ep->restart_now = false;
	ep_schedule_backoff(ep);
}

/* ---- the public API ------------------------------------------------------------- */

int supervisor_new(uv_loop_t *loop, struct supervisor **out)
{
	struct supervisor *sup = calloc(1, sizeof(*sup));

	*out = NULL;
	if (sup == NULL)
		return -ENOMEM;
	sup->loop = loop;
	supervisor_opts_default(&sup->o);
	uv_timer_init(loop, &sup->self);
	sup->self.data = sup;
	sup->handles = 1;
	*out = sup;
	return 0;
}

int supervisor_set_opts(struct supervisor *sup, const struct supervisor_opts *o)
{
	if (o->start_timeout_ms == 0 || o->start_poll_ms == 0 || o->check_interval_ms == 0 ||
	    o->check_timeout_ms == 0 || o->fail_threshold == 0 || o->backoff_min_ms == 0 ||
	    o->backoff_max_ms < o->backoff_min_ms || o->stop_grace_ms == 0 || o->line_max < 16 ||
	    o->line_max > 1000000)
		return -EINVAL;
	sup->o = *o;
	return 0;
}

int supervisor_env_hide(struct supervisor *sup, const char *var)
{
	char **list, *copy;

	if (var[0] == '\0' || strchr(var, '=') != NULL)
		return -EINVAL;
	copy = strdup(var);
	if (copy == NULL)
		return -ENOMEM;
	list = realloc(sup->env_hide, (sup->n_env_hide + 1) * sizeof(*list));
	if (list == NULL) {
		free(copy);
		return -ENOMEM;
	}
	list[sup->n_env_hide++] = copy;
	sup->env_hide = list;
	return 0;
}

int supervisor_env_keep(struct supervisor *sup, const char *name, const char *var)
{
	struct sup_ep *ep = ep_find(sup, name);
	char *copy;

	if (ep == NULL)
		return -ENOENT;
	if (var[0] == '\0' || strchr(var, '=') != NULL)
		return -EINVAL;
	copy = strdup(var);
	if (copy == NULL)
		return -ENOMEM;
	free(ep->env_keep);
	ep->env_keep = copy;
	return 0;
}

int supervisor_add(struct supervisor *sup, const char *name, char *const *argv_template,
		   const char *model_path, const char *health_url)
{
	struct sup_ep *ep = NULL, **tail;
	char **probe = NULL;
	uv_timer_t *timers[5];
	int rc;

	if (sup->closing)
		return -ESHUTDOWN;
	if (ep_find(sup, name) != NULL)
		return -EEXIST;
	if (argv_template == NULL || argv_template[0] == NULL) {
		log_error("%s: empty command", name);
		return -EINVAL;
	}
	ep = calloc(1, sizeof(*ep));
	if (ep == NULL)
		return -ENOMEM;
	ep->sup = sup;
	ep->name = strdup(name);
	ep->tmpl = argv_dup(argv_template);
	ep->url = strdup(health_url);
	if (model_path != NULL)
		ep->model_path = strdup(model_path);
	if (ep->name == NULL || ep->tmpl == NULL || ep->url == NULL || (model_path != NULL && ep->model_path == NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	rc = expand(name, ep->tmpl, ep->model_path, &probe);
	if (rc != 0)
		goto out;
	rc = ep_parse_url(ep, health_url);
	if (rc != 0)
		goto out;

	ep->state = EP_IDLE;
	ep->backoff_ms = sup->o.backoff_min_ms;
	timers[0] = &ep->health;
	timers[1] = &ep->start_to;
	timers[2] = &ep->backoff;
	timers[3] = &ep->ready_to;
	timers[4] = &ep->check_to;
	for (int i = 0; i < 5; i++) {
		uv_timer_init(sup->loop, timers[i]);
		timers[i]->data = ep;
		sup->handles++;
	}
	for (tail = &sup->eps; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = ep;
	ep = NULL;
	rc = 0;
out:
	config_argv_free(probe);
	if (ep != NULL) {
		free(ep->name);
		config_argv_free(ep->tmpl);
		free(ep->model_path);
		free(ep->url);
		free(ep->request);
		free(ep);
	}
	return rc;
}

int supervisor_start_all(struct supervisor *sup)
{
	int first = 0;

	if (sup->closing)
		return -ESHUTDOWN;
	for (struct sup_ep *ep = sup->eps; ep != NULL; ep = ep->next) {
		int rc;

		if (ep->state != EP_IDLE)
			continue;
		rc = ep_spawn_or_backoff(ep);
		if (rc != 0 && first == 0)
			first = rc;
	}
	return first;
}

int supervisor_restart(struct supervisor *sup, const char *name, const char *new_model_path,
		       void (*ready)(void *ud, int status), void *ud)
{
	struct sup_ep *ep;
	char *path = NULL, **probe = NULL;
	int rc;

	if (sup->closing)
		return -ESHUTDOWN;
	ep = ep_find(sup, name);
	if (ep == NULL)
		return -ENOENT;
	if (ready != NULL && ep->ready != NULL)
		return -EBUSY;
	if (new_model_path != NULL) {
		path = strdup(new_model_path);
		if (path == NULL)
			return -ENOMEM;
		rc = expand(name, ep->tmpl, path, &probe);
		config_argv_free(probe);
		if (rc != 0) {
			free(path);
			return rc;
		}
		free(ep->model_path);
		ep->model_path = path;
	}
	log_info("%s: restart requested%s%s", name, path != NULL ? ", model " : "", path != NULL ? path : "");
	if (ready != NULL) {
		ep->ready = ready;
		ep->ready_ud = ud;
		uv_timer_start(&ep->ready_to, ep_ready_timeout, sup->o.start_timeout_ms, 0);
	}
	ep->backoff_ms = sup->o.backoff_min_ms;
	switch (ep->state) {
	case EP_IDLE:
	case EP_BACKOFF:
		uv_timer_stop(&ep->backoff);
		(void)ep_spawn_or_backoff(ep); /* a failure is retried; ready times out */
		break;
	case EP_STARTING:
	case EP_HEALTHY:
		ep->restart_now = true;
		ep_stop(ep);
		break;
	case EP_STOPPING:
		ep->restart_now = true;
		break;
	}
	return 0;
}

bool supervisor_is_healthy(const struct supervisor *sup, const char *name)
{
	const struct sup_ep *ep = ep_find(sup, name);

	return ep != NULL && ep->state == EP_HEALTHY && ep->proc != NULL;
}

pid_t supervisor_pid(const struct supervisor *sup, const char *name)
{
	const struct sup_ep *ep = ep_find(sup, name);

	return ep != NULL && ep->proc != NULL ? ep->proc->pid : 0;
}

const char *supervisor_model_path(const struct supervisor *sup, const char *name)
{
	const struct sup_ep *ep = ep_find(sup, name);

	return ep != NULL ? ep->model_path : NULL;
}

void supervisor_close(struct supervisor *sup, void (*cb)(void *ud), void *ud)
{
	if (sup == NULL || sup->closing)
		return;
	sup->closing = true;
	sup->close_cb = cb;
	sup->close_ud = ud;
	for (struct sup_ep *ep = sup->eps; ep != NULL; ep = ep->next)
		ep_ready_fire(ep, UV_ECANCELED);
	for (struct sup_ep *ep = sup->eps; ep != NULL; ep = ep->next) {
		check_cancel(ep);
		uv_close((uv_handle_t *)&ep->health, ep_handle_closed);
		uv_close((uv_handle_t *)&ep->start_to, ep_handle_closed);
		uv_close((uv_handle_t *)&ep->backoff, ep_handle_closed);
		uv_close((uv_handle_t *)&ep->ready_to, ep_handle_closed);
		uv_close((uv_handle_t *)&ep->check_to, ep_handle_closed);
		if (ep->proc != NULL) {
			log_info("%s: stopping pid %d", ep->name, (int)ep->proc->pid);
			ep->state = EP_STOPPING;
		}
	}
	for (struct sup_proc *p = sup->procs; p != NULL; p = p->next)
		proc_term(p);
	uv_close((uv_handle_t *)&sup->self, sup_handle_closed);
}
