#include "store/check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/log.h"

#define HINT "see docs/operations.md, \"A damaged database\""

struct store_check {
	sqlite3 *db;
	char *path;
};

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A WAL with frames in it may hold pages the database file does not have
 * yet (a checkpoint cut short), so the file may then be shorter than its
 * header says. */
static int wal_has_frames(const char *path)
{
	char wal[4200];
	struct stat sb;

	snprintf(wal, sizeof(wal), "%s-wal", path);
	return stat(wal, &sb) == 0 && sb.st_size > 32;
}

int store_file_check(const char *path, char *err, size_t errlen)
{
	static const char magic[16] = "SQLite format 3";
	unsigned char h[100];
	struct stat sb;
	uint32_t page_size, pages;
	ssize_t n;
	int fd = -1, rc = 0;

	if (stat(path, &sb) != 0) {
		if (errno == ENOENT)
			return 0;
		rc = -errno;
		snprintf(err, errlen, "store %s: %s", path, strerror(errno));
		return rc;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "store %s: not a regular file", path);
		return -EUCLEAN;
	}
	if (sb.st_size == 0) {
		snprintf(err, errlen,
			 "store %s is empty (0 bytes): a damaged database, not a new one (only a "
			 "missing file starts a new store); " HINT, path);
		return -EUCLEAN;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "store %s: cannot open: %s", path, strerror(errno));
		goto out;
	}
	n = pread(fd, h, sizeof(h), 0);
	if (n < 0) {
		rc = -errno;
		snprintf(err, errlen, "store %s: cannot read: %s", path, strerror(errno));
		goto out;
	}
	if (n < (ssize_t)sizeof(h) || memcmp(h, magic, sizeof(magic)) != 0) {
		snprintf(err, errlen,
			 "store %s is not a database: it does not start with the SQLite header "
			 "(damaged or another kind of file); " HINT, path);
		rc = -EUCLEAN;
		goto out;
	}
	page_size = (uint32_t)h[16] << 8 | h[17];
	if (page_size == 1)
		page_size = 65536;
	if (page_size < 512 || (page_size & (page_size - 1)) != 0) {
		snprintf(err, errlen, "store %s is damaged: its header gives page size %u; " HINT,
			 path, page_size);
		rc = -EUCLEAN;
		goto out;
	}
	/* The page count in the header is valid when "version-valid-for"
	 * (offset 92) matches the change counter (offset 24). */
	pages = be32(h + 28);
	if (pages > 0 && be32(h + 92) == be32(h + 24) &&
	    (uint64_t)sb.st_size < (uint64_t)pages * page_size && !wal_has_frames(path)) {
		snprintf(err, errlen,
			 "store %s is damaged: %lld bytes, but its header counts %u pages of %u "
			 "bytes (the file was cut short); " HINT,
			 path, (long long)sb.st_size, pages, page_size);
		rc = -EUCLEAN;
	}
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

int store_check_open(const char *path, struct store_check **out, char *err, size_t errlen)
{
	struct store_check *c = NULL;
	struct stat sb;
	int rc;

	*out = NULL;
	if (stat(path, &sb) != 0) {
		snprintf(err, errlen, "store %s: %s", path, strerror(errno));
		return errno == ENOENT ? -ENOENT : -EIO;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->path = strdup(path))) {
		snprintf(err, errlen, "store %s: out of memory", path);
		rc = -ENOMEM;
		goto fail;
	}
	/* Read-write without create: a WAL database is read through its -shm,
	 * which a read-only connection may not be able to set up. Nothing is
	 * written. */
	rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "store %s: cannot open for checking: %s", path,
			 c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		rc = -EIO;
		goto fail;
	}
	/* Closing the last connection would checkpoint a WAL left by a
	 * killed daemon into the file being checked: leave the file as found. */
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	/* A writer on the loop thread may hold a lock for a moment. */
	sqlite3_busy_timeout(c->db, 5000);
	*out = c;
	return 0;
fail:
	store_check_close(c);
	return rc;
}

/* SQLite's report as one line for a log or a job's reason: without the
 * "*** in database main ***" heading, newlines made spaces. */
static void one_line(char *out, size_t outlen, const char *t)
{
	static const char heading[] = "*** in database main ***";
	size_t k = 0;

	if (strncmp(t, heading, sizeof(heading) - 1) == 0)
		t += sizeof(heading) - 1;
	while (*t == '\n' || *t == ' ')
		t++;
	for (; *t && k + 1 < outlen; t++)
		out[k++] = *t == '\n' || *t == '\r' ? ' ' : *t;
	out[k] = '\0';
}

int store_check_run(struct store_check *c, int full, char *first, size_t firstlen, char *err,
		    size_t errlen)
{
	const char *sql = full ? "PRAGMA integrity_check(100)" : "PRAGMA quick_check(100)";
	sqlite3_stmt *s = NULL;
	char one[512] = "";
	int problems = 0, rc;

	if (first && firstlen)
		first[0] = '\0';
	rc = sqlite3_prepare_v2(c->db, sql, -1, &s, NULL);
	while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(s, 0);

		rc = SQLITE_OK;
		if (t && strcmp(t, "ok") == 0)
			continue;
		if (problems++ == 0)
			one_line(one, sizeof(one), t ? t : "(no message)");
	}
	if (rc == SQLITE_DONE)
		rc = SQLITE_OK;
	if (rc != SQLITE_OK) {
		int code = rc & 0xff;

		if (code == SQLITE_INTERRUPT) {
			rc = -EINTR;
			snprintf(err, errlen, "store %s: check interrupted", c->path);
			goto out;
		}
		if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) {
			/* The check could not even walk the file. */
			if (problems++ == 0)
				one_line(one, sizeof(one), sqlite3_errmsg(c->db));
		} else {
			snprintf(err, errlen, "store %s: cannot check: %s", c->path,
				 sqlite3_errmsg(c->db));
			rc = -EIO;
			goto out;
		}
	}
	if (problems == 0) {
		rc = 0;
		goto out;
	}
	if (first)
		snprintf(first, firstlen, "%s", one);
	snprintf(err, errlen, "store %s is damaged: %s (%d problem%s%s); " HINT, c->path, one,
		 problems, problems == 1 ? "" : "s", problems >= 100 ? " or more" : "");
	rc = -EUCLEAN;
out:
	sqlite3_finalize(s);
	return rc;
}

void store_check_interrupt(struct store_check *c)
{
	if (c && c->db)
		sqlite3_interrupt(c->db);
}

void store_check_close(struct store_check *c)
{
	if (!c)
		return;
	sqlite3_close(c->db);
	free(c->path);
	free(c);
}
