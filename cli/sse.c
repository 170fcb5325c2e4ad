#include "cli/sse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void sse_init(struct sse *s, sse_event_fn on_event, void *ctx)
{
	memset(s, 0, sizeof(*s));
	buf_init(&s->line, SSE_MAX_EVENT);
	buf_init(&s->data, SSE_MAX_EVENT);
	s->on_event = on_event;
	s->ctx = ctx;
}

void sse_free(struct sse *s)
{
	buf_free(&s->line);
	buf_free(&s->data);
}

static int sse_dispatch(struct sse *s)
{
	int rc = 0;

	if (s->has_data) {
		size_t len = s->data.len;

		if (len && s->data.base[len - 1] == '\n')
			len--;
		if (s->data.base)
			s->data.base[len] = '\0';
		if (s->on_event)
			rc = s->on_event(s->ctx, s->event[0] ? s->event : "message", s->data.base ? s->data.base : "",
					 len);
	}
	buf_reset(&s->data);
	s->event[0] = '\0';
	s->has_data = 0;
	return rc;
}

/* One complete line (without its terminator) in s->line. */
static int sse_line(struct sse *s)
{
	const char *ln = s->line.base ? s->line.base : "";
	size_t len = s->line.len;
	const char *colon, *val;
	size_t nlen, vlen;

	if (len == 0)
		return sse_dispatch(s);
	if (ln[0] == ':')
		return 0; /* comment / keep-alive */
	colon = memchr(ln, ':', len);
	nlen = colon ? (size_t)(colon - ln) : len;
	val = colon ? colon + 1 : ln + len;
	if (colon && *val == ' ')
		val++;
	vlen = len - (size_t)(val - ln);
	if (nlen == 4 && memcmp(ln, "data", 4) == 0) {
		int rc = buf_append(&s->data, val, vlen);

		if (!rc)
			rc = buf_append(&s->data, "\n", 1);
		s->has_data = 1;
		return rc;
	}
	if (nlen == 5 && memcmp(ln, "event", 5) == 0) {
		snprintf(s->event, sizeof(s->event), "%.*s", (int)vlen, val);
		return 0;
	}
	return 0; /* id, retry and unknown fields do not matter here */
}

int sse_feed(struct sse *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		int rc;

		if (c == '\n' && s->last_cr) {
			s->last_cr = 0;
			continue; /* the LF of a CRLF already handled at the CR */
		}
		s->last_cr = c == '\r';
		if (c == '\r' || c == '\n') {
			rc = sse_line(s);
			buf_reset(&s->line);
		} else {
			rc = buf_append(&s->line, &c, 1);
		}
		if (rc)
			return rc;
	}
	return 0;
}
