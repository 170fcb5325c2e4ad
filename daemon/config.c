#include "daemon/config.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <ini.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/utf8.h"
#include "teacher_clients/pool.h"
#include "teacher_clients/provider.h"

/* How the file is read: we hand inih one line at a time through our own
 * reader. That gives us the line number of every key (Debian's inih is built
 * without INI_HANDLER_LINENO) and lets us see section headers, which inih does
 * not report (an empty section, a duplicate section or an unknown one would
 * otherwise go unnoticed). inih still splits "key = value" lines and strips
 * comments. Parsing stops at the first error: the reader returns EOF. */

enum sect_kind { SECT_NONE, SECT_DAEMON, SECT_TEACHER, SECT_STUDENT, SECT_TRAIN, SECT_EMBEDDER, SECT_WEB };

#define M_DAEMON (1u << SECT_DAEMON)
#define M_TEACHER (1u << SECT_TEACHER)
#define M_STUDENT (1u << SECT_STUDENT)
#define M_TRAIN (1u << SECT_TRAIN)
#define M_EMBEDDER (1u << SECT_EMBEDDER)
#define M_EP (M_TEACHER | M_STUDENT | M_EMBEDDER)
#define M_WEB (1u << SECT_WEB)

enum key_type {
	KT_PATH,     /* a file system path */
	KT_SOCKET,   /* a path that fits in sun_path */
	KT_URL,      /* http:// or https:// base URL */
	KT_TEXT,     /* a short single-line string */
	KT_ENVNAME,  /* the name of an environment variable */
	KT_INT,      /* int64_t in [min, max] */
	KT_PRICE,    /* double in [0, 1e6] */
	KT_BOOL,
	KT_LOGLEVEL,
	KT_CMD,      /* argv template */
	KT_PROVIDER, /* the name of a row of teacher_clients/provider.c */
};

struct key {
	const char *name;
	unsigned in;       /* sections that accept the key */
	unsigned required; /* sections that require it */
	enum key_type type;
	size_t off;        /* into the section's struct */
	int64_t min, max;  /* KT_INT */
};

#define MAX_KEYS 32
#define MAX_SECTS (2 + 2 * CONFIG_MAX_ENDPOINTS)
#define MAX_PATH_LEN 4095
#define MAX_TEXT_LEN 256
#define MAX_URL_LEN 2048
#define MAX_ENVNAME_LEN 64
#define MAX_PRICE 1000000.0
#define MAX_ARG_LEN 65536

#define DAEMON_OFF(f) offsetof(struct config_daemon, f)
#define EP_OFF(f) offsetof(struct config_endpoint, f)
#define TRAIN_OFF(f) offsetof(struct config_train, f)
#define WEB_OFF(f) offsetof(struct config_web, f)

static const struct key daemon_keys[] = {
	{ "socket", M_DAEMON, 0, KT_SOCKET, DAEMON_OFF(socket), 0, 0 },
	{ "state_dir", M_DAEMON, 0, KT_PATH, DAEMON_OFF(state_dir), 0, 0 },
	{ "log_level", M_DAEMON, 0, KT_LOGLEVEL, DAEMON_OFF(log_level), 0, 0 },
	{ "max_body_mb", M_DAEMON, 0, KT_INT, DAEMON_OFF(max_body_mb), 1, 65536 },
	{ "prompts_dir", M_DAEMON, 0, KT_PATH, DAEMON_OFF(prompts_dir), 0, 0 },
	{ "max_connections", M_DAEMON, 0, KT_INT, DAEMON_OFF(max_connections), 1, 65536 },
	{ "request_timeout_s", M_DAEMON, 0, KT_INT, DAEMON_OFF(request_timeout_s), 1, 3600 },
	{ "idle_timeout_s", M_DAEMON, 0, KT_INT, DAEMON_OFF(idle_timeout_s), 1, 86400 },
	{ "stream_buffer_kb", M_DAEMON, 0, KT_INT, DAEMON_OFF(stream_buffer_kb), 64, 1048576 },
	{ "batch_poll_s", M_DAEMON, 0, KT_INT, DAEMON_OFF(batch_poll_s), 1, 86400 },
	{ NULL, 0, 0, KT_TEXT, 0, 0, 0 },
};

static const struct key endpoint_keys[] = {
	{ "base_url", M_EP, M_EP, KT_URL, EP_OFF(base_url), 0, 0 },
	{ "model", M_EP, M_EP, KT_TEXT, EP_OFF(model), 0, 0 },
	{ "api_key_env", M_EP, 0, KT_ENVNAME, EP_OFF(api_key_env), 0, 0 },
	{ "max_concurrency", M_EP, 0, KT_INT, EP_OFF(max_concurrency), 1, 100000 },
	{ "rpm", M_EP, 0, KT_INT, EP_OFF(rpm), 0, 10000000 },
	{ "tpm", M_EP, 0, KT_INT, EP_OFF(tpm), 0, 10000000000LL },
	{ "timeout_s", M_EP, 0, KT_INT, EP_OFF(timeout_s), 1, 86400 },
	{ "max_retries", M_EP, 0, KT_INT, EP_OFF(max_retries), 0, 100 },
	{ "down_after_s", M_EP, 0, KT_INT, EP_OFF(down_after_s), 1, 86400 },
	{ "price_in_per_mtok", M_EP, 0, KT_PRICE, EP_OFF(price_in_per_mtok), 0, 0 },
	{ "price_out_per_mtok", M_EP, 0, KT_PRICE, EP_OFF(price_out_per_mtok), 0, 0 },
	{ "json_schema", M_EP, 0, KT_BOOL, EP_OFF(json_schema), 0, 0 },
	{ "command", M_STUDENT, 0, KT_CMD, EP_OFF(command), 0, 0 },
	{ "model_path", M_STUDENT, 0, KT_PATH, EP_OFF(model_path), 0, 0 },
	{ "provider", M_TEACHER, 0, KT_PROVIDER, EP_OFF(provider), 0, 0 },
	{ "batch_price_in_per_mtok", M_TEACHER, 0, KT_PRICE, EP_OFF(batch_price_in_per_mtok), 0, 0 },
	{ "batch_price_out_per_mtok", M_TEACHER, 0, KT_PRICE, EP_OFF(batch_price_out_per_mtok), 0, 0 },
	{ NULL, 0, 0, KT_TEXT, 0, 0, 0 },
};

static const struct key train_keys[] = {
	{ "command", M_TRAIN, M_TRAIN, KT_CMD, TRAIN_OFF(command), 0, 0 },
	{ "timeout_s", M_TRAIN, 0, KT_INT, TRAIN_OFF(timeout_s), 0, 2592000 },
	{ "kill_grace_s", M_TRAIN, 0, KT_INT, TRAIN_OFF(kill_grace_s), 1, 3600 },
	{ NULL, 0, 0, KT_TEXT, 0, 0, 0 },
};

static const struct key web_keys[] = {
	{ "listen", M_WEB, M_WEB, KT_TEXT, WEB_OFF(listen), 0, 0 },
	{ "allow_remote", M_WEB, 0, KT_BOOL, WEB_OFF(allow_remote), 0, 0 },
	{ NULL, 0, 0, KT_TEXT, 0, 0, 0 },
};

