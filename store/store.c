#include "store/store.h"
#include "store/store_int.h"
#include "store/walbuf.h"
#include "store/check.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/jsondump.h"
#include "common/jsonload.h"
#include "common/log.h"

/* Migration 1 is store/schema.sql.txt verbatim (tests/unit/test_store.c
 * checks that the two agree). */
static const char schema_v1[] =
	"-- Schema version 1 (store.c embeds this as migration 1; PRAGMA user_version = 1).\n"
	"CREATE TABLE datasets(\n"
	"  id         INTEGER PRIMARY KEY,\n"
	"  name       TEXT NOT NULL,\n"
	"  format     TEXT NOT NULL,\n"
	"  state      TEXT NOT NULL,            -- importing | ready\n"
	"  items      INTEGER NOT NULL DEFAULT 0,\n"
	"  rejected   TEXT,                     -- JSON array [{\"line\":N,\"reason\":\"...\"}]\n"
	"  created_at REAL NOT NULL\n"
	");\n"
	"CREATE INDEX datasets_name ON datasets(name, state);\n"
	"CREATE TABLE items(\n"
	"  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,\n"
	"  seq        INTEGER NOT NULL,         -- 0-based position in the imported file\n"
	"  ext_id     TEXT NOT NULL,            -- the item's \"id\"\n"
	"  topic      TEXT,\n"
	"  body       TEXT NOT NULL,            -- normalized item JSON (store/import.h)\n"
	"  PRIMARY KEY(dataset_id, seq)\n"
	") WITHOUT ROWID;\n"
	"CREATE UNIQUE INDEX items_ext ON items(dataset_id, ext_id);\n"
	"CREATE TABLE jobs(\n"
	"  id         INTEGER PRIMARY KEY,\n"
	"  name       TEXT NOT NULL,\n"
	"  kind       TEXT NOT NULL,            -- pipeline | stage1 | stage2 | eval\n"
	"  dataset_id INTEGER NOT NULL REFERENCES datasets(id),\n"
	"  state      TEXT NOT NULL,            -- queued running paused done failed cancelled\n"
	"  reason     TEXT,\n"
	"  spec       TEXT NOT NULL,            -- normalized job spec JSON\n"
	"  prompts    TEXT NOT NULL,            -- prompt templates snapshot JSON\n"
	"  runtime    TEXT NOT NULL DEFAULT '{}', -- runner progress JSON (phase, eval report, ...)\n"
	"  created_at REAL NOT NULL,\n"
	"  updated_at REAL NOT NULL\n"
	");\n"
	"CREATE TABLE job_events(\n"
	"  id     INTEGER PRIMARY KEY,\n"
	"  job_id INTEGER NOT NULL REFERENCES jobs(id),\n"
	"  at     REAL NOT NULL,\n"
	"  type   TEXT NOT NULL,\n"
	"  data   TEXT NOT NULL\n"
	");\n"
	"CREATE INDEX job_events_job ON job_events(job_id, id);\n"
	"-- One row per (job, step, item): the item's state in that step.\n"
	"CREATE TABLE tasks(\n"
	"  job_id     INTEGER NOT NULL REFERENCES jobs(id),\n"
	"  step       TEXT NOT NULL,            -- screen explain answer judge correct eval\n"
	"  item_seq   INTEGER NOT NULL,\n"
	"  state      TEXT NOT NULL,            -- pending done failed dropped (in_flight lives in memory)\n"
	"  attempts   INTEGER NOT NULL DEFAULT 0,\n"
	"  reason     TEXT,\n"
	"  updated_at REAL NOT NULL,\n"
	"  PRIMARY KEY(job_id, step, item_seq)\n"
	") WITHOUT ROWID;\n"
	"CREATE INDEX tasks_state ON tasks(job_id, step, state);\n"
	"-- Every model call with its outcome. A call with error IS NULL is a cache\n"
	"-- entry: the same request hash is answered from here and never sent again.\n"
	"CREATE TABLE calls(\n"
	"  id         INTEGER PRIMARY KEY,\n"
	"  hash       TEXT NOT NULL,            -- sha256 hex of the canonical request\n"
	"  job_id     INTEGER,\n"
	"  endpoint   TEXT NOT NULL,            -- config section name, e.g. teacher.gpt4o\n"
	"  model      TEXT NOT NULL,\n"
	"  request    TEXT NOT NULL,            -- request body JSON (never any key)\n"
	"  reply      TEXT,                     -- reply body as received (capped)\n"
	"  status     INTEGER,                  -- HTTP status of the last attempt (0: none)\n"
	"  attempts   INTEGER NOT NULL,\n"
	"  latency_ms REAL,\n"
	"  tokens_in  INTEGER NOT NULL DEFAULT 0,\n"
	"  tokens_out INTEGER NOT NULL DEFAULT 0,\n"
	"  cost_usd   REAL NOT NULL DEFAULT 0,\n"
	"  error      TEXT,                     -- NULL on success\n"
	"  created_at REAL NOT NULL\n"
	");\n"
	"CREATE INDEX calls_hash ON calls(hash) WHERE error IS NULL;\n"
	"CREATE INDEX calls_job ON calls(job_id);\n"
	"-- Stage outputs: screening verdicts, explanations, student answers, grades,\n"
	"-- critiques and reasoning chains, eval answers. One per (job, kind, item).\n"
	"CREATE TABLE artifacts(\n"
	"  job_id     INTEGER NOT NULL REFERENCES jobs(id),\n"
	"  kind       TEXT NOT NULL,            -- verdict explanation answer grade chain eval\n"
	"  item_seq   INTEGER NOT NULL,\n"
	"  call_id    INTEGER REFERENCES calls(id),\n"
	"  content    TEXT NOT NULL,            -- JSON\n"
	"  created_at REAL NOT NULL,\n"
	"  PRIMARY KEY(job_id, kind, item_seq)\n"
	") WITHOUT ROWID;\n";
/* Migrations in order; append { 2, "ALTER TABLE ..." } here, never edit an
 * applied one. Each runs in its own transaction with its user_version bump. */
/* Version 2: a job's totals (cost, tokens) from an index alone, so a
 * restarted daemon sums a million calls without reading their bodies. */
static const char schema_v2[] =
	"CREATE INDEX calls_job_cost ON calls(job_id, cost_usd, tokens_in, tokens_out);\n"
	"DROP INDEX calls_job;\n";

/* Version 3: the same totals from an index in call order: each new call's
 * entry goes at the end of its job's range (one leaf page per group commit)
 * instead of at its cost's place (one page per call). */
static const char schema_v3[] =
	"CREATE INDEX calls_job_seq ON calls(job_id, id, cost_usd, tokens_in, tokens_out);\n"
	"DROP INDEX calls_job_cost;\n";

static const struct migration {
	int version;
	const char *sql;
} migrations[] = {
	{ 1, schema_v1 },
	{ 2, schema_v2 },
	{ 3, schema_v3 },
};
#define NMIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == STORE_SCHEMA_VERSION,
               "one migration per schema version");

#define STMT_CACHE_MAX 1024          /* distinct SQL texts; all are literals */
#define ITEM_BODY_MAX (16u << 20)    /* one item's JSON */
#define EVENTS_LIMIT_MAX 10000
#define JTEXT_KEEP (1u << 20)        /* ... and the most it grows to */

struct stmt_slot {
	const char *sql;
	sqlite3_stmt *stmt;
};

struct batch_entry {
	store_apply_fn apply;
	store_done_fn done;
	void *ud;
	int status;
};

struct batch_queue {
	struct batch_entry *v;
	size_t n, cap;
};

struct store_writer;

struct store {
	sqlite3 *db;
	struct stmt_slot *slots; /* open addressing, cap a power of two */
	size_t nslots, capslots;
	int depth;               /* store_begin nesting */
	bool closing;
	struct batch_queue queue;
	struct batch_queue spare; /* the other half of the double buffer */
	char *body;              /* json_dumpb scratch for store_items_insert */
	size_t bodycap;
	char *jtext;             /* store_json_text scratch, at most JTEXT_KEEP */
	size_t jtextcap;
	char *path;              /* as opened, for messages */
	char last_err[200];      /* SQLite's message of the last failed write */
	struct store_writer *w;  /* the writer thread, or NULL (flushes commit here) */
	bool group_only;         /* the writer's connection: always synchronous=NORMAL */
	struct store_calls_filter *calls_filter; /* store/calls.c */
};

static double (*clock_fn)(void);

void store_clock_set(double (*now)(void)) { clock_fn = now; }

