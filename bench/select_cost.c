/* The cost of the DIQ-like and 3DS selection step itself (issue 11): N
 * items are imported into a fresh store (JSONL lines parsed and inserted in
 * batches, as an upload does), their scores are written as a finished
 * scoring phase leaves them (untimed: those are the model calls), and then
 * each strategy's choice runs as the runner runs it: read every score,
 * compute, and write the choice, the per-item scores and the drops in one
 * transaction. Prints one JSON object: time and peak memory of the import
 * and of each selection, and their ratios.
 *
 *   build/bench/select_cost N DIR [DIM]     (DIR is created and must be empty)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "stages/select.h"
#include "stages/selmath.h"
#include "store/store.h"
#include "store/work.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long status_kib(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;

	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0)
			v = strtol(line + strlen(key), NULL, 10);
	if (f)
		fclose(f);
	return v;
}

/* Resets the peak RSS (VmHWM) to the current RSS. */
static void peak_reset(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");

	if (f) {
		fputs("5", f);
		fclose(f);
	}
}

static uint64_t rnd_state = 88172645463325252ULL;
static double rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return (double)(rnd_state >> 11) / 9007199254740992.0;
}

static int apply(struct select_ctx *c, const int64_t *keep, size_t nkeep, const int64_t *drop,
		 size_t ndrop, const char *reason)
{
	const char *first = c->ud;
	int rc = store_begin(c->st);

	for (size_t i = 0; i < nkeep && rc == 0; i++)
		rc = store_tasks_insert_pending(c->st, c->job, "explain", &keep[i], 1) < 0 ? -EIO : 0;
	for (size_t i = 0; i < ndrop && rc == 0; i++)
		rc = store_task_put(c->st, c->job, first, drop[i], STORE_TASK_DROPPED, 1, reason);
	for (size_t i = 0; i < c->nscores && rc == 0; i++)
		rc = store_artifact_put(c->st, c->job, "selection", c->scores[i].seq, 0,
					c->scores[i].score);
	if (rc == 0 && c->summary) {
		json_t *rt = json_pack("{s:O}", "selection", c->summary);

		rc = store_job_set_runtime(c->st, c->job, rt);
		json_decref(rt);
	}
	if (rc == 0)
		return store_commit(c->st);
	store_rollback(c->st);
	return rc;
}

