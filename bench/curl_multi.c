/* Benchmark baseline (b): the stack's own limit.
 *
 * A bare libcurl-multi loop driven by libuv (curl_multi_socket_action, the
 * same pattern as teacher_clients/engine.c) that POSTs a file of request
 * bodies to an OpenAI-compatible endpoint with a fixed number in flight,
 * HTTP/1.1 keep-alive, and stores nothing: replies are counted and dropped.
 *
 *   build/bench/curl_multi --url http://127.0.0.1:PORT/v1/chat/completions \
 *       --bodies FILE.jsonl [--concurrency 512] [--n N]
 *
 * FILE.jsonl holds one request body per line; each line is sent once (with
 * --n N larger than the file, lines are reused in turn). Prints one JSON
 * object on stdout: calls, ok, errors, wall_s, cpu_s (user+sys of this
 * process, all threads, from the first request to the last reply),
 * cpu_s_main (the same for the loop thread alone), calls_per_s,
 * cpu_s_per_1k. Exit status 1 on a setup error. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

struct bench;

struct sock {
	uv_poll_t poll;
	curl_socket_t fd;
	struct bench *b;
};

struct slot {
	CURL *easy;
	long status;
};

struct bench {
	uv_loop_t *loop;
	uv_timer_t timer;
	CURLM *multi;
	struct curl_slist *headers;
	const char *url;
	char **bodies;
	size_t *lens;
	size_t nbodies;
	long n;          /* calls to make */
	long sent;
	long done;
	long ok;
	long errors;
	long bytes_in;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static size_t write_fn(char *p, size_t sz, size_t nm, void *ud)
{
	struct bench *b = ud;

	(void)p;
	b->bytes_in += (long)(sz * nm);
	return sz * nm;
}

static void check_done(struct bench *b);

static void poll_cb(uv_poll_t *h, int status, int events)
{
	struct sock *s = h->data;
	int flags = 0;
	int running = 0;

	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(s->b->multi, s->fd, flags, &running);
	check_done(s->b);
}

static void sock_close_cb(uv_handle_t *h)
{
	free(h->data);
}

static int socket_fn(CURL *e, curl_socket_t fd, int what, void *ud, void *sp)
{
	struct bench *b = ud;
	struct sock *s = sp;
	int ev = 0;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			uv_poll_stop(&s->poll);
			curl_multi_assign(b->multi, fd, NULL);
			uv_close((uv_handle_t *)&s->poll, sock_close_cb);
		}
		return 0;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -1;
		s->fd = fd;
		s->b = b;
		if (uv_poll_init_socket(b->loop, &s->poll, fd) != 0) {
			free(s);
			return -1;
		}
		s->poll.data = s;
		curl_multi_assign(b->multi, fd, s);
	}
	if (what & CURL_POLL_IN)
		ev |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		ev |= UV_WRITABLE;
	uv_poll_start(&s->poll, ev, poll_cb);
	return 0;
}

static void timer_cb(uv_timer_t *t)
{
	struct bench *b = t->data;
	int running = 0;

	curl_multi_socket_action(b->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(b);
}

static int timer_fn(CURLM *m, long ms, void *ud)
{
	struct bench *b = ud;

	(void)m;
	if (ms < 0)
		uv_timer_stop(&b->timer);
	else
		uv_timer_start(&b->timer, timer_cb, (uint64_t)ms, 0);
	return 0;
}

static void send_next(struct bench *b, CURL *h)
{
	size_t i = (size_t)(b->sent % (long)b->nbodies);

	curl_easy_setopt(h, CURLOPT_POSTFIELDS, b->bodies[i]);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b->lens[i]);
	b->sent++;
	curl_multi_add_handle(b->multi, h);
}

static void check_done(struct bench *b)
{
	CURLMsg *m;
	int left = 0;

	for (m = curl_multi_info_read(b->multi, &left); m; m = curl_multi_info_read(b->multi, &left)) {
		CURL *h;
		long code = 0;

		if (m->msg != CURLMSG_DONE)
			continue;
		h = m->easy_handle;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		if (m->data.result == CURLE_OK && code == 200)
			b->ok++;
		else
			b->errors++;
		b->done++;
		curl_multi_remove_handle(b->multi, h);
		if (b->sent < b->n)
			send_next(b, h);
		else
			curl_easy_cleanup(h);
	}
	if (b->done >= b->n) {
		uv_timer_stop(&b->timer);
		uv_stop(b->loop);
	}
}

