/* medthinkd: wiring. Loads the configuration, opens the store, registers the
 * model endpoints with the client, resumes unfinished jobs, listens on the
 * socket, and runs the loop until SIGINT/SIGTERM. */

#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "common/pidlock.h"
#include "common/utf8.h"
#include "daemon/api.h"
#include "daemon/config.h"
#include "daemon/supervisor.h"
#include "daemon/web.h"
#include "stages/prompts.h"
#include "stages/runner.h"
#include "store/check.h"
#include "store/checkpoint.h"
#include "store/store.h"
#include "teacher_clients/client.h"
#include "teacher_clients/pool.h"
#include "teacher_clients/provider.h"

#ifdef MEDTHINK_JEMALLOC
/* jemalloc reads this at its start (the MALLOC_CONF environment variable
 * still overrides it). Two arenas: the loop and the writer thread do nearly
 * all the allocating, and each arena holds its own free pages. Freed pages
 * go back to the system after two seconds rather than ten: the 1M-item
 * job stays under its memory target (docs/PERFORMANCE.md). */
const char *malloc_conf = "narenas:2,dirty_decay_ms:2000,muzzy_decay_ms:0";
#endif

#ifndef MEDTHINK_VERSION
#define MEDTHINK_VERSION "0.1.0"
#endif

struct daemon {
	uv_loop_t loop;
	struct config *cfg;
	struct store *st;
	struct client *cl;
	struct runner *runner;
	struct api *api;
	struct supervisor *sup; /* student engines with a `command`, or NULL */
	const char **secret_env; /* every endpoint's api_key_env, borrowed from cfg */
	size_t n_secret_env;
	uv_prepare_t commit;   /* group commit once per loop iteration */
	uv_timer_t retry;      /* a busy store: commit again shortly */
	uv_async_t writer;     /* the store's writer thread finished a batch */
	int writer_on;         /* commits run on that thread (store_writer_start) */
	uv_signal_t sigint, sigterm;
	struct store_ckpt *ckpt; /* WAL checkpoints on a worker thread */
	uv_timer_t ckpt_timer;
	uv_work_t ckpt_work;
	int ckpt_on, ckpt_busy;
	int ckpt_log;            /* frames in the WAL at the last checkpoint */
	int ckpt_hold;           /* commits wait for a catch-up checkpoint */
	/* The page-by-page store check, once, on a worker after start. */
	struct store_check *check;
	uv_work_t check_work;
	uv_timer_t check_timer; /* the check after a resume waits for the first calls */
	int check_timer_on;
	int check_rc;
	double check_s;
	char check_first[256], check_err[1024];
	int stopping;
	int closing_parts;
	int signals_on;
	uint64_t last_commit; /* loop time of the last group commit */
	int exit_code;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: medthinkd [-c FILE] [--check-config] [--check-store] [--version]\n"
		   "  -c, --config FILE   configuration (default: conf/medthinkd.conf)\n"
		   "      --check-config  load and validate the configuration, print it, exit\n"
		   "      --check-store   check the store (STATE_DIR/medthink.db) page by page;\n"
		   "                      exit 0 when sound, 1 when damaged\n"
		   "  -V, --version       print the version\n"
		   "Environment: MEDTHINK_SOCKET overrides the socket path; the variables named\n"
		   "by api_key_env hold the endpoints' API keys.\n");
}

/* sd_notify without libsystemd: one datagram to $NOTIFY_SOCKET. */
static void notify_ready(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (!path || !*path || strlen(path) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, strlen(path));
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)!sendto(fd, "READY=1", 7, 0, (struct sockaddr *)&sa,
		      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path)));
	close(fd);
}

/* The prompt templates load at start, so a bad prompts_dir is a startup
 * error naming the path, not a failure of every submit later. Without
 * prompts_dir the built-in templates serve (checked as well). */
static int prompts_ready(const struct config *cfg)
{
	const char *dir = cfg->daemon.prompts_dir;
	json_t *snap = NULL;
	char perr[1024];
	int rc = prompts_load_dir(dir, &snap, perr, sizeof(perr));

	json_decref(snap);
	if (rc == 0)
		return 0;
	if (dir)
		fprintf(stderr, "medthinkd: %s: [daemon] prompts_dir = %s: %s\n", cfg->path, dir, perr);
	else
		fprintf(stderr, "medthinkd: the built-in prompt templates do not load: %s\n", perr);
	return rc;
}

