/* The import parser core: the framing of each kind (JSON Lines, csv
 * records, one document), the BOM, the normalized item and its checks, and
 * the table of layouts. The layouts themselves are formats/import_<name>.c. */
#include "formats/import.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/hash.h"
#include "common/utf8.h"
#include "formats/formats.h"
#include "formats/import_impl.h"

/* An id names one item in messages and in the store's unique index; a
 * bound keeps both sane. */
#define ID_MAX_BYTES 256
#define CSV_MAX_FIELDS 256

/* The layouts, in listing order. A new importer is one line here. */
static const struct import_format *const formats[] = {
	&import_format_native,   &import_format_medqa,    &import_format_medmcqa,
	&import_format_pubmedqa, &import_format_sharegpt, &import_format_csv,
	&import_format_masks,
	&import_format_medvlm,
};

enum csv_state { CS_START, CS_UNQ, CS_Q, CS_QQ, CS_QCR };

struct csv {
	enum csv_state state;
	struct buf rec;  /* the record's fields, each NUL-terminated */
	struct import_csv_field *fields;
	size_t nf;
	size_t field_start;
	size_t rec_bytes; /* field content bytes so far (the cap applies to these) */
	long rec_line;
	bool in_rec;
	bool bad;       /* already reported: consume to the record's end, store nothing */
	bool any_quote; /* a "" line is a record with one empty field, not a blank line */
};

/* The ids seen so far, for "duplicate id" (a million-item import held
 * them as a jansson object, ~150 bytes an id; this is ~25). Each id is a
 * record in one arena: the line it was first used on (8 bytes), its length
 * (2 bytes, ids are at most ID_MAX_BYTES), its bytes. The table is open
 * addressing over uint64 slots: the high 32 bits of the id's hash, then
 * the record's offset + 1 (0 = empty); a full compare on a tag match keeps
 * it exact. */
struct idset {
	uint64_t *slot;
	size_t cap, n; /* cap a power of two, n <= cap * 3/4 */
	char *arena;
	size_t alen, acap;
};

#define IDSET_ARENA_MAX ((size_t)UINT32_MAX - 1)

static uint64_t idset_hash(const char *id, size_t len)
{
	return hash_mix64(fnv1a64(FNV1A64_INIT, id, len));
}

static const char *idset_rec(const struct idset *s, uint64_t slot, size_t *len)
{
	const char *r = s->arena + (size_t)(slot & 0xffffffffu) - 1;
	uint16_t l;

	memcpy(&l, r + 8, sizeof(l));
	*len = l;
	return r + 10;
}

/* The slot of id, or of the empty place it would go. */
static size_t idset_find(const struct idset *s, const char *id, size_t len, uint64_t h)
{
	size_t mask = s->cap - 1, i = (size_t)h & mask;
	uint64_t tag = h >> 32;

	for (;; i = (i + 1) & mask) {
		uint64_t v = s->slot[i];
		const char *rid;
		size_t rlen;

		if (v == 0)
			return i;
		if ((v >> 32) != tag)
			continue;
		rid = idset_rec(s, v, &rlen);
		if (rlen == len && memcmp(rid, id, len) == 0)
			return i;
	}
}

static int idset_grow(struct idset *s)
{
	size_t ncap = s->cap ? s->cap * 2 : 1024;
	uint64_t *old = s->slot, *ns = calloc(ncap, sizeof(*ns));
	size_t ocap = s->cap;

	if (!ns)
		return -ENOMEM;
	s->slot = ns;
	s->cap = ncap;
	for (size_t i = 0; i < ocap; i++) {
		const char *rid;
		size_t rlen;

		if (!old[i])
			continue;
		rid = idset_rec(s, old[i], &rlen);
		ns[idset_find(s, rid, rlen, idset_hash(rid, rlen))] = old[i];
	}
	free(old);
	return 0;
}

/* 1 and the line id was first used on in *first when it is in the set; 0
 * after adding it with line; -ENOMEM when it does not fit. */
