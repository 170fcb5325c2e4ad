#include "cli/http.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/buf.h"

void http_resp_init(struct http_resp *r, const char *method, const struct http_sink *sink)
{
	memset(r, 0, sizeof(*r));
	r->state = HTTP_RS_HEAD;
	if (sink)
		r->sink = *sink;
	r->head_only = method && strcmp(method, "HEAD") == 0;
}

bool http_resp_done(const struct http_resp *r) { return r->state == HTTP_RS_DONE; }

static int resp_fail(struct http_resp *r, int rc, const char *msg)
{
	snprintf(r->err, sizeof(r->err), "%s", msg);
	return rc;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Parses a decimal or hex number that must fill the whole string. */
static int parse_u64(const char *s, int base, uint64_t *out)
{
	uint64_t v = 0;
	int any = 0;

	for (; *s; s++) {
		int d;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			return -ERANGE;
		v = v * (uint64_t)base + (uint64_t)d;
		any = 1;
	}
	if (!any)
		return -EINVAL;
	*out = v;
	return 0;
}

/* The head is complete in r->line (NUL-terminated, CRLF or LF line ends). */
static int resp_parse_head(struct http_resp *r)
{
	char *save = NULL, *ln, *p;
	bool seen_len = false;
	uint64_t len = 0;

	ln = strtok_r(r->line, "\n", &save);
	if (!ln)
		return resp_fail(r, -EPROTO, "empty response");
	ln = trim(ln);
	if (strncmp(ln, "HTTP/1.", 7) != 0 || !ln[7] || ln[8] != ' ')
		return resp_fail(r, -EPROTO, "malformed status line");
	p = ln + 9;
	if (p[0] < '1' || p[0] > '5' || p[1] < '0' || p[1] > '9' || p[2] < '0' || p[2] > '9' ||
	    (p[3] != '\0' && p[3] != ' '))
		return resp_fail(r, -EPROTO, "malformed status code");
	r->status = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	r->chunked = false;
	r->content_type[0] = '\0';

	for (ln = strtok_r(NULL, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
		char *colon, *name, *val;

		ln = trim(ln);
		if (!*ln)
			continue;
		colon = strchr(ln, ':');
		if (!colon || colon == ln)
			return resp_fail(r, -EPROTO, "malformed header line");
		*colon = '\0';
		name = ln;
		val = trim(colon + 1);
		if (strcasecmp(name, "Content-Length") == 0) {
			uint64_t v;

			if (parse_u64(val, 10, &v))
				return resp_fail(r, -EPROTO, "malformed Content-Length");
			if (seen_len && v != len)
				return resp_fail(r, -EPROTO, "conflicting Content-Length headers");
			seen_len = true;
			len = v;
		} else if (strcasecmp(name, "Transfer-Encoding") == 0) {
			size_t vl = strlen(val);

			/* chunked must be the last coding applied */
			r->chunked = vl >= 7 && strcasecmp(val + vl - 7, "chunked") == 0;
			if (!r->chunked)
				return resp_fail(r, -EPROTO, "unsupported Transfer-Encoding");
		} else if (strcasecmp(name, "Content-Type") == 0) {
			snprintf(r->content_type, sizeof(r->content_type), "%s", val);
		}
		if (r->sink.on_header && r->status >= 200) {
			int rc = r->sink.on_header(r->sink.ctx, name, val);

			if (rc)
				return rc;
		}
	}

	if (r->status < 200) {
		/* 1xx interim response: a real one follows. */
		r->line_len = 0;
		return 0;
	}
	if (r->sink.on_head) {
		int rc = r->sink.on_head(r->sink.ctx, r->status, r->content_type);

		if (rc)
			return rc;
	}
	r->line_len = 0;
	if (r->head_only || r->status == 204 || r->status == 304) {
		r->state = HTTP_RS_DONE;
	} else if (r->chunked) {
		r->state = HTTP_RS_CHUNK_SIZE;
	} else if (seen_len) {
		r->has_length = true;
		r->content_length = len;
		r->remaining = len;
		r->state = len ? HTTP_RS_BODY_LEN : HTTP_RS_DONE;
	} else {
		r->state = HTTP_RS_BODY_CLOSE;
	}
	return 0;
}

static int resp_body(struct http_resp *r, const char *p, size_t n)
{
	if (!n || !r->sink.on_body)
		return 0;
	return r->sink.on_body(r->sink.ctx, p, n);
}

/* Accumulates one line (chunk size, chunk end or trailer) up to '\n'.
 * Returns 1 when a whole line is in r->line (without CR/LF), 0 when more
 * is needed; *used says how many bytes were taken. */
static int resp_line(struct http_resp *r, const char *p, size_t n, size_t *used, int *err)
{
	const char *nl = memchr(p, '\n', n);
	size_t take = nl ? (size_t)(nl - p) + 1 : n;

	*err = 0;
	if (r->line_len + take > HTTP_MAX_CHUNK_LINE) {
		*err = resp_fail(r, -E2BIG, "chunk line too long");
		return 0;
	}
	memcpy(r->line + r->line_len, p, take);
	r->line_len += take;
	*used = take;
	if (!nl)
		return 0;
	r->line_len--; /* the '\n' */
	if (r->line_len && r->line[r->line_len - 1] == '\r')
		r->line_len--;
	r->line[r->line_len] = '\0';
	r->line_len = 0; /* the content stays readable until the next call */
	return 1;
}

int http_resp_feed(struct http_resp *r, const char *p, size_t n)
{
	while (n > 0) {
		size_t used = 0;
		int rc = 0, full;

		switch (r->state) {
		case HTTP_RS_HEAD: {
			/* Byte by byte: heads are small and this finds the end exactly. */
			char c = *p;

			if (r->line_len + 1 >= sizeof(r->line))
				return resp_fail(r, -E2BIG, "response head too large");
			r->line[r->line_len++] = c;
			used = 1;
			if (c == '\n') {
				size_t l = r->line_len;
				bool end = (l >= 2 && r->line[l - 2] == '\n') ||
					   (l >= 3 && r->line[l - 2] == '\r' && r->line[l - 3] == '\n');

				if (l == 1 || (l == 2 && r->line[0] == '\r')) {
					r->line_len = 0; /* tolerate blank lines before the status */
				} else if (end) {
					r->line[l] = '\0';
					rc = resp_parse_head(r);
				}
			}
			break;
		}
		case HTTP_RS_BODY_LEN:
			used = n < r->remaining ? n : (size_t)r->remaining;
			r->remaining -= used;
			rc = resp_body(r, p, used);
			if (!rc && r->remaining == 0)
				r->state = HTTP_RS_DONE;
			break;
		case HTTP_RS_BODY_CLOSE:
			used = n;
			rc = resp_body(r, p, n);
			break;
		case HTTP_RS_CHUNK_SIZE:
			full = resp_line(r, p, n, &used, &rc);
			if (rc)
				return rc;
			if (full) {
				char *semi = strchr(r->line, ';');
				uint64_t sz;

				if (semi)
					*semi = '\0';
				if (parse_u64(trim(r->line), 16, &sz))
					return resp_fail(r, -EPROTO, "malformed chunk size");
				r->remaining = sz;
				r->state = sz ? HTTP_RS_CHUNK_DATA : HTTP_RS_TRAILER;
			}
			break;
		case HTTP_RS_CHUNK_DATA:
			used = n < r->remaining ? n : (size_t)r->remaining;
			r->remaining -= used;
			rc = resp_body(r, p, used);
			if (!rc && r->remaining == 0)
				r->state = HTTP_RS_CHUNK_CRLF;
			break;
		case HTTP_RS_CHUNK_CRLF:
			full = resp_line(r, p, n, &used, &rc);
			if (rc)
				return rc;
			if (full) {
				if (r->line[0])
					return resp_fail(r, -EPROTO, "missing CRLF after chunk data");
				r->state = HTTP_RS_CHUNK_SIZE;
			}
			break;
		case HTTP_RS_TRAILER:
			full = resp_line(r, p, n, &used, &rc);
			if (rc)
				return rc;
			if (full && !r->line[0])
				r->state = HTTP_RS_DONE;
			break;
		case HTTP_RS_DONE:
			return 0; /* anything after the response is ignored */
		}
		if (rc)
			return rc;
		p += used;
		n -= used;
	}
	return 0;
}

int http_resp_eof(struct http_resp *r)
{
	if (r->state == HTTP_RS_BODY_CLOSE)
		r->state = HTTP_RS_DONE;
	if (r->state == HTTP_RS_DONE)
		return 0;
	if (r->state == HTTP_RS_HEAD)
		return resp_fail(r, -EPROTO,
				 r->line_len ? "connection closed inside the response head"
					     : "connection closed before a response");
	return resp_fail(r, -EPROTO, "connection closed before the end of the response body");
}

int http_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int http_connect(const char *path)
{
	struct sockaddr_un sa;
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	do {
		rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	} while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int http_query_escape(struct buf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;

	for (; *s && !rc; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			rc = buf_append(out, s, 1);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};

			rc = buf_append(out, e, 3);
		}
	}
	return rc;
}

/* Reads whatever the server already sent (e.g. an early 413) without
 * blocking for long, so an error reply is shown instead of EPIPE. */
static int read_response(int fd, struct http_resp *r, char *err, size_t errlen)
{
	char chunk[16384];
	int rc;

	for (;;) {
		ssize_t got = recv(fd, chunk, sizeof(chunk), 0);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			if (rc == -EAGAIN || rc == -EWOULDBLOCK)
				snprintf(err, errlen, "timed out waiting for the daemon's reply");
			else
				snprintf(err, errlen, "reading the reply: %s", strerror(-rc));
			return rc == -EWOULDBLOCK ? -ETIMEDOUT : rc == -EAGAIN ? -ETIMEDOUT : rc;
		}
		if (got == 0) {
			rc = http_resp_eof(r);
			if (rc)
				snprintf(err, errlen, "%s", r->err);
			return rc;
		}
		rc = http_resp_feed(r, chunk, (size_t)got);
		if (rc) {
			if (r->err[0])
				snprintf(err, errlen, "bad reply from the daemon: %s", r->err);
			return rc;
		}
		if (http_resp_done(r))
			return 0;
	}
}

