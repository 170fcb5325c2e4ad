#ifndef MT_CONFIG_H
#define MT_CONFIG_H
/* The daemon configuration (SPEC section 3): an INI file parsed with inih and
 * validated as a whole at start. docs/configuration.md documents every key;
 * conf/medthinkd.conf is the commented reference.
 *
 * A loaded struct config is read-only and may be shared between threads. The
 * API keys named by api_key_env are read from the environment at load and
 * live only in memory, reachable through config_endpoint_api_key(); they are
 * wiped on config_free() and never printed. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/log.h"
#include "teacher_clients/client.h"

/* Caps on the input; anything larger is a load error naming the limit. */
#define CONFIG_MAX_FILE_BYTES (1024 * 1024)
#define CONFIG_MAX_LINE 4000       /* characters per line, without the newline */
#define CONFIG_MAX_ENDPOINTS CLIENT_MAX_ENDPOINTS /* teachers and students together */
#define CONFIG_MAX_NAME 64         /* endpoint NAME in [teacher.NAME] */
#define CONFIG_MAX_ARGS 256        /* words in a command template */
#define CONFIG_MAX_API_KEY 8192    /* bytes of an API key read from the environment */
#define CONFIG_SOCKET_PATH_MAX 107
#define CONFIG_TRAIN_KILL_GRACE_S 10 /* [train] kill_grace_s default */ /* sun_path is 108 bytes with the NUL */

enum config_endpoint_kind { CONFIG_TEACHER, CONFIG_STUDENT, CONFIG_EMBEDDER };

struct config_secret; /* opaque: holds the API key */

/* One [teacher.NAME] or [student.NAME] section, defaults filled in. */
struct config_endpoint {
	enum config_endpoint_kind kind;
	char *name;           /* NAME, [A-Za-z0-9_.-]+ */
	char *base_url;       /* http:// or https://, trailing '/' removed */
	char *model;
	char *api_key_env;    /* name of the variable, NULL when not set */
	int64_t max_concurrency;
	int64_t rpm;          /* requests per minute, 0 = unlimited */
	int64_t tpm;          /* tokens per minute, 0 = unlimited */
	int64_t timeout_s;
	int64_t max_retries;
	int64_t down_after_s; /* every call failed this long: the endpoint is down */
	double price_in_per_mtok;  /* USD per million tokens */
	double price_out_per_mtok;
	bool json_schema;     /* the endpoint accepts response_format json_schema */
	char *provider;       /* teacher: the wire format (provider.h row name); NULL: openai */
	double batch_price_in_per_mtok;  /* teacher, teacher_mode batch; < 0: unset */
	double batch_price_out_per_mtok; /* (config_endpoint_batch_price) */
	char **command;       /* student only: argv template (NULL-terminated), or NULL */
	char *model_path;     /* student only: value for {model_path}, or NULL */
	int line;             /* line of the section header, for messages */
	struct config_secret *secret; /* use config_endpoint_api_key() */
};

struct config_daemon {
	char *socket;         /* relative paths are relative to the current directory */
	bool socket_from_env; /* set by config_apply_env() */
	char *state_dir;
	char *prompts_dir;    /* NULL: the built-in templates (stages/prompts.h) */
	enum log_level log_level;
	int64_t max_body_mb;  /* cap on a request body (dataset upload), MiB */
	int64_t max_connections;   /* open socket connections; one more gets 503 */
	int64_t request_timeout_s; /* a request head must be complete within this, else 408 */
	int64_t idle_timeout_s;    /* a client that makes no progress this long is dropped */
	int64_t stream_buffer_kb;  /* per-connection output cap, KiB */
	int64_t batch_poll_s;      /* teacher_mode batch: seconds between polls of a batch */
};

struct config_train {
	bool present;         /* a [train] section was given */
	char **command;       /* argv template (NULL-terminated); NULL when !present */
	int64_t timeout_s;    /* 0 = no limit */
	int64_t kill_grace_s; /* SIGTERM to the hook's group, SIGKILL this much later */
	int line;
};

