#ifndef MT_STORE_WALBUF_H
#define MT_STORE_WALBUF_H
/* A SQLite VFS over the default one that gathers a transaction's WAL
 * writes into one pwrite. SQLite writes every WAL frame with two pwrite
 * calls (its 24-byte header, then the page), each straddling a file-system
 * block; a group commit of 20 calls writes about 70 frames, so 140 system
 * calls. Here consecutive appends to a -wal file are kept in a buffer of
 * the connection and written in one call when the transaction's commit
 * frame (the frame whose header carries the database size) has been added,
 * before SQLite publishes the commit in the WAL index: a commit returns
 * only after its frames reached the OS, exactly as before, and a failed
 * write (a full disk) fails the commit as before. Any other use of the WAL
 * file (read, sync, size, truncate, close, a write elsewhere, a full
 * buffer) writes the buffer out first. Every other file passes straight
 * through to the default VFS.
 *
 * Internal to store/: store_open() opens its connection with it. */

/* The VFS's name for sqlite3_open_v2, registered (not as the default) on
 * the first call; NULL when it cannot be registered (then open with the
 * default VFS). The first call also turns off SQLite's memory statistics
 * (SQLITE_CONFIG_MEMSTATUS) when SQLite has not started yet. Thread-safe. */
const char *store_walbuf_vfs(void);

#endif