/* Group commit: writes queued during a loop turn wait at most
 * COMMIT_DELAY_MS, or until COMMIT_BATCH of them are queued, and are then
 * committed in one transaction. Fewer, larger transactions write each
 * touched B-tree page (and fsync) once per batch instead of once per turn;
 * nothing waits on them but the items they move on. */
#define COMMIT_DELAY_MS 5
#define COMMIT_BATCH 256
/* Under load a commit's cost is mostly per transaction, not per write:
 * each rewrites the random calls_hash leaves, the artifacts' and tasks'
 * pages and the database header it touches, and drops the loop's page
 * cache. So a batch already COMMIT_GROW_MIN writes long at COMMIT_DELAY_MS
 * (over ~1,600 calls a second) waits until COMMIT_GROW_MS after the last
 * commit to grow, and a writer that finishes early no longer takes what a
 * single turn queued. 200k-item job (~4,500 calls/s): 28-41 -> 113 writes
 * a commit, WAL 13.4-14.1 -> 12.6 KB a call; bench/store_write: 14 -> 56
 * calls a commit, 31 -> 23 us a call. A slower job (a crash test's dozen
 * calls in flight) still commits after COMMIT_DELAY_MS, as before. The
 * runner's window margin (stages/runner.c) covers the outcomes waiting. */
#define COMMIT_GROW_MIN 16
#define COMMIT_GROW_MS 10
#define CHECK_DELAY_MS 1000 /* after a resume: the store check waits this long */

static void commit_now(struct daemon *d);

/* Commits wait for a catch-up checkpoint (see ckpt_after_cb) unless the
 * daemon stops or the batch grew past this many writes. */
#define COMMIT_HOLD_MAX (4 * COMMIT_BATCH)

static bool commit_held(struct daemon *d)
{
	return d->ckpt_hold && !d->stopping && store_batch_pending(d->st) < COMMIT_HOLD_MAX;
}

/* Whether the queued writes commit now (see COMMIT_GROW_MIN); else
 * *wait_ms is how long until they do. */
static bool commit_due(struct daemon *d, uint64_t *wait_ms)
{
	size_t pending = store_batch_pending(d->st);
	uint64_t waited = uv_now(&d->loop) - d->last_commit;

	*wait_ms = 0;
	if (pending >= COMMIT_BATCH || d->stopping || waited >= COMMIT_GROW_MS)
		return true;
	if (waited < COMMIT_DELAY_MS) {
		*wait_ms = COMMIT_DELAY_MS - waited;
		return false;
	}
	if (pending < COMMIT_GROW_MIN)
		return true;
	*wait_ms = COMMIT_GROW_MS - waited;
	return false;
}

static void on_retry(uv_timer_t *t)
{
	struct daemon *d = t->data;
	uint64_t wait_ms;

	/* Not yet due: on_prepare starts the timer again. */
	if (!commit_held(d) && commit_due(d, &wait_ms))
		commit_now(d);
}

static void commit_now(struct daemon *d)
{
	int rc;

	uv_timer_stop(&d->retry);
	if (d->writer_on) {
		/* The writer commits; a busy writer takes what is queued
		 * when it is done (on_writer). */
		if (store_batch_submit(d->st) > 0)
			d->last_commit = uv_now(&d->loop);
		return;
	}
	d->last_commit = uv_now(&d->loop);
	/* Commits until the queue is empty: done callbacks may queue more
	 * writes (an item's next step), bounded so one turn cannot spin. */
	for (int i = 0; i < 4 && store_batch_pending(d->st) > 0; i++) {
		rc = store_batch_flush(d->st);
		if (rc == -EBUSY) {
			uv_timer_start(&d->retry, on_retry, 5, 0);
			return;
		}
	}
	if (store_batch_pending(d->st) > 0)
		uv_timer_start(&d->retry, on_retry, COMMIT_DELAY_MS, 0);
}

