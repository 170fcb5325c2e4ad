/* What the store's schema costs per call, and what other schemas would
 * (issue 17). A model, not the store: raw SQLite with the store's tables
 * (store/schema.sql.txt), pragmas and write pattern for a stage-one call:
 * the call row in one group commit, the item's artifact and task state in
 * the next, PER calls a commit, items finishing out of order within the
 * dispatch window, a PASSIVE checkpoint on a second connection every CK
 * commits (the daemon's 0.5 s at ~5,000 calls/s). bench/store_write times
 * the store's own code; this program times schemas that code does not have
 * yet. Its WAL frame and checkpoint page counts follow from the schema; its
 * CPU differences may not carry over to the daemon, whose checkpoints run
 * on a thread of their own while commits go on (an 8-byte key: -23% here at
 * 200k items, ~3% in the daemon; bench/FINDINGS.md, round 8).
 *
 *   build/bench/schema_cost N DIR VARIANT [PRE [SAMPLE_DB]]
 *
 * VARIANT: "base" (the schema as it is), or a comma list of
 *   hkey    the cache lookup on an 8-byte integer column (the hash's first
 *           8 bytes) instead of calls_hash on the 64-character hex text;
 *   hsub    the same on an expression index of the hash's first 16 hex
 *           characters (no new column: an existing store only builds it);
 *   artrow  artifacts as a rowid table (appended in the order items finish)
 *           with a unique index on (job_id, kind, item_seq), instead of
 *           WITHOUT ROWID keyed by item;
 *   zip     request and reply stored deflated (zlib level 1) as blobs.
 * PRE calls are written first and not measured (a store that already holds
 * them). SAMPLE_DB: a medthink.db whose calls' request and reply bodies are
 * used in turn (else made-up text of the bench's sizes). CACHE_KIB in the
 * environment: the writer connection's page cache (default 12000, the
 * store's writer).
 * Prints one JSON object; DIR is created and must not exist.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>
#include <zlib.h>

#define PER_DEFAULT 56   /* calls a group commit (bench/wal_pages.py, 200k items) */
#define CK_COMMITS 45    /* commits between checkpoints: 0.5 s at ~5,000 calls/s */
#define WINDOW 640       /* items in flight: concurrency 512 + the runner's margin */
#define SAMPLES_MAX 1000

struct body { char *request, *reply; size_t nreq, nrep; };

static struct body samples[SAMPLES_MAX];
static int nsamples;
static bool v_hkey, v_hsub, v_artrow, v_zip;
static int64_t frames;
static int wal_last;

static void die(sqlite3 *db, const char *what)
{
	fprintf(stderr, "schema_cost: %s: %s\n", what, db ? sqlite3_errmsg(db) : "failed");
	exit(1);
}

static void exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "schema_cost: %s\n  in: %.200s\n", err ? err : "?", sql);
		exit(1);
	}
}

static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int wal_hook(void *ud, sqlite3 *db, const char *name, int n)
{
	(void)ud;
	(void)db;
	(void)name;
	/* n counts from the WAL's start, which restarts after a checkpoint */
	frames += n >= wal_last ? n - wal_last : n;
	wal_last = n;
	return SQLITE_OK;
}

/* Bytes this process has handed to write(2) and pwrite(2) so far: a
 * checkpoint's delta is the pages it copied into the database file (the
 * program has one thread; the wal-index is a mapping, not written). */
static int64_t wchar(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	char line[128];
	long long v = -1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "wchar: %lld", &v) == 1)
			break;
	if (f)
		fclose(f);
	if (v < 0) {
		/* without it every checkpoint would count 0 pages */
		fprintf(stderr, "schema_cost: cannot read wchar from /proc/self/io (a kernel without "
				"task I/O accounting?)\n");
		exit(1);
	}
	return v;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static void made_up_samples(void)
{
	/* The bench's sizes (a 20k-item job's calls: request 1,773 bytes,
	 * reply 510), words varying per sample so zip is not flattered more
	 * than real prompts would flatter it. */
	static const char *words[] = { "patient", "artery", "elevation", "lead", "option",
				       "occluded", "inferior", "wall", "answer", "knowledge",
				       "mechanism", "ECG", "pain", "year-old", "supplies" };
	uint64_t s = 7;

	for (int i = 0; i < 64; i++) {
		struct body *b = &samples[i];

		b->nreq = 1773;
		b->nrep = 510;
		b->request = malloc(b->nreq + 1);
		b->reply = malloc(b->nrep + 1);
		if (!b->request || !b->reply)
			exit(1);
		for (int k = 0; k < 2; k++) {
			char *dst = k ? b->reply : b->request;
			size_t n = k ? b->nrep : b->nreq;

			for (size_t at = 0; at < n;) {
				const char *w = words[splitmix(&s) % 15];
				size_t l = strlen(w);

				for (size_t j = 0; j < l && at < n; j++)
					dst[at++] = w[j];
				if (at < n)
					dst[at++] = ' ';
			}
			dst[n] = '\0';
		}
	}
	nsamples = 64;
}

