#ifndef MT_FSUTIL_H
#define MT_FSUTIL_H
/* Small filesystem helpers for paths the daemon chooses itself. */

/* Creates path and its missing parents with mode 0700 (like mkdir -p).
 * Returns 0 (also when it exists), -ENAMETOOLONG or a negative errno. */
int fs_mkdir_p(const char *path);

#endif