static const char *const student_placeholders[] = { "model_path", NULL };
static const char *const train_placeholders[] = { "set", "set_path", "out_dir", "model_path", NULL };

struct config_secret {
	char *key;
	size_t len;
};

/* One section as seen in the file. */
struct sect {
	enum sect_kind kind;
	char label[CONFIG_MAX_NAME + 16]; /* "teacher.NAME", for messages */
	int line;
	size_t index;                     /* into teachers / students */
	int key_line[MAX_KEYS];           /* line a key was set on, 0 = not set */
	bool cmd_uses_model_path;         /* command has a {model_path} placeholder */
};

struct parse {
	const char *path;
	struct config *cfg;
	const char *data;
	size_t len;
	size_t pos;
	int line;      /* the line last handed to inih */
	struct sect sects[MAX_SECTS];
	size_t n_sects;
	struct sect *cur; /* NULL before the first section */
	bool failed;
	int rc;
	char *err;
	size_t errlen;
};

/* ---- messages ---------------------------------------------------------- */

static void verr(char *err, size_t errlen, const char *path, int line, const char *label,
		 const char *key, const char *fmt, va_list ap)
{
	size_t n = 0;
	int w;

	if (err == NULL || errlen == 0)
		return;
	if (line > 0)
		w = snprintf(err, errlen, "%s:%d: ", path, line);
	else
		w = snprintf(err, errlen, "%s: ", path);
	n = w < 0 ? 0 : (size_t)w;
	if (n < errlen && label != NULL) {
		if (key != NULL)
			w = snprintf(err + n, errlen - n, "[%s] %s: ", label, key);
		else
			w = snprintf(err + n, errlen - n, "[%s]: ", label);
		n += w < 0 ? 0 : (size_t)w;
	}
	if (n < errlen)
		vsnprintf(err + n, errlen - n, fmt, ap);
}

/* Records the first error; later ones are ignored. Returns -1 so callers can
 * `return fail(...)`. label/key may be NULL. */
__attribute__((format(printf, 5, 6))) static int fail(struct parse *p, int line, const struct sect *s,
						     const char *key, const char *fmt, ...)
{
	va_list ap;

	if (p->failed)
		return -1;
	p->failed = true;
	p->rc = -EINVAL;
	va_start(ap, fmt);
	verr(p->err, p->errlen, p->path, line, s != NULL ? s->label : NULL, key, fmt, ap);
	va_end(ap);
	return -1;
}

static int fail_nomem(struct parse *p)
{
	if (!p->failed)
		fail(p, 0, NULL, NULL, "out of memory");
	p->rc = -ENOMEM;
	return -1;
}

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- small checks ------------------------------------------------------ */

static bool has_ctrl(const char *s)
{
	for (; *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	}
	return false;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

static bool valid_endpoint_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CONFIG_MAX_NAME)
		return false;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '.' || c == '-'))
			return false;
	}
	return true;
}

static bool valid_env_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MAX_ENVNAME_LEN || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

/* Whole decimal number, digits only (no sign, no spaces). */
static int parse_int(const char *v, int64_t min, int64_t max, int64_t *out)
{
	int64_t x = 0;
	size_t n = strlen(v);

	if (n == 0 || n > 18)
		return n > 18 && strspn(v, "0123456789") == n ? -ERANGE : -EINVAL;
	for (const char *s = v; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		x = x * 10 + (*s - '0');
	}
	if (x < min || x > max)
		return -ERANGE;
	*out = x;
	return 0;
}

/* Plain decimal: digits, optionally one '.' and more digits. Parsed by hand so
 * the locale's decimal separator does not matter. */
static int parse_price(const char *v, double *out)
{
	double x = 0, scale = 1;
	bool dot = false;
	size_t digits = 0;

	for (const char *s = v; *s; s++) {
		if (*s == '.' && !dot) {
			dot = true;
			continue;
		}
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (++digits > 15)
			return -ERANGE;
		if (dot) {
			scale *= 10;
			x += (*s - '0') / scale;
		} else {
			x = x * 10 + (*s - '0');
		}
	}
	if (digits == 0)
		return -EINVAL;
	if (x > MAX_PRICE)
		return -ERANGE;
	*out = x;
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	if (strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 || strcmp(v, "1") == 0) {
		*out = true;
		return 0;
	}
	if (strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0 || strcmp(v, "0") == 0) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

static bool valid_url(const char *v)
{
	const char *host;

	if (strncmp(v, "http://", 7) == 0)
		host = v + 7;
	else if (strncmp(v, "https://", 8) == 0)
		host = v + 8;
	else
		return false;
	if (*host == '\0' || *host == '/' || *host == ':' || strlen(v) > MAX_URL_LEN)
		return false;
	for (const char *s = v; *s; s++) {
		if ((unsigned char)*s <= 0x20 || *s == 0x7f || *s == '?' || *s == '#')
			return false;
	}
	return true;
}

/* ---- command templates --------------------------------------------------- */

/* Walks the placeholders of one word. For each {NAME} calls fn with the name
 * (not NUL-terminated); literal text goes to lit. Returns 0 or what a
 * callback returned; -EINVAL for an unterminated "{" (at *bad). */
struct tmpl_walk {
	int (*lit)(void *u, const char *s, size_t n);
	int (*ph)(void *u, const char *name, size_t n);
	void *u;
};

static int tmpl_walk_word(const char *w, const struct tmpl_walk *cb)
{
	const char *s = w;
	int rc;

	while (*s) {
		size_t n = strcspn(s, "{}");
		if (n > 0) {
			rc = cb->lit(cb->u, s, n);
			if (rc != 0)
				return rc;
			s += n;
			continue;
		}
		if ((s[0] == '{' && s[1] == '{') || (s[0] == '}' && s[1] == '}')) {
			rc = cb->lit(cb->u, s, 1);
			if (rc != 0)
				return rc;
			s += 2;
			continue;
		}
		if (s[0] == '}') {
			rc = cb->lit(cb->u, s, 1);
			if (rc != 0)
				return rc;
			s++;
			continue;
		}
		const char *end = strchr(s + 1, '}');
		if (end == NULL)
			return -EINVAL;
		rc = cb->ph(cb->u, s + 1, (size_t)(end - s - 1));
		if (rc != 0)
			return rc;
		s = end + 1;
	}
	return 0;
}

struct tmpl_check {
	const char *const *allowed;
	char bad[80];
	bool uses_model_path;
};

static int check_lit(void *u, const char *s, size_t n)
{
	(void)u, (void)s, (void)n;
	return 0;
}

static int check_ph(void *u, const char *name, size_t n)
{
	struct tmpl_check *c = u;

	for (size_t i = 0; c->allowed[i] != NULL; i++) {
		if (strlen(c->allowed[i]) == n && memcmp(c->allowed[i], name, n) == 0) {
			if (strcmp(c->allowed[i], "model_path") == 0)
				c->uses_model_path = true;
			return 0;
		}
	}
	snprintf(c->bad, sizeof(c->bad), "%.*s", (int)utf8_prefix(name, n, 64), name);
	return -ENOENT;
}

static void argv_free(char **argv)
{
	if (argv == NULL)
		return;
	for (char **a = argv; *a != NULL; a++)
		free(*a);
	free(argv);
}

void config_argv_free(char **argv) { argv_free(argv); }

static void allowed_list(const char *const *allowed, char *out, size_t outlen)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; allowed[i] != NULL && n < outlen; i++) {
		int w = snprintf(out + n, outlen - n, "%s{%s}", i > 0 ? ", " : "", allowed[i]);
		if (w < 0)
			break;
		n += (size_t)w;
	}
}