int http_exchange(const char *sock_path, const struct http_req *req, const struct http_sink *sink,
		  bool *connected, char *err, size_t errlen)
{
	struct http_resp *r = NULL;
	struct buf head;
	int fd = -1, rc;
	bool has_body = req->body || req->body_fn || req->body_len;

	buf_init(&head, HTTP_MAX_HEAD);
	*connected = false;
	err[0] = '\0';
	fd = http_connect(sock_path);
	if (fd < 0) {
		rc = fd;
		fd = -1;
		snprintf(err, errlen, "%s", strerror(-rc));
		goto out;
	}
	*connected = true;
	if (req->timeout_s > 0) {
		struct timeval tv = {.tv_sec = req->timeout_s};

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	rc = buf_printf(&head, "%s %s HTTP/1.1\r\nHost: medthinkd\r\nUser-Agent: medthink\r\n"
			       "Accept: */*\r\nConnection: close\r\n",
			req->method, req->target);
	if (!rc && has_body && req->content_type)
		rc = buf_printf(&head, "Content-Type: %s\r\n", req->content_type);
	if (!rc && (has_body || strcmp(req->method, "POST") == 0))
		rc = buf_printf(&head, "Content-Length: %" PRIu64 "\r\n", req->body_len);
	if (!rc)
		rc = buf_puts(&head, "\r\n");
	if (rc) {
		snprintf(err, errlen, "request too large");
		goto out;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	http_resp_init(r, req->method, sink);

	rc = http_write_all(fd, head.base, head.len);
	if (!rc && req->body)
		rc = http_write_all(fd, req->body, (size_t)req->body_len);
	else if (!rc && req->body_fn)
		rc = req->body_fn(req->body_ctx, fd);
	if (rc == -EPIPE || rc == -ECONNRESET) {
		/* The daemon stopped reading (e.g. 413): its reply may be waiting. */
		struct timeval tv = {.tv_sec = 5};
		int rrc;

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		rrc = read_response(fd, r, err, errlen);
		if (r->status >= 400 && rrc == 0) {
			rc = 0;
			goto out;
		}
		if (!err[0] || rrc == 0)
			snprintf(err, errlen, "the daemon closed the connection while the request was sent");
		goto out;
	}
	if (rc) {
		if (!err[0])
			snprintf(err, errlen, "sending the request: %s", strerror(-rc));
		goto out;
	}
	rc = read_response(fd, r, err, errlen);
out:
	if (fd >= 0)
		close(fd);
	free(r);
	buf_free(&head);
	return rc;
}
