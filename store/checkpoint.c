#include "store/checkpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"
#include "store/store.h"
#include "store/store_int.h"

struct store_ckpt {
	sqlite3 *db;
};

int store_ckpt_open(const char *path, struct store_ckpt **out)
{
	struct store_ckpt *c = calloc(1, sizeof(*c));
	int rc;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc != SQLITE_OK) {
		log_error("store: checkpoint connection to %s: %s", path, sqlite3_errstr(rc));
		sqlite3_close(c->db);
		free(c);
		return -EIO;
	}
	/* This worker thread may wait for a lock; the loop thread never does. */
	sqlite3_busy_timeout(c->db, 2000);
	/* A connection opens the WAL on its first read; before that SQLite
	 * 3.40's checkpoint does nothing and reports -1 frames (every
	 * checkpoint was a no-op, and the WAL grew by every write). */
	rc = sqlite3_exec(c->db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		log_warn("store: checkpoint connection: %s", sqlite3_errmsg(c->db));
	*out = c;
	return 0;
}

int store_ckpt_run(struct store_ckpt *c, int *log_frames)
{
	int frames = 0, done = 0;
	int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, &done);

	if (log_frames)
		*log_frames = rc == SQLITE_OK ? frames : -1;

	if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
		log_warn("store: checkpoint: %s", sqlite3_errmsg(c->db));
		return -EIO;
	}
	return 0;
}

void store_ckpt_close(struct store_ckpt *c)
{
	if (!c)
		return;
	sqlite3_close(c->db);
	free(c);
}

int store_set_autocheckpoint(struct store *st, int pages)
{
	return sqlite3_wal_autocheckpoint(store_db(st), pages) == SQLITE_OK ? 0 : -EIO;
}
