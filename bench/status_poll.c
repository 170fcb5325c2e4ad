/* status_poll: N clients poll GET /v1/jobs/{id} over the daemon's Unix
 * socket, each on its own keep-alive connection, one request at a time,
 * until S seconds pass or the job ends (a response whose state is done,
 * failed or cancelled). Prints one JSON line: the responses counted, their
 * latency p50, p99 and max in ms, and the errors.
 *
 *   status_poll --socket PATH --job ID [--clients 50] [--seconds S]
 *               [--interval-ms 50]
 *
 * Each client sends its next request interval-ms after its last response
 * (as bench.py's own poll does; the clients start spread over one
 * interval); --interval-ms 0 polls back to back, a stress test whose
 * latency is mostly the clients queueing behind each other.
 * Without --seconds it runs until the job ends (hang guard: 3600 s). One
 * thread, poll(2) over every connection: the client stays cheap next to
 * the daemon it measures. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 1024
#define RESP_MAX (1u << 20)
#define SAMPLES_MAX (20u * 1000u * 1000u)

struct cl {
	int fd;
	char *buf;
	size_t len;
	size_t sent, reqlen;
	double t0;
	double next; /* when to send; 0 while a request is out */
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int cl_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* 1 when buf holds a whole response (its length in *total), 0 not yet,
 * -1 malformed. */
static int resp_complete(const char *buf, size_t len, size_t *total, int *status)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4), *cl;
	size_t head, body;

	if (!end)
		return len > 65536 ? -1 : 0;
	head = (size_t)(end - buf) + 4;
	if (sscanf(buf, "HTTP/1.%*d %d", status) != 1)
		return -1;
	cl = memmem(buf, head, "Content-Length:", 15);
	if (!cl)
		return -1;
	body = strtoul(cl + 15, NULL, 10);
	if (head + body > RESP_MAX)
		return -1;
	if (len < head + body)
		return 0;
	*total = head + body;
	return 1;
}

static bool job_ended(const char *body, size_t len)
{
	static const char *const ends[] = { "\"state\":\"done\"", "\"state\":\"failed\"",
					    "\"state\":\"cancelled\"" };

	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++)
		if (memmem(body, len, ends[i], strlen(ends[i])))
			return true;
	return false;
}