static int idset_add(struct idset *s, const char *id, long line, long *first)
{
	size_t len = strlen(id), i, need = 10 + len;
	uint64_t h = idset_hash(id, len), ln = (uint64_t)line;
	uint16_t l16 = (uint16_t)len;

	if (len > UINT16_MAX)
		return -ENOMEM; /* ids are capped far below */
	if (s->cap && (i = idset_find(s, id, len, h), s->slot[i] != 0)) {
		memcpy(&ln, s->arena + (size_t)(s->slot[i] & 0xffffffffu) - 1, sizeof(ln));
		*first = (long)ln;
		return 1;
	}
	if ((s->n + 1) * 4 > s->cap * 3 && idset_grow(s) < 0)
		return -ENOMEM;
	if (s->alen + need > s->acap) {
		size_t ncap = s->acap ? s->acap * 2 : 64 << 10;
		char *na;

		while (ncap < s->alen + need)
			ncap *= 2;
		if (ncap > IDSET_ARENA_MAX)
			ncap = IDSET_ARENA_MAX;
		if (s->alen + need > ncap)
			return -ENOMEM;
		na = realloc(s->arena, ncap);
		if (!na)
			return -ENOMEM;
		s->arena = na;
		s->acap = ncap;
	}
	memcpy(s->arena + s->alen, &ln, 8);
	memcpy(s->arena + s->alen + 8, &l16, 2);
	memcpy(s->arena + s->alen + 10, id, len);
	s->slot[idset_find(s, id, len, h)] = (h >> 32 << 32) | (uint64_t)(s->alen + 1);
	s->alen += need;
	s->n++;
	return 0;
}

static void idset_free(struct idset *s)
{
	free(s->slot);
	free(s->arena);
	memset(s, 0, sizeof(*s));
}

struct import_parser {
	const struct import_format *fmt;
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
	struct idset seen; /* every id so far, with the line it was first used on */
	char prefix[128]; /* "record N" context of whole-document formats */
	void *state;      /* the layout's own (import_parser_state) */
};

/* ---- small helpers ---------------------------------------------------- */

/* s cut to IMPORT_EXCERPT_BYTES on a UTF-8 boundary, "..." appended when cut. */
const char *import_excerpt(const char *s, char *out, size_t outlen)
{
	size_t n = strlen(s);

	if (n <= IMPORT_EXCERPT_BYTES || outlen < IMPORT_EXCERPT_BUF)
		return s;
	n = utf8_prefix(s, n, IMPORT_EXCERPT_BYTES);
	memcpy(out, s, n);
	memcpy(out + n, "...", 4);
	return out;
}

bool import_blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

bool import_str_blank(json_t *v) { return import_blank(json_string_value(v), json_string_length(v)); }

const char *import_json_kind(const json_t *v)
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
void import_report(struct import_parser *p, long line, const char *fmt, ...)
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