double store_now(void)
{
	struct timespec ts;

	if (clock_fn)
		return clock_fn();
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void store_iso_time(double t, char *out, size_t outlen)
{
	long long ms = llround(t * 1000.0);
	long long sec = ms / 1000;
	long long frac = ms % 1000;
	time_t tt;
	struct tm tm;

	if (frac < 0) {
		frac += 1000;
		sec -= 1;
	}
	tt = (time_t)sec;
	if (!gmtime_r(&tt, &tm)) {
		snprintf(out, outlen, "1970-01-01T00:00:00.000Z");
		return;
	}
	snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

/* ---- Errors, statements -------------------------------------------------- */

sqlite3 *store_db(struct store *st) { return st->db; }

struct store_calls_filter *store_calls_filter(struct store *st) { return st->calls_filter; }

int store_err(struct store *st, int sqlite_rc, const char *what)
{
	const char *msg = st && st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(sqlite_rc);

	switch (sqlite_rc) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		log_debug("store: %s: %s", what, msg);
		return -EEXIST;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		/* A row refers to one that does not exist. */
		log_debug("store: %s: %s", what, msg);
		return -ENOENT;
	case SQLITE_NOMEM:
		log_error("store: %s: out of memory", what);
		return -ENOMEM;
	}
	switch (sqlite_rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		log_debug("store: %s: %s", what, msg);
		return -EBUSY;
	case SQLITE_NOMEM:
		log_error("store: %s: out of memory", what);
		return -ENOMEM;
	}
	log_error("store: %s: %s (sqlite code %d)", what, msg, sqlite_rc);
	if (st)
		snprintf(st->last_err, sizeof(st->last_err), "%s", msg);
	/* A full disk is not damage: callers hold their writes and retry. */
	return (sqlite_rc & 0xff) == SQLITE_FULL ? -ENOSPC : -EIO;
}

const char *store_path(const struct store *st) { return st && st->path ? st->path : ""; }

const char *store_last_error(const struct store *st)
{
	return st && st->last_err[0] ? st->last_err : "unknown error";
}

static size_t slot_hash(const char *sql, size_t cap)
{
	uint64_t h = (uint64_t)(uintptr_t)sql;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return (size_t)h & (cap - 1);
}

static int slots_grow(struct store *st)
{
	size_t cap = st->capslots ? st->capslots * 2 : 64;
	struct stmt_slot *v = calloc(cap, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < st->capslots; i++) {
		size_t j;

		if (!st->slots[i].sql)
			continue;
		j = slot_hash(st->slots[i].sql, cap);
		while (v[j].sql)
			j = (j + 1) & (cap - 1);
		v[j] = st->slots[i];
	}
	free(st->slots);
	st->slots = v;
	st->capslots = cap;
	return 0;
}

sqlite3_stmt *store_stmt(struct store *st, const char *sql)
{
	sqlite3_stmt *s = NULL;
	size_t j;
	int rc;

	if (st->capslots) {
		j = slot_hash(sql, st->capslots);
		while (st->slots[j].sql) {
			if (st->slots[j].sql == sql) {
				s = st->slots[j].stmt;
				sqlite3_reset(s);
				sqlite3_clear_bindings(s);
				return s;
			}
			j = (j + 1) & (st->capslots - 1);
		}
	}
	if (st->nslots >= STMT_CACHE_MAX) {
		log_error("store: statement cache full (%d statements)", STMT_CACHE_MAX);
		return NULL;
	}
	if ((st->nslots + 1) * 2 > st->capslots && slots_grow(st) < 0) {
		log_error("store: out of memory for the statement cache");
		return NULL;
	}
	rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
	if (rc != SQLITE_OK) {
		log_error("store: preparing \"%.80s\": %s", sql, sqlite3_errmsg(st->db));
		sqlite3_finalize(s);
		return NULL;
	}
	j = slot_hash(sql, st->capslots);
	while (st->slots[j].sql)
		j = (j + 1) & (st->capslots - 1);
	st->slots[j].sql = sql;
	st->slots[j].stmt = s;
	st->nslots++;
	return s;
}

/* ---- Shared helpers (contracts in store/store_int.h) ------------------- */

int store_bind(struct store *st, sqlite3_stmt *s, const char *types, ...)
{
	va_list ap;
	int rc = SQLITE_OK;
	int i = 1;

	va_start(ap, types);
	for (const char *p = types; *p && rc == SQLITE_OK; p++, i++) {
		switch (*p) {
		case 'i':
			rc = sqlite3_bind_int64(s, i, va_arg(ap, int64_t));
			break;
		case 'I': {
			int64_t v = va_arg(ap, int64_t);
			rc = v > 0 ? sqlite3_bind_int64(s, i, v) : sqlite3_bind_null(s, i);
			break;
		}
		case 't': {
			const char *t = va_arg(ap, const char *);
			rc = t ? sqlite3_bind_text(s, i, t, -1, SQLITE_STATIC) : sqlite3_bind_null(s, i);
			break;
		}
		case 'd':
			rc = sqlite3_bind_double(s, i, va_arg(ap, double));
			break;
		default:
			rc = sqlite3_bind_null(s, i);
			break;
		}
	}
	va_end(ap);
	if (rc != SQLITE_OK)
		return store_err(st, rc, "binding a parameter");
	return 0;
}

int store_step_done(struct store *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);
	int err = 0;

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		err = store_err(st, rc, what);
	sqlite3_reset(s);
	return err;
}

int store_step_row(struct store *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		return 0;
	}
	rc = store_err(st, rc, what);
	sqlite3_reset(s);
	return rc;
}

const char *store_col_text(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	return t ? (const char *)t : NULL;
}

json_t *store_col_json(sqlite3_stmt *s, int i, const char *what)
{
	const char *t = store_col_text(s, i);
	json_error_t e;
	json_t *j;

	if (!t)
		return NULL;
	/* jansson's value, read in one pass (an item per dispatched call) */
	j = jsonload_buf(t, (size_t)sqlite3_column_bytes(s, i), JSON_DECODE_ANY, &e);
	if (!j)
		log_error("store: damaged JSON in %s: %s at byte %d", what, e.text, e.position);
	return j;
}

char *store_json_dump(json_t *j)
{
	return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
}

const char *store_json_text(struct store *st, json_t *j, size_t *len, char **owned)
{
	size_t n = 0;
	int rc;

	*owned = NULL;
	/* jansson's json_dumpb text, written in one pass into the scratch */
	rc = jsondump_compact_into(j, &st->jtext, &st->jtextcap, &n);
	if (st->jtextcap > JTEXT_KEEP) {
		/* grown past what the scratch keeps: this text is the caller's */
		*owned = rc == 0 ? st->jtext : NULL;
		if (rc)
			free(st->jtext);
		st->jtext = NULL;
		st->jtextcap = 0;
	}
	if (rc)
		return NULL;
	*len = n;
	return *owned ? *owned : st->jtext;
}

/* ---- Transactions -------------------------------------------------------- */

static const char sql_begin[] = "BEGIN IMMEDIATE";
static const char sql_commit[] = "COMMIT";
static const char sql_rollback[] = "ROLLBACK";
static const char sql_savepoint[] = "SAVEPOINT store_sp";
static const char sql_release[] = "RELEASE store_sp";
static const char sql_rollback_to[] = "ROLLBACK TO store_sp";

static int exec_stmt(struct store *st, const char *sql, const char *what)
{
	sqlite3_stmt *s = store_stmt(st, sql);

	if (!s)
		return -EIO;
	return store_step_done(st, s, what);
}

int store_begin(struct store *st)
{
	int rc;

	if (st->depth == 0 && !sqlite3_get_autocommit(st->db)) {
		log_error("store: a transaction is open outside store_begin");
		return -EINVAL;
	}
	rc = exec_stmt(st, st->depth == 0 ? sql_begin : sql_savepoint,
	               st->depth == 0 ? "BEGIN" : "SAVEPOINT");
	if (rc < 0)
		return rc;
	st->depth++;
	return 0;
}

int store_commit(struct store *st)
{
	int rc;

	if (st->depth <= 0) {
		log_error("store: commit without a transaction");
		return -EINVAL;
	}
	if (sqlite3_get_autocommit(st->db)) {
		/* SQLite rolled the whole transaction back itself (I/O error,
		 * out of memory): nothing of it survives. */
		log_error("store: commit of a transaction SQLite already rolled back");
		st->depth--;
		return -EIO;
	}
	if (st->depth > 1) {
		rc = exec_stmt(st, sql_release, "RELEASE");
		st->depth--;
		return rc;
	}
	rc = exec_stmt(st, sql_commit, "COMMIT");
	if (rc < 0 && !sqlite3_get_autocommit(st->db)) {
		/* Do not leave a half-open write transaction behind. */
		exec_stmt(st, sql_rollback, "ROLLBACK");
	}
	st->depth = 0;
	return rc;
}

int store_rollback(struct store *st)
{
	int rc;

	if (st->depth <= 0) {
		log_error("store: rollback without a transaction");
		return -EINVAL;
	}
	if (sqlite3_get_autocommit(st->db)) {
		st->depth--; /* already rolled back by SQLite */
		return 0;
	}
	if (st->depth > 1) {
		rc = exec_stmt(st, sql_rollback_to, "ROLLBACK TO");
		if (rc == 0)
			rc = exec_stmt(st, sql_release, "RELEASE");
		st->depth--;
		return rc;
	}
	rc = exec_stmt(st, sql_rollback, "ROLLBACK");
	st->depth = 0;
	return rc;
}

