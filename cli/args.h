#ifndef MT_CLI_ARGS_H
#define MT_CLI_ARGS_H
/* Command-line parsing for medthink: a small getopt_long without globals.
 * Options may come before or after positionals; "--" ends the options. The
 * global options --json, -s/--socket PATH and -h/--help are accepted
 * anywhere. Pure: no I/O, no allocation. */

#include <stdbool.h>

#define ARGS_MAX_POS 8
#define ARGS_MAX_OPTS 16

struct args_opt {
	const char *name; /* long name without "--"; NULL ends a table */
	char short_name;  /* 0 when there is none */
	bool has_arg;
};

struct args {
	const char *pos[ARGS_MAX_POS];
	int npos;
	const char *val[ARGS_MAX_OPTS]; /* by table index: value, "1" for a flag, NULL absent */
	bool json;
	bool help;
	bool version;        /* only before the command */
	const char *socket;  /* -s/--socket, NULL when absent */
	char err[200];       /* why parsing failed */
};

/* Starts an empty result. */
void args_init(struct args *a);

/* Parses the global options at the front of argv (argv[0] is the program
 * name) up to the first positional, which is the command. Sets *cmd to its
 * index, or argc when there is none. Returns 0, or -EINVAL with a->err set
 * (unknown option, missing value). argv is borrowed; a keeps pointers into
 * it. */
int args_parse_global(struct args *a, int argc, char **argv, int *cmd);

/* Parses a command's arguments argv[0..argc) (not including the command
 * name) against the option table opts, adding to a. Returns 0, or -EINVAL
 * with a->err set (unknown option, missing or unexpected value, too many
 * positionals). argv and opts are borrowed. */
int args_parse(struct args *a, const struct args_opt *opts, int argc, char **argv);

/* Returns the value of the option named name in opts, or NULL when it was not
 * given (or is not in the table). */
const char *args_get(const struct args *a, const struct args_opt *opts, const char *name);

#endif
