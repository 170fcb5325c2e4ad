/* Measures what a start-up integrity check of the store costs (issue 9
 * item 8, issue 17): fills a store with N items, N tasks, N artifacts and
 * N call rows of realistic size (as a 1M-item job leaves them), then times
 * store_open, the cheap structural check and the full PRAGMA quick_check.
 *
 *   build/bench/store_check N PATH     (PATH is created; reused if present)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "store/store.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fill(const char *path, int64_t n)
{
	static const char filler[] =
		"A 54-year-old man presents with epigastric pain radiating to the back, worse after "
		"fatty meals, with nausea and a history of alcohol use. Serum lipase is elevated. ";
	sqlite3 *db = NULL;
	sqlite3_stmt *it = NULL, *ta = NULL, *ar = NULL, *ca = NULL;
	char body[2048], req[2048], reply[1536], hash[65];
	int rc;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -EIO;
	sqlite3_exec(db, "PRAGMA synchronous=OFF; BEGIN;"
			 "INSERT INTO datasets(id,name,format,state,items,created_at) "
			 "VALUES(1,'big','native','ready',0,0);"
			 "INSERT INTO jobs(id,name,kind,dataset_id,state,spec,prompts,created_at,updated_at) "
			 "VALUES(1,'big','stage1',1,'done','{}','{}',0,0);",
		     NULL, NULL, NULL);
	sqlite3_prepare_v2(db, "INSERT INTO items VALUES(1,?1,?2,'gi',?3)", -1, &it, NULL);
	sqlite3_prepare_v2(db, "INSERT INTO tasks VALUES(1,'explain',?1,'done',1,NULL,0)", -1, &ta, NULL);
	sqlite3_prepare_v2(db, "INSERT INTO artifacts VALUES(1,'explanation',?1,?1,?2,0)", -1, &ar, NULL);
	sqlite3_prepare_v2(db, "INSERT INTO calls(id,hash,job_id,endpoint,model,request,reply,status,"
			       "attempts,latency_ms,tokens_in,tokens_out,cost_usd,created_at) "
			       "VALUES(?1,?2,1,'teacher.sim','sim-teacher',?3,?4,200,1,120,300,200,0.003,0)",
			   -1, &ca, NULL);
	for (int64_t i = 1; i <= n; i++) {
		char id[32];

		snprintf(id, sizeof(id), "it-%" PRId64, i);
		snprintf(hash, sizeof(hash), "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64,
			 (uint64_t)i * (uint64_t)0x9e3779b97f4a7c15u, (uint64_t)i, (uint64_t)i << 7, (uint64_t)~i);
		snprintf(body, sizeof(body),
			 "{\"id\":\"%s\",\"question\":\"%s%" PRId64 "\",\"options\":{\"A\":\"a\",\"B\":\"b\"},"
			 "\"answer\":\"A\"}", id, filler, i);
		snprintf(req, sizeof(req),
			 "{\"model\":\"sim-teacher\",\"messages\":[{\"role\":\"system\",\"content\":\"You are "
			 "a medical teacher.\"},{\"role\":\"user\",\"content\":\"%s%s %" PRId64 "\"}]}",
			 filler, filler, i);
		snprintf(reply, sizeof(reply),
			 "{\"id\":\"c%" PRId64 "\",\"choices\":[{\"message\":{\"role\":\"assistant\","
			 "\"content\":\"%s\"}}],\"usage\":{\"prompt_tokens\":300,\"completion_tokens\":200}}",
			 i, filler);
		sqlite3_bind_int64(it, 1, i);
		sqlite3_bind_text(it, 2, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(it, 3, body, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ta, 1, i);
		sqlite3_bind_int64(ar, 1, i);
		sqlite3_bind_text(ar, 2, reply, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ca, 1, i);
		sqlite3_bind_text(ca, 2, hash, -1, SQLITE_STATIC);
		sqlite3_bind_text(ca, 3, req, -1, SQLITE_STATIC);
		sqlite3_bind_text(ca, 4, reply, -1, SQLITE_STATIC);
		if (sqlite3_step(it) != SQLITE_DONE || sqlite3_step(ta) != SQLITE_DONE ||
		    sqlite3_step(ar) != SQLITE_DONE || sqlite3_step(ca) != SQLITE_DONE) {
			fprintf(stderr, "insert %" PRId64 ": %s\n", i, sqlite3_errmsg(db));
			return -EIO;
		}
		sqlite3_reset(it);
		sqlite3_reset(ta);
		sqlite3_reset(ar);
		sqlite3_reset(ca);
		if (i % 100000 == 0) {
			sqlite3_exec(db, "COMMIT; BEGIN;", NULL, NULL, NULL);
			fprintf(stderr, "\r%" PRId64 " rows", i);
		}
	}
	rc = sqlite3_exec(db, "UPDATE datasets SET items = (SELECT count(*) FROM items); COMMIT;"
			      "PRAGMA wal_checkpoint(TRUNCATE);",
			  NULL, NULL, NULL);
	fprintf(stderr, "\n");
	sqlite3_finalize(it);
	sqlite3_finalize(ta);
	sqlite3_finalize(ar);
	sqlite3_finalize(ca);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -EIO;
}

static double time_quick_check(const char *path)
{
	sqlite3 *db = NULL;
	double t0 = now();

	sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	sqlite3_exec(db, "PRAGMA quick_check", NULL, NULL, NULL);
	sqlite3_close(db);
	return now() - t0;
}

int main(int argc, char **argv)
{
	struct store *st = NULL;
	struct stat sb;
	char err[512];
	double t0;
	int64_t n;

	if (argc != 3) {
		fprintf(stderr, "usage: store_check N PATH\n");
		return 2;
	}
	n = strtoll(argv[1], NULL, 10);
	if (stat(argv[2], &sb) != 0) {
		if (store_open(argv[2], &st, err, sizeof(err)) != 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		store_close(st);
		t0 = now();
		if (fill(argv[2], n) != 0)
			return 1;
		printf("fill: %" PRId64 " rows each in %.1f s\n", n, now() - t0);
		stat(argv[2], &sb);
	}
	printf("file: %.1f MiB\n", (double)sb.st_size / 1048576.0);
	t0 = now();
	if (store_open(argv[2], &st, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	printf("store_open (with its start-up checks): %.3f s\n", now() - t0);
	store_close(st);
	printf("PRAGMA quick_check (warm cache): %.3f s\n", time_quick_check(argv[2]));
	printf("PRAGMA quick_check (again): %.3f s\n", time_quick_check(argv[2]));
	return 0;
}