/* Checkpoints run on the libuv threadpool with their own connection, one at
 * a time, twice a second: the WAL stays small and no commit on the loop
 * pays for copying it into the database (store/checkpoint.h).
 * A PASSIVE checkpoint copies the frames that were there when it began;
 * the WAL starts again from its beginning only when a commit finds every
 * frame copied, which never happens while group commits land during each
 * checkpoint: the WAL grew by ~9 KB a call (12 GB for 1M calls, its index
 * mapped into the daemon, and a close that copied it all). So once the WAL
 * holds CKPT_RESET_FRAMES, commits wait for one more checkpoint, which has
 * only the frames written during the last one to copy (tens of ms), and
 * the next commit restarts the WAL. Waiting commits are only deferred:
 * a shutdown or a full batch (commit_now) still commits. */
#define CKPT_RESET_FRAMES 32768 /* 128 MiB of 4 KiB pages */

static void ckpt_queue(struct daemon *d);

static void ckpt_work_cb(uv_work_t *w)
{
	struct daemon *d = w->data;

	/* On a small machine the copy competes with the loop and the status
	 * thread for a core: it yields to them. The pool's threads run only
	 * background work here (checkpoints, the store check, a restart's
	 * counts), so the nice value stays with the thread. */
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
	pthread_setname_np(pthread_self(), "mt-pool"); /* a pool thread: background work only */
	store_ckpt_run(d->ckpt, &d->ckpt_log);
}

static void ckpt_after_cb(uv_work_t *w, int status)
{
	struct daemon *d = w->data;

	(void)status;
	d->ckpt_busy = 0;
	if (d->ckpt_hold) {
		d->ckpt_hold = 0;
		if (store_batch_pending(d->st) > 0)
			commit_now(d); /* this commit restarts the WAL */
		return;
	}
	if (!d->stopping && d->ckpt_log >= CKPT_RESET_FRAMES) {
		d->ckpt_hold = 1;
		ckpt_queue(d);
		if (!d->ckpt_busy)
			d->ckpt_hold = 0;
	}
}

static void ckpt_queue(struct daemon *d)
{
	if (d->ckpt_busy)
		return;
	d->ckpt_work.data = d;
	if (uv_queue_work(&d->loop, &d->ckpt_work, ckpt_work_cb, ckpt_after_cb) == 0)
		d->ckpt_busy = 1;
}

