/* Replays files through a fuzz target without libFuzzer: the plain build
 * links each tests/fuzz/fuzz_*.c with this main() (built by `make tests`),
 * and tests/integration/fuzz_corpus.sh runs it over the seed corpus and the
 * regression inputs. Arguments are files or folders (their regular files,
 * in name order). Prints "ok - NAME" per input; a crash ends the process
 * (the script reports it). Exit 0 when every input ran, 2 on a read error. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

#define DRIVER_MAX_INPUT ((size_t)16 << 20)

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char *data = NULL;
	size_t len = 0, n;
	int rc = 2;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return 2;
	}
	data = malloc(DRIVER_MAX_INPUT + 1);
	if (!data)
		goto out;
	n = fread(data, 1, DRIVER_MAX_INPUT + 1, f);
	if (ferror(f) || n > DRIVER_MAX_INPUT) {
		fprintf(stderr, "%s: unreadable or larger than %zu bytes\n", path, DRIVER_MAX_INPUT);
		goto out;
	}
	len = n;
	/* An exact-size copy, so ASan sees reads past the end of the input. */
	{
		unsigned char *exact = malloc(len ? len : 1);
		if (!exact)
			goto out;
		memcpy(exact, data, len);
		LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
	printf("ok - %s\n", path);
	fflush(stdout);
	rc = 0;
out:
	free(data);
	fclose(f);
	return rc;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0, i;
	int rc = 0;

	if (!d) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return 2;
	}
	while ((e = readdir(d)) != NULL) {
		char path[4096];
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap ? cap * 2 : 64) * sizeof(*names));
			if (!nn) {
				rc = 2;
				break;
			}
			names = nn;
			cap = cap ? cap * 2 : 64;
		}
		names[n] = strdup(path);
		if (!names[n]) {
			rc = 2;
			break;
		}
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);
	for (i = 0; i < n; i++) {
		if (!rc)
			rc = run_file(names[i]);
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	int i, rc = 0;

	for (i = 1; i < argc && !rc; i++) {
		struct stat st;

		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			return 2;
		}
		rc = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i]);
	}
	return rc;
}