static void load_samples(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *q;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT request, reply FROM calls WHERE reply IS NOT NULL LIMIT 1000",
			       -1, &q, NULL) != SQLITE_OK) {
		fprintf(stderr, "schema_cost: SAMPLE_DB %s: %s\n", path, sqlite3_errmsg(db));
		exit(2);
	}
	while (nsamples < SAMPLES_MAX && sqlite3_step(q) == SQLITE_ROW) {
		struct body *b = &samples[nsamples++];

		/* text first, then its length (SQLite's order for a converted value) */
		const char *req = (const char *)sqlite3_column_text(q, 0);
		const char *rep = (const char *)sqlite3_column_text(q, 1);

		b->nreq = (size_t)sqlite3_column_bytes(q, 0);
		b->nrep = (size_t)sqlite3_column_bytes(q, 1);
		b->request = req ? strndup(req, b->nreq) : NULL;
		b->reply = rep ? strndup(rep, b->nrep) : NULL;
		if (!b->request || !b->reply)
			exit(1);
	}
	sqlite3_finalize(q);
	sqlite3_close(db);
	if (nsamples == 0) {
		fprintf(stderr, "schema_cost: %s has no calls with a reply\n", path);
		exit(2);
	}
}

static void schema(sqlite3 *db)
{
	exec(db, "CREATE TABLE datasets(id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
		 "CREATE TABLE jobs(id INTEGER PRIMARY KEY, dataset_id INTEGER NOT NULL REFERENCES datasets(id),"
		 " state TEXT NOT NULL);"
		 "CREATE TABLE tasks(job_id INTEGER NOT NULL REFERENCES jobs(id), step TEXT NOT NULL,"
		 " item_seq INTEGER NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
		 " reason TEXT, updated_at REAL NOT NULL, PRIMARY KEY(job_id, step, item_seq)) WITHOUT ROWID;"
		 "CREATE INDEX tasks_state ON tasks(job_id, step, state);");
	exec(db, v_zip ? "CREATE TABLE calls(id INTEGER PRIMARY KEY, hash TEXT NOT NULL, hkey INTEGER,"
			 " job_id INTEGER, endpoint TEXT NOT NULL, model TEXT NOT NULL, request BLOB NOT NULL,"
			 " reply BLOB, status INTEGER, attempts INTEGER NOT NULL, latency_ms REAL,"
			 " tokens_in INTEGER NOT NULL DEFAULT 0, tokens_out INTEGER NOT NULL DEFAULT 0,"
			 " cost_usd REAL NOT NULL DEFAULT 0, error TEXT, created_at REAL NOT NULL);"
		       : "CREATE TABLE calls(id INTEGER PRIMARY KEY, hash TEXT NOT NULL, hkey INTEGER,"
			 " job_id INTEGER, endpoint TEXT NOT NULL, model TEXT NOT NULL, request TEXT NOT NULL,"
			 " reply TEXT, status INTEGER, attempts INTEGER NOT NULL, latency_ms REAL,"
			 " tokens_in INTEGER NOT NULL DEFAULT 0, tokens_out INTEGER NOT NULL DEFAULT 0,"
			 " cost_usd REAL NOT NULL DEFAULT 0, error TEXT, created_at REAL NOT NULL);");
	exec(db, v_hkey ? "CREATE INDEX calls_hkey ON calls(hkey) WHERE error IS NULL;"
		 : v_hsub ? "CREATE INDEX calls_hsub ON calls(substr(hash, 1, 16)) WHERE error IS NULL;"
			  : "CREATE INDEX calls_hash ON calls(hash) WHERE error IS NULL;");
	exec(db, "CREATE INDEX calls_job_seq ON calls(job_id, id, cost_usd, tokens_in, tokens_out);");
	exec(db, v_artrow ? "CREATE TABLE artifacts(id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL REFERENCES jobs(id),"
			    " kind TEXT NOT NULL, item_seq INTEGER NOT NULL, call_id INTEGER REFERENCES calls(id),"
			    " content TEXT NOT NULL, created_at REAL NOT NULL);"
			    "CREATE UNIQUE INDEX artifacts_item ON artifacts(job_id, kind, item_seq);"
			  : "CREATE TABLE artifacts(job_id INTEGER NOT NULL REFERENCES jobs(id), kind TEXT NOT NULL,"
			    " item_seq INTEGER NOT NULL, call_id INTEGER REFERENCES calls(id), content TEXT NOT NULL,"
			    " created_at REAL NOT NULL, PRIMARY KEY(job_id, kind, item_seq)) WITHOUT ROWID;");
}

