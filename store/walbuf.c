/* One pwrite per commit for the WAL (contract in store/walbuf.h).
 *
 * Why each flush point is where it is (SQLite 3.x, wal.c, sqlite3WalFrames):
 * the frames of a transaction are appended in order and the commit frame
 * (database size in its header) is written last; then SQLite updates the
 * WAL index and publishes the commit in its header. So the buffer is
 * written out when a header with a database size is added and again right
 * after the page that follows it: whatever SQLite does next, every frame of
 * the commit is in the file. A rewrite of frame checksums (reads, then
 * headers written in place, the commit frame's last) and an in-place page
 * rewrite are not appends, and a read of the WAL writes the buffer first,
 * so they keep their order. */
#include "store/walbuf.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WALBUF_NAME "medthink-walbuf"
#define WALBUF_CAP (1u << 20)   /* bytes held before a write; a larger write goes through */
#define WALBUF_CHUNK 0x1f000u   /* bytes per write call, see wb_flush */
#define WAL_FRAME_HDR 24

struct walbuf_file {
	sqlite3_file base;
	sqlite3_file *real;     /* the default VFS's file, right after this struct */
	unsigned char *buf;     /* WALBUF_CAP bytes once the first write comes */
	size_t n;
	sqlite3_int64 off;      /* file offset of buf[0] */
	bool commit_page_next;  /* a commit frame's header was just added */
};

static sqlite3_vfs walbuf_vfs;
static sqlite3_vfs *walbuf_orig;
static pthread_once_t walbuf_once = PTHREAD_ONCE_INIT;
static bool walbuf_ok;

static int wb_flush(struct walbuf_file *f)
{
	int rc;

	if (f->n == 0)
		return SQLITE_OK;
	/* The unix VFS writes at most 128 KiB - 1 bytes per call (it masks
	 * the length), so the buffer goes out in chunks below that. */
	rc = SQLITE_OK;
	for (size_t at = 0; at < f->n && rc == SQLITE_OK; at += WALBUF_CHUNK) {
		size_t len = f->n - at < WALBUF_CHUNK ? f->n - at : WALBUF_CHUNK;

		rc = f->real->pMethods->xWrite(f->real, f->buf + at, (int)len,
					       f->off + (sqlite3_int64)at);
	}
	/* A failed write fails SQLite's write, read or sync that caused it:
	 * the transaction ends, and its frames are written again or never
	 * count. */
	f->n = 0;
	return rc;
}

static int wb_close(sqlite3_file *pf)
{
	struct walbuf_file *f = (struct walbuf_file *)pf;
	int rc = wb_flush(f), rc2 = f->real->pMethods->xClose(f->real);

	free(f->buf);
	f->buf = NULL;
	return rc != SQLITE_OK ? rc : rc2;
}

static int wb_read(sqlite3_file *pf, void *p, int amt, sqlite3_int64 off)
{
	struct walbuf_file *f = (struct walbuf_file *)pf;
	int rc = wb_flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, p, amt, off);
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int wb_write(sqlite3_file *pf, const void *p, int amt, sqlite3_int64 off)
{
	struct walbuf_file *f = (struct walbuf_file *)pf;
	bool commit_page = f->commit_page_next;
	int rc;

	f->commit_page_next = false;
	if (f->n && off != f->off + (sqlite3_int64)f->n) {
		rc = wb_flush(f);
		if (rc != SQLITE_OK)
			return rc;
	}
	if (amt <= 0 || (size_t)amt > WALBUF_CHUNK)
		return f->real->pMethods->xWrite(f->real, p, amt, off);
	if (f->n + (size_t)amt > WALBUF_CAP) {
		rc = wb_flush(f);
		if (rc != SQLITE_OK)
			return rc;
	}
	if (!f->buf) {
		f->buf = malloc(WALBUF_CAP);
		if (!f->buf)
			return f->real->pMethods->xWrite(f->real, p, amt, off);
	}
	if (f->n == 0)
		f->off = off;
	memcpy(f->buf + f->n, p, (size_t)amt);
	f->n += (size_t)amt;
	if (amt == WAL_FRAME_HDR && be32((const unsigned char *)p + 4) != 0) {
		f->commit_page_next = true;
		return wb_flush(f);
	}
	return commit_page ? wb_flush(f) : SQLITE_OK;
}

