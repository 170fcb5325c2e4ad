/* The blocked Bloom filter (contract in store/callfilter.h). */
#include "store/callfilter.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/hash.h"

#define CF_BLOCK_WORDS 8 /* 64 bytes: one cache line */
#define CF_K 6           /* bits per key, 9 bits of hash each */

struct store_cfilter {
	size_t nblocks; /* a power of two */
	_Atomic uint64_t *w;
};

int store_cfilter_create(size_t bytes, struct store_cfilter **out)
{
	struct store_cfilter *f;
	size_t n = 64;

	*out = NULL;
	if (bytes > STORE_CFILTER_MAX)
		return -EINVAL;
	while (n < bytes)
		n <<= 1;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	/* calloc: the pages stay untouched (and out of RSS) until a key
	 * lands in them. */
	f->w = calloc(n / sizeof(uint64_t), sizeof(uint64_t));
	if (!f->w) {
		free(f);
		return -ENOMEM;
	}
	f->nblocks = n / (CF_BLOCK_WORDS * sizeof(uint64_t));
	*out = f;
	return 0;
}

/* The block from one hash, the bits inside it from another: FNV-1a
 * alone moves its high bits too little for keys that differ at the end. */
static void cf_hash(const struct store_cfilter *f, const char *key, size_t len, size_t *block,
		    uint64_t *bits)
{
	uint64_t h = fnv1a64(FNV1A64_INIT, key, len);
	uint64_t a = hash_mix64(h), b = hash_mix64(h ^ UINT64_C(0x9e3779b97f4a7c15));

	*block = (size_t)(a & (f->nblocks - 1)) * CF_BLOCK_WORDS;
	*bits = b;
}

void store_cfilter_add(struct store_cfilter *f, const char *key, size_t len)
{
	size_t block;
	uint64_t b;

	cf_hash(f, key, len, &block, &b);
	for (int i = 0; i < CF_K; i++, b >>= 9)
		atomic_fetch_or_explicit(&f->w[block + ((b >> 6) & 7)], UINT64_C(1) << (b & 63),
					 memory_order_relaxed);
}

bool store_cfilter_has(const struct store_cfilter *f, const char *key, size_t len)
{
	size_t block;
	uint64_t b;

	cf_hash(f, key, len, &block, &b);
	for (int i = 0; i < CF_K; i++, b >>= 9) {
		uint64_t w = atomic_load_explicit(&f->w[block + ((b >> 6) & 7)], memory_order_relaxed);

		if (!(w & UINT64_C(1) << (b & 63)))
			return false;
	}
	return true;
}

size_t store_cfilter_bytes(const struct store_cfilter *f)
{
	return f ? f->nblocks * CF_BLOCK_WORDS * sizeof(uint64_t) : 0;
}

void store_cfilter_free(struct store_cfilter *f)
{
	if (!f)
		return;
	free((void *)f->w);
	free(f);
}