struct w {
	sqlite3 *db, *ck;
	sqlite3_stmt *ins_call, *ins_art, *upd_task;
	z_stream z;
	unsigned char *zbuf;
	uLongf zcap;
	uint64_t rng;
	int64_t job, next_seq, total;
	int64_t *order;       /* item seqs in the order they finish */
	int64_t *call_of;     /* call id by position in order */
	int commits;
	double ckpt_cpu;
	int64_t ckpt_pages;
};

static void bind_body(struct w *w, sqlite3_stmt *s, int col, const char *text, size_t n)
{
	if (!v_zip) {
		sqlite3_bind_text(s, col, text, (int)n, SQLITE_STATIC);
		return;
	}
	/* one stream, reset per body: what a store would do (compress2 would
	 * allocate and clear zlib's ~270 KB of state for every body) */
	w->z.next_in = (Bytef *)(uintptr_t)text;
	w->z.avail_in = (uInt)n;
	w->z.next_out = w->zbuf;
	w->z.avail_out = (uInt)w->zcap;
	if (deflateReset(&w->z) != Z_OK || deflate(&w->z, Z_FINISH) != Z_STREAM_END) {
		fprintf(stderr, "schema_cost: deflate failed\n");
		exit(1);
	}
	sqlite3_bind_blob(s, col, w->zbuf, (int)w->z.total_out, SQLITE_TRANSIENT);
}

static void insert_call(struct w *w, int64_t pos)
{
	const struct body *b = &samples[pos % nsamples];
	sqlite3_stmt *s = w->ins_call;
	char hex[65];
	uint64_t h[4];

	for (int i = 0; i < 4; i++)
		h[i] = splitmix(&w->rng);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", (unsigned)((h[i / 8] >> (8 * (i % 8))) & 0xff));
	sqlite3_bind_text(s, 1, hex, 64, SQLITE_TRANSIENT);
	if (v_hkey)
		sqlite3_bind_int64(s, 2, (int64_t)h[0]);
	else
		sqlite3_bind_null(s, 2);
	sqlite3_bind_int64(s, 3, w->job);
	bind_body(w, s, 4, b->request, b->nreq);
	bind_body(w, s, 5, b->reply, b->nrep);
	sqlite3_bind_int64(s, 6, 250 + pos % 50);
	sqlite3_bind_int64(s, 7, 60 + pos % 20);
	sqlite3_bind_double(s, 8, (250.0 * 2.5 + 60.0 * 10.0) / 1e6);
	sqlite3_bind_double(s, 9, 1.7e9 + (double)pos / 5000.0);
	if (sqlite3_step(s) != SQLITE_DONE)
		die(w->db, "INSERT INTO calls");
	sqlite3_reset(s);
	w->call_of[pos] = sqlite3_last_insert_rowid(w->db);
}

static void outcome(struct w *w, int64_t pos)
{
	char content[400];
	int64_t seq = w->order[pos];
	int n = snprintf(content, sizeof(content),
			 "{\"text\":\"Inferior ST elevation (II, III, aVF) localises the infarct to the inferior "
			 "wall, supplied by the right coronary artery in most patients; item %" PRId64 ". The LAD "
			 "supplies the anterior wall; the circumflex the lateral wall.\",\"answer\":\"C\"}", seq);

	sqlite3_bind_int64(w->ins_art, 1, w->job);
	sqlite3_bind_int64(w->ins_art, 2, seq);
	sqlite3_bind_int64(w->ins_art, 3, w->call_of[pos]);
	sqlite3_bind_text(w->ins_art, 4, content, n, SQLITE_STATIC);
	sqlite3_bind_double(w->ins_art, 5, 1.7e9 + (double)pos / 5000.0);
	if (sqlite3_step(w->ins_art) != SQLITE_DONE)
		die(w->db, "INSERT INTO artifacts");
	sqlite3_reset(w->ins_art);
	sqlite3_bind_int64(w->upd_task, 1, w->job);
	sqlite3_bind_int64(w->upd_task, 2, seq);
	sqlite3_bind_double(w->upd_task, 3, 1.7e9 + (double)pos / 5000.0);
	if (sqlite3_step(w->upd_task) != SQLITE_DONE)
		die(w->db, "UPDATE tasks");
	sqlite3_reset(w->upd_task);
}

