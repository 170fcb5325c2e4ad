#ifndef MT_TRAINHOOK_H
#define MT_TRAINHOOK_H
/* The train hook of a pipeline job: writes the stage's SFT set to a file the
 * daemon chooses (STATE_DIR/jobs/job_N/setS.jsonl, OpenAI chat format), then
 * runs the configured [train] command with uv_spawn (no shell), its output
 * kept line by line in the job's log.
 *
 * The hook runs in its own session and process group (UV_PROCESS_DETACHED)
 * with the daemon's environment minus every API key (common/childenv.h).
 * Stopping it (timeout, cancel, daemon shutdown) sends SIGTERM to the whole
 * group and SIGKILL to the group kill_grace_s later; when the hook exits,
 * whatever is left of its group is killed too, so nothing it started
 * outlives it. Loop thread only. */

#include <stdint.h>
#include <uv.h>

struct store;
struct trainhook;

struct trainhook_params {
	uv_loop_t *loop;
	struct store *store;
	int64_t job, dataset;
	const char *set;        /* "1" or "2" */
	const char *state_dir;
	char *const *argv;      /* template: {set} {set_path} {out_dir} {model_path} */
	int timeout_s;          /* 0: no limit */
	int kill_grace_s;       /* SIGTERM, then SIGKILL this much later; <= 0: 10 */
	const char *model_path; /* the student's, or NULL */
	const char *const *env_hide; /* names removed from the hook's environment */
	size_t n_env_hide;      /* (the provider key names are removed anyway) */
};

/* Starts the hook. done(ud, status, why) fires once, from the loop, after the
 * process has exited and every handle is closed: status 0 for exit 0, else
 * non-zero with why naming the exit code, signal or timeout. On failure to
 * start returns a negative errno with err set and done never fires. */
int trainhook_start(const struct trainhook_params *p,
		    void (*done)(void *ud, int status, const char *why), void *ud,
		    struct trainhook **out, char *err, size_t errlen);
/* Stops a running hook: SIGTERM to its process group, SIGKILL to the group
 * kill_grace_s later if the hook has not exited by then. Its done still
 * fires, once it has exited. NULL or a second call: no-op. */
void trainhook_kill(struct trainhook *h);
/* Frees a hook whose done has fired. NULL: no-op. */
void trainhook_free(struct trainhook *h);

#endif
