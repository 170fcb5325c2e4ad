#ifndef MT_UTF8_H
#define MT_UTF8_H
/* UTF-8 helpers: every place that cuts, checks or cleans text uses these, so
 * a string is never cut inside a character (the MedThink data is Chinese;
 * jansson refuses invalid UTF-8). Pure; thread-safe. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Offset of the first byte that is not part of a valid UTF-8 sequence or is
 * a NUL, or len when there is none. Rejects overlongs, surrogates and code
 * points past U+10FFFF, as JSON and SQLite text need. */
size_t utf8_check(const char *s, size_t len);

/* Length (2-4) of the valid UTF-8 sequence at s, whose first byte is >=
 * 0x80, within left bytes; 0 when it is not one (same rules as
 * utf8_check, which are jansson's). */
size_t utf8_seq_len(const char *s, size_t left);

/* Whether none of the 8 bytes at s needs a JSON string's look: below 0x20,
 * '"', '\\' or 0x80 and up (a byte below n sets its high bit in
 * (w - n * 0x01..) & ~w). The JSON reader and writer skip plain runs with
 * it; inline because it runs once per 8 bytes of every string. */
static inline bool utf8_json_plain8(const unsigned char *s)
{
	const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
	uint64_t w, q, b;

	memcpy(&w, s, 8);
	q = w ^ (ones * '"');
	b = w ^ (ones * '\\');
	return !((w & high) | ((w - ones * 0x20) & ~w & high) | ((q - ones) & ~q & high) |
		 ((b - ones) & ~b & high));
}

/* The first byte at or after p (before end) that a JSON string must look
 * at: '"', '\\', below 0x20 or 0x80 and up; or, with fewer than 8 bytes
 * left, the first of those (which the caller looks at one by one). 16
 * bytes a step with SSE2, else 8: utf8_json_plain8's test, the first
 * flagged byte found from the mask on little-endian machines (a borrow
 * only flags bytes above a true hit). The JSON reader's and writer's
 * (jsonload.c, jsondump.c). */
static inline const unsigned char *utf8_json_skip_plain(const unsigned char *p,
							const unsigned char *end)
{
#ifdef __SSE2__
	const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
		      space = _mm_set1_epi8(0x20);

	while (end - p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		/* signed: bytes 0x80 and up are below 0x20 too */
		__m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
					 _mm_cmplt_epi8(v, space));
		unsigned bits = (unsigned)_mm_movemask_epi8(m);

		if (bits)
			return p + __builtin_ctz(bits);
		p += 16;
	}
#endif
	while (end - p >= 8) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
		uint64_t w, q, b, m;

		memcpy(&w, p, 8);
		q = w ^ (ones * '"');
		b = w ^ (ones * '\\');
		m = (w & high) | ((w - ones * 0x20) & ~w & high) | ((q - ones) & ~q & high) |
		    ((b - ones) & ~b & high);
		if (m)
			return p + (__builtin_ctzll(m) >> 3);
#else
		if (!utf8_json_plain8(p))
			return p;
#endif
		p += 8;
	}
	return p;
}

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
