#ifndef MT_UTF8_H
#define MT_UTF8_H
/* UTF-8 helpers: every place that cuts, checks or cleans text uses these, so
 * a string is never cut inside a character (the MedThink data is Chinese;
 * jansson refuses invalid UTF-8). Pure; thread-safe. */

#include <stddef.h>

/* Offset of the first byte that is not part of a valid UTF-8 sequence or is
 * a NUL, or len when there is none. Rejects overlongs, surrogates and code
 * points past U+10FFFF, as JSON and SQLite text need. */
size_t utf8_check(const char *s, size_t len);

/* Length (2-4) of the valid UTF-8 sequence at s, whose first byte is >=
 * 0x80, within left bytes; 0 when it is not one (same rules as
 * utf8_check, which are jansson's). */
size_t utf8_seq_len(const char *s, size_t left);

/* Replaces, in place, every byte of s (NUL-terminated) that is not valid
 * UTF-8 with '?'. */
void utf8_sanitize(char *s);

/* The longest prefix of s[0..len) that is at most max bytes and ends on a
 * character boundary: a length <= max, never inside a multi-byte sequence. */
size_t utf8_prefix(const char *s, size_t len, size_t max);

/* Copies src into dst (size dstlen, > 0) cut on a character boundary, with
 * ellipsis (may be NULL or "") appended when anything was cut; the result is
 * always NUL-terminated and, for valid input, valid UTF-8. Invalid bytes of
 * src are replaced with '?'. Returns the length written. */
size_t utf8_copy(char *dst, size_t dstlen, const char *src, const char *ellipsis);

#endif
