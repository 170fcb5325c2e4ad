#ifndef MT_HASH_H
#define MT_HASH_H
/* Small non-cryptographic hashes (SHA-256 is common/sha256.h). Pure. */

#include <stddef.h>
#include <stdint.h>

#define FNV1A64_INIT UINT64_C(0xcbf29ce484222325) /* the offset basis */

/* FNV-1a 64 of n bytes, continuing from h (FNV1A64_INIT to start). */
uint64_t fnv1a64(uint64_t h, const void *data, size_t n);

/* murmur3's 64-bit finalizer: spreads every input bit over the output (FNV's
 * high bits barely move for inputs that differ in their last bytes).
 * Inline: the reply screening mixes every term, line and window it looks up. */
static inline uint64_t hash_mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64_C(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return h;
}

#endif
