#ifndef MT_PIDLOCK_H
#define MT_PIDLOCK_H
/* One daemon per state directory: an exclusive flock(2) on DIR/medthinkd.pid,
 * held for the daemon's life, with the holder's pid written in the file.
 * The kernel drops the lock when the process dies (kill -9 included), so a
 * file left behind by a dead daemon never blocks the next one. */

#include <sys/types.h>

#define PIDLOCK_FILE "medthinkd.pid"

/* Takes the lock on dir/medthinkd.pid (created 0644 if missing) and writes
 * this process's pid into it. Returns the open descriptor (>= 0, close-on-
 * exec; keep it open), or a negative errno: -EWOULDBLOCK when another
 * process holds the lock, then *holder gets its pid as written in the file
 * (0 when it could not be read); -ENAMETOOLONG, or the errno of open/flock/
 * write. holder may be NULL. Not thread-safe; call once at start. */
int pidlock_take(const char *dir, pid_t *holder);

/* Empties the pid file and closes fd (which releases the lock). fd < 0 is
 * a no-op. */
void pidlock_release(int fd);

#endif
