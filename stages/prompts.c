#include "stages/prompts.h"

#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/utf8.h"
#include "formats/item.h"

const char *const prompts_required[] = { "screen", "explain", "answer", "judge", "correct", NULL };

static const char *const placeholders[] = { "question", "options", "gold", "gold_text",
	                                    "student_reply", "explanation", "context", "topic",
	                                    "problem", NULL };
static const char *const sections[] = { "mc", "open", "context", "explanation", "topic",
	                                "student_reply", NULL };
/* Templates that see the gold answer, and the one that must not. */
static const char *const gold_templates[] = { "screen", "explain", "judge", "correct", NULL };
static const char *const blind_templates[] = { "answer", "r1", NULL };
/* Templates sent exactly as written (a published prompt reproduced byte for
 * byte): no task line, and neither the load nor the render trims or tidies
 * their user part beyond the newline that ends the file. */
static const char *const verbatim_templates[] = { "r1", NULL };

#define SEPARATOR "---user---"
#define MAX_DEPTH 8

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	/* messages quote templates and items: cut on a character boundary */
	err[utf8_prefix(err, strlen(err), errlen - 1)] = '\0';
	utf8_sanitize(err);
}

static int in_list(const char *s, size_t n, const char *const *list)
{
	for (size_t i = 0; list[i]; i++)
		if (strlen(list[i]) == n && memcmp(list[i], s, n) == 0)
			return 1;
	return 0;
}

static int name_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* ---- Template scanning ------------------------------------------------- */

enum tag_kind { TAG_NONE, TAG_VAR, TAG_OPEN, TAG_CLOSE };

/* Reads a tag at p ("{name}", "{#name}", "{/name}"); anything else is not a
 * tag (a literal brace). */
static enum tag_kind tag_at(const char *p, const char *end, const char **name, size_t *nlen,
                            size_t *len)
{
	enum tag_kind k = TAG_VAR;
	const char *q = p + 1, *s;

	if (*p != '{')
		return TAG_NONE;
	if (q < end && *q == '#') {
		k = TAG_OPEN;
		q++;
	} else if (q < end && *q == '/') {
		k = TAG_CLOSE;
		q++;
	}
	s = q;
	if (q >= end || !((*q >= 'a' && *q <= 'z') || *q == '_'))
		return TAG_NONE;
	while (q < end && name_char((unsigned char)*q))
		q++;
	if (q >= end || *q != '}')
		return TAG_NONE;
	*name = s;
	*nlen = (size_t)(q - s);
	*len = (size_t)(q + 1 - p);
	return k;
}

/* Values a render fills in. NULL: not available (an error if used). */
struct values {
	const char *v[9]; /* indexed like placeholders[] */
	int mc;
};

static int var_index(const char *s, size_t n)
{
	for (int i = 0; placeholders[i]; i++)
		if (strlen(placeholders[i]) == n && memcmp(placeholders[i], s, n) == 0)
			return i;
	return -1;
}

static int section_true(const struct values *vals, const char *s, size_t n)
{
	int i;

	if (n == 2 && memcmp(s, "mc", 2) == 0)
		return vals->mc;
	if (n == 4 && memcmp(s, "open", 4) == 0)
		return !vals->mc;
	i = var_index(s, n);
	return i >= 0 && vals->v[i] && vals->v[i][0];
}

/* A template part compiled by a checking walk: its text pieces (the newlines
 * that end kept lines included, runs merged), placeholders and section tags
 * in order, the lines of lone section tags gone. Replayed with a render's
 * values it writes what walk writes, without scanning the text for tags. */
enum op_kind { OP_TEXT, OP_VAR, OP_OPEN, OP_CLOSE };

struct op {
	enum op_kind k;
	int vi;        /* OP_VAR: index in placeholders[] */
	const char *s; /* OP_TEXT: the text; OP_OPEN: the section's name */
	size_t n;
};

#define OPS_MAX 4096 /* a template of PROMPTS_FILE_MAX has fewer */

struct ops {
	struct op *v;
	size_t n, cap;
	bool fail;
};

static void ops_add(struct ops *o, enum op_kind k, int vi, const char *s, size_t n)
{
	if (o->fail)
		return;
	if (k == OP_TEXT && o->n && o->v[o->n - 1].k == OP_TEXT &&
	    o->v[o->n - 1].s + o->v[o->n - 1].n == s) {
		o->v[o->n - 1].n += n; /* the run goes on */
		return;
	}
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 32;
		struct op *v = cap <= OPS_MAX ? realloc(o->v, cap * sizeof(*v)) : NULL;

		if (!v) {
			o->fail = true;
			return;
		}
		o->v = v;
		o->cap = cap;
	}
	o->v[o->n++] = (struct op){ .k = k, .vi = vi, .s = s, .n = n };
}

/* Walks a template part: checks it (vals == NULL) or renders it into out.
 * A section tag alone on its line removes the line. Errors name the
 * template, the part and the line. */
static int walk(const char *tname, const char *part, const char *text, const struct values *vals,
                struct buf *out, struct ops *rec, char *err, size_t errlen)
{
	const char *p = text, *end = text + strlen(text);
	const char *open_name[MAX_DEPTH];
	size_t open_len[MAX_DEPTH];
	int active[MAX_DEPTH + 1];
	int depth = 0, line = 1, rc;

