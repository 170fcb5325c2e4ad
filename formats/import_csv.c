/* csv: RFC 4180 records (the framing is the parser core's) whose first
 * record is a header naming the columns: question and answer, and
 * optionally id, explanation (or knowledge), topic, context, image(s),
 * options as A..Z or option_a..option_z; other columns go to "meta". A
 * file whose first record has two fields and no such header is read as
 * question,answer pairs. */

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "formats/import_impl.h"

/* Column roles of a csv header. */
enum col {
	COL_IGNORE,
	COL_ID,
	COL_QUESTION,
	COL_ANSWER,
	COL_EXPLANATION,
	COL_TOPIC,
	COL_CONTEXT,
	COL_IMAGE,
	COL_OPTION,
	COL_META,
};

struct csv_col {
	enum col role;
	char key[2];  /* option key for COL_OPTION */
	char *name;   /* lower-cased header name (NULL for headerless) */
};

/* What the csv layout keeps across records (import_parser_state). */
struct csv_layout {
	struct csv_col *cols;
	size_t ncols;
	bool have_header;
	bool dead; /* unusable header: everything after it is ignored */
};

static void csv_trim_lower(char *s)
{
	size_t n = strlen(s), i = 0;

	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	while (i < n && isspace((unsigned char)s[i]))
		i++;
	memmove(s, s + i, n - i);
	s[n - i] = '\0';
	for (char *q = s; *q; q++)
		*q = (char)tolower((unsigned char)*q);
}

static void csv_cols_free(struct csv_layout *c)
{
	for (size_t i = 0; i < c->ncols; i++)
		free(c->cols[i].name);
	free(c->cols);
	c->cols = NULL;
	c->ncols = 0;
}

static void csv_col_role(struct csv_col *col)
{
	const char *n = col->name;
	static const struct {
		const char *name;
		enum col role;
	} known[] = {
		{"id", COL_ID},
		{"question", COL_QUESTION},
		{"answer", COL_ANSWER},
		{"explanation", COL_EXPLANATION},
		{"knowledge", COL_EXPLANATION},
		{"topic", COL_TOPIC},
		{"context", COL_CONTEXT},
		{"image", COL_IMAGE},
		{"images", COL_IMAGE},
	};

	col->role = COL_META;
	if (!n[0]) {
		col->role = COL_IGNORE;
		return;
	}
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (!strcmp(n, known[i].name)) {
			col->role = known[i].role;
			return;
		}
	}
	if (!strncmp(n, "option_", 7))
		n += 7;
	if (n[0] >= 'a' && n[0] <= 'z' && !n[1]) {
		col->role = COL_OPTION;
		col->key[0] = (char)(n[0] - 'a' + 'A');
		col->key[1] = '\0';
	}
}

/* Reads the first record as the header. Returns true when it was one (and
 * is consumed), false when the file is a headerless question,answer pair
 * (the record is data). On a bad header reports it and marks the csv dead. */
static bool csv_header(struct import_parser *p, struct csv_layout *c,
                       const struct import_csv_record *rec)
{
	bool has_q = false, has_a = false;
	char list[200], ex[IMPORT_EXCERPT_BUF];
	size_t off = 0;
	uint32_t optmask = 0;

	c->have_header = true;
	c->cols = calloc(rec->nf, sizeof(*c->cols));
	if (!c->cols) {
		import_oom(p);
		return true;
	}
	c->ncols = rec->nf;
	list[0] = '\0';
	for (size_t i = 0; i < rec->nf; i++) {
		struct csv_col *col = &c->cols[i];
		size_t bad = utf8_check((const char *)import_csv_str(rec, i), rec->fields[i].len);

		if (bad < rec->fields[i].len) {
			import_report(p, rec->line, "invalid UTF-8 in header column %zu", i + 1);
			goto dead;
		}
		col->name = strdup(import_csv_str(rec, i));
		if (!col->name) {
			import_oom(p);
			goto dead;
		}
		csv_trim_lower(col->name);
		csv_col_role(col);
		has_q |= col->role == COL_QUESTION;
		has_a |= col->role == COL_ANSWER;
		if (off < sizeof(list))
			off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "",
			                        col->name);
		for (size_t j = 0; j < i && col->name[0]; j++) {
			if (!strcmp(c->cols[j].name, col->name)) {
				import_report(p, rec->line, "duplicate column \"%s\" in the header",
				       import_excerpt(col->name, ex, sizeof(ex)));
				goto dead;
			}
		}
		if (col->role == COL_OPTION) {
			uint32_t bit = 1u << (col->key[0] - 'A');

			if (optmask & bit) {
				import_report(p, rec->line, "two header columns give option %s", col->key);
				goto dead;
			}
			optmask |= bit;
		}
	}
	if (has_q && has_a)
		return true;
	if (rec->nf == 2) {
		csv_cols_free(c);
		c->cols = calloc(2, sizeof(*c->cols));
		if (!c->cols) {
			import_oom(p);
			return true;
		}
		c->ncols = 2;
		c->cols[0].role = COL_QUESTION;
		c->cols[1].role = COL_ANSWER;
		return false;
	}
	if (off >= sizeof(list))
		memcpy(list + sizeof(list) - 4, "...", 4);
	import_report(p, rec->line, "the header has no \"%s\" column (columns: %s)",
	       has_q ? "answer" : "question", list);