/* Splits v into words: whitespace separates, double quotes group (inside them
 * \" and \\ are escapes), then checks every placeholder against allowed. */
static int parse_command(struct parse *p, int line, const struct sect *s, const char *key, const char *v,
			 const char *const *allowed, char ***out, bool *uses_model_path)
{
	char **argv = NULL;
	char *word = NULL;
	size_t n_args = 0;
	size_t vlen = strlen(v);
	const char *c = v;
	int rc = -1;

	argv = calloc(CONFIG_MAX_ARGS + 1, sizeof(*argv));
	if (argv == NULL) {
		fail_nomem(p);
		goto out;
	}
	for (;;) {
		size_t wl = 0;
		bool inq = false;

		while (*c != '\0' && is_space(*c))
			c++;
		if (*c == '\0')
			break;
		if (n_args == CONFIG_MAX_ARGS) {
			fail(p, line, s, key, "more than %d words", CONFIG_MAX_ARGS);
			goto out;
		}
		word = malloc(vlen + 1);
		if (word == NULL) {
			fail_nomem(p);
			goto out;
		}
		while (*c != '\0' && (inq || !is_space(*c))) {
			if (*c == '"') {
				inq = !inq;
				c++;
			} else if (inq && *c == '\\' && (c[1] == '"' || c[1] == '\\')) {
				word[wl++] = c[1];
				c += 2;
			} else {
				word[wl++] = *c++;
			}
		}
		word[wl] = '\0';
		if (inq) {
			fail(p, line, s, key, "unterminated double quote");
			goto out;
		}
		argv[n_args++] = word;
		word = NULL;
	}
	if (n_args == 0 || argv[0][0] == '\0') {
		fail(p, line, s, key, "the program (first word) is empty");
		goto out;
	}
	{
		struct tmpl_check chk = { .allowed = allowed };
		struct tmpl_walk cb = { check_lit, check_ph, &chk };
		char list[128];

		allowed_list(allowed, list, sizeof(list));
		for (size_t i = 0; i < n_args; i++) {
			int wrc = tmpl_walk_word(argv[i], &cb);
			if (wrc == -ENOENT) {
				fail(p, line, s, key, "unknown placeholder {%s} (allowed: %s)", chk.bad, list);
				goto out;
			}
			if (wrc != 0) {
				fail(p, line, s, key, "\"{\" without a closing \"}\" in \"%s\" (write {{ for a literal {)",
				     argv[i]);
				goto out;
			}
		}
		*uses_model_path = chk.uses_model_path;
	}
	*out = argv;
	argv = NULL;
	rc = 0;
out:
	free(word);
	argv_free(argv);
	return rc;
}

struct expand {
	struct buf b;
	const struct config_subst *vars;
	size_t nvars;
	char missing[80];
};

static int expand_lit(void *u, const char *s, size_t n)
{
	struct expand *e = u;
	return buf_append(&e->b, s, n);
}

static int expand_ph(void *u, const char *name, size_t n)
{
	struct expand *e = u;

	for (size_t i = 0; i < e->nvars; i++) {
		if (e->vars[i].name != NULL && e->vars[i].value != NULL && strlen(e->vars[i].name) == n &&
		    memcmp(e->vars[i].name, name, n) == 0)
			return buf_puts(&e->b, e->vars[i].value);
	}
	snprintf(e->missing, sizeof(e->missing), "%.*s", (int)utf8_prefix(name, n, 64), name);
	return -ENOENT;
}

int config_command_expand(char *const *tmpl, const struct config_subst *vars, size_t nvars, char ***out,
			  char *err, size_t errlen)
{
	struct expand e = { .vars = vars, .nvars = nvars };
	struct tmpl_walk cb = { expand_lit, expand_ph, &e };
	char **argv = NULL;
	size_t n = 0;
	int rc = 0;

	*out = NULL;
	buf_init(&e.b, MAX_ARG_LEN);
	while (tmpl != NULL && tmpl[n] != NULL)
		n++;
	argv = calloc(n + 1, sizeof(*argv));
	if (argv == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		buf_reset(&e.b);
		rc = tmpl_walk_word(tmpl[i], &cb);
		if (rc == -ENOENT) {
			set_err(err, errlen, "command template: no value for {%s}", e.missing);
			rc = -EINVAL;
			goto out;
		}
		if (rc == -ENOBUFS) {
			set_err(err, errlen, "command template: word %zu longer than %d bytes after expansion", i,
				MAX_ARG_LEN);
			rc = -EINVAL;
			goto out;
		}
		if (rc != 0) {
			set_err(err, errlen, "command template: %s", rc == -ENOMEM ? "out of memory" : "bad template");
			goto out;
		}
		argv[i] = e.b.base != NULL ? buf_take(&e.b) : strdup("");
		if (argv[i] == NULL) {
			rc = -ENOMEM;
			goto out;
		}
	}
	*out = argv;
	argv = NULL;
out:
	buf_free(&e.b);
	argv_free(argv);
	return rc;
}

/* ---- sections ------------------------------------------------------------ */

static const struct key *keys_of(enum sect_kind kind)
{
	switch (kind) {
	case SECT_DAEMON:
		return daemon_keys;
	case SECT_TEACHER:
	case SECT_STUDENT:
	case SECT_EMBEDDER:
		return endpoint_keys;
	case SECT_TRAIN:
		return train_keys;
	case SECT_WEB:
		return web_keys;
	default:
		return NULL;
	}
}

static struct config_endpoint *sect_endpoint(struct parse *p, const struct sect *s)
{
	if (s->kind == SECT_TEACHER)
		return &p->cfg->teachers[s->index];
	if (s->kind == SECT_STUDENT)
		return &p->cfg->students[s->index];
	if (s->kind == SECT_EMBEDDER)
		return &p->cfg->embedders[s->index];
	return NULL;
}

static char *sect_base(struct parse *p, const struct sect *s)
{
	switch (s->kind) {
	case SECT_DAEMON:
		return (char *)&p->cfg->daemon;
	case SECT_TEACHER:
	case SECT_STUDENT:
	case SECT_EMBEDDER:
		return (char *)sect_endpoint(p, s);
	case SECT_TRAIN:
		return (char *)&p->cfg->train;
	case SECT_WEB:
		return (char *)&p->cfg->web;
	default:
		return NULL;
	}
}