static void on_ckpt_timer(uv_timer_t *t)
{
	ckpt_queue(t->data);
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* PRAGMA quick_check reads the whole file: about 6 s for a store of 1M
 * calls (1.8 GB), far over the 1 s a restart may take to its first call.
 * So store_open checks only what is cheap (header, size, schema) and the
 * page check runs here, on the threadpool with its own connection, while
 * the jobs already run. Damage found pauses them and marks /v1/health. */
static void check_work_cb(uv_work_t *w)
{
	struct daemon *d = w->data;
	double t0 = mono_now();

	d->check_rc = store_check_run(d->check, 0, d->check_first, sizeof(d->check_first),
				      d->check_err, sizeof(d->check_err));
	d->check_s = mono_now() - t0;
}

static void check_after_cb(uv_work_t *w, int status)
{
	struct daemon *d = w->data;
	char reason[400];

	store_check_close(d->check);
	d->check = NULL;
	if (status == UV_ECANCELED || d->check_rc == -EINTR)
		return;
	if (d->check_rc == 0) {
		log_info("store check: sound (quick_check, %.1f s)", d->check_s);
		return;
	}
	if (d->check_rc != -EUCLEAN) {
		log_warn("store check did not run: %s", d->check_err);
		return;
	}
	log_error("%s", d->check_err);
	snprintf(reason, sizeof(reason), "database damaged: %.*s; see docs/operations.md",
		 (int)utf8_prefix(d->check_first, strlen(d->check_first), 200), d->check_first);
	if (d->api)
		api_set_degraded(d->api, reason);
	if (!d->stopping) {
		int n = runner_pause_all(d->runner, reason);

		if (n > 0)
			log_error("paused %d job(s): %s", n, reason);
	}
}

static void check_start(struct daemon *d, const char *dbpath)
{
	int rc = store_check_open(dbpath, &d->check, d->check_err, sizeof(d->check_err));

	if (rc == 0) {
		d->check_work.data = d;
		rc = uv_queue_work(&d->loop, &d->check_work, check_work_cb, check_after_cb);
	} else {
		log_warn("store check did not run: %s", d->check_err);
	}
	if (rc != 0) {
		store_check_close(d->check);
		d->check = NULL;
	}
}

static void check_timer_closed(uv_handle_t *h)
{
	struct daemon *d = h->data;

	d->check_timer_on = 0;
}

static void on_check_timer(uv_timer_t *t)
{
	struct daemon *d = t->data;

	uv_close((uv_handle_t *)t, check_timer_closed);
	if (!d->stopping)
		check_start(d, store_path(d->st));
}

/* After resuming jobs, the check (it reads the whole file) starts a moment
 * later: on 2 cores its thread and the loop's first turns would share them,
 * and a restart owes its first call within a second. */
static void check_start_later(struct daemon *d, const char *dbpath, int resumed)
{
	if (resumed <= 0 || uv_timer_init(&d->loop, &d->check_timer) != 0) {
		check_start(d, dbpath);
		return;
	}
	d->check_timer.data = d;
	d->check_timer_on = 1;
	uv_timer_start(&d->check_timer, on_check_timer, CHECK_DELAY_MS, 0);
}

/* medthinkd --check-store: the full check (integrity_check: also every
 * index against its table), offline or beside a running daemon (it only
 * reads). */
static int check_store_main(const char *dbpath)
{
	struct store_check *c = NULL;
	char err[1024];
	double t0 = mono_now();
	int rc = store_file_check(dbpath, err, sizeof(err));

	if (rc == 0 && access(dbpath, F_OK) != 0) {
		fprintf(stderr, "medthinkd: store %s: no such file (nothing to check)\n", dbpath);
		return 1;
	}
	if (rc == 0)
		rc = store_check_open(dbpath, &c, err, sizeof(err));
	if (rc == 0)
		rc = store_check_run(c, 1, NULL, 0, err, sizeof(err));
	store_check_close(c);
	if (rc != 0) {
		fprintf(stderr, "medthinkd: %s\n", err);
		return 1;
	}
	printf("store %s: sound (integrity_check, %.1f s)\n", dbpath, mono_now() - t0);
	return 0;
}

/* The writer thread is done with a batch (store_writer_start's wake). */
static void writer_wake(void *ud)
{
	struct daemon *d = ud;

	uv_async_send(&d->writer);
}

/* Its done callbacks run here, on the loop; what they queued (an item's
 * next step) goes to the writer at once, as the loop's own commit did in
 * the same turn. */
static void on_writer(uv_async_t *a)
{
	struct daemon *d = a->data;
	int rc = store_batch_reap(d->st);
	uint64_t wait_ms;

	if (rc == -EBUSY) {
		uv_timer_start(&d->retry, on_retry, 5, 0);
		return;
	}
	if (store_batch_pending(d->st) > 0 && !commit_held(d) && commit_due(d, &wait_ms))
		commit_now(d);
}

static void on_prepare(uv_prepare_t *p)
{
	struct daemon *d = p->data;
	size_t pending = store_batch_pending(d->st);
	uint64_t wait_ms;

	if (pending == 0 || commit_held(d))
		return;
	if (d->writer_on && store_batch_busy(d->st))
		return; /* on_writer hands these over */
	if (commit_due(d, &wait_ms)) {
		commit_now(d);
		return;
	}
	if (!uv_is_active((uv_handle_t *)&d->retry))
		uv_timer_start(&d->retry, on_retry, wait_ms, 0);
}

/* The group commit keeps running while the parts close (the client waits
 * for its last call rows to commit); once all have closed it stops too,
 * and uv_run returns. */
static void closed_cb(void *ud)
{
	struct daemon *d = ud;

	if (--d->closing_parts > 0)
		return;
	commit_now(d);
	if (d->writer_on) {
		/* Its last batch commits and calls back here; the rest (what
		 * those callbacks queue) commits on this thread below. */
		store_writer_stop(d->st);
		d->writer_on = 0;
		uv_close((uv_handle_t *)&d->writer, NULL);
		commit_now(d);
	}
	uv_prepare_stop(&d->commit);
	uv_close((uv_handle_t *)&d->commit, NULL);
	uv_close((uv_handle_t *)&d->retry, NULL);
	if (d->ckpt_on)
		uv_close((uv_handle_t *)&d->ckpt_timer, NULL);
}

static void shutdown_begin(struct daemon *d)
{
	if (d->stopping++)
		return;
	log_info("shutting down");
	if (d->check)
		store_check_interrupt(d->check);
	if (d->check_timer_on && !uv_is_closing((uv_handle_t *)&d->check_timer))
		uv_close((uv_handle_t *)&d->check_timer, check_timer_closed);
	d->closing_parts = 2 + (d->api != NULL) + (d->sup != NULL);
	if (d->sup) {
		supervisor_close(d->sup, closed_cb, d);
		d->sup = NULL;
	}
	if (d->api)
		api_close(d->api, closed_cb, d);
	runner_close(d->runner, closed_cb, d);
	client_close(d->cl, closed_cb, d);
	d->cl = NULL;
	if (d->signals_on) {
		uv_close((uv_handle_t *)&d->sigint, NULL);
		uv_close((uv_handle_t *)&d->sigterm, NULL);
	}
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct daemon *d = s->data;

	log_info("received signal %d", signum);
	shutdown_begin(d);
}

static int register_endpoints(struct daemon *d, struct runner_endpoint **eps_out, size_t *n_out)
{
	size_t n = d->cfg->n_teachers + d->cfg->n_students + d->cfg->n_embedders, k = 0;
	struct runner_endpoint *eps = calloc(n ? n : 1, sizeof(*eps));
	int rc = 0;

	if (!eps)
		return -ENOMEM;
	for (size_t pass = 0; pass < 3; pass++) {
		/* teachers, students, then the embedders (a third list, so the
		 * first two stay as they were) */
		struct config_endpoint *list = pass == 2 ? d->cfg->embedders
					       : pass	 ? d->cfg->students
							 : d->cfg->teachers;
		size_t cnt = pass == 2 ? d->cfg->n_embedders : pass ? d->cfg->n_students : d->cfg->n_teachers;

		for (size_t i = 0; i < cnt; i++) {
			struct config_endpoint *ce = &list[i];
			struct client_endpoint_cfg ec = { 0 };
			char full[160];

			snprintf(full, sizeof(full), "%s.%s", config_endpoint_kind_name(ce->kind), ce->name);
			ec.name = full;
			ec.kind = pass == 1 ? CLIENT_STUDENT : CLIENT_TEACHER;
			ec.base_url = ce->base_url;
			ec.model = ce->model;
			ec.api_key = config_endpoint_api_key(ce);
			ec.max_concurrency = (int)ce->max_concurrency;
			ec.rpm = (int)ce->rpm;
			ec.tpm = ce->tpm;
			ec.timeout_s = (double)ce->timeout_s;
			/* The client reads 0 as its default; the config's 0 means none. */
			ec.max_retries = ce->max_retries ? (int)ce->max_retries : -1;
			ec.price_in_per_mtok = ce->price_in_per_mtok;
			ec.price_out_per_mtok = ce->price_out_per_mtok;
			ec.json_schema = ce->json_schema;
			ec.provider = ce->provider ? provider_find(ce->provider) : NULL;
			ec.batch_price_in_per_mtok = config_endpoint_batch_price(ce, false);
			ec.batch_price_out_per_mtok = config_endpoint_batch_price(ce, true);
			ec.down_after_s = (double)ce->down_after_s;
			rc = client_endpoint_add(d->cl, &ec);
			if (rc) {
				log_error("cannot register endpoint [%s]: %s", full, strerror(-rc));
				goto out;
			}
			eps[k].name = strdup(full);
			/* A pool's max_concurrency is per replica: the runner keeps
			 * enough items out for all of them. */
			eps[k].max_concurrency = (int)ce->max_concurrency * (int)pool_url_count(ce->base_url);
			eps[k].model_path = ce->model_path;
			eps[k].price_in_per_mtok = ce->price_in_per_mtok;
			eps[k].price_out_per_mtok = ce->price_out_per_mtok;
			k++;
		}
	}
out:
	*eps_out = eps;
	*n_out = k;
	return rc;
}

/* The runner asks for this after a train hook: the student's engine comes
 * back on the retrained model before the next stage. */
static int restart_student(void *ud, const char *endpoint, const char *model_path,
			   void (*ready)(void *cbud, int status), void *cbud)
{
	struct daemon *d = ud;

	if (!d->sup)
		return -ENOENT;
	return supervisor_restart(d->sup, endpoint, model_path, ready, cbud);
}

/* Lists every endpoint's api_key_env: no child process (engine, train hook)
 * sees them, but for a student engine its own (supervisor_env_keep). */
static int secret_env_list(struct daemon *d)
{
	size_t n = d->cfg->n_teachers + d->cfg->n_students + d->cfg->n_embedders;

	d->secret_env = calloc(n ? n : 1, sizeof(*d->secret_env));
	if (!d->secret_env)
		return -ENOMEM;
	for (size_t pass = 0; pass < 3; pass++) {
		const struct config_endpoint *list = pass == 2 ? d->cfg->embedders
						     : pass	 ? d->cfg->students
							       : d->cfg->teachers;
		size_t cnt = pass == 2 ? d->cfg->n_embedders : pass ? d->cfg->n_students : d->cfg->n_teachers;

		for (size_t i = 0; i < cnt; i++)
			if (list[i].api_key_env)
				d->secret_env[d->n_secret_env++] = list[i].api_key_env;
	}
	return 0;
}

/* Starts the student engines that have a `command` (SPEC section 3). */
static int start_engines(struct daemon *d)
{
	int rc = supervisor_new(&d->loop, &d->sup);

	if (rc)
		return rc;
	/* An engine has no business seeing another endpoint's API key. */
	for (size_t i = 0; i < d->n_secret_env; i++) {
		rc = supervisor_env_hide(d->sup, d->secret_env[i]);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < d->cfg->n_students; i++) {
		const struct config_endpoint *ce = &d->cfg->students[i];
		char name[160], url[4200];

		if (ce->command == NULL)
			continue;
		snprintf(name, sizeof(name), "student.%s", ce->name);
		snprintf(url, sizeof(url), "%s/models", ce->base_url);
		rc = supervisor_add(d->sup, name, ce->command, ce->model_path, url);
		/* Its own key is the one it checks on each request. */
		if (!rc && ce->api_key_env)
			rc = supervisor_env_keep(d->sup, name, ce->api_key_env);
		if (rc)
			return rc;
	}
	if (supervisor_start_all(d->sup) != 0)
		log_warn("a student engine did not start; retrying with backoff");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'k' },
		{ "check-store", no_argument, NULL, 's' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon d = { .exit_code = 1 };
	int lock_fd = -1, check_store = 0;
	pid_t holder = 0;
	const char *conf = "conf/medthinkd.conf";
	struct runner_endpoint *eps = NULL;
	size_t neps = 0;
	struct runner_config rc_cfg = { 0 };
	struct api_config ac = { 0 };
	char err[1024], dbpath[4096];
	int check = 0, opt, rc, loop_ok = 0, web_failed = 0;

	while ((opt = getopt_long(argc, argv, "c:Vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			conf = optarg;
			break;
		case 'k':
			check = 1;
			break;
		case 's':
			check_store = 1;
			break;
		case 'V':
			printf("medthinkd %s\n", MEDTHINK_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (config_load(conf, &d.cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "medthinkd: %s\n", err);
		return 1;
	}
	if (config_apply_env(d.cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "medthinkd: %s\n", err);
		goto out;
	}
	log_set_level(d.cfg->daemon.log_level);
	if (prompts_ready(d.cfg) != 0)
		goto out;
	if (check) {
		config_dump(d.cfg, stdout);
		d.exit_code = 0;
		goto out;
	}
	snprintf(dbpath, sizeof(dbpath), "%s/medthink.db", d.cfg->daemon.state_dir);
	if (check_store) {
		d.exit_code = check_store_main(dbpath);
		goto out;
	}
	rc = fs_mkdir_p(d.cfg->daemon.state_dir);
	if (rc) {
		log_error("cannot create state_dir %s: %s", d.cfg->daemon.state_dir, strerror(-rc));
		goto out;
	}
	/* One daemon per state_dir, before anything in it is opened or
	 * written: two would run the same jobs and send every call twice. */
	lock_fd = pidlock_take(d.cfg->daemon.state_dir, &holder);
	if (lock_fd == -EWOULDBLOCK) {
		char pid[32] = "unknown";

		if (holder > 0)
			snprintf(pid, sizeof(pid), "%ld", (long)holder);
		log_error("another medthinkd (pid %s) is already running on state_dir %s (%s/%s)", pid,
			  d.cfg->daemon.state_dir, d.cfg->daemon.state_dir, PIDLOCK_FILE);
		goto out;
	}
	if (lock_fd < 0) {
		log_error("cannot lock state_dir %s (%s/%s): %s", d.cfg->daemon.state_dir,
			  d.cfg->daemon.state_dir, PIDLOCK_FILE, strerror(-lock_fd));
		goto out;
	}
	if (store_open(dbpath, &d.st, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	{
		int stale = 0;

		if (store_dataset_abort_stale(d.st, &stale) == 0 && stale > 0)
			log_warn("removed %d dataset import(s) cut short by a previous stop",
				 stale);
	}
	uv_loop_init(&d.loop);
	loop_ok = 1;
	if (store_ckpt_open(dbpath, &d.ckpt) == 0 && store_set_autocheckpoint(d.st, 0) == 0) {
		uv_timer_init(&d.loop, &d.ckpt_timer);
		d.ckpt_timer.data = &d;
		uv_timer_start(&d.ckpt_timer, on_ckpt_timer, 500, 500);
		d.ckpt_on = 1;
	} else {
		/* Without the worker, SQLite checkpoints inside commits as usual. */
		store_ckpt_close(d.ckpt);
		d.ckpt = NULL;
	}
	{
		/* Every endpoint may fill its max_concurrency on its own host (or
		 * share one), so curl's per-host connection cap is their sum. */
		struct client_settings cs = { 0 };
		long conns = 0;

		for (size_t i = 0; i < d.cfg->n_teachers; i++)
			conns += (long)d.cfg->teachers[i].max_concurrency;
		for (size_t i = 0; i < d.cfg->n_students; i++)
			conns += (long)d.cfg->students[i].max_concurrency;
		cs.max_host_connections = conns > 256 ? conns : 256;
		cs.batch_poll_s = (double)d.cfg->daemon.batch_poll_s;
		rc = client_new(&d.loop, d.st, &cs, &d.cl);
	}
	if (rc) {
		log_error("cannot start the model client: %s", strerror(-rc));
		goto out;
	}
	if (d.cfg->n_teachers == 0)
		log_warn("%s has no [teacher.NAME] section: datasets can be imported, but a job "
			 "that names a teacher is refused", d.cfg->path);
	rc = register_endpoints(&d, &eps, &neps);
	if (!rc && client_batch_resume(d.cl) < 0)
		log_warn("the unfinished provider batches could not be read; they are not polled");
	if (!rc)
		rc = secret_env_list(&d);
	if (rc)
		goto out;
	rc_cfg.state_dir = d.cfg->daemon.state_dir;
	rc_cfg.prompts_dir = d.cfg->daemon.prompts_dir;
	rc_cfg.endpoints = eps;
	rc_cfg.nendpoints = neps;
	rc_cfg.train_argv = d.cfg->train.present ? d.cfg->train.command : NULL;
	rc_cfg.train_timeout_s = (int)d.cfg->train.timeout_s;
	rc_cfg.train_kill_grace_s = (int)d.cfg->train.kill_grace_s;
	rc_cfg.child_env_hide = d.secret_env;
	rc_cfg.n_child_env_hide = d.n_secret_env;
	rc_cfg.restart_student = restart_student;
	rc_cfg.restart_ud = &d;
	rc = runner_new(&d.loop, d.st, d.cl, &rc_cfg, &d.runner);
	if (rc)
		goto out;
	uv_prepare_init(&d.loop, &d.commit);
	d.commit.data = &d;
	uv_prepare_start(&d.commit, on_prepare);
	/* Group commits off the loop: from here every exit runs the loop
	 * through closed_cb, which stops the writer. */
	if (uv_async_init(&d.loop, &d.writer, on_writer) == 0) {
		d.writer.data = &d;
		rc = store_writer_start(d.st, writer_wake, &d);
		if (rc == 0) {
			d.writer_on = 1;
		} else {
			log_warn("store: no writer thread (%s); group commits run on the loop",
				 strerror(-rc));
			uv_close((uv_handle_t *)&d.writer, NULL);
		}
	}
	uv_timer_init(&d.loop, &d.retry);
	d.retry.data = &d;
	ac.socket_path = d.cfg->daemon.socket;
	ac.max_upload_bytes = (uint64_t)d.cfg->daemon.max_body_mb << 20;
	ac.max_connections = (unsigned)d.cfg->daemon.max_connections;
	ac.request_timeout_ms = (unsigned)d.cfg->daemon.request_timeout_s * 1000u;
	ac.idle_timeout_ms = (unsigned)d.cfg->daemon.idle_timeout_s * 1000u;
	ac.stream_buffer = (size_t)d.cfg->daemon.stream_buffer_kb << 10;
	ac.version = MEDTHINK_VERSION;
	rc = api_start(&d.loop, d.st, d.runner, d.cl, &ac, &d.api);
	if (rc) {
		if (rc == -EADDRINUSE)
			log_error("another medthinkd is already running on %s", ac.socket_path);
		else
			log_error("cannot listen on %s: %s", ac.socket_path, strerror(-rc));
		d.api = NULL;
		shutdown_begin(&d);
		uv_run(&d.loop, UV_RUN_DEFAULT);
		goto run_down;
	}
	uv_signal_init(&d.loop, &d.sigint);
	uv_signal_init(&d.loop, &d.sigterm);
	d.sigint.data = d.sigterm.data = &d;
	uv_signal_start(&d.sigint, on_signal, SIGINT);
	uv_signal_start(&d.sigterm, on_signal, SIGTERM);
	d.signals_on = 1;
	if (d.cfg->web.present) {
		struct web_config wc = { d.cfg->web.host, d.cfg->web.port, d.cfg->daemon.state_dir };

		if (api_web_start(d.api, &wc) != 0) {
			web_failed = 1; /* logged; [web] asked for it, so no silent half start */
			shutdown_begin(&d); /* after the signals: it closes them */
		}
	}
	rc = web_failed ? 0 : start_engines(&d);
	if (rc) {
		log_error("cannot start the student engines: %s", strerror(-rc));
		shutdown_begin(&d);
	}
	rc = web_failed ? 0 : runner_start(d.runner);
	if (rc > 0)
		log_info("resumed %d unfinished job(s)", rc);
	if (!d.stopping)
		check_start_later(&d, dbpath, rc);
	log_info("medthinkd %s listening on %s (store %s)", MEDTHINK_VERSION, ac.socket_path, dbpath);
	notify_ready();
	uv_run(&d.loop, UV_RUN_DEFAULT);
	d.exit_code = web_failed;
run_down:
	if (d.writer_on) {
		store_writer_stop(d.st);
		d.writer_on = 0;
		uv_close((uv_handle_t *)&d.writer, NULL);
	}
	/* Whatever completed before the stop is committed. */
	while (store_batch_pending(d.st) > 0 && store_batch_flush(d.st) > 0)
		;
out:
	/* An early failure: close what the shutdown did not, let handles go. */
	if (d.ckpt_on && !uv_is_closing((uv_handle_t *)&d.ckpt_timer))
		uv_close((uv_handle_t *)&d.ckpt_timer, NULL);
	if (d.cl)
		client_close(d.cl, NULL, NULL);
	if (loop_ok)
		uv_run(&d.loop, UV_RUN_DEFAULT);
	store_ckpt_close(d.ckpt);
	api_free(d.api);
	runner_free(d.runner);
	if (loop_ok && uv_loop_close(&d.loop) != 0)
		log_warn("the loop still had open handles at exit");
	for (size_t i = 0; i < neps; i++)
		free((char *)eps[i].name);
	free(eps);
	free(d.secret_env);
	store_close(d.st);
	/* Last: the store is closed before another daemon may open it. */
	pidlock_release(lock_fd);
	config_free(d.cfg);
	/* --check-config and --check-store print their answer, not a log */
	if (d.exit_code == 0 && !check && !check_store)
		log_info("stopped");
	return d.exit_code;
}
