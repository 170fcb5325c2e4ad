#ifndef MT_CLI_HTTP_H
#define MT_CLI_HTTP_H
/* A minimal blocking HTTP/1.1 client over a Unix socket, for the medthink
 * CLI. One request per connection ("Connection: close"). The response parser
 * is incremental and free of I/O so it can be tested byte by byte. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEAD (64 * 1024)  /* status line + headers */
#define HTTP_MAX_CHUNK_LINE 256    /* one chunk-size line */

/* Receives the response as it is parsed. Any callback may be NULL.
 * on_head is called once, when the headers are complete; on_body for every
 * piece of the (de-chunked) body; on_header, before on_head, for every
 * header field of the final response (name and value trimmed, borrowed
 * for the call). A non-zero return stops the parse and is passed back by
 * http_resp_feed. */
struct http_sink {
	int (*on_head)(void *ctx, int status, const char *content_type);
	int (*on_body)(void *ctx, const char *p, size_t n);
	void *ctx;
	int (*on_header)(void *ctx, const char *name, const char *value);
};

enum http_resp_state {
	HTTP_RS_HEAD,
	HTTP_RS_BODY_LEN,   /* Content-Length body */
	HTTP_RS_BODY_CLOSE, /* body until the connection closes */
	HTTP_RS_CHUNK_SIZE,
	HTTP_RS_CHUNK_DATA,
	HTTP_RS_CHUNK_CRLF,
	HTTP_RS_TRAILER,
	HTTP_RS_DONE,
};

struct http_resp {
	enum http_resp_state state;
	int status;
	bool chunked;
	bool has_length;
	uint64_t content_length;
	uint64_t remaining;   /* of the current Content-Length body or chunk */
	char content_type[128];
	char line[HTTP_MAX_HEAD]; /* the head, or a chunk-size / trailer line */
	size_t line_len;
	bool head_only;       /* response to HEAD: never a body */
	struct http_sink sink;
	char err[160];
};

/* Starts parsing a response to a request with the given method (a HEAD
 * response has no body). The sink is borrowed and must outlive the parse. */
void http_resp_init(struct http_resp *r, const char *method, const struct http_sink *sink);
/* Feeds n bytes. Returns 0 when all were consumed (check http_resp_done),
 * -EPROTO on a malformed response (r->err says what), -E2BIG when the head
 * or a chunk line is over its cap, or a sink callback's non-zero return. */
int http_resp_feed(struct http_resp *r, const char *p, size_t n);
/* Tells the parser the connection closed. Returns 0 when the response was
 * complete (a close-delimited body ends here), -EPROTO when it was cut off. */
int http_resp_eof(struct http_resp *r);
bool http_resp_done(const struct http_resp *r);

/* Writes the request body; returns 0 or a negative errno. */
typedef int (*http_body_fn)(void *ctx, int fd);

struct http_req {
	const char *method;
	const char *target;       /* path and query, already encoded */
	const char *content_type; /* NULL: no body headers unless body_len set */
	const char *body;         /* in-memory body, or NULL */
	uint64_t body_len;        /* Content-Length of body or of body_fn output */
	http_body_fn body_fn;     /* streams the body when body is NULL */
	void *body_ctx;
	int timeout_s;            /* receive timeout; 0 = none */
};

/* Connects to the Unix socket at path. Returns the fd, or a negative errno
 * (-ENAMETOOLONG when the path does not fit sockaddr_un). */
int http_connect(const char *path);

/* Sends req on a fresh connection to sock_path and parses the response into
 * sink. Returns 0 when a complete response was read (the status is given to
 * sink->on_head), -ECONNREFUSED/-ENOENT/... when the daemon is not
 * reachable (*connected stays false), another negative errno on I/O or
 * protocol errors (err says what), or a sink callback's non-zero return.
 * Blocking; SIGPIPE must be ignored by the caller. */
int http_exchange(const char *sock_path, const struct http_req *req, const struct http_sink *sink,
		  bool *connected, char *err, size_t errlen);

/* Writes all n bytes to fd, retrying on EINTR. Returns 0 or -errno. */
int http_write_all(int fd, const void *p, size_t n);

/* Appends s to out percent-encoded for a query value. Returns 0 or the
 * buf error (-ENOBUFS/-ENOMEM). */
struct buf;
int http_query_escape(struct buf *out, const char *s);

#endif