static int endpoint_add(struct parse *p, struct sect *s, const char *name)
{
	struct config *cfg = p->cfg;
	struct config_endpoint **arr = s->kind == SECT_TEACHER	 ? &cfg->teachers
				       : s->kind == SECT_EMBEDDER ? &cfg->embedders
								  : &cfg->students;
	size_t *n = s->kind == SECT_TEACHER    ? &cfg->n_teachers
		    : s->kind == SECT_EMBEDDER ? &cfg->n_embedders
					       : &cfg->n_students;
	struct config_endpoint *grown;
	struct config_endpoint *ep;

	if (cfg->n_teachers + cfg->n_students + cfg->n_embedders == CONFIG_MAX_ENDPOINTS)
		return fail(p, s->line, s, NULL,
			    "too many endpoint sections (max %d [teacher.NAME] and [student.NAME] together)",
			    CONFIG_MAX_ENDPOINTS);
	grown = realloc(*arr, (*n + 1) * sizeof(**arr));
	if (grown == NULL)
		return fail_nomem(p);
	*arr = grown;
	ep = &grown[*n];
	memset(ep, 0, sizeof(*ep));
	ep->name = strdup(name);
	if (ep->name == NULL)
		return fail_nomem(p);
	s->index = (*n)++;
	ep->kind = s->kind == SECT_TEACHER    ? CONFIG_TEACHER
		   : s->kind == SECT_EMBEDDER ? CONFIG_EMBEDDER
					      : CONFIG_STUDENT;
	ep->max_concurrency = s->kind == SECT_TEACHER ? 64 : 8;
	ep->timeout_s = 120;
	ep->max_retries = 6;
	ep->down_after_s = 120;
	ep->batch_price_in_per_mtok = -1; /* unset: half the online price */
	ep->batch_price_out_per_mtok = -1;
	ep->line = s->line;
	return 0;
}

static int section_open(struct parse *p, const char *label)
{
	struct sect *s;
	const char *name = NULL;
	enum sect_kind kind;

	if (p->n_sects == MAX_SECTS)
		return fail(p, p->line, NULL, NULL, "too many sections (max %d)", MAX_SECTS);
	s = &p->sects[p->n_sects];
	memset(s, 0, sizeof(*s));
	s->line = p->line;
	snprintf(s->label, sizeof(s->label), "%.*s", (int)utf8_prefix(label, strlen(label), CONFIG_MAX_NAME + 12), label);
	if (strcmp(label, "daemon") == 0) {
		kind = SECT_DAEMON;
	} else if (strcmp(label, "train") == 0) {
		kind = SECT_TRAIN;
	} else if (strcmp(label, "web") == 0) {
		kind = SECT_WEB;
	} else if (strncmp(label, "teacher.", 8) == 0) {
		kind = SECT_TEACHER;
		name = label + 8;
	} else if (strncmp(label, "student.", 8) == 0) {
		kind = SECT_STUDENT;
		name = label + 8;
	} else if (strncmp(label, "embedder.", 9) == 0) {
		kind = SECT_EMBEDDER;
		name = label + 9;
	} else {
		return fail(p, p->line, s, NULL,
			    "unknown section (expected [daemon], [teacher.NAME], [student.NAME], [embedder.NAME], [train] or [web])");
	}
	if (name != NULL && !valid_endpoint_name(name))
		return fail(p, p->line, s, NULL,
			    "bad endpoint name \"%s\" (1-%d characters of A-Z a-z 0-9 _ . -)", name,
			    CONFIG_MAX_NAME);
	for (size_t i = 0; i < p->n_sects; i++) {
		if (strcmp(p->sects[i].label, s->label) == 0)
			return fail(p, p->line, s, NULL, "duplicate section (first on line %d)", p->sects[i].line);
	}
	s->kind = kind;
	if (kind == SECT_TEACHER || kind == SECT_STUDENT || kind == SECT_EMBEDDER) {
		if (endpoint_add(p, s, name) != 0)
			return -1;
	} else if (kind == SECT_TRAIN) {
		p->cfg->train.present = true;
		p->cfg->train.line = s->line;
		p->cfg->train.kill_grace_s = CONFIG_TRAIN_KILL_GRACE_S;
	} else if (kind == SECT_WEB) {
		p->cfg->web.present = true;
		p->cfg->web.line = s->line;
	}
	p->n_sects++;
	p->cur = s;
	return 0;
}

/* Classifies one raw line the way inih will (multi-line values off): blank,
 * comment, [section] or key=value; opens sections; rejects anything else so
 * inih never sees a line it would refuse. */
static int line_scan(struct parse *p, char *line)
{
	char *s = line;
	char *end;
	char *close;

	while (*s != '\0' && is_space(*s))
		s++;
	end = s + strlen(s);
	while (end > s && is_space(end[-1]))
		end--;
	if (s == end || *s == ';' || *s == '#')
		return 0;
	if (*s == '[') {
		char label[CONFIG_MAX_NAME + 32];
		char *a = s + 1;
		char *t;

		close = memchr(a, ']', (size_t)(end - a));
		if (close == NULL)
			return fail(p, p->line, NULL, NULL, "syntax error: \"[\" without a closing \"]\"");
		for (t = close + 1; t < end && is_space(*t); t++)
			;
		if (t < end && *t != ';' && *t != '#')
			return fail(p, p->line, NULL, NULL, "syntax error: unexpected text after \"]\"");
		while (a < close && is_space(*a))
			a++;
		t = close;
		while (t > a && is_space(t[-1]))
			t--;
		if (t == a)
			return fail(p, p->line, NULL, NULL, "syntax error: empty section name \"[]\"");
		snprintf(label, sizeof(label), "%.*s", (int)(t - a), a);
		return section_open(p, label);
	}
	/* inih splits at the first '=' or ':' before an inline comment. */
	for (char *c = s; c < end; c++) {
		if (*c == '=' || *c == ':')
			return 0;
		if (*c == ';' && c > s && is_space(c[-1]))
			break;
	}
	return fail(p, p->line, NULL, NULL, "syntax error: expected \"key = value\", \"[section]\" or a comment");
}

static char *ini_reader_cb(char *str, int num, void *stream)
{
	struct parse *p = stream;
	const char *start;
	const char *nl;
	size_t n, content;

	if (p->failed || p->pos >= p->len)
		return NULL;
	start = p->data + p->pos;
	nl = memchr(start, '\n', p->len - p->pos);
	n = nl != NULL ? (size_t)(nl - start) + 1 : p->len - p->pos;
	p->pos += n;
	p->line++;
	if (p->line == 1 && n >= 3 && memcmp(start, "\xEF\xBB\xBF", 3) == 0) {
		start += 3;
		n -= 3;
	}
	content = n;
	while (content > 0 && (start[content - 1] == '\n' || start[content - 1] == '\r'))
		content--;
	if (content > CONFIG_MAX_LINE || n > CONFIG_MAX_LINE + 2 || n + 1 > (size_t)num) {
		fail(p, p->line, NULL, NULL, "line too long (%zu characters, max %d)",
		     content > CONFIG_MAX_LINE ? content : n, CONFIG_MAX_LINE);
		return NULL;
	}
	memcpy(str, start, n);
	str[n] = '\0';
	{
		/* line_scan works on a copy so inih gets the line untouched. */
		char copy[CONFIG_MAX_LINE + 3];
		memcpy(copy, str, n + 1);
		if (line_scan(p, copy) != 0)
			return NULL;
	}
	return str;
}

