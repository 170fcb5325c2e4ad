#include "common/utf8.h"

#include <stdint.h>
#include <string.h>

size_t utf8_seq_len(const char *str, size_t left)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned c = s[0];
	size_t n, k;
	uint32_t cp, min;

	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		cp = c & 0x1F;
		min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		n = 3;
		cp = c & 0x0F;
		min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (left < n)
		return 0;
	for (k = 1; k < n; k++) {
		unsigned b = s[k];

		if ((b & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (b & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

size_t utf8_check(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		size_t n;

		if (s[i] < 0x80) {
			if (s[i] == 0)
				return i;
			i++;
			/* then ASCII without NUL eight bytes at a time (most
			 * text is; a multi-byte run pays nothing for it) */
			while (i + 8 <= len) {
				uint64_t w;

				memcpy(&w, s + i, 8);
				if ((w & 0x8080808080808080ULL) ||
				    ((w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL))
					break;
				i += 8;
			}
			continue;
		}
		n = utf8_seq_len(str + i, len - i);
		if (n == 0)
			return i;
		i += n;
	}
	return len;
}

void utf8_sanitize(char *s)
{
	size_t len = strlen(s), off = 0;

	for (;;) {
		size_t bad = utf8_check(s + off, len - off);

		if (off + bad >= len)
			break;
		s[off + bad] = '?';
		off += bad + 1;
	}
}

size_t utf8_prefix(const char *s, size_t len, size_t max)
{
	size_t n;

	if (len <= max)
		return len;
	n = max;
	/* s[n] is the first byte left out: back off while it continues a
	 * sequence, so the cut falls before that sequence's lead byte. */
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

size_t utf8_copy(char *dst, size_t dstlen, const char *src, const char *ellipsis)
{
	size_t len = strlen(src), elen = ellipsis ? strlen(ellipsis) : 0, n;

	if (dstlen == 0)
		return 0;
	if (len < dstlen) {
		memcpy(dst, src, len + 1);
		utf8_sanitize(dst);
		return len;
	}
	if (elen >= dstlen)
		elen = 0;
	n = utf8_prefix(src, len, dstlen - 1 - elen);
	memcpy(dst, src, n);
	memcpy(dst + n, ellipsis ? ellipsis : "", elen);
	dst[n + elen] = '\0';
	utf8_sanitize(dst);
	return n + elen;
}
