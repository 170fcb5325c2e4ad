/* A fault injector for tests (never linked into medthink): LD_PRELOAD it and
 * every write to a file under $MT_ENOSPC_DIR fails with ENOSPC while the
 * file $MT_ENOSPC_TRIGGER exists, as on a full disk. Writes elsewhere (logs,
 * sockets, pipes) go through. Built as $(B)/tests/libenospc.so. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);

/* True when the trigger exists and fd is a file under the directory. */
static int tripped(int fd)
{
	const char *dir = getenv("MT_ENOSPC_DIR"), *trig = getenv("MT_ENOSPC_TRIGGER");
	char link[64], path[PATH_MAX];
	ssize_t n;

	if (!dir || !*dir || !trig || !*trig || fd < 0)
		return 0;
	if (access(trig, F_OK) != 0)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0)
		return 0;
	path[n] = '\0';
	return strncmp(path, dir, strlen(dir)) == 0;
}

#define RESOLVE(f)                                                                                 \
	do {                                                                                       \
		if (!real_##f)                                                                     \
			*(void **)&real_##f = dlsym(RTLD_NEXT, #f);                                \
	} while (0)

ssize_t write(int fd, const void *buf, size_t n)
{
	RESOLVE(write);
	if (tripped(fd)) {
		errno = ENOSPC;
		return -1;
	}
	return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	RESOLVE(pwrite);
	if (tripped(fd)) {
		errno = ENOSPC;
		return -1;
	}
	return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	RESOLVE(pwrite64);
	if (tripped(fd)) {
		errno = ENOSPC;
		return -1;
	}
	return real_pwrite64(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	RESOLVE(writev);
	if (tripped(fd)) {
		errno = ENOSPC;
		return -1;
	}
	return real_writev(fd, iov, cnt);
}
