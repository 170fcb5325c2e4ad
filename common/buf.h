#ifndef MT_BUF_H
#define MT_BUF_H
/* A growable byte buffer with a hard cap (after curl's dynbuf): appends past
 * the cap fail with -ENOBUFS and leave the buffer as it was. The content is
 * always NUL-terminated so it can be used as a C string. */

#include <stddef.h>

struct buf {
	char *base;
	size_t len;
	size_t cap; /* allocated bytes */
	size_t max; /* hard cap on len */
};

/* Starts an empty buffer that may grow to max bytes. Allocates nothing. */
void buf_init(struct buf *b, size_t max);
/* Frees the memory; the buffer is empty and reusable afterwards. */
void buf_free(struct buf *b);
/* Empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);
/* Returns 0, -ENOBUFS (cap) or -ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes (a consumed prefix). */
void buf_consume(struct buf *b, size_t n);
/* Hands the memory to the caller (NUL-terminated, may be NULL when empty)
 * and leaves the buffer empty. */
char *buf_take(struct buf *b);
/* Makes room now for n more bytes (and the NUL) so that the appends that
 * follow do not reallocate. Returns 0, -ENOBUFS (past the cap: nothing
 * changes) or -ENOMEM. */
int buf_grow(struct buf *b, size_t n);

#endif
