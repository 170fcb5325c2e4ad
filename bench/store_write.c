/* The store's share of one model call, alone (issue 17): what the daemon
 * writes for each stage-one call, through the same group commit, without
 * the network, the prompts or the screening. Per call: the call row (as
 * teacher_clients/client.c stores it), then in the next flush the item's
 * outcome (the artifact and the task's state, as stages/runner.c stores
 * them); PER calls per flush as the 5 ms window gathers them. Prints one
 * JSON object: CPU microseconds per call on this thread, WAL frames and
 * bytes per call, statements stepped per call.
 *
 *   build/bench/store_write N DIR [PER [SPLIT]]   (DIR is created and must be empty)
 *
 * SPLIT 1: the outcomes commit in a flush of their own right after the
 * call rows (two commits per window) instead of with the next window's
 * call rows.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "common/sha256.h"
#include "store/calls.h"
#include "store/checkpoint.h"
#include "store/store.h"
#include "store/store_int.h"
#include "store/work.h"

struct one {
	int64_t job, seq, call_id;
	char hash[65];
	int64_t tin, tout;
	json_t *artifact;
};

static char request[2048], reply[1100];
static int64_t frames;
static int last;

static int wal_hook(void *ud, sqlite3 *db, const char *name, int n)
{
	(void)ud;
	(void)db;
	(void)name;
	/* n counts from the start of the WAL, which restarts after a checkpoint. */
	frames += n >= last ? n - last : n;
	last = n;
	return SQLITE_OK;
}

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int call_apply(struct store *st, void *ud)
{
	struct one *o = ud;
	struct store_call row;

	memset(&row, 0, sizeof(row));
	row.hash = o->hash;
	row.job_id = o->job;
	row.endpoint = "teacher.sim";
	row.model = "sim-teacher";
	row.request = request;
	row.reply = reply;
	row.status = 200;
	row.attempts = 1;
	row.latency_ms = 101.5;
	row.tokens_in = o->tin;
	row.tokens_out = o->tout;
	row.cost_usd = (double)o->tin * 2.5 / 1e6 + (double)o->tout * 10.0 / 1e6;
	return store_call_insert(st, &row, &o->call_id);
}

static int task_apply(struct store *st, void *ud)
{
	struct one *o = ud;
	int rc = store_artifact_put(st, o->job, "explanation", o->seq, o->call_id, o->artifact);

	if (rc == 0)
		rc = store_task_put(st, o->job, "explain", o->seq, STORE_TASK_DONE, 1, NULL);
	return rc;
}

static int failed;

static void done(void *ud, int status)
{
	(void)ud;
	if (status != 0)
		failed++;
}

int main(int argc, char **argv)
{
	struct store *st = NULL;
	struct one *v;
	char path[4096], err[512], text[760];
	int64_t n, per, ds = 0, job = 0, *seqs;
	struct store_ckpt *ck = NULL;
	int64_t frames0;
	int steps0 = 0, split;
	double c0, cpu = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: store_write N DIR [PER]\n");
		return 2;
	}
	n = strtoll(argv[1], NULL, 10);
	per = argc > 3 ? strtoll(argv[3], NULL, 10) : 20;
	split = argc > 4 && strcmp(argv[4], "1") == 0;
	if (n <= 0 || per <= 0 || mkdir(argv[2], 0700) != 0) {
		fprintf(stderr, "store_write: bad N or PER, or cannot create %s\n", argv[2]);
		return 2;
	}
	snprintf(path, sizeof(path), "%s/medthink.db", argv[2]);
	if (store_open(path, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, "store_write: %s\n", err);
		return 1;
	}
	store_set_autocheckpoint(st, 0);
	for (size_t i = 0; i + 1 < sizeof(request); i++)
		request[i] = "abcdefgh ijklmnop qrstuvw xyz.\\n"[i % 32];
	for (size_t i = 0; i + 1 < sizeof(reply); i++)
		reply[i] = "Key knowledge: the mechanism. "[i % 30];
	for (size_t i = 0; i + 1 < sizeof(text); i++)
		text[i] = "Option C is correct because \"x\". "[i % 34];
	text[sizeof(text) - 1] = '\0';
	v = calloc((size_t)n, sizeof(*v));
	seqs = calloc((size_t)n, sizeof(*seqs));
	if (!v || !seqs || store_dataset_create(st, "bench", "native", &ds) != 0 ||
	    store_job_insert(st, "bench", "stage1", ds, json_object(), json_object(), &job) != 0) {
		fprintf(stderr, "store_write: setup failed\n");
		return 1;
	}
	srand(17);
	for (int64_t i = 0; i < n; i++) {
		char k[32];

		seqs[i] = i;
		v[i].job = job;
		v[i].seq = i;
		snprintf(k, sizeof(k), "%" PRId64, i);
		sha256_hex(k, strlen(k), v[i].hash);
		v[i].tin = 400 + rand() % 100;
		v[i].tout = 150 + rand() % 100;
		v[i].artifact = json_pack("{s:s, s:s, s:b}", "text", text, "final_answer", "C",
					  "verified", 1);
	}
	if (store_tasks_insert_pending(st, job, "explain", seqs, (size_t)n) < 0) {
		fprintf(stderr, "store_write: seeding failed\n");
		return 1;
	}
	sqlite3_wal_hook(store_db(st), wal_hook, NULL);
	store_job_set_state(st, job, "running", NULL);
	if (store_ckpt_open(path, &ck) != 0)
		return 1;
	frames0 = frames;
	for (int64_t i = 0; i <= n; i += per) {
		/* The daemon checkpoints on a thread of its own twice a second
		 * (about every 2,000 calls): here too, outside the time taken. */
		if (i % 2000 < per)
			store_ckpt_run(ck, NULL);
		c0 = cpu_now();
		/* The outcomes of the previous window's calls, then this window's
		 * call rows, in one group commit. */
		for (int64_t j = i - per; j >= 0 && j < i && j < n; j++)
			store_batch_add(st, task_apply, done, &v[j]);
		if (split && store_batch_flush(st) < 0)
			failed++;
		for (int64_t j = i; j < i + per && j < n; j++)
			store_batch_add(st, call_apply, done, &v[j]);
		if (store_batch_flush(st) < 0)
			failed++;
		cpu += cpu_now() - c0;
	}
	{
		sqlite3_stmt *s = NULL;

		for (s = sqlite3_next_stmt(store_db(st), NULL); s; s = sqlite3_next_stmt(store_db(st), s))
			steps0 += sqlite3_stmt_status(s, SQLITE_STMTSTATUS_RUN, 0);
	}
	printf("{\"calls\":%" PRId64 ",\"per_flush\":%" PRId64 ",\"split\":%d,\"failed\":%d,\"cpu_us_per_call\":%.2f,"
	       "\"wal_frames_per_call\":%.3f,\"wal_kib_per_call\":%.2f,\"cached_stmt_runs_per_call\":%.2f}\n",
	       n, per, split, failed, cpu * 1e6 / (double)n, (double)(frames - frames0) / (double)n,
	       (double)(frames - frames0) * 4120.0 / 1024.0 / (double)n, (double)steps0 / (double)n);
	for (int64_t i = 0; i < n; i++)
		json_decref(v[i].artifact);
	free(v);
	free(seqs);
	store_ckpt_close(ck);
	store_close(st);
	return failed ? 1 : 0;
}