	active[0] = 1;
	while (p < end) {
		const char *le = memchr(p, '\n', (size_t)(end - p));
		const char *s = p, *name, *e;
		size_t nlen, tlen;
		enum tag_kind k;
		int lone = 0;

		if (!le)
			le = end;
		/* a lone section tag? */
		while (s < le && (*s == ' ' || *s == '\t'))
			s++;
		k = tag_at(s, le, &name, &nlen, &tlen);
		if (k == TAG_OPEN || k == TAG_CLOSE) {
			e = s + tlen;
			while (e < le && (*e == ' ' || *e == '\t' || *e == '\r'))
				e++;
			lone = e == le;
		}
		for (s = p; s < (lone ? p : le);) {
			k = tag_at(s, le, &name, &nlen, &tlen);
			if (k == TAG_NONE) {
				/* Plain text up to the next '{' (where a tag may start)
				 * is copied in one piece. */
				const char *next = memchr(s + 1, '{', (size_t)(le - (s + 1)));

				if (!next)
					next = le;
				if (rec)
					ops_add(rec, OP_TEXT, 0, s, (size_t)(next - s));
				if (vals && active[depth]) {
					rc = buf_append(out, s, (size_t)(next - s));
					if (rc)
						goto fail_buf;
				}
				s = next;
				continue;
			}
			if (k == TAG_VAR) {
				int vi = var_index(name, nlen);

				if (vi < 0) {
					seterr(err, errlen, "template %s (%s, line %d): unknown placeholder {%.*s}",
					       tname, part, line, (int)nlen, name);
					return -EINVAL;
				}
				if (rec)
					ops_add(rec, OP_VAR, vi, NULL, 0);
				if (vals && active[depth]) {
					if (!vals->v[vi]) {
						seterr(err, errlen,
						       "template %s (%s, line %d): placeholder {%.*s} has no value "
						       "(pass it in vars)",
						       tname, part, line, (int)nlen, name);
						return -EINVAL;
					}
					rc = buf_puts(out, vals->v[vi]);
					if (rc)
						goto fail_buf;
				}
			} else if (!in_list(name, nlen, sections)) {
				seterr(err, errlen, "template %s (%s, line %d): unknown section {%c%.*s}", tname,
				       part, line, k == TAG_OPEN ? '#' : '/', (int)nlen, name);
				return -EINVAL;
			} else if (k == TAG_OPEN) {
				if (depth == MAX_DEPTH) {
					seterr(err, errlen, "template %s (%s, line %d): sections nested too deep",
					       tname, part, line);
					return -EINVAL;
				}
				open_name[depth] = name;
				open_len[depth] = nlen;
				active[depth + 1] = active[depth] && (!vals || section_true(vals, name, nlen));
				depth++;
				if (rec)
					ops_add(rec, OP_OPEN, 0, name, nlen);
			} else {
				if (!depth || open_len[depth - 1] != nlen ||
				    memcmp(open_name[depth - 1], name, nlen) != 0) {
					seterr(err, errlen, "template %s (%s, line %d): {/%.*s} closes no open section",
					       tname, part, line, (int)nlen, name);
					return -EINVAL;
				}
				depth--;
				if (rec)
					ops_add(rec, OP_CLOSE, 0, NULL, 0);
			}
			s += tlen;
		}
		if (lone) {
			/* apply the lone tag; the line itself vanishes */
			s = p;
			while (*s == ' ' || *s == '\t')
				s++;
			k = tag_at(s, le, &name, &nlen, &tlen);
			if (!in_list(name, nlen, sections)) {
				seterr(err, errlen, "template %s (%s, line %d): unknown section {%c%.*s}", tname,
				       part, line, k == TAG_OPEN ? '#' : '/', (int)nlen, name);
				return -EINVAL;
			}
			if (k == TAG_OPEN) {
				if (depth == MAX_DEPTH) {
					seterr(err, errlen, "template %s (%s, line %d): sections nested too deep",
					       tname, part, line);
					return -EINVAL;
				}
				open_name[depth] = name;
				open_len[depth] = nlen;
				active[depth + 1] = active[depth] && (!vals || section_true(vals, name, nlen));
				depth++;
				if (rec)
					ops_add(rec, OP_OPEN, 0, name, nlen);
			} else {
				if (!depth || open_len[depth - 1] != nlen ||
				    memcmp(open_name[depth - 1], name, nlen) != 0) {
					seterr(err, errlen, "template %s (%s, line %d): {/%.*s} closes no open section",
					       tname, part, line, (int)nlen, name);
					return -EINVAL;
				}
				depth--;
				if (rec)
					ops_add(rec, OP_CLOSE, 0, NULL, 0);
			}
		} else if (le < end && vals && active[depth]) {
			rc = buf_append(out, "\n", 1);
			if (rc)
				goto fail_buf;
		} else if (le < end && rec) {
			ops_add(rec, OP_TEXT, 0, le, 1);
		}
		p = le < end ? le + 1 : end;
		line++;
	}
	if (depth) {
		seterr(err, errlen, "template %s (%s): section {#%.*s} is never closed", tname, part,
		       (int)open_len[depth - 1], open_name[depth - 1]);
		return -EINVAL;
	}
	return 0;
fail_buf:
	if (rc == -ENOBUFS) {
		seterr(err, errlen, "template %s (%s): rendered text exceeds %zu bytes", tname, part,
		       out->max);
		return -E2BIG;
	}
	seterr(err, errlen, "template %s: out of memory", tname);
	return rc;
}