/* One job of n items: seeds its tasks, then writes n calls in group
 * commits of per (each commit: per new call rows and the outcomes of the
 * previous commit's calls), checkpointing every CK_COMMITS commits. */
static void run_job(struct w *w, int64_t n, int64_t per, bool measure, double *cpu)
{
	char sql[200];

	exec(w->db, "BEGIN");
	exec(w->db, "INSERT INTO jobs(dataset_id, state) VALUES(1, 'running')");
	w->job = sqlite3_last_insert_rowid(w->db);
	snprintf(sql, sizeof(sql),
		 "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < %" PRId64 ") "
		 "INSERT INTO tasks(job_id, step, item_seq, state, updated_at) "
		 "SELECT %" PRId64 ", 'explain', i, 'pending', 0 FROM s", n, w->job);
	exec(w->db, sql);
	exec(w->db, "COMMIT");
	free(w->order);
	free(w->call_of);
	w->order = malloc((size_t)n * sizeof(*w->order));
	w->call_of = malloc((size_t)n * sizeof(*w->call_of));
	if (!w->order || !w->call_of)
		exit(1);
	/* finishing order: by seq, shuffled within each dispatch window */
	for (int64_t i = 0; i < n; i++)
		w->order[i] = i;
	for (int64_t base = 0; base < n; base += WINDOW) {
		int64_t m = n - base < WINDOW ? n - base : WINDOW;

		for (int64_t i = m - 1; i > 0; i--) {
			int64_t j = (int64_t)(splitmix(&w->rng) % (uint64_t)(i + 1));
			int64_t t = w->order[base + i];

			w->order[base + i] = w->order[base + j];
			w->order[base + j] = t;
		}
	}
	for (int64_t at = 0, prev = -1; at <= n; at += per) {
		double c0 = thread_cpu();

		exec(w->db, "BEGIN");
		for (int64_t i = at; i < at + per && i < n; i++)
			insert_call(w, i);
		if (prev >= 0)
			for (int64_t i = prev; i < prev + per && i < n; i++)
				outcome(w, i);
		exec(w->db, "COMMIT");
		if (measure)
			*cpu += thread_cpu() - c0;
		prev = at;
		if (++w->commits % CK_COMMITS == 0) {
			int64_t b0 = wchar();

			c0 = thread_cpu();
			if (sqlite3_wal_checkpoint_v2(w->ck, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) != SQLITE_OK)
				die(w->ck, "checkpoint");
			if (measure) {
				w->ckpt_cpu += thread_cpu() - c0;
				w->ckpt_pages += (wchar() - b0) / 4096;
			}
		}
	}
}

static sqlite3 *open_db(const char *path)
{
	sqlite3 *db = NULL;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		die(db, path);
	exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
		 "PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit=134217728;");
	return db;
}

