#ifndef MT_STORE_CHECKPOINT_H
#define MT_STORE_CHECKPOINT_H
/* WAL checkpoints off the loop thread. SQLite's automatic checkpoint runs
 * inside whichever COMMIT crosses the threshold, copying pages into the
 * database file and syncing it: on the loop thread that stalls every
 * request for tens of milliseconds, and for seconds on a large store. The
 * daemon turns the automatic one off and runs a PASSIVE checkpoint from a
 * worker thread on a connection of its own (PASSIVE never blocks the
 * writer or the readers). */

struct store;
struct store_ckpt;

/* Opens the checkpoint connection on the database at path. 0 or -EIO. */
int store_ckpt_open(const char *path, struct store_ckpt **out);
/* Runs one PASSIVE checkpoint. Blocking: call it from a worker thread,
 * never two at once. *log_frames (may be NULL) gets the frames in the WAL
 * when it ran (-1 when unknown). Returns 0 or -EIO (logged). */
int store_ckpt_run(struct store_ckpt *c, int *log_frames);
/* Closes the connection (no checkpoint may be running). NULL is a no-op. */
void store_ckpt_close(struct store_ckpt *c);

/* Sets the loop connection's automatic checkpoint threshold in pages
 * (0 turns it off). */
int store_set_autocheckpoint(struct store *st, int pages);

#endif