/* ---- Checking one template --------------------------------------------- */

static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = strstr(text, line); p; p = strstr(p + 1, line))
		if ((p == text || p[-1] == '\n') && (p[n] == '\0' || p[n] == '\n' || p[n] == '\r'))
			return 1;
	return 0;
}

/* walks: also walk both parts (a render skips that: its own walk finds
 * every fault the check's walk finds, and on a failure it checks again in
 * full so the error is the check's, as before). */
static int check_template(const char *name, json_t *t, bool walks, char *err, size_t errlen)
{
	const char *sys = json_string_value(json_object_get(t, "system"));
	const char *user = json_string_value(json_object_get(t, "user"));
	json_t *ver = json_object_get(t, "version");
	char task[96];
	size_t nl = strlen(name);
	int rc;

	if (!json_is_object(t) || !sys || !user || !json_is_integer(ver) ||
	    json_integer_value(ver) < 1) {
		seterr(err, errlen, "template %s: needs \"version\" >= 1, \"system\" and \"user\" strings",
		       name);
		return -EINVAL;
	}
	if (!nl || nl > 64) {
		seterr(err, errlen, "template name \"%.*s\": must be 1-64 characters",
		       (int)utf8_prefix(name, strlen(name), 64), name);
		return -EINVAL;
	}
	for (size_t i = 0; i < nl; i++) {
		if (!name_char((unsigned char)name[i])) {
			seterr(err, errlen, "template name \"%s\": only a-z, 0-9 and _ are allowed", name);
			return -EINVAL;
		}
	}
	snprintf(task, sizeof task, "### Task: %s", name);
	if (!in_list(name, nl, verbatim_templates) && (strncmp(user, task, strlen(task)) != 0 ||
	    (user[strlen(task)] != '\n' && user[strlen(task)] != '\0'))) {
		seterr(err, errlen, "template %s (user, line 1): must be \"%s\"", name, task);
		return -EINVAL;
	}
	rc = walks ? walk(name, "system", sys, NULL, NULL, NULL, err, errlen) : 0;
	if (!rc && walks)
		rc = walk(name, "user", user, NULL, NULL, NULL, err, errlen);
	if (rc)
		return rc;
	if (in_list(name, nl, blind_templates)) {
		if (strstr(sys, "{gold") || strstr(user, "{gold") || strstr(sys, "Gold answer") ||
		    strstr(user, "Gold answer")) {
			seterr(err, errlen, "template %s: must not reveal the gold answer ({gold}, {gold_text} "
			       "or \"Gold answer\")", name);
			return -EINVAL;
		}
	} else if (in_list(name, nl, gold_templates)) {
		if (!has_line(user, "Gold answer: {gold}")) {
			seterr(err, errlen, "template %s (user): needs a line \"Gold answer: {gold}\"", name);
			return -EINVAL;
		}
	}
	return 0;
}

static int check_one(const char *name, json_t *t, char *err, size_t errlen)
{
	return check_template(name, t, true, err, errlen);
}

