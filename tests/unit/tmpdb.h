/* A database file in a fresh temporary directory, and its removal with
 * SQLite's side files, for the store's unit tests. Included by them after
 * cmocka.h; static functions only. */
#ifndef MT_TEST_TMPDB_H
#define MT_TEST_TMPDB_H

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_int.h"

struct tmpdb {
	char dir[64];
	char path[128];
};

/* Makes /tmp/medthink-TAG-XXXXXX (a mkdtemp template) and sets path to
 * medthink.db inside it; -1 when the directory cannot be made. */
static int tmpdb_make(struct tmpdb *t, const char *tag)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/medthink-%s-XXXXXX", tag);
	if (!mkdtemp(t->dir))
		return -1;
	snprintf(t->path, sizeof(t->path), "%s/medthink.db", t->dir);
	return 0;
}

/* Removes the database, its -wal, -shm and -journal files and the
 * directory. */
static void tmpdb_remove(const struct tmpdb *t)
{
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
	char p[160];

	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", t->path, suffixes[i]);
		unlink(p);
	}
	rmdir(t->dir);
}

/* cmocka setup and teardown for a test whose state is only the database:
 * *state becomes a struct tmpdb (removed and freed by tmpdb_teardown). */
static inline int tmpdb_setup(void **state, const char *tag)
{
	struct tmpdb *t = calloc(1, sizeof(*t));

	if (!t || tmpdb_make(t, tag) != 0) {
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

static inline int tmpdb_teardown(void **state)
{
	tmpdb_remove(*state);
	free(*state);
	return 0;
}

/* The first column of the first row of sql on st's connection (-1 when no
 * row); a statement that does not prepare fails the test. */
static inline int64_t tmpdb_sql_int(struct store *st, const char *sql)
{
	sqlite3_stmt *s = NULL;
	int64_t v = -1;

	assert_int_equal(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

#endif