static int wb_truncate(sqlite3_file *pf, sqlite3_int64 size)
{
	struct walbuf_file *f = (struct walbuf_file *)pf;
	int rc = wb_flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int wb_sync(sqlite3_file *pf, int flags)
{
	struct walbuf_file *f = (struct walbuf_file *)pf;
	int rc = wb_flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int wb_file_size(sqlite3_file *pf, sqlite3_int64 *size)
{
	struct walbuf_file *f = (struct walbuf_file *)pf;
	int rc = wb_flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int wb_lock(sqlite3_file *pf, int lock)
{
	struct walbuf_file *f = (struct walbuf_file *)pf;

	return f->real->pMethods->xLock(f->real, lock);
}

static int wb_unlock(sqlite3_file *pf, int lock)
{
	struct walbuf_file *f = (struct walbuf_file *)pf;

	return f->real->pMethods->xUnlock(f->real, lock);
}

static int wb_check_reserved(sqlite3_file *pf, int *out)
{
	struct walbuf_file *f = (struct walbuf_file *)pf;

	return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int wb_file_control(sqlite3_file *pf, int op, void *arg)
{
	struct walbuf_file *f = (struct walbuf_file *)pf;
	int rc = wb_flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int wb_sector_size(sqlite3_file *pf)
{
	struct walbuf_file *f = (struct walbuf_file *)pf;

	return f->real->pMethods->xSectorSize(f->real);
}

static int wb_device_chars(sqlite3_file *pf)
{
	struct walbuf_file *f = (struct walbuf_file *)pf;

	return f->real->pMethods->xDeviceCharacteristics(f->real);
}

/* Version 1 methods: SQLite maps no -wal file into memory and keeps no
 * shared memory on it (those belong to the database file, which is not
 * wrapped). */
static const sqlite3_io_methods walbuf_methods = {
	1,
	wb_close,
	wb_read,
	wb_write,
	wb_truncate,
	wb_sync,
	wb_file_size,
	wb_lock,
	wb_unlock,
	wb_check_reserved,
	wb_file_control,
	wb_sector_size,
	wb_device_chars,
	NULL, NULL, NULL, NULL, NULL, NULL,
};

static int wb_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *pf, int flags, int *out_flags)
{
	struct walbuf_file *f = (struct walbuf_file *)pf;
	int rc;

	(void)vfs;
	if (!(flags & SQLITE_OPEN_WAL))
		return walbuf_orig->xOpen(walbuf_orig, name, pf, flags, out_flags);
	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)(f + 1);
	rc = walbuf_orig->xOpen(walbuf_orig, name, f->real, flags, out_flags);
	f->base.pMethods = f->real->pMethods ? &walbuf_methods : NULL;
	if (rc != SQLITE_OK && f->real->pMethods) {
		f->real->pMethods->xClose(f->real);
		f->base.pMethods = NULL;
	}
	return rc;
}

static int wb_delete(sqlite3_vfs *v, const char *name, int sync)
{
	(void)v;
	return walbuf_orig->xDelete(walbuf_orig, name, sync);
}

static int wb_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
	(void)v;
	return walbuf_orig->xAccess(walbuf_orig, name, flags, out);
}

static int wb_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
	(void)v;
	return walbuf_orig->xFullPathname(walbuf_orig, name, n, out);
}

static void *wb_dlopen(sqlite3_vfs *v, const char *name)
{
	(void)v;
	return walbuf_orig->xDlOpen(walbuf_orig, name);
}

static void wb_dlerror(sqlite3_vfs *v, int n, char *msg)
{
	(void)v;
	walbuf_orig->xDlError(walbuf_orig, n, msg);
}

static void (*wb_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
	(void)v;
	return walbuf_orig->xDlSym(walbuf_orig, h, sym);
}

static void wb_dlclose(sqlite3_vfs *v, void *h)
{
	(void)v;
	walbuf_orig->xDlClose(walbuf_orig, h);
}

static int wb_randomness(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return walbuf_orig->xRandomness(walbuf_orig, n, out);
}

static int wb_sleep(sqlite3_vfs *v, int us)
{
	(void)v;
	return walbuf_orig->xSleep(walbuf_orig, us);
}

static int wb_current_time(sqlite3_vfs *v, double *out)
{
	(void)v;
	return walbuf_orig->xCurrentTime(walbuf_orig, out);
}

static int wb_last_error(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return walbuf_orig->xGetLastError ? walbuf_orig->xGetLastError(walbuf_orig, n, out) : 0;
}

static int wb_current_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
	(void)v;
	return walbuf_orig->xCurrentTimeInt64(walbuf_orig, out);
}

static void walbuf_register(void)
{
	/* Before SQLite initializes (sqlite3_vfs_find does): no global memory
	 * statistics, whose mutex every SQLite malloc and free took (nothing
	 * here reads them). Refused, harmlessly, when SQLite already runs. */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	walbuf_orig = sqlite3_vfs_find(NULL);
	/* Version 2 or later (every unix VFS): the time in milliseconds. */
	if (!walbuf_orig || walbuf_orig->iVersion < 2)
		return;
	walbuf_vfs.iVersion = 2;
	walbuf_vfs.szOsFile = (int)sizeof(struct walbuf_file) + walbuf_orig->szOsFile;
	walbuf_vfs.mxPathname = walbuf_orig->mxPathname;
	walbuf_vfs.zName = WALBUF_NAME;
	walbuf_vfs.xOpen = wb_open;
	walbuf_vfs.xDelete = wb_delete;
	walbuf_vfs.xAccess = wb_access;
	walbuf_vfs.xFullPathname = wb_full_pathname;
	walbuf_vfs.xDlOpen = wb_dlopen;
	walbuf_vfs.xDlError = wb_dlerror;
	walbuf_vfs.xDlSym = wb_dlsym;
	walbuf_vfs.xDlClose = wb_dlclose;
	walbuf_vfs.xRandomness = wb_randomness;
	walbuf_vfs.xSleep = wb_sleep;
	walbuf_vfs.xCurrentTime = wb_current_time;
	walbuf_vfs.xGetLastError = wb_last_error;
	walbuf_vfs.xCurrentTimeInt64 = wb_current_time64;
	walbuf_ok = sqlite3_vfs_register(&walbuf_vfs, 0) == SQLITE_OK;
}

const char *store_walbuf_vfs(void)
{
	pthread_once(&walbuf_once, walbuf_register);
	return walbuf_ok ? WALBUF_NAME : NULL;
}