int prompts_check(json_t *snapshot, char *err, size_t errlen)
{
	const char *name;
	json_t *t;
	int rc;

	if (!json_is_object(snapshot)) {
		seterr(err, errlen, "prompt snapshot: not a JSON object");
		return -EINVAL;
	}
	if (json_object_size(snapshot) > PROMPTS_MAX) {
		seterr(err, errlen, "prompt snapshot: more than %d templates", PROMPTS_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; prompts_required[i]; i++) {
		if (!json_object_get(snapshot, prompts_required[i])) {
			seterr(err, errlen, "prompt snapshot: template %s is missing", prompts_required[i]);
			return -EINVAL;
		}
	}
	json_object_foreach(snapshot, name, t) {
		rc = check_one(name, t, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- Loading ----------------------------------------------------------- */

static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
	FILE *f = NULL;
	char *data = NULL;
	struct stat st;
	size_t n;
	int rc = 0;

	f = fopen(path, "rb");
	if (!f) {
		rc = -errno;
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fileno(f), &st) != 0) {
		rc = -errno;
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if ((size_t)st.st_size > PROMPTS_FILE_MAX) {
		rc = -EFBIG;
		seterr(err, errlen, "%s: larger than %zu bytes", path, PROMPTS_FILE_MAX);
		goto out;
	}
	data = malloc((size_t)st.st_size + 1);
	if (!data) {
		rc = -ENOMEM;
		goto out;
	}
	n = fread(data, 1, (size_t)st.st_size, f);
	if (n != (size_t)st.st_size || ferror(f)) {
		rc = -EIO;
		seterr(err, errlen, "%s: read error", path);
		goto out;
	}
	data[n] = '\0';
	*out = data;
	*len = n;
	data = NULL;
out:
	free(data);
	if (f)
		fclose(f);
	return rc;
}

/* Trims blank lines (and trailing spaces) at both ends, in place. */
static char *trim_block(char *s)
{
	char *e;

	while (*s == '\n' || *s == '\r')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*e = '\0';
	return s;
}

/* Parses one template file's text (NUL-terminated, len bytes) into
 * {"version","system","user"}. */
static int parse_file(const char *path, const char *stem, char *text, size_t len, json_t **out,
                      char *err, size_t errlen)
{
	char hname[80];
	int ver = 0, consumed = 0;
	char *nl, *body, *sep, *user, *sys;
	json_t *t;

	if (memchr(text, '\0', len)) {
		seterr(err, errlen, "%s: contains a NUL byte", path);
		return -EINVAL;
	}
	nl = strchr(text, '\n');
	if (nl)
		*nl = '\0';
	if (sscanf(text, "# medthink prompt %79s v%d%n", hname, &ver, &consumed) != 2 ||
	    text[consumed] != '\0' || ver < 1) {
		seterr(err, errlen, "%s:1: the first line must be \"# medthink prompt %s vN\"", path, stem);
		return -EINVAL;
	}
	if (strcmp(hname, stem) != 0) {
		seterr(err, errlen, "%s:1: header names prompt %s, but the file is %s.txt", path, hname,
		       stem);
		return -EINVAL;
	}
	body = nl ? nl + 1 : text + len;
	/* the separator line */
	sep = NULL;
	for (char *p = strstr(body, SEPARATOR); p; p = strstr(p + 1, SEPARATOR)) {
		char *q = p + strlen(SEPARATOR);

		if ((p == body || p[-1] == '\n') && (*q == '\n' || *q == '\0' || *q == '\r')) {
			if (sep) {
				seterr(err, errlen, "%s: more than one \"" SEPARATOR "\" line", path);
				return -EINVAL;
			}
			sep = p;
		}
	}
	if (!sep) {
		seterr(err, errlen, "%s: no \"" SEPARATOR "\" line between system and user parts", path);
		return -EINVAL;
	}
	*sep = '\0';
	user = sep + strlen(SEPARATOR);
	sys = trim_block(body);
	if (in_list(stem, strlen(stem), verbatim_templates)) {
		/* the line break after the separator and the one ending the file */
		size_t ul;

		if (*user == '\r')
			user++;
		if (*user == '\n')
			user++;
		ul = strlen(user);
		if (ul && user[ul - 1] == '\n')
			user[--ul] = '\0';
		if (ul && user[ul - 1] == '\r')
			user[--ul] = '\0';
	} else {
		user = trim_block(user);
	}
	t = json_pack("{s:i,s:s,s:s}", "version", ver, "system", sys, "user", user);
	if (!t) {
		/* json_pack fails on invalid UTF-8 (or ENOMEM) */
		seterr(err, errlen, "%s: not valid UTF-8", path);
		return -EINVAL;
	}
	*out = t;
	return 0;
}

/* The built-in templates: conf/prompts/NAME.txt as the build found them
 * (generated by stages/prompts_builtin.sh; NULL-terminated, in name order). */
extern const char *const prompts_builtin_name[];
extern const char *const prompts_builtin_text[];
extern const size_t prompts_builtin_len[];

/* Parses and checks one template file's text (taken: freed here), named
 * fname ("NAME.txt"), and adds it to snap; path names it in messages. */
static int add_file(json_t *snap, const char *path, const char *fname, char *text, size_t len,
                    char *err, size_t errlen)
{
	size_t nl = strlen(fname);
	json_t *t = NULL;
	char stem[80], cerr[512];
	int rc;

	if (nl - 4 >= sizeof stem) {
		rc = -EINVAL;
		seterr(err, errlen, "%s: file name too long for a template", path);
		goto out;
	}
	memcpy(stem, fname, nl - 4);
	stem[nl - 4] = '\0';
	rc = parse_file(path, stem, text, len, &t, err, errlen);
	if (rc)
		goto out;
	rc = check_one(stem, t, cerr, sizeof cerr);
	if (rc) {
		seterr(err, errlen, "%s: %s", path, cerr);
		goto out;
	}
	if (json_object_set_new(snap, stem, t) != 0) {
		t = NULL;
		rc = -ENOMEM;
		goto out;
	}
	t = NULL;
out:
	free(text);
	json_decref(t);
	return rc;
}

static int load_builtin(json_t *snap, char *err, size_t errlen)
{
	for (size_t i = 0; prompts_builtin_name[i]; i++) {
		char path[128], *text = malloc(prompts_builtin_len[i] + 1);
		int rc;

		if (!text)
			return -ENOMEM;
		memcpy(text, prompts_builtin_text[i], prompts_builtin_len[i] + 1);
		snprintf(path, sizeof path, "built-in %s", prompts_builtin_name[i]);
		rc = add_file(snap, path, prompts_builtin_name[i], text, prompts_builtin_len[i], err,
		              errlen);
		if (rc)
			return rc;
	}
	return 0;
}

static int load_dir(const char *dir, json_t *snap, char *err, size_t errlen)
{
	DIR *d = NULL;
	struct dirent *de;
	char *text = NULL;
	char path[4096];
	size_t len = 0, count = 0;
	int rc = 0;

	d = opendir(dir);
	if (!d) {
		rc = -errno;
		seterr(err, errlen, "prompt directory %s: %s", dir, strerror(errno));
		goto out;
	}
	for (errno = 0, de = readdir(d); de; errno = 0, de = readdir(d)) {
		size_t nl = strlen(de->d_name);

		if (nl <= 4 || strcmp(de->d_name + nl - 4, ".txt") != 0 || de->d_name[0] == '.')
			continue;
		if (++count > PROMPTS_MAX) {
			rc = -EMFILE;
			seterr(err, errlen, "prompt directory %s: more than %d templates", dir, PROMPTS_MAX);
			goto out;
		}
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= sizeof path) {
			rc = -ENAMETOOLONG;
			seterr(err, errlen, "%s: path too long", dir);
			goto out;
		}
		rc = read_file(path, &text, &len, err, errlen);
		if (rc)
			goto out;
		rc = add_file(snap, path, de->d_name, text, len, err, errlen);
		text = NULL;
		if (rc)
			goto out;
	}
	if (errno) {
		rc = -errno;
		seterr(err, errlen, "prompt directory %s: %s", dir, strerror(errno));
		goto out;
	}
out:
	if (d)
		closedir(d);
	free(text);
	return rc;
}

int prompts_load_dir(const char *dir, json_t **snapshot, char *err, size_t errlen)
{
	json_t *snap = NULL;
	int rc = 0;

	if (!snapshot)
		return -EINVAL;
	*snapshot = NULL;
	snap = json_object();
	if (!snap)
		return -ENOMEM;
	rc = dir ? load_dir(dir, snap, err, errlen) : load_builtin(snap, err, errlen);
	if (rc)
		goto out;
	for (size_t i = 0; prompts_required[i]; i++) {
		if (!json_object_get(snap, prompts_required[i])) {
			rc = -ENOENT;
			seterr(err, errlen, "prompt directory %s: %s.txt is missing",
			       dir ? dir : "(built-in)", prompts_required[i]);
			goto out;
		}
	}
	*snapshot = snap;
	snap = NULL;
out:
	json_decref(snap);
	return rc;
}

/* ---- Rendering --------------------------------------------------------- */

char *prompts_problem_text(const char *question, json_t *options)
{
	struct buf b;
	const char *k;
	json_t *v;

	buf_init(&b, PROMPTS_RENDER_MAX);
	if (buf_puts(&b, question ? question : ""))
		goto fail;
	json_object_foreach(options, k, v) {
		if (buf_printf(&b, "\n%s) %s", k, json_string_value(v) ? json_string_value(v) : ""))
			goto fail;
	}
	if (!b.base && buf_puts(&b, ""))
		goto fail;
	return buf_take(&b);
fail:
	buf_free(&b);
	return NULL;
}

char *prompts_options_text(json_t *options)
{
	return item_options_text(options, PROMPTS_RENDER_MAX);
}

/* The item's context: a string, or an array of strings joined by blank
 * lines (PubMedQA CONTEXTS), in *text ("" when none): the item's own
 * string, or a new one in *owned (caller frees; only an array is joined).
 * -ENOMEM. */
static int item_context(json_t *item, const char **text, char **owned)
{
	json_t *c = json_object_get(item, "context");
	struct buf b;
	size_t i;
	json_t *v;

	*text = "";
	*owned = NULL;
	if (!c)
		c = json_object_get(item, "contexts");
	if (json_is_string(c)) {
		*text = json_string_value(c);
		return 0;
	}
	if (!json_is_array(c))
		return 0;
	buf_init(&b, PROMPTS_RENDER_MAX);
	json_array_foreach(c, i, v) {
		if (!json_is_string(v))
			continue;
		if ((b.len && buf_puts(&b, "\n\n")) || buf_puts(&b, json_string_value(v))) {
			buf_free(&b);
			return -ENOMEM;
		}
	}
	if (b.base) {
		*owned = buf_take(&b);
		*text = *owned;
	}
	return 0;
}

/* Collapses runs of blank lines (left by empty values) to one, and trims:
 * spaces and tabs before a newline go, at most two newlines follow each
 * other, none lead and no space or newline ends the text. A line at a
 * time (memchr, memmove): the rendered text is a few KiB per call. */
static void tidy(struct buf *b)
{
	size_t o = 0, nl = 0, i = 0;
	char *s = b->base;

	if (!s)
		return;
	while (i < b->len) {
		char *e = memchr(s + i, '\n', b->len - i);
		size_t end = e ? (size_t)(e - s) : b->len, t = end;

		while (t > i && (s[t - 1] == ' ' || s[t - 1] == '\t'))
			t--;
		if (t > i) {
			/* a line with text: kept without its trailing spaces */
			if (o != i)
				memmove(s + o, s + i, t - i);
			o += t - i;
			nl = 0;
		}
		if (!e)
			break; /* the last line: its trailing spaces go in the final trim anyway */
		if (++nl <= 2 && o > 0)
			s[o++] = '\n';
		i = end + 1;
	}
	while (o > 0 && (s[o - 1] == '\n' || s[o - 1] == ' ' || s[o - 1] == '\t'))
		o--;
	s[o] = '\0';
	b->len = o;
}

/* utf8_check(s, len), with the ASCII that prompts mostly are passed over
 * eight bytes at a time (no byte >= 0x80, none NUL). */
static size_t text_check(const char *s, size_t len)
{
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, s + i, 8);
		if ((w & 0x8080808080808080ULL) ||
		    ((w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL))
			break;
	}
	return i + utf8_check(s + i, len - i);
}

/* The message object, built directly: json_pack would parse its format and
 * check the text's UTF-8 with jansson's slower per-character walk. */
static int add_message(json_t *msgs, const char *role, struct buf *b)
{
	const char *text = b->base ? b->base : "";
	size_t len = b->base ? b->len : 0;
	json_t *m, *content;

	if (text_check(text, len) != len)
		return -EINVAL; /* invalid UTF-8 in a value */
	m = json_object();
	content = json_stringn_nocheck(text, len);
	if (!m || !content || json_object_set_new_nocheck(m, "role", json_string_nocheck(role)) ||
	    json_object_set_new_nocheck(m, "content", content)) {
		if (!m)
			json_decref(content);
		json_decref(m);
		return -ENOMEM;
	}
	if (json_array_append_new(msgs, m) != 0)
		return -ENOMEM;
	return 0;
}

/* Whether template t names placeholder {name} in either part: the values
 * that take building (the options lines, the problem text) are built only
 * for the templates that use them. */
static int template_uses(json_t *t, const char *tag)
{
	const char *sys = json_string_value(json_object_get(t, "system"));
	const char *user = json_string_value(json_object_get(t, "user"));

	return (sys && strstr(sys, tag)) || (user && strstr(user, tag));
}

/* The render's two text buffers, kept by each thread between renders: a
 * call otherwise made and freed two large buffers (each a malloc
 * consolidation pass). Ones grown past RENDER_KEEP are not kept; a thread's
 * are freed when it ends. */
#define RENDER_KEEP ((size_t)64 << 10)

/* Templates compiled by this thread (struct tpl), kept by their text: a
 * job renders the same few for every call. */
#define TPL_KEEP 32 /* PROMPTS_MAX: one snapshot's never evict each other */

struct tpl {
	char *name, *sys, *user; /* copies: the key, and what the ops point into */
	size_t sys_len, user_len;
	struct ops ops[2];       /* system, user */
	bool uses_options, uses_problem, verbatim;
};

struct render_keep {
	struct buf b[2];
	bool keyed;
	struct tpl *tpl[TPL_KEEP];
	int tpl_next; /* the slot the next one takes (the oldest) */
};

static _Thread_local struct render_keep rkeep;
static pthread_key_t rkeep_key;
static pthread_once_t rkeep_once = PTHREAD_ONCE_INIT;
static bool rkeep_ok;

static void tpl_free(struct tpl *c)
{
	if (!c)
		return;
	free(c->name);
	free(c->sys);
	free(c->user);
	free(c->ops[0].v);
	free(c->ops[1].v);
	free(c);
}

static void rkeep_flush(void *arg)
{
	struct render_keep *k = arg;

	buf_free(&k->b[0]);
	buf_free(&k->b[1]);
	for (int i = 0; i < TPL_KEEP; i++) {
		tpl_free(k->tpl[i]);
		k->tpl[i] = NULL;
	}
	k->keyed = false;
}

static void rkeep_make(void)
{
	rkeep_ok = pthread_key_create(&rkeep_key, rkeep_flush) == 0;
}

/* Whether this thread's keep is freed when the thread ends (only then is
 * anything kept). */
static bool rkeep_register(void)
{
	if (!rkeep.keyed) {
		pthread_once(&rkeep_once, rkeep_make);
		rkeep.keyed = rkeep_ok && pthread_setspecific(rkeep_key, &rkeep) == 0;
	}
	return rkeep.keyed;
}

/* This thread's compiled template name with the text of template t, or
 * NULL. t must pass what check_template checks without its walk: a kept
 * one passed all of it with that name and text. */
static const struct tpl *tpl_find(const char *name, json_t *t)
{
	const char *sys = json_string_value(json_object_get(t, "system"));
	const char *user = json_string_value(json_object_get(t, "user"));
	json_t *ver = json_object_get(t, "version");
	size_t sl, ul;

	if (!sys || !user || !json_is_integer(ver) || json_integer_value(ver) < 1)
		return NULL;
	sl = strlen(sys);
	ul = strlen(user);
	for (int i = 0; i < TPL_KEEP; i++) {
		const struct tpl *c = rkeep.tpl[i];

		if (c && c->sys_len == sl && c->user_len == ul && strcmp(c->name, name) == 0 &&
		    memcmp(c->sys, sys, sl) == 0 && memcmp(c->user, user, ul) == 0)
			return c;
	}
	return NULL;
}

/* Compiles template t (which has just rendered: it passed the whole check)
 * and keeps it for this thread; quietly nothing when memory is short. */
static void tpl_add(const char *name, json_t *t)
{
	const char *sys = json_string_value(json_object_get(t, "system"));
	const char *user = json_string_value(json_object_get(t, "user"));
	struct tpl *c;
	char err[8];

	if (!sys || !user || !rkeep_register())
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->name = strdup(name);
	c->sys = strdup(sys);
	c->user = strdup(user);
	if (!c->name || !c->sys || !c->user)
		goto fail;
	c->sys_len = strlen(sys);
	c->user_len = strlen(user);
	if (walk(name, "system", c->sys, NULL, NULL, &c->ops[0], err, sizeof(err)) ||
	    walk(name, "user", c->user, NULL, NULL, &c->ops[1], err, sizeof(err)) ||
	    c->ops[0].fail || c->ops[1].fail)
		goto fail;
	c->uses_options = template_uses(t, "{options}");
	c->uses_problem = template_uses(t, "{problem}");
	c->verbatim = in_list(name, strlen(name), verbatim_templates);
	tpl_free(rkeep.tpl[rkeep.tpl_next]);
	rkeep.tpl[rkeep.tpl_next] = c;
	rkeep.tpl_next = (rkeep.tpl_next + 1) % TPL_KEEP;
	return;
fail:
	tpl_free(c);
}

/* Writes compiled part o with vals into out, as walk writes the part. Any
 * failure (a placeholder without a value, the cap, no memory) is -EAGAIN:
 * the caller renders again with walk, which gives the error its words. */
static int tpl_replay(const struct ops *o, const struct values *vals, struct buf *out)
{
	int active[MAX_DEPTH + 1];
	int depth = 0;

	active[0] = 1;
	for (size_t i = 0; i < o->n; i++) {
		const struct op *p = &o->v[i];

		switch (p->k) {
		case OP_TEXT:
			if (active[depth] && buf_append(out, p->s, p->n))
				return -EAGAIN;
			break;
		case OP_VAR:
			if (active[depth] && (!vals->v[p->vi] || buf_puts(out, vals->v[p->vi])))
				return -EAGAIN;
			break;
		case OP_OPEN:
			active[depth + 1] = active[depth] && section_true(vals, p->s, p->n);
			depth++;
			break;
		case OP_CLOSE:
			depth--;
			break;
		}
	}
	return 0;
}

/* b (empty, no memory) gets kept buffer i's memory, emptied. */
static void render_buf_take(struct buf *b, int i)
{
	size_t max = b->max;

	*b = rkeep.b[i];
	buf_init(&rkeep.b[i], 0);
	b->max = max;
	buf_reset(b);
}

/* b's memory is kept as buffer i, or freed. */
static void render_buf_give(struct buf *b, int i)
{
	if (b->cap && b->cap <= RENDER_KEEP && !rkeep.b[i].base) {
		if (rkeep_register()) {
			rkeep.b[i] = *b;
			buf_init(b, b->max);
			return;
		}
	}
	buf_free(b);
}

static int render(json_t *t, const struct tpl *ct, const char *name, json_t *item, json_t *vars,
		  json_t **messages_out, char *err, size_t errlen);

int prompts_render(json_t *snapshot, const char *name, json_t *item, json_t *vars,
                   json_t **messages_out, char *err, size_t errlen)
{
	const struct tpl *ct;
	json_t *t;
	int rc;

	if (!snapshot || !name || !messages_out) {
		seterr(err, errlen, "prompts_render: missing argument");
		return -EINVAL;
	}
	*messages_out = NULL;
	t = json_object_get(snapshot, name);
	if (!t) {
		seterr(err, errlen, "template %s: not in the prompt snapshot", name);
		return -ENOENT;
	}
	/* A template this thread has compiled (the same name and text: it
	 * passed the check) renders from its ops; any failure there renders
	 * again the long way below, which gives the error. */
	ct = tpl_find(name, t);
	if (ct && render(t, ct, name, item, vars, messages_out, err, errlen) == 0)
		return 0;
	/* The template is checked before anything else, as ever; its walk is
	 * the render's own (once a call, not twice). */
	rc = check_template(name, t, false, err, errlen);
	if (rc == 0)
		rc = render(t, NULL, name, item, vars, messages_out, err, errlen);
	if (rc == 0 && !ct)
		tpl_add(name, t);
	if (rc) {
		int crc = check_one(name, t, err, errlen);

		if (crc)
			return crc; /* the check's error, as when it ran first */
	}
	return rc;
}

/* prompts_render once template t passed all but the walk of the check;
 * with ct (t compiled) from its ops, where any failure is only -EAGAIN. */
static int render(json_t *t, const struct tpl *ct, const char *name, json_t *item, json_t *vars,
		  json_t **messages_out, char *err, size_t errlen)
{
	struct values vals;
	json_t *options, *msgs = NULL;
	const char *gold, *k;
	char *opt_text = NULL, *ctx = NULL, *problem = NULL;
	const char *ctx_text;
	bool uses_problem;
	struct buf sys, user;
	json_t *v;
	int rc = 0;

	buf_init(&sys, PROMPTS_RENDER_MAX);
	buf_init(&user, PROMPTS_RENDER_MAX);
	memset(&vals, 0, sizeof vals);
	if (!json_is_object(item) || !json_is_string(json_object_get(item, "question")) ||
	    !json_is_string(json_object_get(item, "answer"))) {
		seterr(err, errlen, "template %s: item needs \"question\" and \"answer\" strings", name);
		return -EINVAL;
	}
	if (vars && !json_is_object(vars)) {
		seterr(err, errlen, "template %s: vars must be an object", name);
		return -EINVAL;
	}
	gold = json_string_value(json_object_get(item, "answer"));
	options = json_object_get(item, "options");
	vals.mc = json_is_object(options) && json_object_size(options) > 0;
	if (vals.mc) {
		/* (no copy of "" for a template without {options}: vals.v[1]) */
		if ((ct ? ct->uses_options : template_uses(t, "{options}")) &&
		    !(opt_text = prompts_options_text(options))) {
			rc = -ENOMEM;
			goto out;
		}
		if (!json_is_string(json_object_get(options, gold))) {
			seterr(err, errlen, "template %s: item answer \"%.*s\" is not one of its options",
			       name, (int)utf8_prefix(gold, strlen(gold), 40), gold);
			rc = -EINVAL;
			goto out;
		}
	}
	if (item_context(item, &ctx_text, &ctx)) {
		rc = -ENOMEM;
		goto out;
	}
	vals.v[0] = json_string_value(json_object_get(item, "question"));
	vals.v[1] = vals.mc && opt_text ? opt_text : "";
	vals.v[2] = gold;
	vals.v[3] = vals.mc ? json_string_value(json_object_get(options, gold)) : gold;
	vals.v[4] = NULL; /* student_reply: vars only */
	vals.v[5] = json_string_value(json_object_get(item, "explanation"));
	vals.v[6] = ctx_text;
	vals.v[7] = json_string_value(json_object_get(item, "topic"));
	uses_problem = ct ? ct->uses_problem : template_uses(t, "{problem}");
	problem = uses_problem
			  ? prompts_problem_text(json_string_value(json_object_get(item, "question")),
						 vals.mc ? options : NULL)
			  : NULL;
	if (!problem && uses_problem) {
		rc = -ENOMEM;
		goto out;
	}
	vals.v[8] = problem ? problem : "";
	if (!vals.v[5])
		vals.v[5] = "";
	if (!vals.v[7])
		vals.v[7] = "";
	if (vars) {
		json_object_foreach(vars, k, v) {
			int vi = var_index(k, strlen(k));

			if (vi < 4 || vi == 8) { /* item-derived values cannot be overridden */
				seterr(err, errlen, "template %s: unknown var \"%s\" (student_reply, "
				       "explanation, context, topic)", name, k);
				rc = -EINVAL;
				goto out;
			}
			if (!json_is_string(v)) {
				seterr(err, errlen, "template %s: var \"%s\" must be a string", name, k);
				rc = -EINVAL;
				goto out;
			}
			vals.v[vi] = json_string_value(v);
		}
	}
	{
		/* One allocation for the user part: room for the template and every
		 * value it may hold (a guess; more is appended as needed). */
		size_t room = 64;

		for (int i = 0; i < 9; i++)
			room += vals.v[i] ? strlen(vals.v[i]) : 0;
		render_buf_take(&sys, 0);
		render_buf_take(&user, 1);
		if (buf_grow(&sys, 256 + (ct ? ct->sys_len : strlen(json_string_value(json_object_get(t, "system"))))) == -ENOMEM ||
		    buf_grow(&user, room + (ct ? ct->user_len : strlen(json_string_value(json_object_get(t, "user"))))) == -ENOMEM) {
			rc = -ENOMEM;
			goto out;
		}
	}
	if (ct) {
		rc = tpl_replay(&ct->ops[0], &vals, &sys);
		if (!rc)
			rc = tpl_replay(&ct->ops[1], &vals, &user);
	} else {
		rc = walk(name, "system", json_string_value(json_object_get(t, "system")), &vals, &sys,
			  NULL, err, errlen);
		if (!rc)
			rc = walk(name, "user", json_string_value(json_object_get(t, "user")), &vals, &user,
				  NULL, err, errlen);
	}
	if (rc)
		goto out;
	tidy(&sys);
	if (!(ct ? ct->verbatim : in_list(name, strlen(name), verbatim_templates)))
		tidy(&user);
	msgs = json_array();
	if (!msgs) {
		rc = -ENOMEM;
		goto out;
	}
	if (sys.len)
		rc = add_message(msgs, "system", &sys);
	if (!rc)
		rc = add_message(msgs, "user", &user);
	if (rc) {
		seterr(err, errlen, "template %s: rendered text is not valid UTF-8", name);
		goto out;
	}
	*messages_out = msgs;
	msgs = NULL;
out:
	json_decref(msgs);
	free(opt_text);
	free(ctx);
	free(problem);
	render_buf_give(&sys, 0);
	render_buf_give(&user, 1);
	return rc;
}
