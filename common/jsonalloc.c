/* Size classes are glibc's chunk sizes (request + 8, rounded up to 16,
 * at least 32): a freed chunk's class comes from malloc_usable_size, so no
 * header is needed and any malloc chunk may be cached or freed. */
#include "common/jsonalloc.h"

#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#define CLASSES (JSONALLOC_MAX_CHUNK / 16 + 1)

struct cache {
	void *head[CLASSES];
	uint16_t n[CLASSES];
	size_t bytes; /* held in all classes */
	bool keyed; /* registered for the flush at thread exit */
};

static _Thread_local struct cache tc;
static pthread_key_t flush_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static bool key_ok;

/* At a thread's exit: its chunks go back to malloc. */
static void flush(void *arg)
{
	struct cache *c = arg;

	for (size_t k = 0; k < CLASSES; k++) {
		while (c->head[k]) {
			void *p = c->head[k];

			c->head[k] = *(void **)p;
			free(p);
		}
		c->n[k] = 0;
	}
	c->bytes = 0;
	c->keyed = false;
}

static void key_make(void)
{
	key_ok = pthread_key_create(&flush_key, flush) == 0;
}

static size_t class_of_request(size_t n)
{
	size_t c = (n + 8 + 15) & ~(size_t)15;

	return (c < 32 ? 32 : c) / 16;
}

void *jsonalloc_malloc(size_t n)
{
	size_t k = n <= JSONALLOC_MAX_CHUNK ? class_of_request(n) : CLASSES;
	void *p;

	if (k < CLASSES && tc.head[k]) {
		p = tc.head[k];
		tc.head[k] = *(void **)p;
		tc.n[k]--;
		tc.bytes -= k * 16;
		return p;
	}
	return malloc(n);
}

void jsonalloc_free(void *p)
{
	size_t chunk, k;

	if (!p)
		return;
	chunk = malloc_usable_size(p) + 8;
	k = chunk / 16;
	if (chunk % 16 == 0 && k < CLASSES && tc.n[k] < JSONALLOC_KEEP &&
	    tc.bytes + chunk <= JSONALLOC_KEEP_BYTES) {
		if (!tc.keyed) {
			pthread_once(&key_once, key_make);
			if (!key_ok || pthread_setspecific(flush_key, &tc) != 0) {
				free(p);
				return;
			}
			tc.keyed = true;
		}
		*(void **)p = tc.head[k];
		tc.head[k] = p;
		tc.n[k]++;
		tc.bytes += chunk;
		return;
	}
	free(p);
}

size_t jsonalloc_cached(void)
{
	size_t n = 0;

	for (size_t k = 0; k < CLASSES; k++)
		n += tc.n[k];
	return n;
}

#if defined(__SANITIZE_ADDRESS__)
#define JSONALLOC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JSONALLOC_ASAN 1
#endif
#endif

void jsonalloc_install(void)
{
#ifndef JSONALLOC_ASAN
	json_set_alloc_funcs(jsonalloc_malloc, jsonalloc_free);
#endif
}
