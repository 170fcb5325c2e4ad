/* The pull reader's tokens (common/jsonload.h) as a jansson tree, for the
 * tests that compare it with jansson's own reader (tests/unit/test_openai_flat.c,
 * tests/fuzz/fuzz_openai.c). Header-only: each test includes it once. */
#ifndef MEDTHINK_TESTS_JSONPULL_TREE_H
#define MEDTHINK_TESTS_JSONPULL_TREE_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/jsonload.h"

/* The value that starts with token t (read from j), or NULL where the
 * reader stops, or out of memory. A key repeated within one object also
 * gives NULL and sets *dup (the reader should have stopped before). */
static json_t *jsonpull_tree(struct jsonpull *j, enum jsonpull_tok t, int depth, bool *dup)
{
	json_t *c, *v;
	char *k;

	if (depth > JSONPULL_DEPTH + 1)
		return NULL;
	switch (t) {
	case JSONPULL_OBJ:
		c = json_object();
		while (c && (t = jsonpull_next(j)) == JSONPULL_KEY) {
			k = strndup(j->s, j->len);
			v = k ? jsonpull_tree(j, jsonpull_next(j), depth + 1, dup) : NULL;
			if (k && json_object_get(c, k))
				*dup = true;
			if (!v || *dup || json_object_set_new(c, k, v)) {
				if (v && *dup)
					json_decref(v);
				free(k);
				json_decref(c);
				return NULL;
			}
			free(k);
		}
		if (t != JSONPULL_OBJ_END) {
			json_decref(c);
			return NULL;
		}
		return c;
	case JSONPULL_ARR:
		c = json_array();
		while (c && (t = jsonpull_next(j)) != JSONPULL_ARR_END) {
			v = jsonpull_tree(j, t, depth + 1, dup);
			if (!v || json_array_append_new(c, v)) {
				json_decref(c);
				return NULL;
			}
		}
		return c;
	case JSONPULL_STR: return json_stringn(j->s, j->len);
	case JSONPULL_INT: return json_integer(j->i);
	case JSONPULL_REAL: return json_real(j->d);
	case JSONPULL_TRUE: return json_true();
	case JSONPULL_FALSE: return json_false();
	case JSONPULL_NULL: return json_null();
	default: return NULL;
	}
}

#endif
