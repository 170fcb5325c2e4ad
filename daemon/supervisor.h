#ifndef MT_SUPERVISOR_H
#define MT_SUPERVISOR_H
/* The student engine supervisor (SPEC section 3, `command` of [student.NAME]):
 * starts each configured inference engine as a child process (uv_spawn, no
 * shell), copies its stdout/stderr line by line into the daemon log, polls
 * its health URL until it answers 200, then checks it every few seconds and
 * restarts it with exponential backoff when it exits or stops answering.
 *
 * Everything runs on the loop thread and never blocks: the health check is a
 * hand-written `GET` over a uv_tcp connection to a loopback http:// URL (an
 * IPv4/IPv6 literal or "localhost"; no DNS).
 *
 * Each engine runs in its own session / process group (UV_PROCESS_DETACHED),
 * and stop signals go to the whole group, so a wrapper script's children
 * stop with it. Known limit: an engine outlives a daemon that is SIGKILLed
 * (uv_spawn offers no PR_SET_PDEATHSIG); the next daemon's engine then finds
 * the port taken, exits, and is retried with backoff, while the health check
 * sees the old engine. Under systemd, KillMode=control-group (the default)
 * stops the whole cgroup, engine included.
 *
 * Not thread-safe: every function is called on the loop thread. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

struct supervisor;

/* Timings and limits; supervisor_opts_default() fills in the defaults. */
struct supervisor_opts {
	uint64_t start_timeout_ms;  /* 120000: from spawn to the first 200 */
	uint64_t start_poll_ms;     /* 500: health poll while starting */
	uint64_t check_interval_ms; /* 5000: health check once healthy */
	uint64_t check_timeout_ms;  /* 2000: one check (connect + status line) */
	unsigned fail_threshold;    /* 3: consecutive failed checks -> restart */
	uint64_t backoff_min_ms;    /* 1000: first restart delay after a failure */
	uint64_t backoff_max_ms;    /* 60000: the delay doubles up to this */
	uint64_t stop_grace_ms;     /* 10000: SIGTERM, then SIGKILL after this */
	size_t line_max;            /* 1000: bytes of one engine output line logged;
				     * the rest of a longer line is dropped */
};

/* Fills o with the defaults above. */
void supervisor_opts_default(struct supervisor_opts *o);

/* Creates an empty supervisor on loop (borrowed; must outlive it) with the
 * default options. Stores it in *out and returns 0, or -ENOMEM. Free it with
 * supervisor_close(). */
int supervisor_new(uv_loop_t *loop, struct supervisor **out);

/* Replaces the options (copied). Every time must be > 0, fail_threshold >= 1,
 * backoff_min_ms <= backoff_max_ms, line_max in [16, 1000000]; otherwise
 * -EINVAL and nothing changes. Applies to timers started afterwards; call it
 * before supervisor_start_all. */
int supervisor_set_opts(struct supervisor *sup, const struct supervisor_opts *o);

/* Hides an environment variable (name copied) from every engine started
 * afterwards: the daemon hides the api_key_env variable of every endpoint.
 * The common provider key names (common/childenv.h) are always hidden; the
 * environment is filtered by childenv_build, the same filter as the train
 * hook's. Returns 0, -EINVAL (empty or contains '='), -ENOMEM. */
int supervisor_env_hide(struct supervisor *sup, const char *var);

/* Lets engine name (registered) see var (copied) although it is hidden: a
 * student's own api_key_env, the key its engine checks on each request
 * (vLLM reads VLLM_API_KEY, llama-server LLAMA_API_KEY). One per engine; a
 * second call replaces the first. Returns 0, -ENOENT (unknown name),
 * -EINVAL (empty or contains '='), -ENOMEM. */
int supervisor_env_keep(struct supervisor *sup, const char *name, const char *var);

/* Registers an engine, not started yet. name (e.g. "student.local") prefixes
 * its log lines; argv_template is a NULL-terminated template as in struct
 * config_endpoint.command, with {model_path} replaced by model_path (NULL
 * when the template does not use it); health_url is the full URL polled,
 * e.g. base_url + "/models". All borrowed, copied. Returns 0; -EEXIST (name
 * taken), -EINVAL (empty template, template does not expand, health_url not
 * an http:// loopback URL; the reason is logged), -ESHUTDOWN (closing) or
 * -ENOMEM. */
int supervisor_add(struct supervisor *sup, const char *name, char *const *argv_template,
		   const char *model_path, const char *health_url);

/* Starts every registered engine that is not running. Returns 0, or the
 * first spawn error (e.g. UV_ENOENT: no such program; logged with the
 * engine's name). An engine that fails to spawn is retried with backoff all
 * the same, so the caller may go on or give up (supervisor_close). */
int supervisor_start_all(struct supervisor *sup);

/* Restarts engine name: SIGTERM to its process group, SIGKILL after
 * stop_grace_ms, then starts it again with new_model_path (borrowed, copied;
 * NULL keeps the current one). Starts it when it was not running. ready
 * (may be NULL) is called once, on the loop thread: with 0 when the engine
 * answers its health URL, UV_ETIMEDOUT when it has not within
 * start_timeout_ms of this call (the supervisor keeps retrying), or
 * UV_ECANCELED when the supervisor is closed first. Returns 0; -ENOENT
 * (unknown name), -EBUSY (a restart with a ready callback is pending),
 * -EINVAL (the template does not expand with the new path), -ESHUTDOWN
 * (closing), -ENOMEM. On error ready is never called and nothing changes. */
int supervisor_restart(struct supervisor *sup, const char *name, const char *new_model_path,
		       void (*ready)(void *ud, int status), void *ud);

/* True when engine name is running and its last health check answered 200
 * (and not more than fail_threshold - 1 checks since failed). False for an
 * unknown name. */
bool supervisor_is_healthy(const struct supervisor *sup, const char *name);

/* The pid of engine name while it runs, else 0 (unknown name included). */
pid_t supervisor_pid(const struct supervisor *sup, const char *name);

/* The model path engine name runs (or will run) with; NULL for an unknown
 * name or none. Borrowed; valid until the next restart or close. */
const char *supervisor_model_path(const struct supervisor *sup, const char *name);

/* Stops everything: pending ready callbacks get UV_ECANCELED, every running
 * engine gets SIGTERM (its group; SIGKILL after stop_grace_ms), and once
 * every child has exited and every handle is closed the supervisor is freed
 * and cb(ud) is called (cb may be NULL). The loop must run until then. NULL
 * sup is a no-op (cb is not called). Call once. */
void supervisor_close(struct supervisor *sup, void (*cb)(void *ud), void *ud);

#endif