static void usage(void)
{
	fprintf(stderr, "usage: status_poll --socket PATH --job ID [--clients N] [--seconds S]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *sock = NULL, *job = NULL;
	int nclients = 50;
	double seconds = 0, interval = 50, start, deadline;
	char req[512];
	int reqlen;
	struct cl *cls;
	struct pollfd *pfd;
	double *lat;
	size_t nlat = 0;
	unsigned long errors = 0, non200 = 0;
	bool ended = false;
	int live;

	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--socket") == 0)
			sock = argv[++i];
		else if (strcmp(argv[i], "--job") == 0)
			job = argv[++i];
		else if (strcmp(argv[i], "--clients") == 0)
			nclients = atoi(argv[++i]);
		else if (strcmp(argv[i], "--seconds") == 0)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--interval-ms") == 0)
			interval = atof(argv[++i]);
		else
			usage();
	}
	if (!sock || !job || nclients < 1 || nclients > MAX_CLIENTS || seconds < 0 || interval < 0)
		usage();
	reqlen = snprintf(req, sizeof(req), "GET /v1/jobs/%s HTTP/1.1\r\nHost: medthinkd\r\n\r\n", job);
	if (reqlen <= 0 || (size_t)reqlen >= sizeof(req))
		usage();
	cls = calloc((size_t)nclients, sizeof(*cls));
	pfd = calloc((size_t)nclients, sizeof(*pfd));
	lat = malloc(sizeof(double) * SAMPLES_MAX);
	if (!cls || !pfd || !lat)
		return 1;
	start = now_ms();
	deadline = start + (seconds > 0 ? seconds : 3600) * 1e3;
	for (int i = 0; i < nclients; i++) {
		cls[i].fd = cl_connect(sock);
		cls[i].buf = malloc(RESP_MAX);
		if (cls[i].fd < 0 || !cls[i].buf) {
			fprintf(stderr, "status_poll: cannot connect to %s: %s\n", sock, strerror(errno));
			return 1;
		}
		cls[i].reqlen = (size_t)reqlen;
		cls[i].sent = cls[i].reqlen; /* nothing out yet */
		cls[i].next = start + interval * i / nclients;
	}
	live = nclients;
	while (live > 0 && !ended && now_ms() < deadline) {
		double now = now_ms(), wake = now + 100;

		for (int i = 0; i < nclients; i++) {
			struct cl *c = &cls[i];

			if (c->fd >= 0 && c->next > 0 && c->next <= now) {
				c->next = 0;
				c->sent = 0;
				c->t0 = now;
			}
			if (c->next > 0 && c->next < wake)
				wake = c->next;
			pfd[i].fd = c->fd;
			pfd[i].events = c->fd < 0 ? 0 : c->sent < c->reqlen ? POLLOUT : POLLIN;
			pfd[i].revents = 0;
		}
		if (poll(pfd, (nfds_t)nclients, (int)(wake - now) + 1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < nclients; i++) {
			struct cl *c = &cls[i];
			ssize_t n;

			if (c->fd < 0 || !pfd[i].revents)
				continue;
			if (c->sent < c->reqlen) {
				n = send(c->fd, req + c->sent, c->reqlen - c->sent, MSG_NOSIGNAL);
				if (n > 0)
					c->sent += (size_t)n;
				else if (n < 0 && errno != EAGAIN)
					goto fail;
				continue;
			}
			n = recv(c->fd, c->buf + c->len, RESP_MAX - c->len, 0);
			if (n == 0 || (n < 0 && errno != EAGAIN))
				goto fail;
			if (n > 0) {
				size_t total = 0;
				int status = 0, rc;

				c->len += (size_t)n;
				rc = resp_complete(c->buf, c->len, &total, &status);
				if (rc < 0)
					goto fail;
				if (rc == 0)
					continue;
				if (nlat < SAMPLES_MAX)
					lat[nlat++] = now_ms() - c->t0;
				if (status != 200)
					non200++;
				else if (job_ended(c->buf, total))
					ended = seconds == 0;
				memmove(c->buf, c->buf + total, c->len - total);
				c->len -= total;
				c->t0 = now_ms();
				if (interval > 0) {
					c->next = c->t0 + interval;
				} else {
					c->sent = 0;
				}
			}
			continue;
fail:
			errors++;
			close(c->fd);
			c->fd = cl_connect(sock);
			c->len = 0;
			c->sent = c->reqlen;
			c->next = now_ms() + interval;
			if (c->fd < 0)
				live--;
		}
	}
	qsort(lat, nlat, sizeof(double), cmp_dbl);
	{
		double p50 = nlat ? lat[(size_t)(0.50 * (double)(nlat - 1) + 0.5)] : 0;
		double p99 = nlat ? lat[(size_t)(0.99 * (double)(nlat - 1) + 0.5)] : 0;
		double mx = nlat ? lat[nlat - 1] : 0;

		printf("{\"clients\":%d,\"interval_ms\":%g,\"seconds\":%.3f,\"count\":%zu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
		       "\"max_ms\":%.3f,\"errors\":%lu,\"non_200\":%lu,\"job_ended\":%s}\n",
		       nclients, interval, (now_ms() - start) / 1e3, nlat, p50, p99, mx, errors, non200,
		       ended ? "true" : "false");
	}
	for (int i = 0; i < nclients; i++) {
		if (cls[i].fd >= 0)
			close(cls[i].fd);
		free(cls[i].buf);
	}
	free(cls);
	free(pfd);
	free(lat);
	return 0;
}
