#include "store/import.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/hash.h"
#include "common/utf8.h"

/* An id names one item in messages and in the store's unique index; a
 * bound keeps both sane. */
#define ID_MAX_BYTES 256
#define CSV_MAX_FIELDS 256
/* Quoted excerpts of input (ids, answers) in reasons are cut to this. */
#define EXCERPT_BYTES 60

enum fmt { FMT_NATIVE, FMT_MEDQA, FMT_MEDMCQA, FMT_PUBMEDQA, FMT_SHAREGPT, FMT_CSV };

static const char *const fmt_names[] = {"native", "medqa", "medmcqa", "pubmedqa", "sharegpt", "csv"};

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

enum csv_state { CS_START, CS_UNQ, CS_Q, CS_QQ, CS_QCR };

struct csv_field {
	size_t off, len;
};

struct csv_col {
	enum col role;
	char key[2];  /* option key for COL_OPTION */
	char *name;   /* lower-cased header name (NULL for headerless) */
};

struct csv {
	enum csv_state state;
	struct buf rec;  /* the record's fields, each NUL-terminated */
	struct csv_field *fields;
	size_t nf;
	size_t field_start;
	size_t rec_bytes; /* field content bytes so far (the cap applies to these) */
	long rec_line;
	bool in_rec;
	bool bad;       /* already reported: consume to the record's end, store nothing */
	bool any_quote; /* a "" line is a record with one empty field, not a blank line */
	bool have_header;
	bool dead; /* unusable header: everything after it is ignored */
	struct csv_col *cols;
	size_t ncols;
};

struct import_parser {
	enum fmt fmt;
	struct import_cb cb;
	size_t max_line;
	size_t max_doc;
	int stop; /* non-zero once stopped: a callback's return or -ENOMEM */
	bool finished;
	long nitems;
	long nerrors;
	unsigned bom_n; /* bytes of a UTF-8 BOM matched at the start */
	bool bom_done;
	long line;       /* current physical line, 1-based */
	struct buf lbuf; /* JSONL: the partial line; documents: the document */
	bool skipping;   /* JSONL: dropping the rest of an over-long line */
	bool doc_over;
	struct csv csv;
	json_t *seen; /* id -> (first line << 1) | derived */
	char prefix[128]; /* "record N" context of whole-document formats */
	const char *qname; /* source names of question and answer, for messages */
	const char *aname;
};

/* ---- small helpers ---------------------------------------------------- */

/* s cut to EXCERPT_BYTES on a UTF-8 boundary, "..." appended when cut. */
static const char *excerpt(const char *s, char *out, size_t outlen)
{
	size_t n = strlen(s);

	if (n <= EXCERPT_BYTES || outlen < EXCERPT_BYTES + 4)
		return s;
	n = utf8_prefix(s, n, EXCERPT_BYTES);
	memcpy(out, s, n);
	memcpy(out + n, "...", 4);
	return out;
}

static bool is_blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

static bool str_blank(json_t *v) { return is_blank(json_string_value(v), json_string_length(v)); }

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
		return "true";
	case JSON_FALSE:
		return "false";
	default:
		return "null";
	}
}

/* Reports a rejected record; the reason gets the record prefix of the
 * whole-document formats. */
