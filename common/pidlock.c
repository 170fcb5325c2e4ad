#include "common/pidlock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

/* The holder writes its pid right after taking the lock; a reader that
 * comes in between sees an empty file and looks again, briefly. */
static pid_t pid_read(int fd)
{
	for (int tries = 0; tries < 20; tries++) {
		char buf[32];
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		if (n > 0) {
			long v;
			char *end;

			buf[n] = '\0';
			v = strtol(buf, &end, 10);
			if (end != buf && v > 0)
				return (pid_t)v;
		}
		nanosleep(&ts, NULL);
	}
	return 0;
}

int pidlock_take(const char *dir, pid_t *holder)
{
	char path[4096], line[32];
	int fd = -1, rc, len;

	if (holder)
		*holder = 0;
	if (snprintf(path, sizeof(path), "%s/%s", dir, PIDLOCK_FILE) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		rc = errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;
		if (rc == -EWOULDBLOCK && holder)
			*holder = pid_read(fd);
		goto fail;
	}
	len = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	errno = 0;
	if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)len, 0) != len) {
		rc = errno ? -errno : -EIO;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return rc;
}

void pidlock_release(int fd)
{
	if (fd < 0)
		return;
	/* Still locked here: nobody reads a pid that is about to go away. */
	(void)!ftruncate(fd, 0);
	close(fd);
}
