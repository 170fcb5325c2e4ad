#ifndef MT_SHA256_H
#define MT_SHA256_H
/* SHA-256 (FIPS 180-4). Used for the request hashes of the calls cache.
 * sha256_hex runs libcrypto's SHA-256 (the CPU's SHA extensions) when it
 * has one; the incremental functions are portable C; the digests are the
 * same. Pure functions, any thread. */

#include <stddef.h>
#include <stdint.h>

struct sha256 {
	uint32_t h[8];
	uint64_t len;      /* bytes hashed so far */
	uint8_t blk[64];
	size_t nblk;       /* bytes waiting in blk */
};

/* Starts a new hash in s (caller's memory; nothing to free). */
void sha256_init(struct sha256 *s);
/* Hashes n more bytes of p (p may be NULL when n is 0). */
void sha256_update(struct sha256 *s, const void *p, size_t n);
/* Writes the 32-byte digest to out; s must be re-initialized to be reused. */
void sha256_final(struct sha256 *s, uint8_t out[32]);
/* One-shot: the digest of p[0..n) as 64 lowercase hex digits + NUL in out. */
void sha256_hex(const void *p, size_t n, char out[65]);

#endif
