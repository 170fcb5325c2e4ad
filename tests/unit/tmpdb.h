/* A database file in a fresh temporary directory, and its removal with
 * SQLite's side files, for the store's unit tests. Included by them;
 * static functions only. */
#ifndef MT_TEST_TMPDB_H
#define MT_TEST_TMPDB_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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

#endif