int store_tx_end(struct store *st, int rc)
{
	if (rc < 0) {
		store_rollback(st);
		return rc;
	}
	return store_commit(st);
}

/* ---- Open, migrate, close ------------------------------------------------ */

static int pragma_int(struct store *st, const char *sql, int *out)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int(s, 0);
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK)
		rc = store_err(st, rc, sql);
	sqlite3_finalize(s);
	return rc;
}

static int exec_sql(struct store *st, const char *sql, const char *what)
{
	char *msg = NULL;
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
			log_debug("store: %s: %s", what, msg ? msg : sqlite3_errstr(rc));
			sqlite3_free(msg);
			return -EBUSY;
		}
		log_error("store: %s: %s", what, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return (rc & 0xff) == SQLITE_NOMEM ? -ENOMEM : -EIO;
	}
	return 0;
}

static int set_pragmas(struct store *st, const char *path)
{
	sqlite3_stmt *s = NULL;
	int rc;

	/* journal_mode answers with the mode in force: an in-memory
	 * database stays "memory", anything else must become WAL. */
	rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode=WAL", -1, &s, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *mode = store_col_text(s, 0);
		if (!mode || (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0)) {
			log_error("store %s: cannot switch to WAL (journal mode %s)", path,
			          mode ? mode : "?");
			sqlite3_finalize(s);
			return -EIO;
		}
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK) {
		rc = store_err(st, rc, "PRAGMA journal_mode");
		sqlite3_finalize(s);
		return rc;
	}
	sqlite3_finalize(s);
	return exec_sql(st,
	                "PRAGMA synchronous=FULL;"
	                "PRAGMA foreign_keys=ON;"
	                "PRAGMA cache_size=-16000;"
	                /* the WAL file shrinks back to this when it restarts */
	                "PRAGMA journal_size_limit=134217728;",
	                "setting PRAGMAs");
}

static int migrate(struct store *st, const char *path, char *err, size_t errlen)
{
	int version = 0;
	int rc;

	rc = pragma_int(st, "PRAGMA user_version", &version);
	if (rc < 0) {
		snprintf(err, errlen, "store %s: cannot read the schema version", path);
		return rc;
	}
	for (size_t i = 0; i < NMIGRATIONS; i++) {
		char bump[64];

		if (version > STORE_SCHEMA_VERSION)
			break;
		if (migrations[i].version <= version)
			continue;
		rc = store_begin(st);
		if (rc == 0) /* another process may have migrated meanwhile */
			rc = pragma_int(st, "PRAGMA user_version", &version);
		if (rc == 0 && migrations[i].version > version) {
			rc = exec_sql(st, migrations[i].sql, "migrating the schema");
			snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", migrations[i].version);
			if (rc == 0)
				rc = exec_sql(st, bump, "setting user_version");
			if (rc == 0)
				version = migrations[i].version;
		}
		if (st->depth)
			rc = store_tx_end(st, rc);
		if (rc < 0) {
			snprintf(err, errlen, "store %s: migration to schema version %d failed%s", path,
			         migrations[i].version, rc == -EBUSY ? " (database locked)" : "");
			return rc;
		}
		log_info("store %s: schema at version %d", path, version);
	}
	if (version > STORE_SCHEMA_VERSION) {
		snprintf(err, errlen,
		         "store %s has schema version %d, this medthinkd knows up to %d; upgrade medthinkd",
		         path, version, STORE_SCHEMA_VERSION);
		return -EPROTO;
	}
	return 0;
}

/* The cheap half of the start-up check (store/check.h has the full one):
 * the schema can be read and every table and index starts on a page the
 * file has. Reads sqlite_schema and the page count, nothing more. */
static int schema_check(struct store *st, const char *path, char *err, size_t errlen)
{
	static const char sql[] =
		"SELECT (SELECT max(rootpage) FROM sqlite_schema), (SELECT page_count FROM "
		"pragma_page_count())";
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		int64_t root = sqlite3_column_int64(s, 0), pages = sqlite3_column_int64(s, 1);

		rc = 0;
		if (root > pages) {
			snprintf(err, errlen,
				 "store %s is damaged: the schema names page %lld, the file has %lld "
				 "pages; see docs/operations.md, \"A damaged database\"",
				 path, (long long)root, (long long)pages);
			rc = -EIO;
		}
	} else {
		snprintf(err, errlen,
			 "store %s is damaged: its schema cannot be read: %s; see docs/operations.md, "
			 "\"A damaged database\"",
			 path, sqlite3_errmsg(st->db));
		rc = -EIO;
	}
	sqlite3_finalize(s);
	return rc;
}

int store_open(const char *path, struct store **out, char *err, size_t errlen)
{
	char scratch[512];
	struct store *st = NULL;
	bool own_err = !err; /* with no err from the caller, log the message */
	int rc;

	if (!err) {
		err = scratch;
		errlen = sizeof(scratch);
	}
	if (errlen)
		err[0] = '\0';
	*out = NULL;
	if (!path || !*path) {
		snprintf(err, errlen, "store: no database path");
		return -EINVAL;
	}
	/* Only a missing file is a new store: an empty or foreign file is
	 * damage, and SQLite would otherwise take an empty one as new. */
	rc = store_file_check(path, err, errlen);
	if (rc < 0) {
		rc = -EIO;
		goto out;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		snprintf(err, errlen, "store %s: out of memory", path);
		rc = -ENOMEM;
		goto out;
	}
	st->path = strdup(path);
	if (!st->path) {
		snprintf(err, errlen, "store %s: out of memory", path);
		rc = -ENOMEM;
		goto out;
	}
	rc = sqlite3_open_v2(path, &st->db,
	                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                     store_walbuf_vfs());
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "store %s: cannot open: %s", path,
		         st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		rc = rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
		goto out;
	}
	sqlite3_extended_result_codes(st->db, 1);
	rc = set_pragmas(st, path);
	if (rc < 0) {
		snprintf(err, errlen, "store %s: cannot set up the database: %s", path,
		         rc == -EBUSY ? "locked by another process" : sqlite3_errmsg(st->db));
		goto out;
	}
	rc = migrate(st, path, err, errlen);
	if (rc < 0)
		goto out;
	rc = schema_check(st, path, err, errlen);
	if (rc < 0)
		goto out;
	st->calls_filter = store_calls_filter_open(st->db, path);
	*out = st;
	st = NULL;
	rc = 0;
out:
	if (own_err && rc < 0 && err[0])
		log_error("%s", err);
	store_close(st);
	return rc;
}

static void batch_cancel_all(struct store *st);

void store_close(struct store *st)
{
	int rc;

	if (!st)
		return;
	st->closing = true;
	if (st->depth > 0) {
		log_warn("store: closing with an open transaction; rolling it back");
		while (st->depth > 0)
			store_rollback(st);
	}
	store_writer_stop(st);
	batch_cancel_all(st);
	for (size_t i = 0; i < st->capslots; i++)
		sqlite3_finalize(st->slots[i].stmt);
	free(st->slots);
	store_calls_filter_close(st->calls_filter); /* joins its reader first */
	if (st->db) {
		rc = sqlite3_close(st->db);
		if (rc != SQLITE_OK)
			log_error("store: close: %s", sqlite3_errstr(rc));
	}
	free(st->queue.v);
	free(st->spare.v);
	free(st->body);
	free(st->jtext);
	free(st->path);
	free(st);
}

/* ---- Group commit -------------------------------------------------------- */

static int queue_push(struct batch_queue *q, const struct batch_entry *e)
{
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 64;
		struct batch_entry *v;

		if (cap > STORE_BATCH_MAX)
			cap = STORE_BATCH_MAX;
		if (q->n >= cap)
			return -ENOBUFS;
		v = realloc(q->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		q->v = v;
		q->cap = cap;
	}
	q->v[q->n++] = *e;
	return 0;
}

int store_batch_add(struct store *st, store_apply_fn apply, store_done_fn done, void *ud)
{
	struct batch_entry e = { apply, done, ud, 0 };
	int rc;

	if (!apply)
		return -EINVAL;
	if (st->closing)
		return -ECANCELED;
	rc = queue_push(&st->queue, &e);
	if (rc == -ENOBUFS)
		log_warn("store: group commit queue full (%d writes)", STORE_BATCH_MAX);
	return rc;
}

size_t store_batch_pending(const struct store *st) { return st->queue.n; }

/* Takes the queued entries out so that done callbacks queue into an empty
 * queue (their writes belong to the next flush). */
static struct batch_queue queue_take(struct store *st)
{
	struct batch_queue run = st->queue;

	st->queue = st->spare;
	st->queue.n = 0;
	st->spare = (struct batch_queue){ NULL, 0, 0 };
	return run;
}

static void queue_return(struct store *st, struct batch_queue *run)
{
	run->n = 0;
	if (!st->spare.v)
		st->spare = *run;
	else
		free(run->v);
	*run = (struct batch_queue){ NULL, 0, 0 };
}

