#include "cli/args.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void args_init(struct args *a) { memset(a, 0, sizeof(*a)); }

static int args_fail(struct args *a, const char *fmt, const char *what)
{
	snprintf(a->err, sizeof(a->err), fmt, what);
	return -EINVAL;
}

/* Handles a global option at argv[*i]. Returns 1 when it was one (and
 * advances *i past its value), 0 when it is not global, -EINVAL on error. */
static int args_global(struct args *a, int argc, char **argv, int *i, bool allow_version)
{
	const char *s = argv[*i];

	if (strcmp(s, "--json") == 0) {
		a->json = true;
		return 1;
	}
	if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
		a->help = true;
		return 1;
	}
	if (allow_version && (strcmp(s, "--version") == 0 || strcmp(s, "-V") == 0)) {
		a->version = true;
		return 1;
	}
	if (strncmp(s, "--socket=", 9) == 0) {
		if (!s[9])
			return args_fail(a, "option %s needs a value", "--socket");
		a->socket = s + 9;
		return 1;
	}
	if (strcmp(s, "--socket") == 0 || strcmp(s, "-s") == 0) {
		if (*i + 1 >= argc || !argv[*i + 1][0])
			return args_fail(a, "option %s needs a value", s);
		a->socket = argv[++*i];
		return 1;
	}
	if (strncmp(s, "-s", 2) == 0 && s[2]) {
		a->socket = s + 2;
		return 1;
	}
	return 0;
}

int args_parse_global(struct args *a, int argc, char **argv, int *cmd)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *s = argv[i];
		int rc;

		if (strcmp(s, "--") == 0) {
			i++;
			break;
		}
		if (s[0] != '-' || !s[1])
			break;
		rc = args_global(a, argc, argv, &i, true);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return args_fail(a, "unknown option %s", s);
	}
	*cmd = i;
	return 0;
}

static int args_long(struct args *a, const struct args_opt *opts, int argc, char **argv, int *i)
{
	const char *s = argv[*i] + 2;
	const char *eq = strchr(s, '=');
	size_t nlen = eq ? (size_t)(eq - s) : strlen(s);

	for (int k = 0; opts && opts[k].name && k < ARGS_MAX_OPTS; k++) {
		if (strlen(opts[k].name) != nlen || strncmp(opts[k].name, s, nlen) != 0)
			continue;
		if (!opts[k].has_arg) {
			if (eq)
				return args_fail(a, "option %s takes no value", argv[*i]);
			a->val[k] = "1";
			return 0;
		}
		if (eq) {
			a->val[k] = eq + 1;
		} else {
			if (*i + 1 >= argc)
				return args_fail(a, "option %s needs a value", argv[*i]);
			a->val[k] = argv[++*i];
		}
		return 0;
	}
	return args_fail(a, "unknown option %s", argv[*i]);
}

static int args_short(struct args *a, const struct args_opt *opts, int argc, char **argv, int *i)
{
	const char *s = argv[*i];

	for (int k = 0; opts && opts[k].name && k < ARGS_MAX_OPTS; k++) {
		if (!opts[k].short_name || opts[k].short_name != s[1])
			continue;
		if (!opts[k].has_arg) {
			if (s[2])
				return args_fail(a, "unknown option %s", s);
			a->val[k] = "1";
			return 0;
		}
		if (s[2]) {
			a->val[k] = s + 2;
		} else {
			if (*i + 1 >= argc)
				return args_fail(a, "option %s needs a value", s);
			a->val[k] = argv[++*i];
		}
		return 0;
	}
	return args_fail(a, "unknown option %s", s);
}

int args_parse(struct args *a, const struct args_opt *opts, int argc, char **argv)
{
	bool only_pos = false;

	for (int i = 0; i < argc; i++) {
		const char *s = argv[i];
		int rc;

		if (!only_pos && strcmp(s, "--") == 0) {
			only_pos = true;
			continue;
		}
		if (only_pos || s[0] != '-' || !s[1]) {
			if (a->npos >= ARGS_MAX_POS)
				return args_fail(a, "too many arguments (at %s)", s);
			a->pos[a->npos++] = s;
			continue;
		}
		rc = args_global(a, argc, argv, &i, false);
		if (rc < 0)
			return rc;
		if (rc > 0)
			continue;
		rc = s[1] == '-' ? args_long(a, opts, argc, argv, &i) : args_short(a, opts, argc, argv, &i);
		if (rc)
			return rc;
	}
	return 0;
}

const char *args_get(const struct args *a, const struct args_opt *opts, const char *name)
{
	for (int k = 0; opts && opts[k].name && k < ARGS_MAX_OPTS; k++)
		if (strcmp(opts[k].name, name) == 0)
			return a->val[k];
	return NULL;
}