dead:
	c->dead = true;
	return true;
}

static const char *csv_col_name(const struct csv_col *col)
{
	if (col->name)
		return col->name;
	return col->role == COL_QUESTION ? "question" : "answer";
}

static void csv_parse(struct import_parser *p, const struct import_csv_record *rec)
{
	void **state = import_parser_state(p);
	struct csv_layout *c = *state;
	json_t *cand = NULL, *opts = NULL, *meta = NULL, *images = NULL;
	char ex[IMPORT_EXCERPT_BUF];

	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c) {
			import_oom(p);
			return;
		}
		*state = c;
	}
	if (c->dead)
		return;
	if (!c->have_header && csv_header(p, c, rec))
		return;
	if (rec->nf != c->ncols) {
		import_report(p, rec->line, "record has %zu field%s, expected %zu", rec->nf,
		       rec->nf == 1 ? "" : "s", c->ncols);
		return;
	}
	for (size_t i = 0; i < rec->nf; i++) {
		size_t bad = utf8_check((const char *)import_csv_str(rec, i), rec->fields[i].len);

		if (bad < rec->fields[i].len) {
			import_report(p, rec->line, "%s in column \"%s\"",
			       import_csv_str(rec, i)[bad] ? "invalid UTF-8" : "NUL byte",
			       import_excerpt(csv_col_name(&c->cols[i]), ex, sizeof(ex)));
			return;
		}
	}
	cand = json_object();
	opts = json_object();
	meta = json_object();
	images = json_array();
	if (!cand || !opts || !meta || !images) {
		import_oom(p);
		goto out;
	}
	for (size_t i = 0; i < rec->nf; i++) {
		const struct csv_col *col = &c->cols[i];
		const char *s = import_csv_str(rec, i);
		bool blank = import_blank(s, rec->fields[i].len);
		json_t *v;

		if (col->role == COL_IGNORE || (blank && col->role != COL_QUESTION &&
		                                 col->role != COL_ANSWER))
			continue;
		v = json_stringn(s, rec->fields[i].len);
		if (!v) {
			import_oom(p);
			goto out;
		}
		switch (col->role) {
		case COL_ID:
			json_object_set_new(cand, "id", v);
			break;
		case COL_QUESTION:
			json_object_set_new(cand, "question", v);
			break;
		case COL_ANSWER:
			json_object_set_new(cand, "answer", v);
			break;
		case COL_EXPLANATION:
			if (json_object_get(cand, "explanation"))
				json_object_set_new(meta, col->name, v);
			else
				json_object_set_new(cand, "explanation", v);
			break;
		case COL_TOPIC:
			json_object_set_new(cand, "topic", v);
			break;
		case COL_CONTEXT:
			json_object_set_new(cand, "context", v);
			break;
		case COL_IMAGE:
			json_array_append_new(images, v);
			break;
		case COL_OPTION:
			json_object_set_new(opts, col->key, v);
			break;
		default:
			json_object_set_new(meta, col->name, v);
			break;
		}
	}
	if (json_object_size(opts))
		json_object_set(cand, "options", opts);
	if (json_array_size(images))
		json_object_set(cand, "images", images);
	if (json_object_size(meta))
		json_object_set(cand, "meta", meta);
	import_emit(p, cand, rec->line);
	cand = NULL;
out:
	json_decref(images);
	json_decref(meta);
	json_decref(opts);
	json_decref(cand);
}

static void csv_state_free(void *state)
{
	if (!state)
		return;
	csv_cols_free(state);
	free(state);
}

/* A JSON file is never csv; else the trial parse of the header and the
 * first record decides. */
static enum import_sniff_verdict csv_sniff(const struct import_format *f, const struct import_sniff *s)
{
	if (s->first == '{' || s->first == '[' || !s->first)
		return IMPORT_SNIFF_NO;
	return import_sniff_records(f, s);
}

const struct import_format import_format_csv = {
	.name = "csv",
	.description = "CSV with a header row naming question, answer and optional columns",
	.kind = IMPORT_CSV,
	.question_key = "question",
	.answer_key = "answer",
	.parse_csv = csv_parse,
	.state_free = csv_state_free,
	.sniff = csv_sniff,
};
