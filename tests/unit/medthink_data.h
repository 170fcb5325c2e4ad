/* The real MedThink data for the screening tests, read at test time from
 * ../shared/data/medthink (never copied into the repository): each record
 * imported as the CLI imports it (sharegpt layout), with the teacher's
 * published assistant text beside it as "the teacher's reply". Included by
 * the unit tests that need it; static functions only. */
#ifndef MT_TEST_MEDTHINK_DATA_H
#define MT_TEST_MEDTHINK_DATA_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/import.h"

#define MEDTHINK_DIR "../shared/data/medthink/"
#define MEDTHINK_ALL MEDTHINK_DIR "digestive_Qwen2_72b_Instruction.json"
#define MEDTHINK_TEST MEDTHINK_DIR "digestive_Qwen2_72b_Instruction_test.json"

struct medthink_rec {
	char id[32];        /* "identity_N" */
	json_t *item;       /* the normalized item (owned) */
	const char *reply;  /* the assistant text (borrowed from the document) */
};

struct medthink_set {
	json_t *doc;
	struct medthink_rec *r;
	size_t n;
	long errors;
};

static int medthink_on_item(void *ud, json_t *item, long line)
{
	struct medthink_set *s = ud;
	json_t *rec = json_array_get(s->doc, (size_t)line - 1);
	json_t *conv = json_object_get(rec, "conversations");
	struct medthink_rec *r = &s->r[s->n];

	if (!rec || s->n >= json_array_size(s->doc)) {
		json_decref(item);
		return 0;
	}
	snprintf(r->id, sizeof(r->id), "%s", json_string_value(json_object_get(rec, "id")));
	r->item = item;
	r->reply = json_string_value(json_object_get(json_array_get(conv, 1), "value"));
	s->n++;
	return 0;
}

static int medthink_on_error(void *ud, long line, const char *reason)
{
	struct medthink_set *s = ud;

	fprintf(stderr, "medthink import: record %ld: %s\n", line, reason);
	s->errors++;
	return 0;
}

/* Loads path; returns 0, or -1 when the file is not there (the caller skips). */
static inline int medthink_load(const char *path, struct medthink_set *s)
{
	struct import_cb cb = { medthink_on_item, medthink_on_error, s };
	struct import_parser *p;
	char err[256];
	FILE *f;
	char buf[1 << 16];
	size_t k;

	memset(s, 0, sizeof(*s));
	s->doc = json_load_file(path, 0, NULL);
	if (!json_is_array(s->doc)) {
		json_decref(s->doc);
		s->doc = NULL;
		return -1;
	}
	s->r = calloc(json_array_size(s->doc) + 1, sizeof(*s->r));
	p = import_parser_new("sharegpt", NULL, &cb, err, sizeof(err));
	f = fopen(path, "rb");
	if (!s->r || !p || !f) {
		if (f)
			fclose(f);
		import_parser_free(p);
		return -1;
	}
	while ((k = fread(buf, 1, sizeof(buf), f)) > 0)
		import_parser_feed(p, buf, k);
	fclose(f);
	import_parser_finish(p);
	import_parser_free(p);
	return 0;
}

static inline void medthink_free(struct medthink_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		json_decref(s->r[i].item);
	free(s->r);
	json_decref(s->doc);
	memset(s, 0, sizeof(*s));
}

/* True when id is one of ids (NULL-terminated). */
static inline int medthink_in(const char *const *ids, const char *id)
{
	for (size_t i = 0; ids[i]; i++)
		if (strcmp(ids[i], id) == 0)
			return 1;
	return 0;
}

#endif