/* [web]: the read-only dashboard (docs/dashboard.md); absent = no web server. */
struct config_web {
	bool present;
	char *listen;      /* as written: "127.0.0.1:8765" */
	bool allow_remote; /* a non-loopback host is refused without it */
	char *host;        /* the IP literal to bind (no brackets) */
	int port;          /* 0 = ephemeral (the log line names the real one) */
	int line;
};

struct config {
	char *path;           /* the file it was loaded from */
	struct config_daemon daemon;
	struct config_endpoint *teachers; /* in file order */
	size_t n_teachers;                /* may be 0: jobs that name one are refused */
	struct config_endpoint *students;
	size_t n_students;                /* may be 0 */
	/* [embedder.NAME]: /v1/embeddings endpoints for the DIQ-like and 3DS
	 * selections (the endpoint keys; command and model_path are refused) */
	struct config_endpoint *embedders;
	size_t n_embedders;
	struct config_train train;
	struct config_web web;
};

/* Loads and validates the whole file at path (borrowed). On success stores a
 * new config in *out (free with config_free) and returns 0. On failure *out
 * is NULL, err (may be NULL when errlen is 0) holds one line naming the file,
 * line, section and key of the FIRST error, e.g.
 *   conf/x.conf:12: [teacher.gpt4o] rpm: "fast" is not a whole number >= 0
 * and the return is -ENOENT/-EACCES/... (cannot read), -EFBIG (file too large),
 * -EINVAL (bad content, unset api_key_env variable) or -ENOMEM.
 * Reads api_key_env variables from the environment. Not thread-safe with
 * other users of inih in the process (sets inih's options for the parse). */
int config_load(const char *path, struct config **out, char *err, size_t errlen);

/* Applies environment overrides: MEDTHINK_SOCKET (when set and non-empty)
 * replaces daemon.socket. Returns 0, -EINVAL (bad value, message in err) or
 * -ENOMEM; on failure cfg is unchanged. Call once after config_load. */
int config_apply_env(struct config *cfg, char *err, size_t errlen);

/* Frees cfg and wipes the API keys (explicit_bzero). NULL is a no-op. */
void config_free(struct config *cfg);

/* The API key read from $api_key_env at load, or NULL when the endpoint has
 * none. Borrowed from ep; valid until config_free. Never log it. */
const char *config_endpoint_api_key(const struct config_endpoint *ep);
/* A teacher's batch price per million tokens (out: completion, else
 * prompt): batch_price_*_per_mtok when set, else half the online price
 * (the providers' batch discount). */
double config_endpoint_batch_price(const struct config_endpoint *ep, bool out);

/* Finds an endpoint by NAME; NULL when there is none. Borrowed from cfg. */
const struct config_endpoint *config_teacher_find(const struct config *cfg, const char *name);
const struct config_endpoint *config_student_find(const struct config *cfg, const char *name);
const struct config_endpoint *config_embedder_find(const struct config *cfg, const char *name);
/* "teacher", "student" or "embedder": the section prefix of kind k. */
const char *config_endpoint_kind_name(enum config_endpoint_kind k);

/* Writes the whole configuration, defaults filled in, as INI that loads
 * again (for `medthinkd --check-config`). API keys are never written: an
 * endpoint with a key shows `; api key: (from $VAR, set)`. Returns 0 or a
 * negative errno when writing fails. */
int config_dump(const struct config *cfg, FILE *out);

/* A value for one placeholder of a command template, e.g. {"model_path", "/m"}. */
struct config_subst {
	const char *name;
	const char *value;
};

/* Expands a command template (student or train command, borrowed) into a new
 * NULL-terminated argv: every {NAME} is replaced by its value from vars,
 * "{{" and "}}" become "{" and "}". Stores the argv in *out (free with
 * config_argv_free) and returns 0; -EINVAL when a placeholder has no value
 * in vars (message in err), -ENOMEM. */
int config_command_expand(char *const *tmpl, const struct config_subst *vars, size_t nvars,
			  char ***out, char *err, size_t errlen);

/* Frees an argv from config_command_expand. NULL is a no-op. */
void config_argv_free(char **argv);

#endif