void import_oom(struct import_parser *p)
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
void import_emit(struct import_parser *p, json_t *cand, long line)
{
	json_t *q = json_object_get(cand, "question");
	json_t *a = json_object_get(cand, "answer");
	json_t *opts = json_object_get(cand, "options");
	json_t *id = json_object_get(cand, "id");
	json_t *item = NULL;
	long first;
	static const char *const tail[] = {"explanation", "topic", "images", "mask", "meta"};
	char ex[IMPORT_EXCERPT_BUF], ex2[IMPORT_EXCERPT_BUF], keys[160], derived[17];
	const char *idstr;
	bool is_derived = false;
	int rc;

	for (int i = 0; i < 2; i++) {
		json_t *v = i ? a : q;
		const char *key = i ? p->fmt->answer_key : p->fmt->question_key;

		if (!v || import_str_blank(v)) {
			import_report(p, line, v ? "\"%s\" is empty" : "missing \"%s\"", key);
			goto out;
		}
	}
	if (opts) {
		const char *k;
		json_t *v;

		if (json_object_size(opts) < 2) {
			import_report(p, line, "\"options\" needs at least 2 entries, found %zu",
			       json_object_size(opts));
			goto out;
		}
		json_object_foreach(opts, k, v) {
			if (!k[0]) {
				import_report(p, line, "an option key is empty");
				goto out;
			}
			if (!json_is_string(v)) {
				import_report(p, line, "option \"%s\" must be a string, found %s",
				       import_excerpt(k, ex, sizeof(ex)), import_json_kind(v));
				goto out;
			}
			if (import_str_blank(v)) {
				import_report(p, line, "option \"%s\" is empty", import_excerpt(k, ex, sizeof(ex)));
				goto out;
			}
		}
		if (!json_object_get(opts, json_string_value(a))) {
			option_keys_list(opts, keys, sizeof(keys));
			import_report(p, line, "%s \"%s\" is not one of the option keys (%s)", p->fmt->answer_key,
			       import_excerpt(json_string_value(a), ex, sizeof(ex)), keys);
			goto out;
		}
	}
	if (id) {
		if (import_str_blank(id)) {
			import_report(p, line, "\"id\" is empty");
			goto out;
		}
		if (json_string_length(id) > ID_MAX_BYTES) {
			import_report(p, line, "\"id\" is longer than %d bytes", ID_MAX_BYTES);
			goto out;
		}
		idstr = json_string_value(id);
	} else {
		import_item_id(json_string_value(q), opts, json_string_value(a), derived);
		idstr = derived;
		is_derived = true;
	}
	rc = idset_add(&p->seen, idstr, line, &first);
	if (rc < 0) {
		import_oom(p);
		goto out;
	}
	if (rc > 0) {
		const char *where = p->fmt->kind == IMPORT_DOCUMENT ? "record" : "line";

		if (is_derived)
			import_report(p, line, "duplicate item: same question, options and answer as %s %ld",
			       where, first);
		else
			import_report(p, line, "duplicate id \"%s\" (first used %s %s %ld)",
			       import_excerpt(idstr, ex2, sizeof(ex2)), where[0] == 'r' ? "in" : "on", where,
			       first);
		goto out;
	}

	item = json_object();
	if (!item) {
		import_oom(p);
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
		import_oom(p);
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
int import_get_str(struct import_parser *p, long line, json_t *obj, const char *key, json_t **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		import_report(p, line, "\"%s\" must be a string, found %s", key, import_json_kind(v));
		return -1;
	}
	*out = v;
	return 1;
}

/* Copies the string at obj[key] into cand[to] unless absent, null or
 * blank. 0, or -1 when reported. */
int import_copy_str(struct import_parser *p, long line, json_t *obj, const char *key,
                        json_t *cand, const char *to)
{
	json_t *v;
	int rc = import_get_str(p, line, obj, key, &v);

	if (rc <= 0)
		return rc;
	if (!import_str_blank(v))
		json_object_set(cand, to, v);
	return 0;
}

/* An "id" that is a string or an integer, as a string in cand. */
int import_copy_id(struct import_parser *p, long line, json_t *obj, json_t *cand)
{
	json_t *v = json_object_get(obj, "id");

	if (!v || json_is_null(v))
		return 0;
	if (json_is_string(v))
		return json_object_set(cand, "id", v);
	if (json_is_integer(v))
		return json_object_set_new(cand, "id",
		                           json_sprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v)));
	import_report(p, line, "\"id\" must be a string or an integer, found %s", import_json_kind(v));
	return -1;
}

int import_copy_images(struct import_parser *p, long line, json_t *v, json_t *cand)
{
	size_t i;
	json_t *e;

	if (json_is_null(v))
		return 0;
	if (!json_is_array(v)) {
		import_report(p, line, "\"images\" must be an array of strings, found %s", import_json_kind(v));
		return -1;
	}
	json_array_foreach(v, i, e) {
		if (!json_is_string(e) || import_str_blank(e)) {
			import_report(p, line, "\"images\"[%zu] must be a non-empty string", i);
			return -1;
		}
	}
	if (json_array_size(v))
		json_object_set(cand, "images", v);
	return 0;
}