/* ---- keys ---------------------------------------------------------------- */

static int set_string(struct parse *p, char **field, const char *v)
{
	char *d = strdup(v);

	if (d == NULL)
		return fail_nomem(p);
	free(*field);
	*field = d;
	return 0;
}

/* Words (URLs) separated by spaces or tabs in v. Here rather than
 * pool_url_count() so the config links without the client (tests that link
 * only daemon/ and common/). */
static size_t url_count(const char *v)
{
	size_t n = 0;

	while (v && *v) {
		v += strspn(v, " \t");
		if (!*v)
			break;
		n++;
		v += strcspn(v, " \t");
	}
	return n;
}

/* A student's base_url listing several URLs (a pool of replicas, SPEC 9):
 * each one checked, trailing '/' removed, stored joined by single spaces. */
static int set_pool_urls(struct parse *p, int line, const struct sect *s, const struct key *k, char **field,
			 const char *v)
{
	size_t n = url_count(v), i = 0, len, wl;
	char word[MAX_URL_LEN + 2];
	struct buf out;

	if (s->kind != SECT_STUDENT)
		return fail(p, line, s, k->name,
			    "lists %zu URLs: a pool of replicas is for a [student.NAME] section only; give one URL",
			    n);
	if (n > POOL_MAX_REPLICAS)
		return fail(p, line, s, k->name, "lists %zu URLs: a pool has at most %d replicas", n,
			    POOL_MAX_REPLICAS);
	buf_init(&out, (size_t)CONFIG_MAX_LINE + 1);
	for (const char *w = v + strspn(v, " \t"); *w; w += len, w += strspn(w, " \t"), i++) {
		len = strcspn(w, " \t");
		if (len > MAX_URL_LEN) {
			buf_free(&out);
			return fail(p, line, s, k->name, "URL %zu of %zu is over %d bytes", i + 1, n, MAX_URL_LEN);
		}
		memcpy(word, w, len);
		word[len] = '\0';
		if (!valid_url(word)) {
			buf_free(&out);
			return fail(p, line, s, k->name,
				    "URL %zu of %zu: \"%s\" is not an http:// or https:// base URL "
				    "(e.g. http://127.0.0.1:8080/v1)",
				    i + 1, n, word);
		}
		wl = len;
		while (wl > 0 && word[wl - 1] == '/')
			word[--wl] = '\0';
		/* The same replica twice would get twice its share: surely a typo. */
		for (const char *o = out.base; o && *o; o += strcspn(o, " "), o += strspn(o, " ")) {
			if (strncmp(o, word, wl) == 0 && (o[wl] == ' ' || o[wl] == '\0')) {
				buf_free(&out);
				return fail(p, line, s, k->name, "URL %zu of %zu: \"%s\" is listed twice", i + 1, n,
					    word);
			}
		}
		if ((out.len && buf_append(&out, " ", 1) < 0) || buf_append(&out, word, wl) < 0) {
			buf_free(&out);
			return fail_nomem(p);
		}
	}
	free(*field);
	*field = buf_take(&out);
	return *field ? 0 : fail_nomem(p);
}

static int key_set(struct parse *p, struct sect *s, const struct key *k, const char *v)
{
	char *base = sect_base(p, s);
	void *f = base + k->off;
	int line = p->line;
	int rc;

	switch (k->type) {
	case KT_PATH:
	case KT_SOCKET:
		if (strlen(v) > MAX_PATH_LEN || has_ctrl(v))
			return fail(p, line, s, k->name, "not a usable path (control characters or over %d bytes)",
				    MAX_PATH_LEN);
		if (k->type == KT_SOCKET && strlen(v) > CONFIG_SOCKET_PATH_MAX)
			return fail(p, line, s, k->name, "\"%s\" is too long for a Unix socket path (%zu bytes, max %d)",
				    v, strlen(v), CONFIG_SOCKET_PATH_MAX);
		return set_string(p, f, v);
	case KT_URL: {
		char *u;
		size_t n;

		if (url_count(v) > 1)
			return set_pool_urls(p, line, s, k, (char **)f, v);
		if (!valid_url(v))
			return fail(p, line, s, k->name,
				    "\"%s\" is not an http:// or https:// base URL (e.g. http://127.0.0.1:8080/v1)", v);
		if (set_string(p, f, v) != 0)
			return -1;
		u = *(char **)f;
		n = strlen(u);
		while (n > 0 && u[n - 1] == '/')
			u[--n] = '\0';
		return 0;
	}
	case KT_TEXT:
		if (strlen(v) > MAX_TEXT_LEN || has_ctrl(v))
			return fail(p, line, s, k->name, "not a usable value (control characters or over %d bytes)",
				    MAX_TEXT_LEN);
		return set_string(p, f, v);
	case KT_ENVNAME:
		/* The value is not echoed: a user may have pasted the key itself here. */
		if (!valid_env_name(v))
			return fail(p, line, s, k->name,
				    "not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*, at most %d characters): "
				    "give the NAME of the variable that holds the key, not the key",
				    MAX_ENVNAME_LEN);
		return set_string(p, f, v);
	case KT_INT:
		rc = parse_int(v, k->min, k->max, f);
		if (rc == -ERANGE)
			return fail(p, line, s, k->name, "\"%s\" is out of range (%lld..%lld)", v, (long long)k->min,
				    (long long)k->max);
		if (rc != 0)
			return fail(p, line, s, k->name, "\"%s\" is not a whole number >= %lld", v, (long long)k->min);
		return 0;
	case KT_PRICE:
		rc = parse_price(v, f);
		if (rc == -ERANGE)
			return fail(p, line, s, k->name, "\"%s\" is out of range (0..%.0f)", v, MAX_PRICE);
		if (rc != 0)
			return fail(p, line, s, k->name, "\"%s\" is not a decimal number >= 0 (e.g. 2.50)", v);
		return 0;
	case KT_BOOL:
		if (parse_bool(v, f) != 0)
			return fail(p, line, s, k->name, "\"%s\" is not a boolean (true|false|yes|no|1|0)", v);
		return 0;
	case KT_LOGLEVEL:
		if (log_level_parse(v, f) != 0)
			return fail(p, line, s, k->name, "\"%s\" is not one of error|warn|info|debug", v);
		return 0;
	case KT_PROVIDER:
		if (provider_find(v) == NULL)
			return fail(p, line, s, k->name, "\"%s\" is not a provider (openai|anthropic)", v);
		return set_string(p, f, v);
	case KT_CMD:
		return parse_command(p, line, s, k->name, v,
				     s->kind == SECT_TRAIN ? train_placeholders : student_placeholders, f,
				     &s->cmd_uses_model_path);
	}
	return fail(p, line, s, k->name, "internal error: unknown key type");
}