static void report(struct import_parser *p, long line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void report(struct import_parser *p, long line, const char *fmt, ...)
{
	char reason[IMPORT_REASON_MAX];
	size_t off = 0;
	va_list ap;
	int rc;

	if (p->stop)
		return;
	if (p->prefix[0])
		off = (size_t)snprintf(reason, sizeof(reason), "%s: ", p->prefix);
	if (off >= sizeof(reason))
		off = sizeof(reason) - 1;
	va_start(ap, fmt);
	vsnprintf(reason + off, sizeof(reason) - off, fmt, ap);
	va_end(ap);
	utf8_sanitize(reason);
	p->nerrors++;
	rc = p->cb.on_error(p->cb.ud, line, reason);
	if (rc)
		p->stop = rc;
}

static void oom(struct import_parser *p)
{
	if (!p->stop)
		p->stop = -ENOMEM;
}

/* ---- derived ids -------------------------------------------------------- */

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The bytes hashed: question NUL, then for each option in strcmp order of
 * its key: key NUL value NUL, then 0x01 and the answer. */
void import_item_id(const char *question, json_t *options, const char *answer, char out[17])
{
	uint64_t h = FNV1A64_INIT;
	const char *stack_keys[32];
	const char **keys = stack_keys;
	size_t n = 0, i = 0;
	const char *k;
	json_t *v;

	h = fnv1a64(h, question, strlen(question) + 1);
	if (json_is_object(options))
		n = json_object_size(options);
	if (n > 32)
		keys = malloc(n * sizeof(*keys));
	if (keys) {
		json_object_foreach(options, k, v) {
			if (i < n)
				keys[i++] = k;
		}
		qsort(keys, i, sizeof(*keys), key_cmp);
		for (size_t j = 0; j < i; j++) {
			const char *val = json_string_value(json_object_get(options, keys[j]));

			h = fnv1a64(h, keys[j], strlen(keys[j]) + 1);
			if (!val)
				val = "";
			h = fnv1a64(h, val, strlen(val) + 1);
		}
		if (keys != stack_keys)
			free(keys);
	}
	h = fnv1a64(h, "\x01", 1);
	h = fnv1a64(h, answer, strlen(answer));
	snprintf(out, 17, "%016" PRIx64, h);
}

/* ---- the normalized item ------------------------------------------------ */

static int option_keys_list(json_t *options, char *out, size_t outlen)
{
	const char *k;
	json_t *v;
	size_t off = 0;

	out[0] = '\0';
	json_object_foreach(options, k, v) {
		int n = snprintf(out + off, outlen - off, "%s%s", off ? ", " : "", k);

		(void)v;
		if (n < 0 || (size_t)n >= outlen - off) {
			if (outlen > 4)
				memcpy(out + outlen - 4, "...", 4);
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Validates a candidate item (normalized keys; question, answer,
 * explanation, topic, context and id are strings when present) and hands
 * the ordered item to on_item. cand is taken. */
static void item_emit(struct import_parser *p, json_t *cand, long line)
{
	json_t *q = json_object_get(cand, "question");
	json_t *a = json_object_get(cand, "answer");
	json_t *opts = json_object_get(cand, "options");
	json_t *id = json_object_get(cand, "id");
	json_t *item = NULL, *prev;
	static const char *const tail[] = {"explanation", "topic", "images", "meta"};
	char ex[EXCERPT_BYTES + 4], ex2[EXCERPT_BYTES + 4], keys[160], derived[17];
	const char *idstr;
	bool is_derived = false;
	int rc;

	if (!q) {
		report(p, line, "missing \"%s\"", p->qname);
		goto out;
	}
	if (str_blank(q)) {
		report(p, line, "\"%s\" is empty", p->qname);
		goto out;
	}
	if (!a) {
		report(p, line, "missing \"%s\"", p->aname);
		goto out;
	}
	if (str_blank(a)) {
		report(p, line, "\"%s\" is empty", p->aname);
		goto out;
	}
	if (opts) {
		const char *k;
		json_t *v;

		if (json_object_size(opts) < 2) {
			report(p, line, "\"options\" needs at least 2 entries, found %zu",
			       json_object_size(opts));
			goto out;
		}
		json_object_foreach(opts, k, v) {
			if (!k[0]) {
				report(p, line, "an option key is empty");
				goto out;
			}
			if (!json_is_string(v)) {
				report(p, line, "option \"%s\" must be a string, found %s",
				       excerpt(k, ex, sizeof(ex)), json_kind(v));
				goto out;
			}
			if (str_blank(v)) {
				report(p, line, "option \"%s\" is empty", excerpt(k, ex, sizeof(ex)));
				goto out;
			}
		}
		if (!json_object_get(opts, json_string_value(a))) {
			option_keys_list(opts, keys, sizeof(keys));
			report(p, line, "%s \"%s\" is not one of the option keys (%s)", p->aname,
			       excerpt(json_string_value(a), ex, sizeof(ex)), keys);
			goto out;
		}
	}
	if (id) {
		if (str_blank(id)) {
			report(p, line, "\"id\" is empty");
			goto out;
		}
		if (json_string_length(id) > ID_MAX_BYTES) {
			report(p, line, "\"id\" is longer than %d bytes", ID_MAX_BYTES);
			goto out;
		}
		idstr = json_string_value(id);
	} else {
		import_item_id(json_string_value(q), opts, json_string_value(a), derived);
		idstr = derived;
		is_derived = true;
	}
	prev = json_object_get(p->seen, idstr);
	if (prev) {
		long first = (long)(json_integer_value(prev) >> 1);
		const char *where = p->fmt == FMT_PUBMEDQA || p->fmt == FMT_SHAREGPT ? "record" : "line";

		if (is_derived)
			report(p, line, "duplicate item: same question, options and answer as %s %ld",
			       where, first);
		else
			report(p, line, "duplicate id \"%s\" (first used %s %s %ld)",
			       excerpt(idstr, ex2, sizeof(ex2)), where[0] == 'r' ? "in" : "on", where,
			       first);
		goto out;
	}
	if (json_object_set_new(p->seen, idstr, json_integer(((json_int_t)line << 1) | is_derived))) {
		oom(p);
		goto out;
	}

	item = json_object();
	if (!item) {
		oom(p);
		goto out;
	}
	rc = json_object_set_new(item, "id", json_string(idstr));
	rc |= json_object_set(item, "question", q);
	if (json_object_get(cand, "context"))
		rc |= json_object_set(item, "context", json_object_get(cand, "context"));
	if (opts)
		rc |= json_object_set(item, "options", opts);
	rc |= json_object_set(item, "answer", a);
	for (size_t i = 0; i < sizeof(tail) / sizeof(tail[0]); i++) {
		json_t *v = json_object_get(cand, tail[i]);

		if (v)
			rc |= json_object_set(item, tail[i], v);
	}
	if (rc) {
		oom(p);
		goto out;
	}
	p->nitems++;
	rc = p->cb.on_item(p->cb.ud, item, line);
	item = NULL;
	if (rc)
		p->stop = rc;
out:
	json_decref(item);
	json_decref(cand);
}

/* 1 and *out = the string; 0 when absent or null; -1 (reported) when of
 * another type. */
static int get_str(struct import_parser *p, long line, json_t *obj, const char *key, json_t **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		report(p, line, "\"%s\" must be a string, found %s", key, json_kind(v));
		return -1;
	}
	*out = v;
	return 1;
}

/* Copies the string at obj[key] into cand[to] unless absent, null or
 * blank. 0, or -1 when reported. */
static int copy_opt_str(struct import_parser *p, long line, json_t *obj, const char *key,
                        json_t *cand, const char *to)
{
	json_t *v;
	int rc = get_str(p, line, obj, key, &v);

	if (rc <= 0)
		return rc;
	if (!str_blank(v))
		json_object_set(cand, to, v);
	return 0;
}

/* An "id" that is a string or an integer, as a string in cand. */
static int copy_id(struct import_parser *p, long line, json_t *obj, json_t *cand)
{
	json_t *v = json_object_get(obj, "id");

	if (!v || json_is_null(v))
		return 0;
	if (json_is_string(v))
		return json_object_set(cand, "id", v);
	if (json_is_integer(v))
		return json_object_set_new(cand, "id",
		                           json_sprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v)));
	report(p, line, "\"id\" must be a string or an integer, found %s", json_kind(v));
	return -1;
}

static int copy_images(struct import_parser *p, long line, json_t *v, json_t *cand)
{
	size_t i;
	json_t *e;

	if (json_is_null(v))
		return 0;
	if (!json_is_array(v)) {
		report(p, line, "\"images\" must be an array of strings, found %s", json_kind(v));
		return -1;
	}
	json_array_foreach(v, i, e) {
		if (!json_is_string(e) || str_blank(e)) {
			report(p, line, "\"images\"[%zu] must be a non-empty string", i);
			return -1;
		}
	}
	if (json_array_size(v))
		json_object_set(cand, "images", v);
	return 0;
}

/* ---- native, medqa, medmcqa: one JSON object a line ---------------------- */

static void conv_native(struct import_parser *p, json_t *obj, long line)
{
	json_t *cand = json_object(), *extra = json_object(), *v;
	const char *key;

	if (!cand || !extra) {
		oom(p);
		goto bad;
	}
	json_object_foreach(obj, key, v) {
		if (!strcmp(key, "id")) {
			if (copy_id(p, line, obj, cand) < 0)
				goto bad;
		} else if (!strcmp(key, "question") || !strcmp(key, "answer")) {
			if (!json_is_string(v)) {
				report(p, line, "\"%s\" must be a string, found %s", key, json_kind(v));
				goto bad;
			}
			json_object_set(cand, key, v);
		} else if (!strcmp(key, "explanation") || !strcmp(key, "topic") ||
		           !strcmp(key, "context")) {
			if (copy_opt_str(p, line, obj, key, cand, key) < 0)
				goto bad;
		} else if (!strcmp(key, "options")) {
			if (json_is_object(v)) {
				json_object_set(cand, "options", v);
			} else if (json_is_array(v)) {
				/* A list of option texts, keyed A, B, C... */
				json_t *o = json_object(), *e;
				size_t i;

				if (json_array_size(v) > 26) {
					report(p, line, "\"options\" has more than 26 entries");
					json_decref(o);
					goto bad;
				}
				json_array_foreach(v, i, e) {
					char k[2] = {(char)('A' + i), '\0'};

					json_object_set(o, k, e);
				}
				json_object_set_new(cand, "options", o);
			} else if (!json_is_null(v)) {
				report(p, line, "\"options\" must be an object or an array, found %s",
				       json_kind(v));
				goto bad;
			}
		} else if (!strcmp(key, "images")) {
			if (copy_images(p, line, v, cand) < 0)
				goto bad;
		} else if (!strcmp(key, "meta")) {
			if (!json_is_object(v) && !json_is_null(v)) {
				report(p, line, "\"meta\" must be an object, found %s", json_kind(v));
				goto bad;
			}
		} else {
			json_object_set(extra, key, v);
		}
	}
	/* Keys of no normalized field are kept in meta; meta's own win. */
	v = json_object_get(obj, "meta");
	if (json_is_object(v))
		json_object_update(extra, v);
	if (json_object_size(extra))
		json_object_set(cand, "meta", extra);
	json_decref(extra);
	item_emit(p, cand, line);
	return;
bad:
	json_decref(extra);
	json_decref(cand);
}

static void conv_medqa(struct import_parser *p, json_t *obj, long line)
{
	json_t *cand = json_object(), *v, *opts, *idx, *text;

	if (!cand) {
		oom(p);
		return;
	}
	if (copy_id(p, line, obj, cand) < 0 || get_str(p, line, obj, "question", &v) < 0)
		goto bad;
	if (v)
		json_object_set(cand, "question", v);
	opts = json_object_get(obj, "options");
	if (!json_is_object(opts)) {
		if (opts)
			report(p, line, "\"options\" must be an object, found %s", json_kind(opts));
		else
			report(p, line, "missing \"options\"");
		goto bad;
	}
	json_object_set(cand, "options", opts);
	if (get_str(p, line, obj, "answer_idx", &idx) < 0 || get_str(p, line, obj, "answer", &text) < 0)
		goto bad;
	if (!idx && text) {
		/* No answer_idx: the answer text names the option (exactly one). */
		const char *k;
		json_t *o;
		int n = 0;

		json_object_foreach(opts, k, o) {
			if (json_equal(o, text)) {
				n++;
				json_object_set_new(cand, "answer", json_string(k));
			}
		}
		if (n != 1) {
			json_object_del(cand, "answer");
			report(p, line, n ? "missing \"answer_idx\" and the answer text matches %d options"
			                  : "missing \"answer_idx\" and the answer text matches no option",
			       n);
			goto bad;
		}
	} else if (idx) {
		json_object_set(cand, "answer", idx);
	}
	v = json_object_get(obj, "meta_info");
	if (v && !json_is_null(v))
		json_object_set_new(cand, "meta", json_pack("{sO}", "meta_info", v));
	item_emit(p, cand, line);
	return;
bad:
	json_decref(cand);
}

static void conv_medmcqa(struct import_parser *p, json_t *obj, long line)
{
	static const char *const opk[] = {"opa", "opb", "opc", "opd"};
	json_t *cand = json_object(), *opts = json_object(), *meta = json_object(), *v;
	int cop = 0;
	char *dump = NULL;

	if (!cand || !opts || !meta) {
		oom(p);
		goto out;
	}
	if (copy_id(p, line, obj, cand) < 0 || get_str(p, line, obj, "question", &v) < 0)
		goto out;
	if (v)
		json_object_set(cand, "question", v);
	for (int i = 0; i < 4; i++) {
		char k[2] = {(char)('A' + i), '\0'};

		if (get_str(p, line, obj, opk[i], &v) < 0)
			goto out;
		if (v && !str_blank(v))
			json_object_set(opts, k, v);
	}
	v = json_object_get(obj, "cop");
	if (!v || json_is_null(v)) {
		report(p, line, "missing \"cop\" (the MedMCQA test split has no answers)");
		goto out;
	}
	if (json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 4)
		cop = (int)json_integer_value(v);
	else if (json_is_string(v) && json_string_length(v) == 1 &&
	         strchr("abcdABCD", json_string_value(v)[0]))
		cop = tolower((unsigned char)json_string_value(v)[0]) - 'a' + 1;
	if (!cop) {
		dump = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		report(p, line, "\"cop\" must be 1, 2, 3 or 4 (opa..opd), found %.*s",
		       (int)utf8_prefix(dump ? dump : "?", strlen(dump ? dump : "?"), 40), dump ? dump : "?");
		goto out;
	}
	{
		char k[2] = {(char)('A' + cop - 1), '\0'};

		if (!json_object_get(opts, k)) {
			report(p, line, "\"cop\" %d names %s, which is empty", cop, opk[cop - 1]);
			goto out;
		}
		json_object_set_new(cand, "answer", json_string(k));
	}
	json_object_set(cand, "options", opts);
	if (copy_opt_str(p, line, obj, "exp", cand, "explanation") < 0 ||
	    copy_opt_str(p, line, obj, "subject_name", cand, "topic") < 0 ||
	    copy_opt_str(p, line, obj, "topic_name", meta, "topic_name") < 0 ||
	    copy_opt_str(p, line, obj, "choice_type", meta, "choice_type") < 0)
		goto out;
	if (json_object_size(meta))
		json_object_set(cand, "meta", meta);
	item_emit(p, cand, line);
	cand = NULL;
out:
	free(dump);
	json_decref(meta);
	json_decref(opts);
	json_decref(cand);
}

static void jsonl_line(struct import_parser *p, const char *s, size_t n, long line)
{
	json_error_t je;
	json_t *v;
	size_t bad;

	if (n && s[n - 1] == '\r')
		n--;
	if (is_blank(s, n))
		return;
	if (n > p->max_line) {
		report(p, line, "line longer than %zu bytes", p->max_line);
		return;
	}
	bad = utf8_check((const char *)s, n);
	if (bad < n) {
		report(p, line, s[bad] ? "invalid UTF-8 at byte %zu" : "NUL byte at byte %zu", bad + 1);
		return;
	}
	v = json_loadb(s, n, JSON_REJECT_DUPLICATES, &je);
	if (!v) {
		report(p, line, "invalid JSON at column %d: %s", je.column, je.text);
		return;
	}
	if (!json_is_object(v))
		report(p, line, "expected a JSON object, found %s", json_kind(v));
	else if (p->fmt == FMT_MEDQA)
		conv_medqa(p, v, line);
	else if (p->fmt == FMT_MEDMCQA)
		conv_medmcqa(p, v, line);
	else
		conv_native(p, v, line);
	json_decref(v);
}

static void jsonl_feed(struct import_parser *p, const char *data, size_t len)
{
	while (len > 0 && !p->stop) {
		const char *nl = memchr(data, '\n', len);
		size_t n = nl ? (size_t)(nl - data) : len;

		if (p->skipping) {
			if (nl)
				p->skipping = false;
		} else if (nl && p->lbuf.len == 0) {
			jsonl_line(p, data, n, p->line); /* whole line in this chunk: no copy */
		} else if (p->lbuf.len + n > p->max_line + 1) {
			/* +1: room for the '\r' of a CRLF not yet seen whole */
			report(p, p->line, "line longer than %zu bytes", p->max_line);
			buf_reset(&p->lbuf);
			p->skipping = !nl;
		} else if (buf_append(&p->lbuf, data, n)) {
			oom(p);
		} else if (nl) {
			jsonl_line(p, p->lbuf.base, p->lbuf.len, p->line);
			buf_reset(&p->lbuf);
		}
		if (nl) {
			p->line++;
			n++;
		}
		data += n;
		len -= n;
	}
}

/* ---- csv --------------------------------------------------------------- */

static void csv_put(struct import_parser *p, const char *s, size_t n)
{
	struct csv *c = &p->csv;

	if (c->bad || !n)
		return;
	if (n > p->max_line - c->rec_bytes) {
		report(p, c->rec_line, "record longer than %zu bytes", p->max_line);
		c->bad = true;
		return;
	}
	if (buf_append(&c->rec, s, n)) {
		oom(p);
		return;
	}
	c->rec_bytes += n;
}

static void csv_field_end(struct import_parser *p)
{
	struct csv *c = &p->csv;

	if (c->bad)
		return;
	if (c->nf == CSV_MAX_FIELDS) {
		report(p, c->rec_line, "record has more than %d fields", CSV_MAX_FIELDS);
		c->bad = true;
		return;
	}
	if (buf_append(&c->rec, "", 1)) {
		oom(p);
		return;
	}
	c->fields[c->nf].off = c->field_start;
	c->fields[c->nf].len = c->rec.len - 1 - c->field_start;
	c->nf++;
	c->field_start = c->rec.len;
}

static const char *csv_str(struct csv *c, size_t i) { return c->rec.base + c->fields[i].off; }

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

static void csv_cols_free(struct csv *c)
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
static bool csv_header(struct import_parser *p)
{
	struct csv *c = &p->csv;
	bool has_q = false, has_a = false;
	char list[200], ex[EXCERPT_BYTES + 4];
	size_t off = 0;
	uint32_t optmask = 0;

	c->have_header = true;
	c->cols = calloc(c->nf, sizeof(*c->cols));
	if (!c->cols) {
		oom(p);
		return true;
	}
	c->ncols = c->nf;
	list[0] = '\0';
	for (size_t i = 0; i < c->nf; i++) {
		struct csv_col *col = &c->cols[i];
		size_t bad = utf8_check((const char *)csv_str(c, i), c->fields[i].len);

		if (bad < c->fields[i].len) {
			report(p, c->rec_line, "invalid UTF-8 in header column %zu", i + 1);
			goto dead;
		}
		col->name = strdup(csv_str(c, i));
		if (!col->name) {
			oom(p);
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
				report(p, c->rec_line, "duplicate column \"%s\" in the header",
				       excerpt(col->name, ex, sizeof(ex)));
				goto dead;
			}
		}
		if (col->role == COL_OPTION) {
			uint32_t bit = 1u << (col->key[0] - 'A');

			if (optmask & bit) {
				report(p, c->rec_line, "two header columns give option %s", col->key);
				goto dead;
			}
			optmask |= bit;
		}
	}
	if (has_q && has_a)
		return true;
	if (c->nf == 2) {
		csv_cols_free(c);
		c->cols = calloc(2, sizeof(*c->cols));
		if (!c->cols) {
			oom(p);
			return true;
		}
		c->ncols = 2;
		c->cols[0].role = COL_QUESTION;
		c->cols[1].role = COL_ANSWER;
		return false;
	}
	if (off >= sizeof(list))
		memcpy(list + sizeof(list) - 4, "...", 4);
	report(p, c->rec_line, "the header has no \"%s\" column (columns: %s)",
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

static void csv_record(struct import_parser *p)
{
	struct csv *c = &p->csv;
	json_t *cand = NULL, *opts = NULL, *meta = NULL, *images = NULL;
	char ex[EXCERPT_BYTES + 4];

	if (c->dead)
		return;
	if (!c->have_header && csv_header(p))
		return;
	if (c->nf != c->ncols) {
		report(p, c->rec_line, "record has %zu field%s, expected %zu", c->nf,
		       c->nf == 1 ? "" : "s", c->ncols);
		return;
	}
	for (size_t i = 0; i < c->nf; i++) {
		size_t bad = utf8_check((const char *)csv_str(c, i), c->fields[i].len);

		if (bad < c->fields[i].len) {
			report(p, c->rec_line, "%s in column \"%s\"",
			       csv_str(c, i)[bad] ? "invalid UTF-8" : "NUL byte",
			       excerpt(csv_col_name(&c->cols[i]), ex, sizeof(ex)));
			return;
		}
	}
	cand = json_object();
	opts = json_object();
	meta = json_object();
	images = json_array();
	if (!cand || !opts || !meta || !images) {
		oom(p);
		goto out;
	}
	for (size_t i = 0; i < c->nf; i++) {
		const struct csv_col *col = &c->cols[i];
		const char *s = csv_str(c, i);
		bool blank = is_blank(s, c->fields[i].len);
		json_t *v;

		if (col->role == COL_IGNORE || (blank && col->role != COL_QUESTION &&
		                                 col->role != COL_ANSWER))
			continue;
		v = json_stringn(s, c->fields[i].len);
		if (!v) {
			oom(p);
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
	item_emit(p, cand, c->rec_line);
	cand = NULL;
out:
	json_decref(images);
	json_decref(meta);
	json_decref(opts);
	json_decref(cand);
}

static void csv_record_end(struct import_parser *p)
{
	struct csv *c = &p->csv;

	/* A line of nothing but white space is a blank line, not a record. */
	if (!c->bad && !(c->nf == 1 && !c->any_quote && is_blank(csv_str(c, 0), c->fields[0].len)))
		csv_record(p);
	buf_reset(&c->rec);
	c->nf = 0;
	c->field_start = 0;
	c->rec_bytes = 0;
	c->bad = false;
	c->any_quote = false;
	c->in_rec = false;
	c->state = CS_START;
}

/* Drops the '\r' of a CRLF from the end of an unquoted field. */
static void csv_strip_cr(struct csv *c)
{
	if (!c->bad && c->rec.len > c->field_start && c->rec.base[c->rec.len - 1] == '\r') {
		c->rec.len--;
		c->rec.base[c->rec.len] = '\0';
		c->rec_bytes--;
	}
}

/* A field end at a line end. */
static void csv_line_end(struct import_parser *p, bool unquoted)
{
	struct csv *c = &p->csv;

	if (unquoted)
		csv_strip_cr(c);
	csv_field_end(p);
	csv_record_end(p);
	p->line++;
}

static void csv_bad_quote(struct import_parser *p)
{
	struct csv *c = &p->csv;

	if (!c->bad)
		report(p, c->rec_line, "unexpected character after the closing quote of field %zu",
		       c->nf + 1);
	c->bad = true;
	c->state = CS_UNQ; /* resynchronize at the next ',' or line end */
}

static void csv_feed(struct import_parser *p, const char *d, size_t len)
{
	struct csv *c = &p->csv;
	size_t i = 0, j;

	while (i < len && !p->stop) {
		char ch = d[i];

		if (!c->in_rec) {
			c->in_rec = true;
			c->rec_line = p->line;
		}
		switch (c->state) {
		case CS_START:
			if (ch == '"') {
				c->state = CS_Q;
				c->any_quote = true;
				i++;
				break;
			}
			c->state = CS_UNQ;
			/* fallthrough */
		case CS_UNQ:
			j = i;
			while (j < len && d[j] != ',' && d[j] != '\n')
				j++;
			csv_put(p, d + i, j - i);
			i = j;
			if (i == len)
				break;
			if (d[i] == ',') {
				csv_field_end(p);
				c->state = CS_START;
			} else {
				csv_line_end(p, true);
			}
			i++;
			break;
		case CS_Q:
			j = i;
			while (j < len && d[j] != '"') {
				if (d[j] == '\n')
					p->line++;
				j++;
			}
			csv_put(p, d + i, j - i);
			i = j;
			if (i < len) {
				c->state = CS_QQ;
				i++;
			}
			break;
		case CS_QQ:
			if (ch == '"') {
				csv_put(p, "\"", 1);
				c->state = CS_Q;
			} else if (ch == ',') {
				csv_field_end(p);
				c->state = CS_START;
			} else if (ch == '\n') {
				csv_line_end(p, false);
			} else if (ch == '\r') {
				c->state = CS_QCR;
			} else {
				csv_bad_quote(p);
				break; /* ch is read again, unquoted */
			}
			i++;
			break;
		case CS_QCR:
			if (ch != '\n') {
				csv_bad_quote(p);
				break;
			}
			csv_line_end(p, false);
			i++;
			break;
		}
	}
}

static void csv_finish(struct import_parser *p)
{
	struct csv *c = &p->csv;

	if (!c->in_rec)
		return;
	if (c->state == CS_Q) {
		if (!c->bad)
			report(p, c->rec_line, "quoted field %zu is not closed at the end of the input",
			       c->nf + 1);
		c->bad = true;
	}
	if (c->state == CS_UNQ)
		csv_strip_cr(c);
	csv_field_end(p);
	csv_record_end(p);
}

/* ---- pubmedqa, sharegpt: one JSON document --------------------------- */

static void conv_pubmedqa(struct import_parser *p, const char *pmid, json_t *rec, long idx)
{
	static const char *const yn[] = {"yes", "no", "maybe"};
	json_t *cand = json_object(), *meta = json_object(), *v, *e;
	struct buf ctx;
	size_t i;

	buf_init(&ctx, (size_t)-1);
	if (!cand || !meta) {
		oom(p);
		goto out;
	}
	if (!json_is_object(rec)) {
		report(p, idx, "expected an object, found %s", json_kind(rec));
		goto out;
	}
	json_object_set_new(cand, "id", json_string(pmid));
	if (get_str(p, idx, rec, "QUESTION", &v) < 0)
		goto out;
	if (v)
		json_object_set(cand, "question", v);
	v = json_object_get(rec, "CONTEXTS");
	if (v && !json_is_array(v) && !json_is_null(v)) {
		report(p, idx, "\"CONTEXTS\" must be an array of strings, found %s", json_kind(v));
		goto out;
	}
	json_array_foreach(v, i, e) {
		if (!json_is_string(e)) {
			report(p, idx, "\"CONTEXTS\"[%zu] must be a string, found %s", i, json_kind(e));
			goto out;
		}
		if ((ctx.len && buf_puts(&ctx, "\n\n")) || buf_puts(&ctx, json_string_value(e))) {
			oom(p);
			goto out;
		}
	}
	if (ctx.len && !is_blank(ctx.base, ctx.len))
		json_object_set_new(cand, "context", json_stringn(ctx.base, ctx.len));
	v = json_object();
	for (i = 0; i < 3; i++)
		json_object_set_new(v, yn[i], json_string(yn[i]));
	json_object_set_new(cand, "options", v);
	if (get_str(p, idx, rec, "final_decision", &v) < 0)
		goto out;
	if (v)
		json_object_set(cand, "answer", v);
	if (copy_opt_str(p, idx, rec, "LONG_ANSWER", cand, "explanation") < 0)
		goto out;
	v = json_object_get(rec, "MESHES");
	if (json_is_array(v) && json_is_string(json_array_get(v, 0)) &&
	    !str_blank(json_array_get(v, 0)))
		json_object_set(cand, "topic", json_array_get(v, 0));
	if (json_object_get(rec, "YEAR"))
		json_object_set(meta, "year", json_object_get(rec, "YEAR"));
	if (json_object_get(rec, "LABELS"))
		json_object_set(meta, "labels", json_object_get(rec, "LABELS"));
	if (json_array_size(v))
		json_object_set(meta, "meshes", v);
	if (json_object_size(meta))
		json_object_set(cand, "meta", meta);
	item_emit(p, cand, idx);
	cand = NULL;
out:
	buf_free(&ctx);
	json_decref(meta);
	json_decref(cand);
}

static const char *skip_space(const char *s)
{
	for (;;) {
		if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
			s++;
		else if (!strncmp(s, "\u3000", 3)) /* ideographic space */
			s += 3;
		else
			return s;
	}
}

/* Length of s[0..n) without trailing white space. */
static size_t trim_end(const char *s, size_t n)
{
	for (;;) {
		if (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
			n--;
		else if (n >= 3 && !memcmp(s + n - 3, "\u3000", 3))
			n -= 3;
		else
			return n;
	}
}

/* The MedThink assistant turn: "答案：ANSWER\n\nexplanation". */
static int sharegpt_answer(struct import_parser *p, long idx, const char *val, json_t *cand)
{
	static const char *const pfx[] = {"\u7b54\u6848\uff1a", "\u7b54\u6848:", "Answer:"};
	const char *s = skip_space(val), *nl;
	size_t i, n;

	for (i = 0; i < 3; i++)
		if (!strncmp(s, pfx[i], strlen(pfx[i])))
			break;
	if (i == 3) {
		report(p, idx, "the assistant turn does not start with \"%s\", \"%s\" or \"%s\"", pfx[0],
		       pfx[1], pfx[2]);
		return -1;
	}
	s += strlen(pfx[i]);
	while (*s == ' ' || *s == '\t' || !strncmp(s, "\u3000", 3))
		s += *s == ' ' || *s == '\t' ? 1 : 3;
	nl = strchr(s, '\n');
	n = trim_end(s, nl ? (size_t)(nl - s) : strlen(s));
	if (!n) {
		report(p, idx, "empty answer after \"%s\"", pfx[i]);
		return -1;
	}
	json_object_set_new(cand, "answer", json_stringn(s, n));
	if (nl) {
		s = skip_space(nl);
		n = trim_end(s, strlen(s));
		if (n)
			json_object_set_new(cand, "explanation", json_stringn(s, n));
	}
	return 0;
}

static void conv_sharegpt(struct import_parser *p, json_t *rec, long idx)
{
	json_t *cand = json_object(), *conv, *turn, *q = NULL, *a = NULL, *sys = NULL, *v;
	size_t i;

	if (!cand) {
		oom(p);
		return;
	}
	if (!json_is_object(rec)) {
		report(p, idx, "expected an object, found %s", json_kind(rec));
		goto out;
	}
	if (copy_id(p, idx, rec, cand) < 0)
		goto out;
	conv = json_object_get(rec, "conversations");
	if (!json_is_array(conv)) {
		if (conv)
			report(p, idx, "\"conversations\" must be an array, found %s", json_kind(conv));
		else
			report(p, idx, "missing \"conversations\"");
		goto out;
	}
	json_array_foreach(conv, i, turn) {
		const char *from = json_string_value(json_object_get(turn, "from"));
		json_t *val = json_object_get(turn, "value");
		char ex[EXCERPT_BYTES + 4];

		if (!from || !json_is_string(val)) {
			report(p, idx, "turn %zu needs string \"from\" and \"value\"", i + 1);
			goto out;
		}
		if (!strcmp(from, "user") || !strcmp(from, "human")) {
			if (q) {
				report(p, idx, "more than one user turn");
				goto out;
			}
			q = val;
		} else if (!strcmp(from, "assistant") || !strcmp(from, "gpt")) {
			if (a) {
				report(p, idx, "more than one assistant turn");
				goto out;
			}
			if (!q) {
				report(p, idx, "the assistant turn comes before the user turn");
				goto out;
			}
			a = val;
		} else if (!strcmp(from, "system")) {
			sys = val;
		} else {
			report(p, idx, "turn %zu has an unknown role \"%s\"", i + 1,
			       excerpt(from, ex, sizeof(ex)));
			goto out;
		}
	}
	if (!q || !a) {
		report(p, idx, "no %s turn", q ? "assistant" : "user");
		goto out;
	}
	if (str_blank(q)) {
		report(p, idx, "the user turn is empty");
		goto out;
	}
	json_object_set(cand, "question", q);
	if (sharegpt_answer(p, idx, json_string_value(a), cand) < 0)
		goto out;
	if (!sys && json_is_string(json_object_get(rec, "system")))
		sys = json_object_get(rec, "system");
	if (sys && !str_blank(sys))
		json_object_set_new(cand, "meta", json_pack("{sO}", "system", sys));
	v = json_object_get(rec, "images");
	if (v && copy_images(p, idx, v, cand) < 0)
		goto out;
	v = json_object_get(rec, "image");
	if (json_is_string(v) && !str_blank(v) && !json_object_get(cand, "images"))
		json_object_set_new(cand, "images", json_pack("[O]", v));
	item_emit(p, cand, idx);
	return;
out:
	json_decref(cand);
}

static void doc_finish(struct import_parser *p)
{
	const char *s = p->lbuf.base;
	size_t n = p->lbuf.len, bad;
	json_error_t je;
	json_t *doc = NULL, *v;
	long idx = 0;

	if (p->doc_over || !n || is_blank(s, n))
		goto out;
	bad = utf8_check((const char *)s, n);
	if (bad < n) {
		long line = 1;
		size_t bol = 0;

		for (size_t i = 0; i < bad; i++) {
			if (s[i] == '\n') {
				line++;
				bol = i + 1;
			}
		}
		report(p, line, "%s at line %ld, byte %zu", s[bad] ? "invalid UTF-8" : "NUL byte", line,
		       bad - bol + 1);
		goto out;
	}
	doc = json_loadb(s, n, JSON_REJECT_DUPLICATES, &je);
	buf_free(&p->lbuf);
	if (!doc) {
		report(p, je.line, "invalid JSON at line %d, column %d: %s", je.line, je.column, je.text);
		goto out;
	}
	if (p->fmt == FMT_PUBMEDQA) {
		const char *pmid;

		if (!json_is_object(doc)) {
			report(p, 0, "expected a JSON object keyed by PMID, found %s", json_kind(doc));
			goto out;
		}
		json_object_foreach(doc, pmid, v) {
			char ex[EXCERPT_BYTES + 4];

			if (p->stop)
				break;
			idx++;
			snprintf(p->prefix, sizeof(p->prefix), "record %ld (PMID %s)", idx,
			         excerpt(pmid, ex, sizeof(ex)));
			conv_pubmedqa(p, pmid, v, idx);
		}
	} else {
		size_t i;

		if (!json_is_array(doc)) {
			report(p, 0, "expected a JSON array of conversations, found %s", json_kind(doc));
			goto out;
		}
		json_array_foreach(doc, i, v) {
			if (p->stop)
				break;
			idx = (long)i + 1;
			snprintf(p->prefix, sizeof(p->prefix), "record %ld", idx);
			conv_sharegpt(p, v, idx);
		}
	}
out:
	p->prefix[0] = '\0';
	json_decref(doc);
	buf_free(&p->lbuf);
}

static void doc_feed(struct import_parser *p, const char *data, size_t len)
{
	int rc;

	if (p->doc_over)
		return;
	rc = buf_append(&p->lbuf, data, len);
	if (rc == -ENOBUFS) {
		p->doc_over = true;
		buf_free(&p->lbuf);
		report(p, 0, "document larger than %zu bytes", p->max_doc);
	} else if (rc) {
		oom(p);
	}
}

/* ---- the parser -------------------------------------------------------- */

const char *import_format_list(void) { return "native, medqa, medmcqa, pubmedqa, sharegpt, csv"; }

static int fmt_find(const char *name)
{
	for (size_t i = 0; name && i < sizeof(fmt_names) / sizeof(fmt_names[0]); i++)
		if (!strcmp(name, fmt_names[i]))
			return (int)i;
	return -1;
}

bool import_format_known(const char *name) { return fmt_find(name) >= 0; }

struct import_parser *import_parser_new(const char *format, const struct import_opts *opts,
                                        const struct import_cb *cb, char *err, size_t errlen)
{
	struct import_parser *p = NULL;
	int f = fmt_find(format);
	char ex[EXCERPT_BYTES + 4];

	if (f < 0) {
		if (err)
			snprintf(err, errlen, "unknown format \"%s\" (valid: %s)",
			         format ? excerpt(format, ex, sizeof(ex)) : "", import_format_list());
		return NULL;
	}
	if (!cb || !cb->on_item || !cb->on_error) {
		if (err)
			snprintf(err, errlen, "import: on_item and on_error are required");
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		goto nomem;
	p->fmt = (enum fmt)f;
	p->cb = *cb;
	p->max_line = opts && opts->max_line_bytes ? opts->max_line_bytes : IMPORT_MAX_LINE_DEFAULT;
	p->max_doc = opts && opts->max_doc_bytes ? opts->max_doc_bytes : IMPORT_MAX_DOC_DEFAULT;
	p->line = 1;
	p->qname = "question";
	p->aname = "answer";
	if (p->fmt == FMT_MEDQA)
		p->aname = "answer_idx";
	else if (p->fmt == FMT_MEDMCQA)
		p->aname = "cop";
	else if (p->fmt == FMT_PUBMEDQA) {
		p->qname = "QUESTION";
		p->aname = "final_decision";
	}
	buf_init(&p->lbuf, p->fmt == FMT_PUBMEDQA || p->fmt == FMT_SHAREGPT ? p->max_doc
	                                                                      : p->max_line + 1);
	buf_init(&p->csv.rec, p->max_line + CSV_MAX_FIELDS + 1);
	p->seen = json_object();
	if (!p->seen)
		goto nomem;
	if (p->fmt == FMT_CSV) {
		p->csv.fields = calloc(CSV_MAX_FIELDS, sizeof(*p->csv.fields));
		if (!p->csv.fields)
			goto nomem;
	}
	return p;
nomem:
	if (err)
		snprintf(err, errlen, "import: out of memory");
	import_parser_free(p);
	return NULL;
}

void import_parser_free(struct import_parser *p)
{
	if (!p)
		return;
	buf_free(&p->lbuf);
	buf_free(&p->csv.rec);
	free(p->csv.fields);
	csv_cols_free(&p->csv);
	json_decref(p->seen);
	free(p);
}

static void feed_raw(struct import_parser *p, const char *data, size_t len)
{
	switch (p->fmt) {
	case FMT_PUBMEDQA:
	case FMT_SHAREGPT:
		doc_feed(p, data, len);
		break;
	case FMT_CSV:
		csv_feed(p, data, len);
		break;
	default:
		jsonl_feed(p, data, len);
		break;
	}
}

static const char bom[3] = {'\xEF', '\xBB', '\xBF'};

int import_parser_feed(struct import_parser *p, const char *data, size_t len)
{
	if (p->finished)
		return -EINVAL;
	if (p->stop)
		return -ECANCELED;
	/* The BOM may itself arrive in pieces; a partial match that fails is
	 * ordinary input and is replayed. */
	while (!p->bom_done && len) {
		if (*data == bom[p->bom_n]) {
			data++;
			len--;
			if (++p->bom_n == 3)
				p->bom_done = true;
		} else {
			p->bom_done = true;
			feed_raw(p, bom, p->bom_n);
		}
	}
	if (len && !p->stop)
		feed_raw(p, data, len);
	return p->stop;
}

int import_parser_finish(struct import_parser *p)
{
	if (p->finished)
		return -EINVAL;
	p->finished = true;
	if (p->stop)
		return -ECANCELED;
	if (!p->bom_done && p->bom_n) {
		p->bom_done = true;
		feed_raw(p, bom, p->bom_n);
	}
	switch (p->fmt) {
	case FMT_PUBMEDQA:
	case FMT_SHAREGPT:
		doc_finish(p);
		break;
	case FMT_CSV:
		if (!p->stop)
			csv_finish(p);
		break;
	default:
		if (!p->stop && !p->skipping && p->lbuf.len)
			jsonl_line(p, p->lbuf.base, p->lbuf.len, p->line);
		buf_free(&p->lbuf);
		break;
	}
	return p->stop;
}

void import_parser_counts(const struct import_parser *p, long *items, long *errors)
{
	if (items)
		*items = p->nitems;
	if (errors)
		*errors = p->nerrors;
}
