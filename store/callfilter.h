#ifndef MT_STORE_CALLFILTER_H
#define MT_STORE_CALLFILTER_H
/* A blocked Bloom filter of request hashes: "certainly not stored" or
 * "maybe stored". store_call_find asks it before the random probe into
 * the calls_hash index, which at a few hundred thousand calls misses the
 * page cache nearly every time (a fresh job's requests are all new).
 *
 * Each key sets 6 bits in one 64-byte block, so a lookup reads one cache
 * line. False positives only cost the probe the filter saves: about 1 in
 * 40 at 8 bits per key (1M keys in 1 MiB), 1 in 10^5 at 40. Keys are never
 * removed (a stored call stays a cache entry). Memory is fixed at creation.
 *
 * Thread: store_cfilter_add and store_cfilter_has may run on different
 * threads at once (the bits are atomic); a key added happens-before a
 * store_cfilter_has that is ordered after it. create and free are not
 * concurrent with anything. */

#include <stdbool.h>
#include <stddef.h>

struct store_cfilter;

/* A filter of about bytes (rounded up to a power of two, at least 64,
 * at most STORE_CFILTER_MAX), all bits clear. 0, -EINVAL (bytes above the
 * cap) or -ENOMEM. */
#define STORE_CFILTER_MAX ((size_t)64 << 20)
int store_cfilter_create(size_t bytes, struct store_cfilter **out);

/* Adds the len bytes at key. */
void store_cfilter_add(struct store_cfilter *f, const char *key, size_t len);

/* false: key was never added. true: it maybe was. */
bool store_cfilter_has(const struct store_cfilter *f, const char *key, size_t len);

/* Its size in bytes (the bits). */
size_t store_cfilter_bytes(const struct store_cfilter *f);

/* Frees it; NULL is a no-op. */
void store_cfilter_free(struct store_cfilter *f);

#endif