static int ini_handler_cb(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	struct sect *s = p->cur;
	const struct key *keys;
	size_t i;

	(void)section; /* the reader tracks sections itself */
	if (p->failed)
		return 0;
	if (s == NULL) {
		fail(p, p->line, NULL, NULL, "key \"%s\" is outside any section", name);
		return 0;
	}
	if (name[0] == '\0') {
		fail(p, p->line, s, NULL, "syntax error: no key name before \"=\"");
		return 0;
	}
	keys = keys_of(s->kind);
	for (i = 0; keys[i].name != NULL; i++) {
		if (strcmp(keys[i].name, name) == 0 && (keys[i].in & (1u << s->kind)) != 0)
			break;
	}
	if (keys[i].name == NULL) {
		fail(p, p->line, s, name, "unknown key");
		return 0;
	}
	if (s->key_line[i] != 0) {
		fail(p, p->line, s, name, "duplicate key (first set on line %d)", s->key_line[i]);
		return 0;
	}
	s->key_line[i] = p->line;
	if (value == NULL || value[0] == '\0') {
		fail(p, p->line, s, name, "empty value (remove the line to use the default)");
		return 0;
	}
	return key_set(p, s, &keys[i], value) == 0;
}

/* ---- after the parse ----------------------------------------------------- */

static int key_index(const struct key *keys, const char *name)
{
	for (int i = 0; keys[i].name != NULL; i++) {
		if (strcmp(keys[i].name, name) == 0)
			return i;
	}
	return -1;
}

static int resolve_key(struct parse *p, const struct sect *s, struct config_endpoint *ep)
{
	int line = s->key_line[key_index(endpoint_keys, "api_key_env")];
	const char *kind = config_endpoint_kind_name(ep->kind);
	const char *v = getenv(ep->api_key_env);
	size_t n;

	if (v == NULL || v[0] == '\0')
		return fail(p, line, s, "api_key_env",
			    "environment variable %s is not set or empty (it must hold the API key of %s \"%s\")",
			    ep->api_key_env, kind, ep->name);
	n = strlen(v);
	if (n > CONFIG_MAX_API_KEY || has_ctrl(v))
		return fail(p, line, s, "api_key_env",
			    "environment variable %s does not hold a usable API key (control characters or over %d "
			    "bytes)",
			    ep->api_key_env, CONFIG_MAX_API_KEY);
	ep->secret = calloc(1, sizeof(*ep->secret));
	if (ep->secret == NULL)
		return fail_nomem(p);
	ep->secret->key = strdup(v);
	if (ep->secret->key == NULL)
		return fail_nomem(p);
	ep->secret->len = n;
	return 0;
}

/* [web] listen: "HOST:PORT" with an IPv4 literal, "localhost" or a
 * bracketed IPv6 literal; a non-loopback host needs allow_remote. */
static int web_check(struct parse *p, const struct sect *s)
{
	struct config_web *w = &p->cfg->web;
	int line = s->key_line[key_index(web_keys, "listen")];
	const char *v = w->listen, *colon = strrchr(v, ':');
	char host[64];
	size_t hl;
	int64_t port;
	struct in6_addr a6;
	struct in_addr a4;
	bool loopback;

	if (colon == NULL || colon == v || parse_int(colon + 1, 0, 65535, &port) != 0)
		return fail(p, line, s, "listen", "\"%s\" is not HOST:PORT (e.g. 127.0.0.1:8765; port 0..65535)", v);
	hl = (size_t)(colon - v);
	if (v[0] == '[') {
		if (hl < 3 || v[hl - 1] != ']' || hl - 2 >= sizeof(host))
			return fail(p, line, s, "listen", "\"%s\": an IPv6 host is written in brackets, [::1]:8765", v);
		memcpy(host, v + 1, hl - 2);
		host[hl - 2] = '\0';
	} else {
		if (hl >= sizeof(host))
			return fail(p, line, s, "listen", "\"%s\": host too long", v);
		memcpy(host, v, hl);
		host[hl] = '\0';
		if (strcmp(host, "localhost") == 0)
			snprintf(host, sizeof(host), "127.0.0.1");
	}
	if (inet_pton(AF_INET, host, &a4) == 1)
		loopback = (ntohl(a4.s_addr) >> 24) == 127;
	else if (v[0] == '[' && inet_pton(AF_INET6, host, &a6) == 1)
		loopback = IN6_IS_ADDR_LOOPBACK(&a6);
	else
		return fail(p, line, s, "listen",
			    "\"%s\": the host must be an IP literal (127.0.0.1, [::1], localhost or an interface address)", v);
	if (!loopback && !w->allow_remote)
		return fail(p, line, s, "listen",
			    "\"%s\" is not a loopback address: the dashboard is for this machine; set allow_remote = true "
			    "to serve it on other interfaces anyway (the token is then sent in clear text)",
			    v);
	if (set_string(p, &w->host, host) != 0)
		return -1;
	w->port = (int)port;
	return 0;
}

static int finish(struct parse *p)
{
	for (size_t i = 0; i < p->n_sects; i++) {
		struct sect *s = &p->sects[i];
		const struct key *keys = keys_of(s->kind);

		for (size_t k = 0; keys[k].name != NULL; k++) {
			if ((keys[k].required & (1u << s->kind)) != 0 && s->key_line[k] == 0)
				return fail(p, s->line, s, keys[k].name, "required key is missing");
		}
		if (s->kind == SECT_STUDENT) {
			struct config_endpoint *ep = sect_endpoint(p, s);
			if (ep->model_path == NULL && s->cmd_uses_model_path)
				return fail(p, s->key_line[key_index(endpoint_keys, "command")], s, "command",
					    "uses {model_path} but model_path is not set");
			if (ep->command != NULL && ep->base_url != NULL && url_count(ep->base_url) > 1)
				return fail(p, s->key_line[key_index(endpoint_keys, "command")], s, "command",
					    "starts one engine, but base_url lists a pool of %zu URLs: start the "
					    "replicas outside medthinkd (docs/student-pool.md) or give one URL",
					    url_count(ep->base_url));
		}
		if (s->kind == SECT_WEB && web_check(p, s) != 0)
			return -1;
	}
	/* Keys last, so a file with a typo never makes us read the environment. */
	for (size_t i = 0; i < p->n_sects; i++) {
		struct sect *s = &p->sects[i];
		struct config_endpoint *ep = sect_endpoint(p, s);

		if (ep != NULL && ep->api_key_env != NULL && resolve_key(p, s, ep) != 0)
			return -1;
	}
	return 0;
}

/* ---- load / free --------------------------------------------------------- */

static int read_file(const char *path, char **out, size_t *outlen, char *err, size_t errlen)
{
	struct stat st;
	char *data = NULL;
	size_t len = 0;
	int fd = -1;
	int rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		set_err(err, errlen, "%s: cannot open the configuration file: %s", path, strerror(-rc));
		goto out;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		rc = -EISDIR;
		set_err(err, errlen, "%s: cannot read the configuration file: %s", path, strerror(-rc));
		goto out;
	}
	data = malloc(CONFIG_MAX_FILE_BYTES + 1);
	if (data == NULL) {
		rc = -ENOMEM;
		set_err(err, errlen, "%s: out of memory", path);
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, data + len, CONFIG_MAX_FILE_BYTES + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			set_err(err, errlen, "%s: cannot read the configuration file: %s", path, strerror(-rc));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > CONFIG_MAX_FILE_BYTES) {
			rc = -EFBIG;
			set_err(err, errlen, "%s: file too large (max %d bytes)", path, CONFIG_MAX_FILE_BYTES);
			goto out;
		}
	}
	data[len] = '\0';
	if (strlen(data) != len) {
		int line = 1;
		for (const char *c = data; *c; c++)
			line += *c == '\n';
		rc = -EINVAL;
		set_err(err, errlen, "%s:%d: NUL byte in the file", path, line);
		goto out;
	}
	*out = data;
	*outlen = len;
	data = NULL;