static int load_bodies(struct bench *b, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, n = 0, max = 0;
	ssize_t len;

	if (!f) {
		fprintf(stderr, "curl_multi: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &cap, f)) >= 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			continue;
		if (n == max) {
			size_t nmax = max ? max * 2 : 1024;
			char **nb = realloc(b->bodies, nmax * sizeof(*nb));
			size_t *nl;

			if (!nb)
				goto fail;
			b->bodies = nb;
			nl = realloc(b->lens, nmax * sizeof(*nl));
			if (!nl)
				goto fail;
			b->lens = nl;
			max = nmax;
		}
		b->bodies[n] = strdup(line);
		if (!b->bodies[n])
			goto fail;
		b->lens[n] = (size_t)len;
		n++;
	}
	free(line);
	fclose(f);
	b->nbodies = n;
	if (n == 0) {
		fprintf(stderr, "curl_multi: %s: no request bodies\n", path);
		return -1;
	}
	return 0;
fail:
	free(line);
	fclose(f);
	fprintf(stderr, "curl_multi: out of memory reading %s\n", path);
	return -1;
}

static void usage(void)
{
	fprintf(stderr, "usage: curl_multi --url URL --bodies FILE [--concurrency N] [--n CALLS]\n");
}

/* user+sys seconds of the calling thread (the loop thread: main). */
static double cpu_thread_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	struct bench b;
	const char *bodies = NULL;
	long conc = 512;
	long i;
	double t0, c0, c0_main, wall, cpu, cpu_main;
	int rc = 1;

	memset(&b, 0, sizeof(b));
	b.n = -1;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--url") && i + 1 < argc)
			b.url = argv[++i];
		else if (!strcmp(argv[i], "--bodies") && i + 1 < argc)
			bodies = argv[++i];
		else if (!strcmp(argv[i], "--concurrency") && i + 1 < argc)
			conc = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--n") && i + 1 < argc)
			b.n = strtol(argv[++i], NULL, 10);
		else {
			usage();
			return 2;
		}
	}
	if (!b.url || !bodies || conc < 1) {
		usage();
		return 2;
	}
	if (load_bodies(&b, bodies) != 0)
		return 1;
	if (b.n < 0)
		b.n = (long)b.nbodies;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;
	b.loop = uv_default_loop();
	uv_timer_init(b.loop, &b.timer);
	b.timer.data = &b;
	b.multi = curl_multi_init();
	curl_multi_setopt(b.multi, CURLMOPT_SOCKETFUNCTION, socket_fn);
	curl_multi_setopt(b.multi, CURLMOPT_SOCKETDATA, &b);
	curl_multi_setopt(b.multi, CURLMOPT_TIMERFUNCTION, timer_fn);
	curl_multi_setopt(b.multi, CURLMOPT_TIMERDATA, &b);
	curl_multi_setopt(b.multi, CURLMOPT_MAX_HOST_CONNECTIONS, conc);
	curl_multi_setopt(b.multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, conc);
	curl_multi_setopt(b.multi, CURLMOPT_MAXCONNECTS, conc);
	b.headers = curl_slist_append(NULL, "Content-Type: application/json");
	b.headers = curl_slist_append(b.headers, "Expect:");

	t0 = now_s();
	c0 = cpu_s();
	c0_main = cpu_thread_s();
	for (i = 0; i < conc && b.sent < b.n; i++) {
		CURL *h = curl_easy_init();

		if (!h)
			goto out;
		curl_easy_setopt(h, CURLOPT_URL, b.url);
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, b.headers);
		curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 120000L);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_fn);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
		send_next(&b, h);
	}
	if (b.n > 0)
		uv_run(b.loop, UV_RUN_DEFAULT);
	wall = now_s() - t0;
	cpu = cpu_s() - c0;
	cpu_main = cpu_thread_s() - c0_main;
	printf("{\"calls\":%ld,\"ok\":%ld,\"errors\":%ld,\"wall_s\":%.4f,\"cpu_s\":%.4f,\"cpu_s_main\":%.4f,"
	       "\"calls_per_s\":%.1f,\"cpu_s_per_1k\":%.5f,\"bytes_in\":%ld,\"concurrency\":%ld}\n",
	       b.done, b.ok, b.errors, wall, cpu, cpu_main, wall > 0 ? (double)b.done / wall : 0.0,
	       b.done > 0 ? cpu * 1000.0 / (double)b.done : 0.0, b.bytes_in, conc);
	rc = b.errors == 0 ? 0 : 1;
out:
	curl_multi_cleanup(b.multi);
	curl_slist_free_all(b.headers);
	for (i = 0; i < (long)b.nbodies; i++)
		free(b.bodies[i]);
	free(b.bodies);
	free(b.lens);
	curl_global_cleanup();
	return rc;
}
