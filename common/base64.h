#ifndef MT_BASE64_H
#define MT_BASE64_H
/* Standard base64 (RFC 4648, "+/" alphabet, "=" padding): the one codec of
 * data: URLs, images, masks and stored embeddings. Pure, any thread. */

#include <stddef.h>

/* Length of the encoding of n bytes (with padding, without the NUL). */
size_t base64_len(size_t n);
/* Encodes n bytes of in into out, which holds base64_len(n) + 1 bytes;
 * NUL-terminates. Returns the length written. */
size_t base64_encode(const void *in, size_t n, char *out);
/* The 6-bit value of an alphabet character, or -1 ("=" included). */
int base64_value(unsigned char c);
/* Decodes len characters of s (a multiple of 4; "=" only as the last one or
 * two) into out, which holds len / 4 * 3 bytes. Returns the bytes decoded,
 * or -1 when s is not such base64 (*bad, when not NULL, gets the offset of
 * the first wrong character, or len when the length is wrong). */
long base64_decode(const char *s, size_t len, unsigned char *out, size_t *bad);

#endif