out:
	free(data);
	if (fd >= 0)
		close(fd);
	return rc;
}

static void endpoint_clear(struct config_endpoint *ep)
{
	free(ep->name);
	free(ep->base_url);
	free(ep->model);
	free(ep->provider);
	free(ep->api_key_env);
	argv_free(ep->command);
	free(ep->model_path);
	if (ep->secret != NULL) {
		if (ep->secret->key != NULL) {
			explicit_bzero(ep->secret->key, ep->secret->len);
			free(ep->secret->key);
		}
		free(ep->secret);
	}
	memset(ep, 0, sizeof(*ep));
}

void config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->n_teachers; i++)
		endpoint_clear(&cfg->teachers[i]);
	for (size_t i = 0; i < cfg->n_students; i++)
		endpoint_clear(&cfg->students[i]);
	for (size_t i = 0; i < cfg->n_embedders; i++)
		endpoint_clear(&cfg->embedders[i]);
	free(cfg->teachers);
	free(cfg->students);
	free(cfg->embedders);
	free(cfg->daemon.socket);
	free(cfg->daemon.state_dir);
	free(cfg->daemon.prompts_dir);
	argv_free(cfg->train.command);
	free(cfg->web.listen);
	free(cfg->web.host);
	free(cfg->path);
	free(cfg);
}

static struct config *config_new_defaults(const char *path)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL)
		return NULL;
	cfg->path = strdup(path);
	cfg->daemon.socket = strdup("./var/medthinkd.sock");
	cfg->daemon.state_dir = strdup("./var");
	cfg->daemon.log_level = LOG_LVL_INFO;
	cfg->daemon.max_body_mb = 1024;
	cfg->daemon.max_connections = 256;
	cfg->daemon.request_timeout_s = 30;
	cfg->daemon.idle_timeout_s = 60;
	cfg->daemon.stream_buffer_kb = 4096;
	cfg->daemon.batch_poll_s = 30;
	if (cfg->path == NULL || cfg->daemon.socket == NULL || cfg->daemon.state_dir == NULL) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* inih's options are process globals in Debian's build; set ours for the
 * parse and put the old ones back. */
struct ini_opts {
	bool multiline, inline_comments, stop_first, realloc_, use_stack, no_value, bom;
	int max_line, initial_alloc;
	char *start_prefixes, *inline_prefixes;
};

static void ini_opts_swap(struct ini_opts *save)
{
	save->multiline = ini_allow_multiline;
	save->inline_comments = ini_allow_inline_comments;
	save->stop_first = ini_stop_on_first_error;
	save->realloc_ = ini_allow_realloc;
	save->use_stack = ini_use_stack;
	save->no_value = ini_allow_no_value;
	save->bom = ini_allow_bom;
	save->max_line = ini_max_line;
	save->initial_alloc = ini_initial_alloc;
	save->start_prefixes = ini_start_comment_prefixes;
	save->inline_prefixes = ini_inline_comment_prefixes;
	ini_allow_multiline = false;    /* an indented line is a line of its own */
	ini_allow_inline_comments = true;
	ini_stop_on_first_error = true;
	ini_allow_realloc = false;
	ini_use_stack = false;          /* the stack buffer is fixed at 200 bytes */
	ini_allow_no_value = false;
	ini_allow_bom = false;          /* the reader strips it */
	ini_max_line = CONFIG_MAX_LINE + 96;
	ini_initial_alloc = CONFIG_MAX_LINE + 96;
	ini_start_comment_prefixes = (char *)";#";
	ini_inline_comment_prefixes = (char *)";";
}

static void ini_opts_restore(const struct ini_opts *save)
{
	ini_allow_multiline = save->multiline;
	ini_allow_inline_comments = save->inline_comments;
	ini_stop_on_first_error = save->stop_first;
	ini_allow_realloc = save->realloc_;
	ini_use_stack = save->use_stack;
	ini_allow_no_value = save->no_value;
	ini_allow_bom = save->bom;
	ini_max_line = save->max_line;
	ini_initial_alloc = save->initial_alloc;
	ini_start_comment_prefixes = save->start_prefixes;
	ini_inline_comment_prefixes = save->inline_prefixes;
}

int config_load(const char *path, struct config **out, char *err, size_t errlen)
{
	struct parse *p = NULL;
	struct config *cfg = NULL;
	struct ini_opts saved;
	char *data = NULL;
	size_t len = 0;
	int irc;
	int rc;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	rc = read_file(path, &data, &len, err, errlen);
	if (rc != 0)
		goto out;
	cfg = config_new_defaults(path);
	p = calloc(1, sizeof(*p));
	if (cfg == NULL || p == NULL) {
		rc = -ENOMEM;
		set_err(err, errlen, "%s: out of memory", path);
		goto out;
	}
	p->path = path;
	p->cfg = cfg;
	p->data = data;
	p->len = len;
	p->err = err;
	p->errlen = errlen;

	ini_opts_swap(&saved);
	irc = ini_parse_stream(ini_reader_cb, p, ini_handler_cb, p);
	ini_opts_restore(&saved);

	if (!p->failed && irc == -2)
		fail_nomem(p);
	else if (!p->failed && irc != 0)
		fail(p, irc > 0 ? irc : 0, NULL, NULL, "syntax error");
	if (!p->failed)
		finish(p);
	if (p->failed) {
		rc = p->rc;
		goto out;
	}
	*out = cfg;
	cfg = NULL;
	rc = 0;
out:
	config_free(cfg);
	free(p);
	free(data);
	return rc;
}

int config_apply_env(struct config *cfg, char *err, size_t errlen)
{
	const char *v = getenv("MEDTHINK_SOCKET");
	char *d;

	if (v == NULL || v[0] == '\0')
		return 0;
	if (has_ctrl(v)) {
		set_err(err, errlen, "MEDTHINK_SOCKET: contains control characters");
		return -EINVAL;
	}
	if (strlen(v) > CONFIG_SOCKET_PATH_MAX) {
		set_err(err, errlen, "MEDTHINK_SOCKET: \"%s\" is too long for a Unix socket path (%zu bytes, max %d)",
			v, strlen(v), CONFIG_SOCKET_PATH_MAX);
		return -EINVAL;
	}
	d = strdup(v);
	if (d == NULL) {
		set_err(err, errlen, "MEDTHINK_SOCKET: out of memory");
		return -ENOMEM;
	}
	free(cfg->daemon.socket);
	cfg->daemon.socket = d;
	cfg->daemon.socket_from_env = true;
	return 0;
}

const char *config_endpoint_api_key(const struct config_endpoint *ep)
{
	return ep != NULL && ep->secret != NULL ? ep->secret->key : NULL;
}