static void batch_cancel_all(struct store *st)
{
	/* done callbacks must still see every accepted write to its end. */
	while (st->queue.n) {
		struct batch_queue run = queue_take(st);

		for (size_t i = 0; i < run.n; i++)
			if (run.v[i].done)
				run.v[i].done(run.v[i].ud, -ECANCELED);
		queue_return(st, &run);
	}
}

/* Runs one queued write; each in a savepoint of its own when isolated,
 * else straight in the batch's transaction. Its status (a positive value
 * is a bug: -EIO). */
static int batch_apply_one(struct store *st, struct batch_entry *e, bool isolated)
{
	int depth = st->depth;
	int rc;

	if (isolated) {
		rc = store_begin(st);
		if (rc < 0)
			return rc;
	}
	rc = e->apply(st, e->ud);
	if (rc > 0)
		rc = -EIO;
	if (st->depth != depth + isolated) {
		log_error("store: a batched write left %d transaction levels open",
		          st->depth - depth - isolated);
		while (st->depth > depth + isolated)
			store_rollback(st);
		if (rc == 0)
			rc = -EIO;
	}
	if (isolated && st->depth == depth + 1) {
		if (rc < 0)
			store_rollback(st);
		else
			rc = store_commit(st);
	}
	return rc;
}

/* Applies n entries of v on st's connection and commits them in one
 * transaction, setting each entry's status (before the COMMIT's outcome:
 * batch_finish folds that in). Returns 0 or the COMMIT's negative errno;
 * *kept is set when the transaction could not even begin (-EBUSY): then
 * nothing was applied and no status is set. Runs on whichever thread owns
 * st: the loop (store_batch_flush) or the writer. */
static int batch_commit(struct store *st, struct batch_entry *v, size_t n, bool *kept)
{
	bool isolated = false;
	int rc;

	*kept = false;
	/* Group commits are not acknowledged to any client: they run with
	 * synchronous=NORMAL (WAL: the commit reaches the OS, which keeps it
	 * across a kill -9 of the daemon; the WAL is synced by the next FULL
	 * commit or checkpoint). Everything acknowledged to a client (datasets,
	 * jobs, state changes) keeps synchronous=FULL. The writer's connection
	 * does group commits only and stays at NORMAL. */
	if (!st->group_only)
		exec_sql(st, "PRAGMA synchronous=NORMAL", "batch sync mode");
	rc = store_begin(st);
	if (rc < 0) {
		if (!st->group_only)
			exec_sql(st, "PRAGMA synchronous=FULL", "sync mode");
		*kept = true;
		return rc;
	}
	/* First every write straight in the transaction (two statements fewer
	 * per write than a savepoint each). Should one fail, the transaction
	 * is rolled back and the whole batch runs again with each write in a
	 * savepoint of its own, so a failing write loses only its own rows, as
	 * before. */
	for (size_t i = 0; i < n; i++) {
		v[i].status = batch_apply_one(st, &v[i], false);
		if (v[i].status < 0) {
			isolated = true;
			break;
		}
	}
	if (isolated) {
		store_rollback(st);
		rc = store_begin(st);
		for (size_t i = 0; i < n; i++)
			v[i].status = rc < 0 ? rc : batch_apply_one(st, &v[i], true);
	}
	rc = st->depth ? store_commit(st) : rc;
	if (!st->group_only)
		exec_sql(st, "PRAGMA synchronous=FULL", "sync mode");
	return rc;
}

/* The status a write gets when the COMMIT of its transaction fails. */
static int commit_status(int rc) { return rc == -ENOSPC ? rc : -EIO; }

/* Folds the COMMIT's outcome rc into the statuses of run's entries (unless
 * they already hold it: fold false), runs their done callbacks in order
 * (loop thread), and gives the array back. Returns the number committed or
 * rc. */
static int batch_finish(struct store *st, struct batch_queue *run, int rc, bool fold)
{
	int committed = 0;

	for (size_t i = 0; i < run->n; i++) {
		if (rc < 0 && fold)
			run->v[i].status = commit_status(rc);
		else if (run->v[i].status == 0)
			committed++;
	}
	for (size_t i = 0; i < run->n; i++)
		if (run->v[i].done)
			run->v[i].done(run->v[i].ud, run->v[i].status);
	queue_return(st, run);
	return rc < 0 ? rc : committed;
}

static int writer_reap(struct store *st, bool wait);

/* Puts run's writes (none applied) back in front of what was queued since,
 * in order. Returns rc, or fails them all as a COMMIT would when the two
 * cannot be merged (no memory). */
static int queue_requeue(struct store *st, struct batch_queue *run, int rc)
{
	size_t n = st->queue.n;

	if (n > run->cap - run->n) {
		struct batch_entry *v = realloc(run->v, (run->n + n) * sizeof(*v));

		if (!v)
			return batch_finish(st, run, -EIO, true);
		run->v = v;
		run->cap = run->n + n;
	}
	if (n)
		memcpy(run->v + run->n, st->queue.v, n * sizeof(*run->v));
	run->n += n;
	st->queue.n = 0;
	free(st->spare.v);
	st->spare = st->queue;
	st->queue = *run;
	*run = (struct batch_queue){ NULL, 0, 0 };
	return rc;
}

int store_batch_flush(struct store *st)
{
	struct batch_queue run;
	bool kept;
	int rc;

	if (st->queue.n == 0 && !store_batch_busy(st))
		return 0;
	if (st->depth != 0) {
		/* (and the writer would wait for this transaction) */
		log_error("store: batch flush inside an open transaction");
		return -EINVAL;
	}
	/* With a writer: what it has is finished first, so done callbacks
	 * keep the order of the writes. */
	if (st->w)
		writer_reap(st, true);
	if (st->queue.n == 0)
		return 0;
	run = queue_take(st);
	rc = batch_commit(st, run.v, run.n, &kept);
	if (kept)
		return queue_requeue(st, &run, rc); /* the queue is kept */
	return batch_finish(st, &run, rc, true);
}

/* ---- The writer thread ----------------------------------------------------
 * The loop hands the whole queue over (store_batch_submit) when the writer
 * is idle; the writer applies and commits it on its own connection, then
 * calls wake; the loop takes it back (store_batch_reap) and runs the done
 * callbacks. One batch at a time: what is queued meanwhile is the next. */

/* Writes per transaction on the writer: the loop's own short transactions
 * wait for the writer's to end, so a large queue (held writes retried at
 * once) commits in slices. */
#define WRITER_SLICE 1024
/* How long a connection waits for the other's transaction before -EBUSY:
 * a hang guard, not a pace (the writer's slices take milliseconds). */
#define BUSY_LOOP_MS 2000
#define BUSY_WRITER_MS 10000