/* ---- JSON Lines: one object a line ---------------------------------------- */

static void jsonl_line(struct import_parser *p, const char *s, size_t n, long line)
{
	json_error_t je;
	json_t *v;
	size_t bad;

	if (n && s[n - 1] == '\r')
		n--;
	if (import_blank(s, n))
		return;
	if (n > p->max_line) {
		import_report(p, line, "line longer than %zu bytes", p->max_line);
		return;
	}
	bad = utf8_check((const char *)s, n);
	if (bad < n) {
		import_report(p, line, s[bad] ? "invalid UTF-8 at byte %zu" : "NUL byte at byte %zu", bad + 1);
		return;
	}
	v = json_loadb(s, n, JSON_REJECT_DUPLICATES, &je);
	if (!v) {
		import_report(p, line, "invalid JSON at column %d: %s", je.column, je.text);
		return;
	}
	if (!json_is_object(v))
		import_report(p, line, "expected a JSON object, found %s", import_json_kind(v));
	else
		p->fmt->parse_json(p, NULL, v, line);
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
			import_report(p, p->line, "line longer than %zu bytes", p->max_line);
			buf_reset(&p->lbuf);
			p->skipping = !nl;
		} else if (buf_append(&p->lbuf, data, n)) {
			import_oom(p);
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

/* ---- csv records (RFC 4180) ---------------------------------------------- */

static void csv_put(struct import_parser *p, const char *s, size_t n)
{
	struct csv *c = &p->csv;

	if (c->bad || !n)
		return;
	if (n > p->max_line - c->rec_bytes) {
		import_report(p, c->rec_line, "record longer than %zu bytes", p->max_line);
		c->bad = true;
		return;
	}
	if (buf_append(&c->rec, s, n)) {
		import_oom(p);
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
		import_report(p, c->rec_line, "record has more than %d fields", CSV_MAX_FIELDS);
		c->bad = true;
		return;
	}
	if (buf_append(&c->rec, "", 1)) {
		import_oom(p);
		return;
	}
	c->fields[c->nf].off = c->field_start;
	c->fields[c->nf].len = c->rec.len - 1 - c->field_start;
	c->nf++;
	c->field_start = c->rec.len;
}

static void csv_record_end(struct import_parser *p)
{
	struct csv *c = &p->csv;
	struct import_csv_record rec = {c->rec.base, c->fields, c->nf, c->rec_line};

	/* A line of nothing but white space is a blank line, not a record. */
	if (!c->bad && !(c->nf == 1 && !c->any_quote && import_blank(import_csv_str(&rec, 0), c->fields[0].len)))
		p->fmt->parse_csv(p, &rec);
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
		import_report(p, c->rec_line, "unexpected character after the closing quote of field %zu",
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
			import_report(p, c->rec_line, "quoted field %zu is not closed at the end of the input",
			       c->nf + 1);
		c->bad = true;
	}
	if (c->state == CS_UNQ)
		csv_strip_cr(c);
	csv_field_end(p);
	csv_record_end(p);
}

/* ---- one JSON document --------------------------------------------------- */

/* One record of a document, under its "record N" prefix. */
static void doc_record(struct import_parser *p, const char *key, json_t *rec, long idx)
{
	if (!json_is_object(rec))
		import_report(p, idx, "expected an object, found %s", import_json_kind(rec));
	else
		p->fmt->parse_json(p, key, rec, idx);
}

static void doc_finish(struct import_parser *p)
{
	const char *s = p->lbuf.base;
	size_t n = p->lbuf.len, bad;
	json_error_t je;
	json_t *doc = NULL, *v;
	long idx = 0;

	if (p->doc_over || !n || import_blank(s, n))
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
		import_report(p, line, "%s at line %ld, byte %zu", s[bad] ? "invalid UTF-8" : "NUL byte", line,
		       bad - bol + 1);
		goto out;
	}
	doc = json_loadb(s, n, JSON_REJECT_DUPLICATES, &je);
	buf_free(&p->lbuf);
	if (!doc) {
		import_report(p, je.line, "invalid JSON at line %d, column %d: %s", je.line, je.column, je.text);
		goto out;
	}
	if (p->fmt->doc_key ? !json_is_object(doc) : !json_is_array(doc)) {
		import_report(p, 0, "expected %s, found %s", p->fmt->doc_what, import_json_kind(doc));
		goto out;
	}
	if (p->fmt->doc_key) {
		const char *key;

		json_object_foreach(doc, key, v) {
			char ex[IMPORT_EXCERPT_BUF];

			if (p->stop)
				break;
			idx++;
			snprintf(p->prefix, sizeof(p->prefix), "record %ld (%s %s)", idx, p->fmt->doc_key,
			         import_excerpt(key, ex, sizeof(ex)));
			doc_record(p, key, v, idx);
		}
	} else {
		size_t i;

		json_array_foreach(doc, i, v) {
			if (p->stop)
				break;
			idx = (long)i + 1;
			snprintf(p->prefix, sizeof(p->prefix), "record %ld", idx);
			doc_record(p, NULL, v, idx);
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
		import_report(p, 0, "document larger than %zu bytes", p->max_doc);
	} else if (rc) {
		import_oom(p);
	}
}

/* ---- the parser -------------------------------------------------------- */

#define NFORMATS (sizeof(formats) / sizeof(formats[0]))

const struct import_format *import_format_at(size_t i) { return i < NFORMATS ? formats[i] : NULL; }

const struct import_format *import_format_find(const char *name)
{
	for (size_t i = 0; name && i < NFORMATS; i++)
		if (!strcmp(name, formats[i]->name))
			return formats[i];
	return NULL;
}

bool import_format_known(const char *name) { return import_format_find(name) != NULL; }

static char format_list[256];
static pthread_once_t format_list_once = PTHREAD_ONCE_INIT;

static void format_list_build(void)
{
	const char *names[NFORMATS];

	for (size_t i = 0; i < NFORMATS; i++)
		names[i] = formats[i]->name;
	formats_names_join(format_list, sizeof(format_list), names, NFORMATS, ", ", ", ");
}

const char *import_format_list(void)
{
	pthread_once(&format_list_once, format_list_build);
	return format_list;
}

void **import_parser_state(struct import_parser *p) { return &p->state; }

struct import_parser *import_parser_new(const char *format, const struct import_opts *opts,
                                        const struct import_cb *cb, char *err, size_t errlen)
{
	const struct import_format *f = import_format_find(format);
	struct import_parser *p = NULL;
	char ex[IMPORT_EXCERPT_BUF];

	if (!f) {
		if (err)
			snprintf(err, errlen, "unknown format \"%s\" (valid: %s)",
			         format ? import_excerpt(format, ex, sizeof(ex)) : "", import_format_list());
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
	p->fmt = f;
	p->cb = *cb;
	p->max_line = opts && opts->max_line_bytes ? opts->max_line_bytes : IMPORT_MAX_LINE_DEFAULT;
	p->max_doc = opts && opts->max_doc_bytes ? opts->max_doc_bytes : IMPORT_MAX_DOC_DEFAULT;
	p->line = 1;
	buf_init(&p->lbuf, f->kind == IMPORT_DOCUMENT ? p->max_doc : p->max_line + 1);
	buf_init(&p->csv.rec, p->max_line + CSV_MAX_FIELDS + 1);
	if (f->kind == IMPORT_CSV) {
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
	if (p->fmt->state_free)
		p->fmt->state_free(p->state);
	buf_free(&p->lbuf);
	buf_free(&p->csv.rec);
	free(p->csv.fields);
	idset_free(&p->seen);
	free(p);
}

static void feed_raw(struct import_parser *p, const char *data, size_t len)
{
	switch (p->fmt->kind) {
	case IMPORT_DOCUMENT:
		doc_feed(p, data, len);
		break;
	case IMPORT_CSV:
		csv_feed(p, data, len);
		break;
	case IMPORT_JSON_LINES:
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
	switch (p->fmt->kind) {
	case IMPORT_DOCUMENT:
		doc_finish(p);
		break;
	case IMPORT_CSV:
		if (!p->stop)
			csv_finish(p);
		break;
	case IMPORT_JSON_LINES:
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

/* ---- telling the layout ------------------------------------------------- */

bool import_sniff_enough(const char *head, size_t len)
{
	size_t i = 0;

	if (len >= IMPORT_SNIFF_MAX)
		return true;
	if (len < IMPORT_SNIFF_WANT)
		return false;
	while (i < len && import_blank(head + i, 1))
		i++;
	return memchr(head + i, '\n', len - i) != NULL;
}

struct sniff_trial {
	int verdict; /* -1 until the first record */
};

static int sniff_on_item(void *ud, json_t *item, long line)
{
	struct sniff_trial *t = ud;

	(void)line;
	json_decref(item);
	t->verdict = IMPORT_SNIFF_YES;
	return 1;
}

static int sniff_on_error(void *ud, long line, const char *reason)
{
	struct sniff_trial *t = ud;

	(void)line;
	(void)reason;
	t->verdict = IMPORT_SNIFF_NO;
	return 1;
}

enum import_sniff_verdict import_sniff_records(const struct import_format *f, const struct import_sniff *s)
{
	struct sniff_trial t = { -1 };
	struct import_cb cb = { sniff_on_item, sniff_on_error, &t };
	struct import_parser *p = import_parser_new(f->name, NULL, &cb, NULL, 0);
	size_t n = s->len;

	if (!p)
		return IMPORT_SNIFF_NO;
	if (!s->all) {
		/* complete lines only: a cut one would be rejected for the cut */
		while (n && s->head[n - 1] != '\n')
			n--;
	}
	if (import_parser_feed(p, s->head, n) == 0)
		import_parser_finish(p);
	import_parser_free(p);
	return t.verdict == IMPORT_SNIFF_YES ? IMPORT_SNIFF_YES : IMPORT_SNIFF_NO;
}

const struct import_format *import_format_sniff(const char *head, size_t len, bool all, char *err,
                                                size_t errlen)
{
	const struct import_format *yes[NFORMATS], *maybe[NFORMATS];
	size_t nyes = 0, nmaybe = 0, i = 0;
	struct import_sniff s;
	const char *names[NFORMATS];
	const struct import_format *const *set;
	size_t nset;
	char list[256];

	if (len >= 3 && memcmp(head, bom, 3) == 0) {
		head += 3;
		len -= 3;
	}
	while (i < len && import_blank(head + i, 1))
		i++;
	s.head = head;
	s.len = len;
	s.all = all;
	s.first = i < len ? head[i] : 0;
	s.line = head + i;
	s.line_len = len - i;
	{
		const char *nl = memchr(head + i, '\n', len - i);

		if (nl)
			s.line_len = (size_t)(nl - (head + i));
	}
	for (size_t k = 0; k < NFORMATS; k++) {
		enum import_sniff_verdict v = formats[k]->sniff ? formats[k]->sniff(formats[k], &s) : IMPORT_SNIFF_NO;

		if (v == IMPORT_SNIFF_YES && formats[k] == &import_format_native)
			return formats[k]; /* the default, when it reads */
		if (v == IMPORT_SNIFF_YES)
			yes[nyes++] = formats[k];
		else if (v == IMPORT_SNIFF_MAYBE)
			maybe[nmaybe++] = formats[k];
	}
	set = nyes ? yes : maybe;
	nset = nyes ? nyes : nmaybe;
	if (nset == 0)
		return &import_format_native;
	if (nset == 1)
		return set[0];
	for (i = 0; i < nset; i++)
		names[i] = set[i]->name;
	formats_names_join(list, sizeof(list), names, nset, ", ", " or ");
	if (err)
		snprintf(err, errlen, "cannot tell the file's layout: it could be %s; give the format", list);
	return NULL;
}