static const struct config_endpoint *find_in(const struct config_endpoint *arr, size_t n, const char *name)
{
	for (size_t i = 0; name != NULL && i < n; i++) {
		if (strcmp(arr[i].name, name) == 0)
			return &arr[i];
	}
	return NULL;
}

const struct config_endpoint *config_teacher_find(const struct config *cfg, const char *name)
{
	return find_in(cfg->teachers, cfg->n_teachers, name);
}

const struct config_endpoint *config_student_find(const struct config *cfg, const char *name)
{
	return find_in(cfg->students, cfg->n_students, name);
}

const struct config_endpoint *config_embedder_find(const struct config *cfg, const char *name)
{
	return find_in(cfg->embedders, cfg->n_embedders, name);
}

const char *config_endpoint_kind_name(enum config_endpoint_kind k)
{
	return k == CONFIG_TEACHER ? "teacher" : k == CONFIG_EMBEDDER ? "embedder" : "student";
}

/* ---- dump ---------------------------------------------------------------- */

static void dump_argv(FILE *f, char *const *argv)
{
	for (size_t i = 0; argv[i] != NULL; i++) {
		const char *a = argv[i];
		bool quote = a[0] == '\0' || strpbrk(a, " \t\"") != NULL;

		if (i > 0)
			fputc(' ', f);
		if (!quote) {
			fputs(a, f);
			continue;
		}
		fputc('"', f);
		for (; *a; a++) {
			if (*a == '"' || *a == '\\')
				fputc('\\', f);
			fputc(*a, f);
		}
		fputc('"', f);
	}
}

static const char *level_name(enum log_level l)
{
	switch (l) {
	case LOG_LVL_ERROR:
		return "error";
	case LOG_LVL_WARN:
		return "warn";
	case LOG_LVL_DEBUG:
		return "debug";
	default:
		return "info";
	}
}

static void dump_endpoint(FILE *f, const struct config_endpoint *ep)
{
	fprintf(f, "\n[%s.%s]\n", config_endpoint_kind_name(ep->kind), ep->name);
	fprintf(f, "base_url = %s\n", ep->base_url);
	fprintf(f, "model = %s\n", ep->model);
	if (ep->api_key_env != NULL)
		fprintf(f, "api_key_env = %s ; api key: (from $%s, %s)\n", ep->api_key_env, ep->api_key_env,
			config_endpoint_api_key(ep) != NULL ? "set" : "NOT set");
	else
		fprintf(f, "; api_key_env not set: no Authorization header is sent\n");
	fprintf(f, "max_concurrency = %lld\n", (long long)ep->max_concurrency);
	fprintf(f, "rpm = %lld\n", (long long)ep->rpm);
	fprintf(f, "tpm = %lld\n", (long long)ep->tpm);
	fprintf(f, "timeout_s = %lld\n", (long long)ep->timeout_s);
	fprintf(f, "max_retries = %lld\n", (long long)ep->max_retries);
	fprintf(f, "down_after_s = %lld\n", (long long)ep->down_after_s);
	fprintf(f, "price_in_per_mtok = %.15g\n", ep->price_in_per_mtok);
	fprintf(f, "price_out_per_mtok = %.15g\n", ep->price_out_per_mtok);
	fprintf(f, "json_schema = %s\n", ep->json_schema ? "true" : "false");
	if (ep->kind == CONFIG_TEACHER) {
		fprintf(f, "provider = %s\n", ep->provider ? ep->provider : "openai");
		fprintf(f, "batch_price_in_per_mtok = %.15g\n", config_endpoint_batch_price(ep, false));
		fprintf(f, "batch_price_out_per_mtok = %.15g\n", config_endpoint_batch_price(ep, true));
	}
	if (ep->kind == CONFIG_STUDENT) {
		if (ep->model_path != NULL)
			fprintf(f, "model_path = %s\n", ep->model_path);
		if (ep->command != NULL) {
			fputs("command = ", f);
			dump_argv(f, ep->command);
			fputc('\n', f);
		} else {
			fputs("; no command: the inference engine is started outside medthinkd\n", f);
		}
	}
}

int config_dump(const struct config *cfg, FILE *f)
{
	fprintf(f, "; medthinkd configuration loaded from %s, defaults filled in\n", cfg->path);
	fprintf(f, "[daemon]\n");
	fprintf(f, "socket = %s%s\n", cfg->daemon.socket, cfg->daemon.socket_from_env ? " ; from $MEDTHINK_SOCKET" : "");
	fprintf(f, "state_dir = %s\n", cfg->daemon.state_dir);
	fprintf(f, "log_level = %s\n", level_name(cfg->daemon.log_level));
	fprintf(f, "max_body_mb = %lld\n", (long long)cfg->daemon.max_body_mb);
	fprintf(f, "max_connections = %lld\n", (long long)cfg->daemon.max_connections);
	fprintf(f, "request_timeout_s = %lld\n", (long long)cfg->daemon.request_timeout_s);
	fprintf(f, "idle_timeout_s = %lld\n", (long long)cfg->daemon.idle_timeout_s);
	fprintf(f, "stream_buffer_kb = %lld\n", (long long)cfg->daemon.stream_buffer_kb);
	fprintf(f, "batch_poll_s = %lld\n", (long long)cfg->daemon.batch_poll_s);
	if (cfg->daemon.prompts_dir != NULL)
		fprintf(f, "prompts_dir = %s\n", cfg->daemon.prompts_dir);
	else
		fprintf(f, "; prompts_dir not set: the built-in prompt templates\n");
	if (cfg->n_teachers == 0)
		fprintf(f, "\n; no [teacher.NAME] section: datasets can be imported, jobs need a teacher\n");
	for (size_t i = 0; i < cfg->n_teachers; i++)
		dump_endpoint(f, &cfg->teachers[i]);
	for (size_t i = 0; i < cfg->n_students; i++)
		dump_endpoint(f, &cfg->students[i]);
	for (size_t i = 0; i < cfg->n_embedders; i++)
		dump_endpoint(f, &cfg->embedders[i]);
	if (cfg->train.present) {
		fprintf(f, "\n[train]\ncommand = ");
		dump_argv(f, cfg->train.command);
		fprintf(f, "\ntimeout_s = %lld\n", (long long)cfg->train.timeout_s);
		fprintf(f, "kill_grace_s = %lld\n", (long long)cfg->train.kill_grace_s);
	} else {
		fprintf(f, "\n; no [train] section: pipeline jobs default to train = manual\n");
	}
	if (cfg->web.present)
		fprintf(f, "\n[web]\nlisten = %s\nallow_remote = %s\n", cfg->web.listen,
			cfg->web.allow_remote ? "true" : "false");
	else
		fprintf(f, "\n; no [web] section: no dashboard\n");
	if (fflush(f) != 0 || ferror(f))
		return -(errno != 0 ? errno : EIO);
	return 0;
}

double config_endpoint_batch_price(const struct config_endpoint *ep, bool out)
{
	double b = out ? ep->batch_price_out_per_mtok : ep->batch_price_in_per_mtok;

	return b >= 0 ? b : (out ? ep->price_out_per_mtok : ep->price_in_per_mtok) / 2;
}