static void logf_(struct select_ctx *c, const char *fmt, ...)
{
	va_list ap;

	(void)c;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* The scores a finished scoring phase leaves for strategy s. */
static int scores_write(struct store *st, int64_t job, int64_t n, int dim, int strategy)
{
	int rc = store_begin(st);

	for (int64_t i = 0; i < n && rc == 0; i++) {
		double e[4096];
		char *enc;
		json_t *a;

		for (int d = 0; d < dim && d < 4096; d++)
			e[d] = rnd() * 2 - 1;
		/* as the embedding step stores it */
		enc = selmath_vec_encode(e, (size_t)dim);
		a = json_pack("{s:s, s:i, s:b}", "embedding_f32", enc, "dim", dim, "keep", 1);
		free(enc);
		rc = store_artifact_put(st, job, "embedding", i, 0, a);
		json_decref(a);
		if (rc == 0 && strategy == SELECT_DIQ) {
			a = json_pack("{s:i, s:i, s:i}", "knowledge", 1 + (int)(rnd() * 5), "reasoning",
				      1 + (int)(rnd() * 5), "overall", 1 + (int)(rnd() * 5));
			rc = store_artifact_put(st, job, "difficulty", i, 0, a);
			json_decref(a);
		}
		if (rc == 0) {
			double pl = rnd() * 3;

			a = json_pack("{s:f, s:f, s:f, s:b}", "prompt_loss", pl, "ppl", 1 + pl * 3,
				      "answer_loss", rnd() * 4, "keep", 1);
			rc = store_artifact_put(st, job, "gold_loss", i, 0, a);
			json_decref(a);
		}
		if (rc == 0 && strategy == SELECT_3DS) {
			a = json_pack("{s:f, s:f, s:b}", "score", 85 + rnd() * 15, "threshold", 85.0,
				      "keep", 1);
			rc = store_artifact_put(st, job, "rating", i, 0, a);
			json_decref(a);
			a = json_pack("{s:f}", "confidence_loss", rnd() * 3);
			if (rc == 0)
				rc = store_artifact_put(st, job, "confidence", i, 0, a);
			json_decref(a);
		}
		if (rc == 0)
			rc = store_task_put(st, job, strategy == SELECT_DIQ ? "diq_embed" : "s3_rate", i,
					    STORE_TASK_DONE, 1, NULL);
	}
	if (rc == 0)
		return store_commit(st);
	store_rollback(st);
	return rc;
}

int main(int argc, char **argv)
{
	int64_t n = argc > 1 ? strtoll(argv[1], NULL, 10) : 100000, ds, job;
	const char *dir = argc > 2 ? argv[2] : "/tmp/select_cost";
	int dim = argc > 3 ? atoi(argv[3]) : 64;
	char path[1024], err[256];
	struct store *st = NULL;
	double t0, t_import, t_sel[SELECT__N] = { 0 };
	long rss0, hwm_import, hwm_sel[SELECT__N] = { 0 };
	const size_t batch = 1000;
	json_t **items;
	int rc;

	if (n <= 0 || dim <= 0 || mkdir(dir, 0700) != 0) {
		fprintf(stderr, "usage: select_cost N NEWDIR [DIM] (%s)\n", strerror(errno));
		return 2;
	}
	snprintf(path, sizeof(path), "%s/medthink.db", dir);
	if (store_open(path, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, "store: %s\n", err);
		return 1;
	}
	items = calloc(batch, sizeof(*items));
	/* the import: JSONL lines parsed and inserted a batch at a time */
	peak_reset();
	rss0 = status_kib("VmRSS:");
	t0 = now();
	rc = store_dataset_create(st, "bench", "native", &ds);
	for (int64_t i = 0; i < n && rc == 0; i += (int64_t)batch) {
		size_t k = 0;

		for (; k < batch && i + (int64_t)k < n; k++) {
			char line[1024];

			snprintf(line, sizeof(line),
				 "{\"id\":\"s-%" PRId64 "\",\"question\":\"A %d-year-old patient presents "
				 "with epigastric pain radiating to the back after a fatty meal; lipase is "
				 "elevated. What is the most likely diagnosis?\",\"options\":{\"A\":"
				 "\"Acute pancreatitis\",\"B\":\"Peptic ulcer\",\"C\":\"Cholecystitis\","
				 "\"D\":\"Myocardial infarction\"},\"answer\":\"A\"}",
				 i + (int64_t)k, 20 + (int)((i + (int64_t)k) % 60));
			items[k] = json_loads(line, 0, NULL);
		}
		rc = store_items_insert(st, ds, i, items, k, NULL);
		for (size_t x = 0; x < k; x++)
			json_decref(items[x]);
	}
	if (rc == 0)
		rc = store_dataset_finish(st, ds, n, NULL);
	t_import = now() - t0;
	hwm_import = status_kib("VmHWM:") - rss0;
	for (int s = SELECT_DIQ; s <= SELECT_3DS && rc == 0; s++) {
		const struct select_strategy *row = select_get((enum select_id)s);
		struct select_opts o = { .difficulty_percentile = 50, .validation_fraction = 0.05,
					 .rating_threshold = 85, .pct_lo = 25, .pct_hi = 75 };
		json_t *spec = json_pack("{s:s}", "bench", row->name);
		struct select_ctx c = { .st = st, .budget = 0.1, .screened = n, .opts = &o, .seed = 7,
					.ud = (void *)(s == SELECT_DIQ ? "diq_embed" : "s3_rate"),
					.apply = apply, .log = logf_ };

		rc = store_job_insert(st, row->name, "stage1", ds, spec, spec, &job);
		json_decref(spec);
		if (rc == 0)
			rc = scores_write(st, job, n, dim, s);
		c.job = job;
		peak_reset();
		rss0 = status_kib("VmRSS:");
		t0 = now();
		if (rc == 0)
			rc = row->choose(&c);
		t_sel[s] = now() - t0;
		hwm_sel[s] = status_kib("VmHWM:") - rss0;
	}
	free(items);
	store_close(st);
	if (rc) {
		fprintf(stderr, "select_cost: %s\n", strerror(-rc));
		return 1;
	}
	printf("{\"items\":%" PRId64 ",\"dim\":%d,\"budget\":0.1,"
	       "\"import\":{\"s\":%.3f,\"peak_kib\":%ld},"
	       "\"diq\":{\"s\":%.3f,\"peak_kib\":%ld,\"time_ratio\":%.3f,\"mem_ratio\":%.3f},"
	       "\"3ds\":{\"s\":%.3f,\"peak_kib\":%ld,\"time_ratio\":%.3f,\"mem_ratio\":%.3f}}\n",
	       n, dim, t_import, hwm_import, t_sel[SELECT_DIQ], hwm_sel[SELECT_DIQ],
	       t_sel[SELECT_DIQ] / t_import, (double)hwm_sel[SELECT_DIQ] / (double)(hwm_import > 0 ? hwm_import : 1),
	       t_sel[SELECT_3DS], hwm_sel[SELECT_3DS], t_sel[SELECT_3DS] / t_import,
	       (double)hwm_sel[SELECT_3DS] / (double)(hwm_import > 0 ? hwm_import : 1));
	return 0;
}
