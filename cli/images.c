#include "cli/images.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"

/* Stands in for a path while the line is re-serialised; DEL bytes are
 * written raw by jansson, so the marker is found again verbatim. */
#define IMG_MARK "\x7fmtimg:"

const char *images_mime(const char *path)
{
	static const struct {
		const char *ext, *mime;
	} types[] = {
		{"png", "image/png"},   {"jpg", "image/jpeg"}, {"jpeg", "image/jpeg"},
		{"gif", "image/gif"},   {"webp", "image/webp"},
	};
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(slash ? slash : path, '.');

	if (!dot || !dot[1])
		return NULL;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcasecmp(dot + 1, types[i].ext) == 0)
			return types[i].mime;
	return NULL;
}

size_t images_base64_len(size_t n) { return (n + 2) / 3 * 4; }

size_t images_base64(const unsigned char *in, size_t n, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];

		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = tab[v >> 6 & 63];
		out[o++] = tab[v & 63];
	}
	if (i < n) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0);

		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

/* One image of a line: where its marker sits in the re-serialised text. */
struct img_ref {
	size_t off, len;   /* the marker's bytes inside the quotes */
	char *path;        /* resolved path */
	const char *mime;
	uint64_t size;
};

struct line_plan {
	char *text;        /* line with markers, from json_dumps */
	size_t text_len;
	int nimg;
	struct img_ref img[IMAGES_MAX_PER_LINE];
};

static void plan_free(struct line_plan *pl)
{
	free(pl->text);
	for (int i = 0; i < pl->nimg; i++)
		free(pl->img[i].path);
	memset(pl, 0, sizeof(*pl));
}

static bool is_url(const char *s)
{
	return strncmp(s, "data:", 5) == 0 || strncmp(s, "http://", 7) == 0 ||
	       strncmp(s, "https://", 8) == 0;
}

/* Formats "line N: image "PATH": WHAT" (no line part when lineno is 0). */
static void img_err(char *err, size_t errlen, uint64_t lineno, const char *path, const char *what)
{
	if (lineno)
		snprintf(err, errlen, "line %llu: image \"%.300s\": %s", (unsigned long long)lineno, path, what);
	else
		snprintf(err, errlen, "image \"%.300s\": %s", path, what);
}

