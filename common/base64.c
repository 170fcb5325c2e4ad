#include "common/base64.h"

static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_len(size_t n) { return (n + 2) / 3 * 4; }

size_t base64_encode(const void *in, size_t n, char *out)
{
	const unsigned char *p = in;
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];

		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = tab[v >> 6 & 63];
		out[o++] = tab[v & 63];
	}
	if (i < n) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0);

		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

int base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

long base64_decode(const char *s, size_t len, unsigned char *out, size_t *bad)
{
	size_t o = 0, pad = 0, total;

	if (len % 4 != 0) {
		if (bad)
			*bad = len;
		return -1;
	}
	while (pad < 2 && pad < len && s[len - 1 - pad] == '=')
		pad++;
	total = len / 4 * 3 - pad;
	for (size_t i = 0; i < len; i += 4) {
		unsigned v = 0;

		for (size_t k = 0; k < 4; k++) {
			int x = i + k >= len - pad ? 0 : base64_value((unsigned char)s[i + k]);

			if (x < 0) {
				if (bad)
					*bad = i + k;
				return -1;
			}
			v |= (unsigned)x << (18 - 6 * k);
		}
		for (size_t k = 0; k < 3 && o < total; k++)
			out[o++] = (unsigned char)(v >> (16 - 8 * k));
	}
	return (long)o;
}