int main(int argc, char **argv)
{
	struct w w;
	char path[4096];
	int64_t n, pre, per = PER_DEFAULT;
	double cpu = 0;
	struct stat sb;
	char *vars, *tok, *save = NULL;
	int64_t frames0;
	long cache_kib = 12000;
	char cache_sql[64];

	if (argc < 4) {
		fprintf(stderr, "usage: schema_cost N DIR base|hkey,hsub,artrow,zip [PRE [SAMPLE_DB]]\n");
		return 2;
	}
	n = strtoll(argv[1], NULL, 10);
	pre = argc > 4 ? strtoll(argv[4], NULL, 10) : 0;
	if (n <= 0 || pre < 0) {
		fprintf(stderr, "schema_cost: N must be > 0 and PRE >= 0\n");
		return 2;
	}
	vars = strdup(argv[3]);
	for (tok = strtok_r(vars, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "hkey") == 0)
			v_hkey = true;
		else if (strcmp(tok, "hsub") == 0)
			v_hsub = true;
		else if (strcmp(tok, "artrow") == 0)
			v_artrow = true;
		else if (strcmp(tok, "zip") == 0)
			v_zip = true;
		else if (strcmp(tok, "base") != 0) {
			fprintf(stderr, "schema_cost: unknown variant '%s' (base, hkey, hsub, artrow, zip)\n", tok);
			return 2;
		}
	}
	/* the writer's page cache (store/store.c: 12,000 KiB); CACHE_KIB in the
	 * environment tries another */
	if (getenv("CACHE_KIB")) {
		char *end;

		cache_kib = strtol(getenv("CACHE_KIB"), &end, 10);
		if (cache_kib <= 0 || *end) {
			fprintf(stderr, "schema_cost: CACHE_KIB must be a positive number of KiB\n");
			return 2;
		}
	}
	if (argc > 5)
		load_samples(argv[5]);
	else
		made_up_samples();
	if (mkdir(argv[2], 0700) != 0) {
		fprintf(stderr, "schema_cost: cannot create %s: %s\n", argv[2], strerror(errno));
		return 2;
	}
	memset(&w, 0, sizeof(w));
	w.rng = 42;
	w.zcap = compressBound(1 << 20);
	w.zbuf = malloc(w.zcap);
	if (!w.zbuf || deflateInit(&w.z, 1) != Z_OK) {
		fprintf(stderr, "schema_cost: no memory for zlib\n");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/medthink.db", argv[2]);
	w.db = open_db(path);
	snprintf(cache_sql, sizeof(cache_sql), "PRAGMA cache_size=-%ld", cache_kib);
	exec(w.db, cache_sql);
	schema(w.db);
	exec(w.db, "INSERT INTO datasets(name) VALUES('bench')");
	w.ck = open_db(path);
	sqlite3_wal_hook(w.db, wal_hook, NULL);
	if (sqlite3_prepare_v2(w.db, "INSERT INTO calls(hash, hkey, job_id, endpoint, model, request, reply, status,"
				     " attempts, latency_ms, tokens_in, tokens_out, cost_usd, created_at) VALUES(?1, ?2,"
				     " ?3, 'teacher.t', 'teacher', ?4, ?5, 200, 1, 101.5, ?6, ?7, ?8, ?9)",
			       -1, &w.ins_call, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(w.db, "INSERT OR REPLACE INTO artifacts(job_id, kind, item_seq, call_id, content,"
				     " created_at) VALUES(?1, 'explanation', ?2, ?3, ?4, ?5)", -1, &w.ins_art, NULL)
		    != SQLITE_OK ||
	    sqlite3_prepare_v2(w.db, "UPDATE tasks SET state = 'done', attempts = 1, reason = NULL, updated_at = ?3"
				     " WHERE job_id = ?1 AND step = 'explain' AND item_seq = ?2", -1, &w.upd_task, NULL)
		    != SQLITE_OK)
		die(w.db, "preparing");
	if (pre > 0)
		run_job(&w, pre, per, false, &cpu);
	frames0 = frames;
	run_job(&w, n, per, true, &cpu);
	{
		/* what is left in the WAL counts as this job's to copy */
		double c0 = thread_cpu();
		int64_t b0 = wchar();

		if (sqlite3_wal_checkpoint_v2(w.ck, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) != SQLITE_OK)
			die(w.ck, "checkpoint");
		w.ckpt_cpu += thread_cpu() - c0;
		w.ckpt_pages += (wchar() - b0) / 4096;
	}
	if (stat(path, &sb) != 0)
		sb.st_size = 0;
	printf("{\"variant\":\"%s\",\"n\":%" PRId64 ",\"pre\":%" PRId64 ",\"per\":%" PRId64 ",\"samples\":%d,"
	       "\"writer_us_per_call\":%.2f,\"ckpt_us_per_call\":%.2f,\"wal_frames_per_call\":%.3f,"
	       "\"ckpt_pages_per_call\":%.3f,\"db_bytes_per_call\":%.0f}\n",
	       argv[3], n, pre, per, nsamples, cpu * 1e6 / (double)n, w.ckpt_cpu * 1e6 / (double)n,
	       (double)(frames - frames0) / (double)n, (double)w.ckpt_pages / (double)n,
	       (double)sb.st_size / (double)(n + pre));
	sqlite3_finalize(w.ins_call);
	sqlite3_finalize(w.ins_art);
	sqlite3_finalize(w.upd_task);
	sqlite3_close(w.ck);
	sqlite3_close(w.db);
	free(w.order);
	free(w.call_of);
	deflateEnd(&w.z);
	free(w.zbuf);
	free(vars);
	for (int i = 0; i < nsamples; i++) {
		free(samples[i].request);
		free(samples[i].reply);
	}
	return 0;
}
