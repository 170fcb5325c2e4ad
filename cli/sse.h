#ifndef MT_CLI_SSE_H
#define MT_CLI_SSE_H
/* An incremental text/event-stream (Server-Sent Events) parser: feed it the
 * body as it arrives, it calls back once per complete event. Pure. */

#include <stddef.h>

#include "common/buf.h"

#define SSE_MAX_EVENT (1024 * 1024) /* data of one event */

/* Called per event; event is "message" when the stream named none, data is
 * NUL-terminated (len bytes, multi-line data joined by '\n'). A non-zero
 * return stops the parse and is returned by sse_feed. */
typedef int (*sse_event_fn)(void *ctx, const char *event, const char *data, size_t len);

struct sse {
	struct buf line;
	struct buf data;
	char event[64];
	int last_cr;      /* the previous byte was '\r' (a "\r\n" may be split) */
	int has_data;
	sse_event_fn on_event;
	void *ctx;
};

/* Starts a parser; allocates nothing until fed. */
void sse_init(struct sse *s, sse_event_fn on_event, void *ctx);
/* Feeds n bytes. Returns 0, -ENOBUFS when a line or event is over
 * SSE_MAX_EVENT, or on_event's non-zero return. */
int sse_feed(struct sse *s, const char *p, size_t n);
/* Frees the buffers; an incomplete last event is dropped (as the spec says). */
void sse_free(struct sse *s);

#endif
