#ifndef MT_FUZZ_H
#define MT_FUZZ_H
/* Shared by the fuzz targets in tests/fuzz/ (docs/fuzzing.md). Each target
 * defines LLVMFuzzerTestOneInput; it is linked either with libFuzzer
 * (`make fuzz`, clang) or with driver.c (the plain replay in `make test`).
 * A broken invariant calls fuzz_fail, which aborts: both count it as a crash. */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/hash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define fuzz_fail(...)                                                                     \
	do {                                                                               \
		fprintf(stderr, "fuzz invariant broken at %s:%d: ", __FILE__, __LINE__);   \
		fprintf(stderr, __VA_ARGS__);                                              \
		fputc('\n', stderr);                                                       \
		abort();                                                                   \
	} while (0)

#define fuzz_assert(cond)                                                                  \
	do {                                                                               \
		if (!(cond))                                                               \
			fuzz_fail("%s", #cond);                                            \
	} while (0)

/* Chunk sizes for feeding an input in pieces, drawn from a generator seeded
 * by the input itself: a given input is always split the same way (so a
 * crash replays), and mutating it moves the splits. */
struct fuzz_split {
	uint64_t state;
};

static inline void fuzz_split_init(struct fuzz_split *s, const uint8_t *data, size_t size)
{
	s->state = hash_mix64(fnv1a64(FNV1A64_INIT, data, size)) | 1;
}

static inline uint64_t fuzz_split_rand(struct fuzz_split *s)
{
	/* xorshift64 */
	s->state ^= s->state << 13;
	s->state ^= s->state >> 7;
	s->state ^= s->state << 17;
	return s->state;
}

/* The size of the next piece, 1..left (left > 0): single bytes, small
 * pieces, pieces up to max, or all that is left. */
static inline size_t fuzz_split_next(struct fuzz_split *s, size_t left, size_t max)
{
	uint64_t r = fuzz_split_rand(s);
	size_t n;

	switch (r % 4) {
	case 0: n = 1; break;
	case 1: n = 1 + (size_t)((r >> 8) % 16); break;
	case 2: n = 1 + (size_t)((r >> 8) % (max ? max : 1)); break;
	default: n = left; break;
	}
	if (max && n > max)
		n = max;
	return n < left ? n : left;
}

#endif