struct busy {
	int limit_ms;
	atomic_uint_fast64_t waits; /* transactions that had to wait */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct store_writer {
	struct store *ws;          /* the writer's connection */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t work;       /* to the writer: a batch, or stop */
	pthread_cond_t finished_cv; /* to a waiting loop: the batch is done */
	/* under mu */
	struct batch_queue run;    /* the batch with the writer */
	bool has_work, finished, stop, kept;
	int rc;                    /* the batch's commit status */
	char err[200];             /* the writer's last SQLite error message */
	/* the loop thread's alone */
	bool inflight;             /* handed over, not yet reaped */
	void (*wake)(void *ud);
	void *wake_ud;
	struct busy busy_loop, busy_writer;
	/* counts for the log line at stop */
	uint64_t batches, writes, commit_ns; /* the writer's, read after join */
	uint64_t handed_at, latency_ns;     /* the loop's */
};

/* SQLite's busy handler: short sleeps while the other connection's
 * transaction ends, -EBUSY after *ud milliseconds. */
static int busy_wait(void *ud, int n)
{
	struct busy *b = ud;
	int limit_ms = b->limit_ms;
	/* 50 us x 20, 200 us x 80, then 1 ms each */
	long ns = n < 20 ? 50000L : n < 100 ? 200000L : 1000000L;
	long spent_ms = n < 20 ? n / 20 : n < 100 ? 1 + (n - 20) / 5 : 17 + (n - 100);
	struct timespec ts = { 0, ns };

	if (spent_ms >= limit_ms)
		return 0;
	if (n == 0)
		atomic_fetch_add_explicit(&b->waits, 1, memory_order_relaxed);
	nanosleep(&ts, NULL);
	return 1;
}

static void *writer_main(void *arg)
{
	struct store_writer *w = arg;
	struct store *ws = w->ws;

	pthread_setname_np(pthread_self(), "mt-writer"); /* top -H, perf */
	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct batch_queue run;
		bool kept = false;
		uint64_t t0;
		int rc = 0;

		while (!w->has_work && !w->stop)
			pthread_cond_wait(&w->work, &w->mu);
		if (!w->has_work)
			break;
		run = w->run;
		w->has_work = false;
		pthread_mutex_unlock(&w->mu);
		t0 = mono_ns();
		for (size_t at = 0; at < run.n; at += WRITER_SLICE) {
			size_t n = run.n - at < WRITER_SLICE ? run.n - at : WRITER_SLICE;
			int src = batch_commit(ws, run.v + at, n, &kept);

			if (kept && at == 0) {
				rc = src; /* nothing applied: the loop queues it again */
				break;
			}
			if (kept) {
				/* The slices before are committed; the rest fail
				 * as a COMMIT would. */
				kept = false;
				n = run.n - at;
			}
			if (src < 0) {
				for (size_t i = at; i < at + n; i++)
					run.v[i].status = commit_status(src);
				if (rc == 0)
					rc = src;
			}
			if (at + n >= run.n)
				break;
		}
		w->batches++;
		w->writes += run.n;
		w->commit_ns += mono_ns() - t0;
		pthread_mutex_lock(&w->mu);
		w->run = run;
		w->rc = rc;
		w->kept = kept;
		if (ws->last_err[0]) {
			snprintf(w->err, sizeof(w->err), "%s", ws->last_err);
			ws->last_err[0] = '\0';
		}
		w->finished = true;
		pthread_cond_broadcast(&w->finished_cv);
		pthread_mutex_unlock(&w->mu);
		w->wake(w->wake_ud);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Takes the writer's finished batch back and runs its done callbacks;
 * with wait, waits for it first. Returns what store_batch_reap does. */
static int writer_reap(struct store *st, bool wait)
{
	struct store_writer *w = st->w;
	struct batch_queue run;
	bool kept;
	int rc;

	if (!w || !w->inflight)
		return 0;
	pthread_mutex_lock(&w->mu);
	while (wait && !w->finished)
		pthread_cond_wait(&w->finished_cv, &w->mu);
	if (!w->finished) {
		pthread_mutex_unlock(&w->mu);
		return 0;
	}
	w->finished = false;
	run = w->run;
	w->run = (struct batch_queue){ NULL, 0, 0 };
	rc = w->rc;
	kept = w->kept;
	if (w->err[0]) {
		snprintf(st->last_err, sizeof(st->last_err), "%s", w->err);
		w->err[0] = '\0';
	}
	pthread_mutex_unlock(&w->mu);
	w->inflight = false;
	w->latency_ns += mono_ns() - w->handed_at;
	if (kept) /* nothing was applied: queued again for a later submit */
		return queue_requeue(st, &run, rc);
	/* The writer folded each slice's COMMIT into its statuses. */
	return batch_finish(st, &run, rc, false);
}

int store_batch_submit(struct store *st)
{
	struct store_writer *w = st->w;
	struct batch_queue run;

	if (!w)
		return -EINVAL;
	if (w->inflight || st->queue.n == 0)
		return 0;
	run = queue_take(st);
	pthread_mutex_lock(&w->mu);
	w->run = run;
	w->has_work = true;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->mu);
	w->inflight = true;
	w->handed_at = mono_ns();
	return (int)run.n;
}

int store_batch_reap(struct store *st) { return writer_reap(st, false); }

void store_writer_busy_set(struct store *st, int loop_ms, int writer_ms)
{
	if (!st->w)
		return;
	st->w->busy_loop.limit_ms = loop_ms;
	pthread_mutex_lock(&st->w->mu); /* read by the writer's busy handler */
	st->w->busy_writer.limit_ms = writer_ms;
	pthread_mutex_unlock(&st->w->mu);
}

int store_batch_wait(struct store *st) { return writer_reap(st, true); }

bool store_batch_busy(const struct store *st) { return st->w && st->w->inflight; }

/* The writer's connection: the same file, VFS and settings as st's, with
 * no migrations (st's open did them). */
static int writer_open(struct store *st, struct store **out)
{
	const char *file = sqlite3_db_filename(st->db, "main");
	struct store *ws = NULL;
	int ckpt = 1000, rc;

	*out = NULL;
	if (!file || !*file)
		return -ENOTSUP; /* an in-memory database has no second connection */
	ws = calloc(1, sizeof(*ws));
	if (!ws)
		return -ENOMEM;
	ws->group_only = true;
	ws->path = strdup(st->path);
	if (!ws->path) {
		rc = -ENOMEM;
		goto out;
	}
	rc = sqlite3_open_v2(file, &ws->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			     store_walbuf_vfs());
	if (rc != SQLITE_OK) {
		log_error("store %s: the writer's connection: %s", st->path,
			  ws->db ? sqlite3_errmsg(ws->db) : sqlite3_errstr(rc));
		rc = rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
		goto out;
	}
	sqlite3_extended_result_codes(ws->db, 1);
	/* The call rows this connection inserts must reach the loop's cache
	 * lookups: the same filter (one per file), else a repeated request
	 * would find "not stored" and be sent again. */
	ws->calls_filter = st->calls_filter ? store_calls_filter_open(ws->db, file) : NULL;
	if (st->calls_filter && ws->calls_filter != st->calls_filter) {
		/* A filter of its own (the file could not be stat'ed): both
		 * connections then ask SQLite (find treats no filter as "maybe"). */
		store_calls_filter_close(ws->calls_filter);
		ws->calls_filter = NULL;
		store_calls_filter_close(st->calls_filter);
		st->calls_filter = NULL;
	}
	/* The loop's connection may have turned automatic checkpoints off
	 * (a worker runs them): the writer's commits follow it. */
	rc = pragma_int(st, "PRAGMA wal_autocheckpoint", &ckpt);
	if (rc == 0)
		rc = exec_sql(ws,
			      "PRAGMA synchronous=NORMAL;"
			      "PRAGMA foreign_keys=ON;"
			      "PRAGMA cache_size=-12000;"
			      "PRAGMA journal_size_limit=134217728;",
			      "setting the writer's PRAGMAs");
	if (rc == 0 && sqlite3_wal_autocheckpoint(ws->db, ckpt) != SQLITE_OK)
		rc = -EIO;
	if (rc < 0)
		goto out;
	*out = ws;
	ws = NULL;
out:
	store_close(ws);
	return rc;
}

int store_writer_start(struct store *st, void (*wake)(void *ud), void *ud)
{
	struct store_writer *w = NULL;
	sigset_t all, old;
	int rc;

	if (!wake || st->closing)
		return -EINVAL;
	if (st->w)
		return -EALREADY;
	if (st->depth) {
		log_error("store: writer started inside an open transaction");
		return -EINVAL;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->wake = wake;
	w->wake_ud = ud;
	w->busy_loop.limit_ms = BUSY_LOOP_MS;
	w->busy_writer.limit_ms = BUSY_WRITER_MS;
	rc = writer_open(st, &w->ws);
	if (rc < 0) {
		free(w);
		return rc;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->finished_cv, NULL);
	/* Two connections write one file now: each waits for the other's
	 * transaction instead of failing with SQLITE_BUSY. */
	sqlite3_busy_handler(w->ws->db, busy_wait, &w->busy_writer);
	sqlite3_busy_handler(st->db, busy_wait, &w->busy_loop);
	/* The loop's connection now only reads, and its page cache is
	 * dropped at every writer COMMIT (WAL: another connection changed
	 * the file): a large one only holds memory (a 1M-item job's peak RSS
	 * 58.6 -> 74.2 MiB with 16 MB for each). The writer keeps most. */
	exec_sql(st, "PRAGMA cache_size=-2000", "the loop's cache size");
	/* Signals are the loop's: the writer takes none. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&w->thread, NULL, writer_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0) {
		log_error("store: cannot start the writer thread: %s", strerror(-rc));
		sqlite3_busy_handler(st->db, NULL, NULL);
		store_close(w->ws);
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->work);
		pthread_cond_destroy(&w->finished_cv);
		free(w);
		return rc;
	}
	st->w = w;
	return 0;
}

void store_writer_stop(struct store *st)
{
	struct store_writer *w = st ? st->w : NULL;

	if (!w)
		return;
	/* What the writer has is committed and its callbacks run (they may
	 * queue more: that stays queued, for store_batch_flush). */
	while (w->inflight)
		writer_reap(st, true);
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	st->w = NULL;
	if (w->batches)
		log_info("store: the writer committed %" PRIu64 " writes in %" PRIu64 " batches "
			 "(%.1f ms each, %.1f ms from hand-over to callbacks); the loop's transactions "
			 "waited for it %" PRIu64 " times, it for them %" PRIu64 " times",
			 w->writes, w->batches, (double)w->commit_ns / 1e6 / (double)w->batches,
			 (double)w->latency_ns / 1e6 / (double)w->batches,
			 (uint64_t)atomic_load(&w->busy_loop.waits),
			 (uint64_t)atomic_load(&w->busy_writer.waits));
	sqlite3_busy_handler(st->db, NULL, NULL);
	exec_sql(st, "PRAGMA cache_size=-16000", "the loop's cache size");
	store_close(w->ws);
	free(w->run.v);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->work);
	pthread_cond_destroy(&w->finished_cv);
	free(w);
}

/* ---- Ids ------------------------------------------------------------------ */

/* "PREFIX_N" or "N" with N a positive decimal; 0 when s is not of that form. */
static int64_t parse_id(const char *s, const char *prefix)
{
	size_t plen = strlen(prefix);
	int64_t v = 0;

	if (strncmp(s, prefix, plen) == 0)
		s += plen;
	if (!*s)
		return 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		if (v > (INT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (*s - '0');
	}
	return v;
}

/* ---- Datasets and items ------------------------------------------------- */

int store_dataset_create(struct store *st, const char *name, const char *format, int64_t *id)
{
	static const char sql[] =
		"INSERT INTO datasets(name, format, state, created_at) VALUES(?, ?, 'importing', ?)";
	sqlite3_stmt *s;
	int rc;

	if (!name || !*name || !format || !*format)
		return -EINVAL;
	s = store_stmt(st, sql);
	if (!s)
		return -EIO;
	rc = store_bind(st, s, "ttd", name, format, store_now());
	if (rc == 0)
		rc = store_step_done(st, s, "creating a dataset");
	if (rc == 0 && id)
		*id = sqlite3_last_insert_rowid(st->db);
	return rc;
}

/* The item's "id" as text into tmp (or pointing into the item). */
static const char *item_ext_id(json_t *item, char *tmp, size_t tmplen)
{
	json_t *v = json_object_get(item, "id");

	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(tmp, tmplen, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return tmp;
	}
	return NULL;
}

/* Encodes item into st->body; returns the length or a negative errno. */
static long long item_encode(struct store *st, json_t *item)
{
	size_t need = json_dumpb(item, st->body, st->bodycap, JSON_COMPACT);

	if (need == 0)
		return -EINVAL;
	if (need > ITEM_BODY_MAX)
		return -E2BIG;
	if (need > st->bodycap) {
		size_t cap = st->bodycap ? st->bodycap : 4096;
		char *p;

		while (cap < need)
			cap *= 2;
		p = realloc(st->body, cap);
		if (!p)
			return -ENOMEM;
		st->body = p;
		st->bodycap = cap;
		need = json_dumpb(item, st->body, st->bodycap, JSON_COMPACT);
		if (need == 0 || need > st->bodycap)
			return -EINVAL;
	}
	return (long long)need;
}

int store_items_insert(struct store *st, int64_t dataset, int64_t first_seq,
                       json_t *const *items, size_t n, size_t *dup_index)
{
	static const char sql[] =
		"INSERT INTO items(dataset_id, seq, ext_id, topic, body) VALUES(?, ?, ?, ?, ?)";
	sqlite3_stmt *s;
	int rc;

	if (n == 0)
		return 0;
	if (!items || first_seq < 0)
		return -EINVAL;
	s = store_stmt(st, sql);
	if (!s)
		return -EIO;
	rc = store_begin(st);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		char idbuf[32];
		const char *ext = item_ext_id(items[i], idbuf, sizeof(idbuf));
		json_t *topic = json_object_get(items[i], "topic");
		long long len;
		int src;

		if (!json_is_object(items[i]) || !ext) {
			log_error("store: item %zu of dataset ds_%" PRId64 " has no \"id\"", i, dataset);
			rc = -EINVAL;
			break;
		}
		len = item_encode(st, items[i]);
		if (len < 0) {
			log_error("store: item %zu (%s) of dataset ds_%" PRId64 " cannot be stored: %s", i,
			          ext, dataset, strerror((int)-len));
			rc = (int)len;
			break;
		}
		src = sqlite3_bind_int64(s, 1, dataset);
		if (src == SQLITE_OK)
			src = sqlite3_bind_int64(s, 2, first_seq + (int64_t)i);
		if (src == SQLITE_OK)
			src = sqlite3_bind_text(s, 3, ext, -1, SQLITE_STATIC);
		if (src == SQLITE_OK)
			src = json_is_string(topic)
				? sqlite3_bind_text(s, 4, json_string_value(topic), -1, SQLITE_STATIC)
				: sqlite3_bind_null(s, 4);
		if (src == SQLITE_OK)
			src = sqlite3_bind_text(s, 5, st->body, (int)len, SQLITE_STATIC);
		if (src == SQLITE_OK)
			src = sqlite3_step(s);
		if (src != SQLITE_DONE) {
			rc = store_err(st, src, "inserting an item");
			if (rc == -EEXIST && dup_index)
				*dup_index = i;
		}
		sqlite3_reset(s);
	}
	sqlite3_clear_bindings(s);
	return store_tx_end(st, rc);
}

int store_dataset_finish(struct store *st, int64_t dataset, int64_t nitems, json_t *rejected)
{
	static const char sql[] =
		"UPDATE datasets SET state = 'ready', items = ?, rejected = ? "
		"WHERE id = ? AND state = 'importing'";
	sqlite3_stmt *s;
	char *rej = NULL;
	int rc;

	if (rejected && !json_is_array(rejected))
		return -EINVAL;
	if (rejected) {
		rej = store_json_dump(rejected);
		if (!rej)
			return -EINVAL;
	}
	s = store_stmt(st, sql);
	rc = s ? store_bind(st, s, "iti", nitems, rej, dataset) : -EIO;
	if (rc == 0)
		rc = store_step_done(st, s, "finishing a dataset");
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = -ENOENT;
	free(rej);
	return rc;
}

static int dataset_delete(struct store *st, int64_t dataset)
{
	/* ON DELETE CASCADE (foreign_keys=ON) removes the items with the row. */
	static const char sql[] = "DELETE FROM datasets WHERE id = ? AND state = 'importing'";
	sqlite3_stmt *s;
	int rc;

	rc = store_begin(st);
	if (rc < 0)
		return rc;
	s = store_stmt(st, sql);
	rc = s ? store_bind(st, s, "i", dataset) : -EIO;
	if (rc == 0)
		rc = store_step_done(st, s, "deleting a dataset");
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = -ENOENT;
	return store_tx_end(st, rc);
}

int store_dataset_abort(struct store *st, int64_t dataset)
{
	return dataset_delete(st, dataset);
}

int store_dataset_abort_stale(struct store *st, int *n)
{
	static const char sql[] = "SELECT id FROM datasets WHERE state = 'importing' ORDER BY id";
	int64_t ids[64];
	int count = 0;
	int rc;

	if (n)
		*n = 0;
	for (;;) {
		sqlite3_stmt *s = store_stmt(st, sql);
		size_t k = 0;

		if (!s)
			return -EIO;
		while (k < sizeof(ids) / sizeof(ids[0])) {
			rc = store_step_row(st, s, "listing stale imports");
			if (rc < 0)
				return rc;
			if (rc == 0)
				break;
			ids[k++] = sqlite3_column_int64(s, 0);
		}
		sqlite3_reset(s);
		if (k == 0)
			break;
		for (size_t i = 0; i < k; i++) {
			rc = dataset_delete(st, ids[i]);
			if (rc < 0)
				return rc;
			log_info("store: removed ds_%" PRId64 ", an import that never finished", ids[i]);
			count++;
		}
		if (n)
			*n = count;
	}
	return 0;
}

static json_t *dataset_row(sqlite3_stmt *s)
{
	char iso[40];
	char id[32];
	json_t *rej = store_col_json(s, 4, "datasets.rejected");

	if (!json_is_array(rej)) {
		json_decref(rej);
		rej = json_array();
	}
	snprintf(id, sizeof(id), "ds_%" PRId64, (int64_t)sqlite3_column_int64(s, 0));
	store_iso_time(sqlite3_column_double(s, 5), iso, sizeof(iso));
	return json_pack("{s:s, s:s, s:s, s:I, s:o, s:s}", "id", id, "name", store_col_text(s, 1),
	                 "format", store_col_text(s, 2), "items", (json_int_t)sqlite3_column_int64(s, 3),
	                 "rejected", rej, "created_at", iso);
}

json_t *store_dataset_get(struct store *st, int64_t id)
{
	static const char sql[] =
		"SELECT id, name, format, items, rejected, created_at FROM datasets "
		"WHERE id = ? AND state = 'ready'";
	sqlite3_stmt *s = store_stmt(st, sql);
	json_t *j = NULL;

	if (!s || store_bind(st, s, "i", id) < 0)
		return NULL;
	if (store_step_row(st, s, "reading a dataset") == 1)
		j = dataset_row(s);
	sqlite3_reset(s);
	return j;
}

json_t *store_rows_json(struct store *st, sqlite3_stmt *s, json_t *(*row)(sqlite3_stmt *),
			const char *what)
{
	json_t *arr = json_array();
	int rc;

	if (!s || !arr)
		goto fail;
	for (;;) {
		rc = store_step_row(st, s, what);
		if (rc != 1)
			break;
		if (json_array_append_new(arr, row(s)) < 0) {
			sqlite3_reset(s);
			goto fail;
		}
	}
	if (rc < 0)
		goto fail;
	return arr;
fail:
	json_decref(arr);
	return NULL;
}

json_t *store_dataset_list(struct store *st)
{
	static const char sql[] =
		"SELECT id, name, format, items, rejected, created_at FROM datasets "
		"WHERE state = 'ready' ORDER BY id";
	return store_rows_json(st, store_stmt(st, sql), dataset_row, "listing datasets");
}

/* Resolves an id or a name with two statements: id_sql (one ? = id) and
 * name_sql (one ? = name, newest first). */
static int resolve(struct store *st, const char *s, const char *prefix, const char *id_sql,
                   const char *name_sql, int64_t *out)
{
	int64_t id = 0;
	sqlite3_stmt *q;
	int rc;

	if (!s || !*s)
		return -EINVAL;
	id = parse_id(s, prefix);
	if (id > 0) {
		q = store_stmt(st, id_sql);
		rc = q ? store_bind(st, q, "i", id) : -EIO;
		if (rc == 0)
			rc = store_step_row(st, q, "resolving an id");
		if (rc < 0)
			return rc;
		if (rc == 1) {
			*out = sqlite3_column_int64(q, 0);
			sqlite3_reset(q);
			return 0;
		}
	}
	q = store_stmt(st, name_sql);
	rc = q ? store_bind(st, q, "t", s) : -EIO;
	if (rc == 0)
		rc = store_step_row(st, q, "resolving a name");
	if (rc < 0)
		return rc;
	if (rc == 0)
		return -ENOENT;
	*out = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	return 0;
}

int store_dataset_resolve(struct store *st, const char *id_or_name, int64_t *id)
{
	static const char by_id[] = "SELECT id FROM datasets WHERE id = ? AND state = 'ready'";
	static const char by_name[] =
		"SELECT id FROM datasets WHERE name = ? AND state = 'ready' ORDER BY id DESC LIMIT 1";

	return resolve(st, id_or_name, "ds_", by_id, by_name, id);
}

int store_dataset_name_find(struct store *st, const char *name, int64_t *id)
{
	static const char sql[] = "SELECT id FROM datasets WHERE name = ? AND state IN ('ready', 'importing')"
				  " ORDER BY id DESC LIMIT 1";
	sqlite3_stmt *q = store_stmt(st, sql);
	int rc = q ? store_bind(st, q, "t", name) : -EIO;

	if (rc == 0)
		rc = store_step_row(st, q, "looking up a dataset name");
	if (rc == 1)
		*id = sqlite3_column_int64(q, 0);
	if (q)
		sqlite3_reset(q);
	return rc;
}

json_t *store_item_get(struct store *st, int64_t dataset, int64_t seq)
{
	static const char sql[] = "SELECT body FROM items WHERE dataset_id = ? AND seq = ?";
	sqlite3_stmt *s = store_stmt(st, sql);
	json_t *j = NULL;

	if (!s || store_bind(st, s, "ii", dataset, seq) < 0)
		return NULL;
	if (store_step_row(st, s, "reading an item") == 1)
		j = store_col_json(s, 0, "items.body");
	sqlite3_reset(s);
	return j;
}

char *store_seqs_json(const int64_t *seqs, size_t n)
{
	size_t cap, len = 0;
	char *t;

	if (n > SIZE_MAX / 21 - 1)
		return NULL;
	cap = n * 21 + 3; /* "-9223372036854775808," each */
	t = malloc(cap);
	if (!t)
		return NULL;
	t[len++] = '[';
	for (size_t i = 0; i < n; i++) {
		/* digits by hand: snprintf cost more than the insert of the row */
		uint64_t v = seqs[i] < 0 ? 0 - (uint64_t)seqs[i] : (uint64_t)seqs[i];
		char d[20];
		int k = 0;

		if (i)
			t[len++] = ',';
		if (seqs[i] < 0)
			t[len++] = '-';
		do {
			d[k++] = (char)('0' + v % 10);
			v /= 10;
		} while (v);
		while (k)
			t[len++] = d[--k];
	}
	t[len++] = ']';
	t[len] = '\0';
	return t;
}

/* Index of seq in the ascending seqs[0..n), or -1. */
static ptrdiff_t seq_find(const int64_t *seqs, size_t n, int64_t seq)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (seqs[mid] == seq)
			return (ptrdiff_t)mid;
		if (seqs[mid] < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

int store_items_get(struct store *st, int64_t dataset, const int64_t *seqs, size_t n,
		    json_t **out)
{
	static const char sql_range[] =
		"SELECT seq, body FROM items WHERE dataset_id = ? AND seq >= ? AND seq <= ? "
		"ORDER BY seq";
	/* Sparse seqs (retries behind the cursor): a seek per value, still one
	 * statement. */
	static const char sql_list[] =
		"SELECT seq, body FROM items WHERE dataset_id = ? AND seq IN "
		"(SELECT value FROM json_each(?))";
	char *list = NULL;
	sqlite3_stmt *s = NULL;
	int rc = 0, found = 0;

	if (!out || (n && !seqs) || n > STORE_ITEMS_GET_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		out[i] = NULL;
		if (i > 0 && seqs[i] <= seqs[i - 1])
			return -EINVAL;
	}
	if (n == 0)
		return 0;
	if ((uint64_t)seqs[n - 1] - (uint64_t)seqs[0] < 4 * (uint64_t)n) {
		s = store_stmt(st, sql_range);
		rc = s ? store_bind(st, s, "iii", dataset, seqs[0], seqs[n - 1]) : -EIO;
	} else {
		list = store_seqs_json(seqs, n);
		if (!list) {
			rc = -ENOMEM;
			goto out;
		}
		s = store_stmt(st, sql_list);
		rc = s ? store_bind(st, s, "it", dataset, list) : -EIO;
	}
	while (rc == 0) {
		ptrdiff_t k;

		rc = store_step_row(st, s, "reading items");
		if (rc != 1)
			break;
		rc = 0;
		k = seq_find(seqs, n, sqlite3_column_int64(s, 0));
		if (k < 0 || out[k])
			continue; /* a gap of the range */
		out[k] = store_col_json(s, 1, "items.body");
		if (out[k])
			found++;
	}
out:
	if (s)
		sqlite3_reset(s); /* no read stays open */
	free(list);
	if (rc < 0) {
		for (size_t i = 0; i < n; i++) {
			json_decref(out[i]);
			out[i] = NULL;
		}
		return rc;
	}
	return found;
}

/* Prepares sql (items of dataset with seq in [from, from+limit)) bound. */
static int items_range(struct store *st, const char *sql, int64_t dataset, int64_t from,
		       int64_t limit, sqlite3_stmt **out)
{
	int64_t to;

	if (limit < 0)
		return -EINVAL;
	to = from > INT64_MAX - limit ? INT64_MAX : from + limit;
	*out = store_stmt(st, sql);
	return *out ? store_bind(st, *out, "iii", dataset, from, to) : -EIO;
}

int store_items_each(struct store *st, int64_t dataset, int64_t from, int64_t limit,
                     int (*cb)(void *ud, int64_t seq, json_t *item), void *ud)
{
	static const char sql[] =
		"SELECT seq, body FROM items WHERE dataset_id = ? AND seq >= ? AND seq < ? ORDER BY seq";
	sqlite3_stmt *s;
	int rc;

	if (!cb)
		return -EINVAL;
	rc = items_range(st, sql, dataset, from, limit, &s);
	if (rc < 0)
		return rc;
	for (;;) {
		json_t *item;

		rc = store_step_row(st, s, "reading items");
		if (rc != 1)
			break;
		item = store_col_json(s, 1, "items.body");
		if (!item) {
			rc = -EIO;
			break;
		}
		rc = cb(ud, sqlite3_column_int64(s, 0), item);
		json_decref(item);
		if (rc != 0)
			break;
	}
	sqlite3_reset(s);
	return rc;
}

int store_item_ids_each(struct store *st, int64_t dataset, int64_t from, int64_t limit,
			int (*cb)(void *ud, int64_t seq, const char *ext_id), void *ud)
{
	static const char sql[] = "SELECT seq, ext_id FROM items WHERE dataset_id = ? AND seq >= ? "
				  "AND seq < ? ORDER BY seq";
	sqlite3_stmt *s;
	int rc;

	if (!cb)
		return -EINVAL;
	rc = items_range(st, sql, dataset, from, limit, &s);
	if (rc < 0)
		return rc;
	for (;;) {
		rc = store_step_row(st, s, "reading item ids");
		if (rc != 1)
			break;
		rc = cb(ud, sqlite3_column_int64(s, 0), (const char *)sqlite3_column_text(s, 1));
		if (rc != 0)
			break;
	}
	sqlite3_reset(s);
	return rc;
}

int64_t store_dataset_count(struct store *st, int64_t dataset)
{
	/* A finished import stored its count with the dataset: reading it is
	 * O(1), where counting a million rows of the index delays a job's
	 * first call by a second. */
	static const char sql[] =
		"SELECT CASE WHEN state = 'ready' THEN items ELSE "
		"(SELECT count(*) FROM items WHERE dataset_id = ?1) END FROM datasets WHERE id = ?1";
	sqlite3_stmt *s = store_stmt(st, sql);
	int64_t n;
	int rc;

	rc = s ? store_bind(st, s, "i", dataset) : -EIO;
	if (rc == 0)
		rc = store_step_row(st, s, "counting items");
	if (rc <= 0)
		return rc;
	n = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return n;
}

/* ---- Jobs ----------------------------------------------------------------- */

static bool job_state_valid(const char *state)
{
	static const char *const states[] = { "queued", "running", "paused",
	                                      "done",   "failed",  "cancelled" };

	for (size_t i = 0; state && i < sizeof(states) / sizeof(states[0]); i++)
		if (strcmp(state, states[i]) == 0)
			return true;
	return false;
}

int store_job_insert(struct store *st, const char *name, const char *kind, int64_t dataset,
                     json_t *spec, json_t *prompts, int64_t *id)
{
	static const char sql[] =
		"INSERT INTO jobs(name, kind, dataset_id, state, spec, prompts, created_at, updated_at) "
		"VALUES(?, ?, ?, 'queued', ?, ?, ?, ?)";
	char *spec_s = NULL;
	char *prompts_s = NULL;
	sqlite3_stmt *s;
	double now = store_now();
	int rc;

	if (!name || !*name || !kind || !*kind || !spec)
		return -EINVAL;
	spec_s = store_json_dump(spec);
	prompts_s = prompts ? store_json_dump(prompts) : strdup("{}");
	if (!spec_s || !prompts_s) {
		rc = -EINVAL;
		goto out;
	}
	s = store_stmt(st, sql);
	rc = s ? store_bind(st, s, "ttittdd", name, kind, dataset, spec_s, prompts_s, now, now) : -EIO;
	if (rc == 0)
		rc = store_step_done(st, s, "inserting a job");
	if (rc == 0 && id)
		*id = sqlite3_last_insert_rowid(st->db);
out:
	free(spec_s);
	free(prompts_s);
	return rc;
}

int store_job_set_state(struct store *st, int64_t id, const char *state, const char *reason)
{
	static const char sql[] = "UPDATE jobs SET state = ?, reason = ?, updated_at = ? WHERE id = ?";
	sqlite3_stmt *s;
	int rc;

	if (!job_state_valid(state))
		return -EINVAL;
	s = store_stmt(st, sql);
	rc = s ? store_bind(st, s, "ttdi", state, reason, store_now(), id) : -EIO;
	if (rc == 0)
		rc = store_step_done(st, s, "setting a job's state");
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = -ENOENT;
	return rc;
}

int store_job_set_runtime(struct store *st, int64_t id, json_t *runtime)
{
	static const char sel[] = "SELECT runtime FROM jobs WHERE id = ?";
	static const char upd[] = "UPDATE jobs SET runtime = ?, updated_at = ? WHERE id = ?";
	json_t *cur = NULL;
	char *text = NULL;
	sqlite3_stmt *s;
	int rc;

	if (!json_is_object(runtime))
		return -EINVAL;
	rc = store_begin(st);
	if (rc < 0)
		return rc;
	s = store_stmt(st, sel);
	rc = s ? store_bind(st, s, "i", id) : -EIO;
	if (rc == 0)
		rc = store_step_row(st, s, "reading a job's runtime");
	if (rc == 0)
		rc = -ENOENT;
	if (rc < 0)
		goto out;
	cur = store_col_json(s, 0, "jobs.runtime");
	sqlite3_reset(s);
	if (!json_is_object(cur)) {
		json_decref(cur);
		cur = json_object(); /* a damaged value is replaced, not kept */
	}
	if (!cur || json_object_update(cur, runtime) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	text = store_json_dump(cur);
	if (!text) {
		rc = -EINVAL;
		goto out;
	}
	s = store_stmt(st, upd);
	rc = s ? store_bind(st, s, "tdi", text, store_now(), id) : -EIO;
	if (rc == 0)
		rc = store_step_done(st, s, "updating a job's runtime");
out:
	json_decref(cur);
	free(text);
	return store_tx_end(st, rc);
}

#define JOB_COLS "id, name, kind, dataset_id, state, reason, spec, runtime, created_at, updated_at"

static json_t *job_row(sqlite3_stmt *s)
{
	char id[32], ds[32], created[40], updated[40];
	json_t *spec = store_col_json(s, 6, "jobs.spec");
	json_t *runtime = store_col_json(s, 7, "jobs.runtime");
	json_t *j;

	if (!spec)
		spec = json_object();
	if (!runtime)
		runtime = json_object();
	snprintf(id, sizeof(id), "job_%" PRId64, (int64_t)sqlite3_column_int64(s, 0));
	snprintf(ds, sizeof(ds), "ds_%" PRId64, (int64_t)sqlite3_column_int64(s, 3));
	store_iso_time(sqlite3_column_double(s, 8), created, sizeof(created));
	store_iso_time(sqlite3_column_double(s, 9), updated, sizeof(updated));
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s}", "id", id, "name",
	              store_col_text(s, 1), "kind", store_col_text(s, 2), "dataset", ds, "state",
	              store_col_text(s, 4), "spec", spec, "runtime", runtime, "created_at", created,
	              "updated_at", updated);
	if (j && store_col_text(s, 5))
		json_object_set_new(j, "reason", json_string(store_col_text(s, 5)));
	return j;
}

json_t *store_job_get(struct store *st, int64_t id)
{
	static const char sql[] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?";
	sqlite3_stmt *s = store_stmt(st, sql);
	json_t *j = NULL;

	if (!s || store_bind(st, s, "i", id) < 0)
		return NULL;
	if (store_step_row(st, s, "reading a job") == 1)
		j = job_row(s);
	sqlite3_reset(s);
	return j;
}

json_t *store_job_prompts(struct store *st, int64_t id)
{
	static const char sql[] = "SELECT prompts FROM jobs WHERE id = ?";
	sqlite3_stmt *s = store_stmt(st, sql);
	json_t *j = NULL;

	if (!s || store_bind(st, s, "i", id) < 0)
		return NULL;
	if (store_step_row(st, s, "reading a job's prompts") == 1)
		j = store_col_json(s, 0, "jobs.prompts");
	sqlite3_reset(s);
	return j;
}

int store_job_resolve(struct store *st, const char *id_or_name, int64_t *id)
{
	static const char by_id[] = "SELECT id FROM jobs WHERE id = ?";
	static const char by_name[] = "SELECT id FROM jobs WHERE name = ? ORDER BY id DESC LIMIT 1";

	return resolve(st, id_or_name, "job_", by_id, by_name, id);
}

json_t *store_job_list(struct store *st)
{
	static const char sql[] = "SELECT " JOB_COLS " FROM jobs ORDER BY id";
	return store_rows_json(st, store_stmt(st, sql), job_row, "listing jobs");
}

static json_t *id_row(sqlite3_stmt *s) { return json_integer(sqlite3_column_int64(s, 0)); }

json_t *store_job_unfinished(struct store *st)
{
	static const char sql[] =
		"SELECT id FROM jobs WHERE state IN ('queued', 'running', 'paused') ORDER BY id";
	return store_rows_json(st, store_stmt(st, sql), id_row, "listing unfinished jobs");
}

/* ---- Job events ------------------------------------------------------------ */

int store_event_add(struct store *st, int64_t job, const char *type, json_t *data, int64_t *id)
{
	static const char sql[] = "INSERT INTO job_events(job_id, at, type, data) VALUES(?, ?, ?, ?)";
	char *text = NULL;
	sqlite3_stmt *s;
	int rc;

	if (!type || !*type)
		return -EINVAL;
	text = data ? store_json_dump(data) : strdup("{}");
	if (!text)
		return -EINVAL;
	s = store_stmt(st, sql);
	rc = s ? store_bind(st, s, "idtt", job, store_now(), type, text) : -EIO;
	if (rc == 0)
		rc = store_step_done(st, s, "adding an event");
	if (rc == 0 && id)
		*id = sqlite3_last_insert_rowid(st->db);
	free(text);
	return rc;
}

json_t *store_events_since(struct store *st, int64_t job, int64_t after_id, int limit)
{
	static const char sql[] =
		"SELECT id, at, type, data FROM job_events WHERE job_id = ? AND id > ? "
		"ORDER BY id LIMIT ?";
	sqlite3_stmt *s = store_stmt(st, sql);
	json_t *arr = json_array();
	int rc;

	if (limit <= 0 || limit > EVENTS_LIMIT_MAX)
		limit = EVENTS_LIMIT_MAX;
	if (!s || !arr || store_bind(st, s, "iii", job, after_id, (int64_t)limit) < 0)
		goto fail;
	for (;;) {
		char iso[40];
		json_t *data, *ev;

		rc = store_step_row(st, s, "reading events");
		if (rc != 1)
			break;
		data = store_col_json(s, 3, "job_events.data");
		if (!data)
			data = json_object();
		store_iso_time(sqlite3_column_double(s, 1), iso, sizeof(iso));
		ev = json_pack("{s:I, s:s, s:s, s:o}", "id", (json_int_t)sqlite3_column_int64(s, 0),
		               "at", iso, "type", store_col_text(s, 2), "data", data);
		if (json_array_append_new(arr, ev) < 0) {
			sqlite3_reset(s);
			goto fail;
		}
	}
	if (rc < 0)
		goto fail;
	return arr;
fail:
	json_decref(arr);
	return NULL;
}
