#ifndef MT_STORE_INT_H
#define MT_STORE_INT_H
/* The store's internals, shared by the modules of store/ (and by tests that
 * look at the database directly). Nothing outside store/ and tests/ includes
 * this: the public headers (store.h, work.h, calls.h, ...) know no SQLite.
 *
 * Same rules as store/store.h: one thread per struct store, 0 or a negative
 * errno, SQLite result codes converted here (store_err) and logged once. */

#include <jansson.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdint.h>

#include "store/store.h"

/* The raw handle. */
sqlite3 *store_db(struct store *st);

/* A prepared statement for sql, prepared once and cached by the pointer
 * value of sql (pass string literals or static arrays). Returned reset with
 * bindings cleared (so one SQL text must not be used again while it is
 * still being stepped). Reset it when done so no read stays open. NULL on
 * error (logged). */
sqlite3_stmt *store_stmt(struct store *st, const char *sql);

/* Maps an SQLite result code to 0 (OK, ROW, DONE) or a negative errno:
 * -EEXIST unique key, -ENOENT foreign key, -EBUSY locked, -ENOMEM, -ENOSPC
 * database or disk full, -EIO anything else (logged with what and SQLite's
 * message; store_last_error() keeps that message). */
int store_err(struct store *st, int sqlite_rc, const char *what);

/* Binds parameters 1.. of s by a type string, one letter per parameter:
 *   'i' int64_t          'I' int64_t, NULL when <= 0 (an optional row id)
 *   't' const char *     (NULL binds NULL; SQLITE_STATIC: keep it alive
 *                         until the statement is reset or rebound)
 *   'd' double           'n' NULL (takes no argument)
 * Callers pass int64_t exactly (cast ints). 0 or a negative errno. */
int store_bind(struct store *st, sqlite3_stmt *s, const char *types, ...);

/* Steps a statement that returns no rows (what names it in errors), then
 * resets it. 0 or a negative errno. */
int store_step_done(struct store *st, sqlite3_stmt *s, const char *what);
/* Steps a query for one row: 1 with the row (the caller reads and resets),
 * 0 when there is none (reset), or a negative errno (reset). */
int store_step_row(struct store *st, sqlite3_stmt *s, const char *what);

/* Column i as text (NULL for SQL NULL); lives until the next step/reset. */
const char *store_col_text(sqlite3_stmt *s, int i);
/* Parses a JSON column into a new reference; NULL for SQL NULL or damaged
 * text (logged naming what, e.g. "jobs.spec"). */
json_t *store_col_json(sqlite3_stmt *s, int i, const char *what);
/* Compact JSON text of j for storage (free() it); NULL when j cannot be
 * encoded. */
char *store_json_dump(json_t *j);
/* Compact JSON text of j for one bind, without a malloc per call: the
 * text is in st's scratch buffer (valid until the next call on st), or,
 * when larger than the scratch keeps, in *owned (free() it). *len gets its
 * length (no NUL counted; the scratch text has none). NULL when j cannot
 * be encoded. */
const char *store_json_text(struct store *st, json_t *j, size_t *len, char **owned);
/* Every row of s (already bound) as an array of row(s) objects (new
 * reference); NULL on error. s may be NULL (its preparation failed). */
json_t *store_rows_json(struct store *st, sqlite3_stmt *s, json_t *(*row)(sqlite3_stmt *),
			const char *what);

/* seqs[0..n) as the text of a JSON array ("[1,2,3]") for json_each (one
 * statement over many rows); free() it. NULL when out of memory. */
char *store_seqs_json(const int64_t *seqs, size_t n);

/* Ends a transaction begun with store_begin: when rc >= 0 commits and
 * returns the commit's status (0 or a negative errno), else rolls back and
 * returns rc. */
int store_tx_end(struct store *st, int rc);

/* Tests: how long the loop's and the writer's connections wait for each
 * other's transaction (milliseconds) before -EBUSY; call it while the
 * writer is idle. No-op without a writer. */
void store_writer_busy_set(struct store *st, int loop_ms, int writer_ms);
/* The filter of stored request hashes in front of store_call_find
 * (store/calls.c). store_calls_filter_open starts it for the database just
 * opened on db at path (the calls table must exist): shared with every
 * store of this process open on the same file, ready at once when no call
 * is stored, else once a thread of its own has read the stored hashes.
 * NULL when out of memory (then every lookup asks SQLite). Loop thread,
 * from store_open. store_calls_filter_close drops a reference (joins the
 * thread on the last; NULL is a no-op), from store_close. */
struct store_calls_filter;
struct store_calls_filter *store_calls_filter_open(sqlite3 *db, const char *path);
void store_calls_filter_close(struct store_calls_filter *cf);
/* st's filter (NULL when it has none). */
struct store_calls_filter *store_calls_filter(struct store *st);
/* Whether st's filter holds every stored hash yet (tests wait for it). */
bool store_calls_filter_ready(struct store *st);

#endif
