#ifndef MT_STORE_CHECK_H
#define MT_STORE_CHECK_H
/* Is the store file sound? Two levels:
 *  - store_file_check: the file's header against its size, before SQLite
 *    touches it (store_open runs it). Microseconds.
 *  - store_check_run: SQLite's own page-by-page check (PRAGMA quick_check
 *    or integrity_check) on a connection of its own. It reads the whole
 *    file (about 6 s for 1M stored calls, 1.8 GB), so the daemon runs it on
 *    a worker thread after start and `medthinkd --check-store` runs it
 *    offline.
 * A damaged store is -EUCLEAN with a message naming the file and the first
 * problem found. */

#include <stddef.h>

struct store_check;

/* Checks the file at path before it is opened as a store: missing is fine
 * (0: a new store will be created); empty (0 bytes), not starting with the
 * SQLite header, a bad page size, or shorter than the page count in its
 * header is damage: -EUCLEAN with err "store PATH: ...". Other errors of
 * stat/open/read: their negative errno, with err filled. Any thread. */
int store_file_check(const char *path, char *err, size_t errlen);

/* Opens a checking connection on the existing database at path (never
 * creates it). 0, or -ENOENT (no file) / -EIO with err filled. The
 * connection may be used from one other thread at a time. */
int store_check_open(const char *path, struct store_check **out, char *err, size_t errlen);

/* Runs PRAGMA quick_check (full = 0: every page and record, O(size)) or
 * PRAGMA integrity_check (full = 1: also that every index matches its
 * table, O(size log size)). Blocking: call it from a worker thread.
 * Returns 0 when sound; -EUCLEAN when damaged, with the first problem
 * SQLite reported in first (may be NULL) and err "store PATH is damaged:
 * FIRST (N problems)"; -EINTR when store_check_interrupt stopped it; -EIO
 * when the check itself could not run (err says why). */
int store_check_run(struct store_check *c, int full, char *first, size_t firstlen, char *err,
		    size_t errlen);

/* Makes a running store_check_run return -EINTR soon. Any thread, while
 * the check is open. */
void store_check_interrupt(struct store_check *c);

/* Closes the connection (no check may be running). NULL is a no-op. */
void store_check_close(struct store_check *c);

#endif
