#ifndef MT_JSONALLOC_H
#define MT_JSONALLOC_H
/* jansson's memory through a small per-thread cache of freed chunks. Every
 * call builds and frees about a hundred jansson values (the item, the
 * request, the reply, the artifact), in bursts of one size that overflow
 * glibc's per-thread cache; the rest went through its bins and a
 * consolidation pass at each large request (about a fifth of the daemon's
 * CPU per call in perf). Cached chunks are plain malloc chunks, so memory
 * jansson hands out (json_dumps) is still free()d as ever, and values made
 * before or after the switch are freed either way. */

#include <stddef.h>

/* Routes jansson's allocations through the cache (json_set_alloc_funcs):
 * idempotent, process-wide; any thread, best before other threads use
 * jansson. A no-op under AddressSanitizer (reuse would hide jansson
 * use-after-free). */
void jsonalloc_install(void);

/* The cache's malloc and free (what jsonalloc_install installs), for tests:
 * jsonalloc_malloc(n) is malloc(n) or a cached chunk of at least n usable
 * bytes; jsonalloc_free(p) keeps p (at most JSONALLOC_KEEP chunks a size
 * class and JSONALLOC_KEEP_BYTES a thread, chunks up to
 * JSONALLOC_MAX_CHUNK bytes) or free()s it. Any thread. */
void *jsonalloc_malloc(size_t n);
void jsonalloc_free(void *p);
/* Chunks this thread holds now (tests). */
size_t jsonalloc_cached(void);

/* a dispatch window's worth: the loop makes and frees values for hundreds
 * of calls in one turn */
#define JSONALLOC_KEEP 2048
#define JSONALLOC_KEEP_BYTES ((size_t)4 << 20)
#define JSONALLOC_MAX_CHUNK 640

#endif