/* Checks an image file and fills ref. */
static int img_check(struct img_ref *ref, const char *basedir, const char *given, uint64_t max_file,
		     uint64_t lineno, char *err, size_t errlen)
{
	struct stat st;
	struct buf path;
	int rc;

	buf_init(&path, 8192);
	if (given[0] == '/' || !basedir || !basedir[0])
		rc = buf_puts(&path, given);
	else
		rc = buf_printf(&path, "%s/%s", basedir, given);
	if (rc) {
		img_err(err, errlen, lineno, given, "path too long");
		goto out;
	}
	ref->mime = images_mime(given);
	if (!ref->mime) {
		rc = -EINVAL;
		img_err(err, errlen, lineno, given, "unsupported type (use .png, .jpg, .jpeg, .gif or .webp)");
		goto out;
	}
	if (stat(path.base, &st) != 0) {
		rc = -errno;
		img_err(err, errlen, lineno, path.base, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		img_err(err, errlen, lineno, path.base, "not a regular file");
		goto out;
	}
	if ((uint64_t)st.st_size > max_file) {
		rc = -EFBIG;
		char what[96];

		snprintf(what, sizeof(what), "%llu bytes, over the %llu byte limit",
			 (unsigned long long)st.st_size, (unsigned long long)max_file);
		img_err(err, errlen, lineno, path.base, what);
		goto out;
	}
	ref->size = (uint64_t)st.st_size;
	ref->path = buf_take(&path);
	rc = 0;
out:
	buf_free(&path);
	return rc;
}

/* Decides how one line goes out. pl->nimg == 0 means "as is": no images,
 * only URLs, or not something we understand (the daemon will judge it). */
static int plan_line(struct line_plan *pl, const char *line, size_t len, const char *basedir,
		     uint64_t max_file, uint64_t lineno, char *err, size_t errlen)
{
	json_t *root = NULL, *imgs;
	json_error_t jerr;
	size_t i;
	json_t *v;
	int rc = 0, k = 0;
	char mark[32];

	memset(pl, 0, sizeof(*pl));
	if (!memmem(line, len, "\"images\"", 8))
		goto out;
	root = json_loadb(line, len, 0, &jerr);
	if (!root || !json_is_object(root))
		goto out;
	imgs = json_object_get(root, "images");
	if (!json_is_array(imgs))
		goto out;
	json_array_foreach(imgs, i, v) {
		if (!json_is_string(v))
			goto out; /* the daemon rejects it with its own message */
		if (!is_url(json_string_value(v)))
			k++;
	}
	if (k == 0)
		goto out;
	if (k > IMAGES_MAX_PER_LINE) {
		rc = -E2BIG;
		snprintf(err, errlen, "line %llu: %d image paths, more than %d", (unsigned long long)lineno, k,
			 IMAGES_MAX_PER_LINE);
		goto out;
	}
	if (memmem(line, len, IMG_MARK, strlen(IMG_MARK))) {
		rc = -EINVAL;
		snprintf(err, errlen, "line %llu: contains a reserved byte sequence (DEL \"mtimg:\")",
			 (unsigned long long)lineno);
		goto out;
	}
	k = 0;
	json_array_foreach(imgs, i, v) {
		const char *s = json_string_value(v);

		if (is_url(s))
			continue;
		rc = img_check(&pl->img[k], basedir, s, max_file, lineno, err, errlen);
		pl->nimg = k + 1; /* so plan_free frees the path */
		if (rc)
			goto out;
		snprintf(mark, sizeof(mark), IMG_MARK "%d\x7f", k);
		if (json_array_set_new(imgs, i, json_string(mark))) {
			rc = -ENOMEM;
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		k++;
	}
	pl->text = json_dumps(root, JSON_COMPACT);
	if (!pl->text) {
		rc = -ENOMEM;
		snprintf(err, errlen, "line %llu: cannot re-serialise the item", (unsigned long long)lineno);
		goto out;
	}
	pl->text_len = strlen(pl->text);
	for (k = 0; k < pl->nimg; k++) {
		char quoted[40];
		char *at;

		snprintf(quoted, sizeof(quoted), "\"" IMG_MARK "%d\x7f\"", k);
		at = strstr(pl->text, quoted);
		if (!at || (k > 0 && (size_t)(at - pl->text) < pl->img[k - 1].off)) {
			rc = -EPROTO;
			snprintf(err, errlen, "line %llu: cannot place image %d", (unsigned long long)lineno, k);
			goto out;
		}
		pl->img[k].off = (size_t)(at - pl->text) + 1;
		pl->img[k].len = strlen(quoted) - 2;
	}
out:
	json_decref(root);
	if (rc)
		plan_free(pl);
	return rc;
}

static uint64_t plan_length(const struct line_plan *pl)
{
	uint64_t n = pl->text_len;

	for (int k = 0; k < pl->nimg; k++)
		n = n - pl->img[k].len + strlen("data:") + strlen(pl->img[k].mime) + strlen(";base64,") +
		    images_base64_len((size_t)pl->img[k].size);
	return n;
}

/* Streams one image file as a data: URL. */
static int img_write(const struct img_ref *ref, images_write_fn write, void *ctx, uint64_t lineno, char *err,
		     size_t errlen)
{
	enum { CHUNK = 3 * 16384 };
	unsigned char *in = NULL;
	char *out = NULL;
	uint64_t total = 0;
	int fd = -1, rc;
	size_t have = 0;

	in = malloc(CHUNK);
	out = malloc(images_base64_len(CHUNK) + 1);
	if (!in || !out) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	fd = open(ref->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		img_err(err, errlen, lineno, ref->path, strerror(errno));
		goto out;
	}
	rc = write(ctx, "data:", 5);
	if (!rc)
		rc = write(ctx, ref->mime, strlen(ref->mime));
	if (!rc)
		rc = write(ctx, ";base64,", 8);
	while (!rc) {
		ssize_t got = read(fd, in + have, CHUNK - have);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = -errno;
			img_err(err, errlen, lineno, ref->path, strerror(errno));
			break;
		}
		have += (size_t)got;
		total += (uint64_t)got;
		if (total > ref->size)
			break;
		if (have == CHUNK || (got == 0 && have > 0)) {
			size_t n = images_base64(in, have, out);

			rc = write(ctx, out, n);
			have = 0;
		}
		if (got == 0)
			break;
	}
	if (!rc && total != ref->size) {
		rc = -EIO;
		img_err(err, errlen, lineno, ref->path, "the file changed during the import");
	}
out:
	if (fd >= 0)
		close(fd);
	free(in);
	free(out);
	return rc;
}

static int plan_write(const struct line_plan *pl, images_write_fn write, void *ctx, uint64_t lineno, char *err,
		      size_t errlen)
{
	size_t at = 0;
	int rc = 0;

	for (int k = 0; k < pl->nimg && !rc; k++) {
		rc = write(ctx, pl->text + at, pl->img[k].off - at);
		if (!rc)
			rc = img_write(&pl->img[k], write, ctx, lineno, err, errlen);
		at = pl->img[k].off + pl->img[k].len;
	}
	if (!rc)
		rc = write(ctx, pl->text + at, pl->text_len - at);
	return rc;
}

/* A line reader with a cap that keeps NUL bytes and tells whether the line
 * ended with '\n' (the last one may not). */
struct line_reader {
	FILE *in;
	char blk[65536];
	size_t pos, len;
	struct buf line;
};

/* Returns 1 with a line in lr->line, 0 at the end, or a negative errno. */
static int reader_next(struct line_reader *lr, bool *nl)
{
	buf_reset(&lr->line);
	*nl = false;
	for (;;) {
		char *e;
		size_t take;
		int rc;

		if (lr->pos == lr->len) {
			lr->len = fread(lr->blk, 1, sizeof(lr->blk), lr->in);
			lr->pos = 0;
			if (lr->len == 0)
				return ferror(lr->in) ? -EIO : lr->line.len > 0;
		}
		e = memchr(lr->blk + lr->pos, '\n', lr->len - lr->pos);
		take = e ? (size_t)(e - (lr->blk + lr->pos)) : lr->len - lr->pos;
		rc = buf_append(&lr->line, lr->blk + lr->pos, take);
		if (rc)
			return rc;
		lr->pos += take;
		if (e) {
			lr->pos++;
			*nl = true;
			return 1;
		}
	}
}

int images_stream(FILE *in, const char *basedir, uint64_t max_file, images_write_fn write, void *ctx,
		  struct images_stats *st, char *err, size_t errlen)
{
	struct line_reader *lr = NULL;
	struct line_plan pl;
	int rc = 0;

	memset(&pl, 0, sizeof(pl));
	memset(st, 0, sizeof(*st));
	lr = calloc(1, sizeof(*lr));
	if (!lr) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	lr->in = in;
	buf_init(&lr->line, IMAGES_MAX_LINE);
	for (;;) {
		bool nl;

		rc = reader_next(lr, &nl);
		if (rc <= 0) {
			if (rc == -ENOBUFS)
				snprintf(err, errlen, "line %llu: longer than %u bytes",
					 (unsigned long long)st->lines + 1, IMAGES_MAX_LINE);
			else if (rc)
				snprintf(err, errlen, "reading the dataset: %s", strerror(-rc));
			break;
		}
		st->lines++;
		rc = plan_line(&pl, lr->line.base, lr->line.len, basedir, max_file, st->lines, err, errlen);
		if (rc)
			break;
		if (pl.nimg) {
			st->bytes += plan_length(&pl);
			st->images += (uint64_t)pl.nimg;
			if (write)
				rc = plan_write(&pl, write, ctx, st->lines, err, errlen);
		} else {
			st->bytes += lr->line.len;
			if (write)
				rc = write(ctx, lr->line.base, lr->line.len);
		}
		plan_free(&pl);
		if (!rc && nl) {
			st->bytes++;
			if (write)
				rc = write(ctx, "\n", 1);
		}
		if (rc)
			break;
	}
	plan_free(&pl);
	buf_free(&lr->line);
	free(lr);
	return rc;
}

static int buf_writer(void *ctx, const void *p, size_t n) { return buf_append(ctx, p, n); }

char *images_data_url(const char *path, uint64_t max_size, char *err, size_t errlen)
{
	struct img_ref ref;
	struct buf out;
	char *url = NULL;
	int rc;

	memset(&ref, 0, sizeof(ref));
	buf_init(&out, images_base64_len((size_t)max_size) + 64);
	rc = img_check(&ref, NULL, path, max_size, 0, err, errlen);
	if (!rc)
		rc = img_write(&ref, buf_writer, &out, 0, err, errlen);
	if (!rc)
		url = buf_take(&out);
	free(ref.path);
	buf_free(&out);
	return url;
}
