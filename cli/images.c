#include "cli/images.h"
#include "common/base64.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/utf8.h"

/* Stands in for a path while the line is re-serialised; DEL bytes are
 * written raw by jansson, so the marker is found again verbatim. */
#define IMG_MARK "\x7fmtimg:"

const char *images_mime(const char *path)
{
	static const struct {
		const char *ext, *mime;
	} types[] = {
		{"png", "image/png"},   {"jpg", "image/jpeg"}, {"jpeg", "image/jpeg"},
		{"gif", "image/gif"},   {"webp", "image/webp"}, {"bmp", "image/bmp"},
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

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

const char *images_magic_mime(const unsigned char *p, size_t n)
{
	static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

	if (n >= 8 && memcmp(p, png, 8) == 0)
		return "image/png";
	if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
		return "image/jpeg";
	if (n >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0))
		return "image/gif";
	if (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0)
		return "image/webp";
	/* "BM" alone is too weak: the DIB header that follows has one of the
	 * sizes the format defines. */
	if (n >= 18 && p[0] == 'B' && p[1] == 'M') {
		uint32_t dib = le32(p + 14);

		if (dib == 12 || dib == 40 || dib == 52 || dib == 56 || dib == 64 || dib == 108 || dib == 124)
			return "image/bmp";
	}
	return NULL;
}

/* One image of a line: where its marker sits in the re-serialised text. */
struct img_ref {
	size_t off, len;   /* the marker's bytes inside the quotes */
	char *path;        /* resolved path (realpath: no symlink left) */
	const char *mime;  /* from the magic bytes */
	uint64_t size;
	dev_t dev;         /* the file checked, found again when it is read */
	ino_t ino;
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

/* Formats "WHERE image "PATH": WHAT"; WHERE is "line N: item "ID": " or
 * empty. A long path (a data: URL) is cut. */
static void img_err(char *err, size_t errlen, const char *where, const char *path, const char *what)
{
	size_t n = strlen(path);

	snprintf(err, errlen, "%simage \"%.*s%s\": %s", where, (int)utf8_prefix(path, n, n > 64 && !strncmp(path, "data:", 5) ? 40 : 300),
		 path, (n > 64 && !strncmp(path, "data:", 5)) || n > 300 ? "..." : "", what);
}

static const char NOT_IMAGE[] = "not a PNG, JPEG, GIF, WebP or BMP image (by its first bytes)";

/* Checks an image file named by given, relative to the dataset folder
 * realbase (a realpath), and fills ref: the path must be relative, resolve
 * (symlinks followed) to a regular file inside realbase, within max_file
 * bytes, whose first bytes say it is an image. */
static int img_check(struct img_ref *ref, const char *realbase, const char *given, uint64_t max_file,
		     const char *where, char *err, size_t errlen)
{
	unsigned char head[IMAGES_MAGIC_MAX];
	char what[800];
	struct stat st;
	struct buf path;
	char *real = NULL;
	size_t blen = strlen(realbase);
	ssize_t got;
	int rc, fd = -1;

	buf_init(&path, PATH_MAX);
	if (!given[0]) {
		rc = -EINVAL;
		img_err(err, errlen, where, given, "empty path");
		goto out;
	}
	if (given[0] == '/') {
		rc = -EPERM;
		img_err(err, errlen, where, given, "an absolute path; name images relative to the dataset file");
		goto out;
	}
	if (!images_mime(given)) {
		rc = -EINVAL;
		img_err(err, errlen, where, given, "unsupported type (use .png, .jpg, .jpeg, .gif, .webp or .bmp)");
		goto out;
	}
	rc = buf_printf(&path, "%s/%s", realbase, given);
	if (rc) {
		img_err(err, errlen, where, given, "path too long");
		goto out;
	}
	real = realpath(path.base, NULL);
	if (!real) {
		rc = -errno;
		img_err(err, errlen, where, given, strerror(errno));
		goto out;
	}
	/* Inside the folder: "/" holds everything; else the folder and a '/'. */
	if (!(blen == 1 && realbase[0] == '/') &&
	    (strncmp(real, realbase, blen) != 0 || real[blen] != '/')) {
		rc = -EPERM;
		snprintf(what, sizeof(what), "resolves to %.*s, outside the dataset's folder %.*s", (int)utf8_prefix(real, strlen(real), 300), real,
			 (int)utf8_prefix(realbase, strlen(realbase), 300), realbase);
		img_err(err, errlen, where, given, what);
		goto out;
	}
	/* Only a regular file is opened (no FIFO, no device), and it is the
	 * same after the open. */
	if (stat(real, &st) != 0) {
		rc = -errno;
		img_err(err, errlen, where, given, strerror(errno));
		goto out;
	}
	if (S_ISREG(st.st_mode))
		fd = open(real, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (S_ISREG(st.st_mode) && (fd < 0 || fstat(fd, &st) != 0)) {
		rc = -errno;
		img_err(err, errlen, where, given, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		img_err(err, errlen, where, given, "not a regular file");
		goto out;
	}
	if ((uint64_t)st.st_size > max_file) {
		rc = -EFBIG;
		snprintf(what, sizeof(what), "%llu bytes, over the %llu byte limit", (unsigned long long)st.st_size,
			 (unsigned long long)max_file);
		img_err(err, errlen, where, given, what);
		goto out;
	}
	do
		got = pread(fd, head, sizeof(head), 0);
	while (got < 0 && errno == EINTR);
	if (got < 0) {
		rc = -errno;
		img_err(err, errlen, where, given, strerror(errno));
		goto out;
	}
	ref->mime = images_magic_mime(head, (size_t)got);
	if (!ref->mime) {
		rc = -EINVAL;
		img_err(err, errlen, where, given, NOT_IMAGE);
		goto out;
	}
	ref->size = (uint64_t)st.st_size;
	ref->dev = st.st_dev;
	ref->ino = st.st_ino;
	ref->path = real;
	real = NULL;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(real);
	buf_free(&path);
	return rc;
}

/* Checks a data: URL given in the dataset the way a file is checked: base64,
 * within max_file bytes decoded, an image by its first bytes, and the type
 * it declares is the one its bytes have. */
static int data_url_check(const char *url, uint64_t max_file, const char *where, char *err, size_t errlen)
{
	const char *comma = strchr(url, ','), *b64;
	unsigned char head[IMAGES_MAGIC_MAX + 3];
	char what[200], declared[64];
	size_t n, pad = 0, hn = 0;
	const char *mime;
	uint64_t size;

	if (!comma || (size_t)(comma - url) < 12 || strncmp(comma - 7, ";base64", 7) != 0) {
		img_err(err, errlen, where, url, "a data: URL must be data:image/TYPE;base64,DATA");
		return -EINVAL;
	}
	snprintf(declared, sizeof(declared), "%.*s", (int)(comma - 7 - (url + 5)), url + 5);
	b64 = comma + 1;
	n = strlen(b64);
	while (pad < 2 && pad < n && b64[n - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < n - pad; i++) {
		if (base64_value((unsigned char)b64[i]) < 0) {
			snprintf(what, sizeof(what), "invalid base64 at character %zu of the data", i + 1);
			img_err(err, errlen, where, url, what);
			return -EINVAL;
		}
	}
	if (n == 0 || n % 4 != 0) {
		img_err(err, errlen, where, url, "the base64 data is empty or cut short");
		return -EINVAL;
	}
	size = (uint64_t)n / 4 * 3 - pad;
	if (size > max_file) {
		snprintf(what, sizeof(what), "%llu bytes, over the %llu byte limit", (unsigned long long)size,
			 (unsigned long long)max_file);
		img_err(err, errlen, where, url, what);
		return -EFBIG;
	}
	for (size_t i = 0; i + 4 <= n && hn < IMAGES_MAGIC_MAX; i += 4) {
		unsigned v = 0;
		int k;

		for (k = 0; k < 4 && b64[i + k] != '='; k++)
			v |= (unsigned)base64_value((unsigned char)b64[i + k]) << (18 - 6 * k);
		for (int j = 0; j < k - 1; j++)
			head[hn++] = (unsigned char)(v >> (16 - 8 * j));
	}
	mime = images_magic_mime(head, hn);
	if (!mime) {
		img_err(err, errlen, where, url, NOT_IMAGE);
		return -EINVAL;
	}
	if (strcasecmp(declared, mime) != 0 && !(strcasecmp(declared, "image/jpg") == 0 && !strcmp(mime, "image/jpeg"))) {
		snprintf(what, sizeof(what), "declares %.*s but the data is %s", (int)utf8_prefix(declared, strlen(declared), 60), declared, mime);
		img_err(err, errlen, where, url, what);
		return -EINVAL;
	}
	return 0;
}

/* "line N: item "ID": " for the messages about an item's images. */
static void item_where(char *dst, size_t n, uint64_t lineno, json_t *root)
{
	json_t *id = json_object_get(root, "id");

	if (json_is_string(id))
		snprintf(dst, n, "line %llu: item \"%.*s\": ", (unsigned long long)lineno, (int)utf8_prefix(json_string_value(id), strlen(json_string_value(id)), 100), json_string_value(id));
	else if (json_is_integer(id))
		snprintf(dst, n, "line %llu: item %lld: ", (unsigned long long)lineno, (long long)json_integer_value(id));
	else
		snprintf(dst, n, "line %llu: item without \"id\": ", (unsigned long long)lineno);
}

/* Decides how one line goes out. pl->nimg == 0 means "as is": no images,
 * only URLs (data: URLs checked), or not something we understand (the daemon
 * will judge it). */
static int plan_line(struct line_plan *pl, const char *line, size_t len, const char *realbase,
		     uint64_t max_file, uint64_t lineno, char *err, size_t errlen)
{
	json_t *root = NULL, *imgs;
	json_error_t jerr;
	size_t i;
	json_t *v;
	int rc = 0, k = 0;
	char mark[32], where[160];

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
	}
	item_where(where, sizeof(where), lineno, root);
	json_array_foreach(imgs, i, v) {
		const char *s = json_string_value(v);

		if (strncmp(s, "data:", 5) == 0) {
			rc = data_url_check(s, max_file, where, err, errlen);
			if (rc)
				goto out;
		}
		if (!is_url(s))
			k++;
	}
	if (k == 0)
		goto out;
	if (k > IMAGES_MAX_PER_LINE) {
		rc = -E2BIG;
		snprintf(err, errlen, "%s%d image paths, more than %d", where, k, IMAGES_MAX_PER_LINE);
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
		rc = img_check(&pl->img[k], realbase, s, max_file, where, err, errlen);
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
		    base64_len((size_t)pl->img[k].size);
	return n;
}

/* Streams one image file as a data: URL. The file read is the one checked
 * (same device and inode, no symlink, same size, same type by its bytes). */
static int img_write(const struct img_ref *ref, images_write_fn write, void *ctx, const char *where, char *err,
		     size_t errlen)
{
	enum { CHUNK = 3 * 16384 };
	unsigned char *in = NULL;
	char *out = NULL;
	uint64_t total = 0;
	struct stat st;
	int fd = -1, rc;
	size_t have = 0;
	bool first = true;

	in = malloc(CHUNK);
	out = malloc(base64_len(CHUNK) + 1);
	if (!in || !out) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	fd = open(ref->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) != 0) {
		rc = -errno;
		img_err(err, errlen, where, ref->path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_dev != ref->dev || st.st_ino != ref->ino ||
	    (uint64_t)st.st_size != ref->size) {
		rc = -EIO;
		img_err(err, errlen, where, ref->path, "the file changed during the import");
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
			img_err(err, errlen, where, ref->path, strerror(errno));
			break;
		}
		have += (size_t)got;
		total += (uint64_t)got;
		if (total > ref->size)
			break;
		if (have == CHUNK || (got == 0 && have > 0)) {
			size_t n;

			if (first && images_magic_mime(in, have) != ref->mime) {
				rc = -EIO;
				img_err(err, errlen, where, ref->path, "the file changed during the import");
				break;
			}
			first = false;
			n = base64_encode(in, have, out);
			rc = write(ctx, out, n);
			have = 0;
		}
		if (got == 0)
			break;
	}
	if (!rc && total != ref->size) {
		rc = -EIO;
		img_err(err, errlen, where, ref->path, "the file changed during the import");
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
	char where[64];

	snprintf(where, sizeof(where), "line %llu: ", (unsigned long long)lineno);
	for (int k = 0; k < pl->nimg && !rc; k++) {
		rc = write(ctx, pl->text + at, pl->img[k].off - at);
		if (!rc)
			rc = img_write(&pl->img[k], write, ctx, where, err, errlen);
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

/* Notes a refused item: {"line":N,"reason":"..."} as the daemon reports its
 * rejected lines; the reason without the "line N: " the listing adds. */
static int reject_add(json_t *rejected, uint64_t lineno, const char *why)
{
	char pfx[40];
	size_t n = (size_t)snprintf(pfx, sizeof(pfx), "line %llu: ", (unsigned long long)lineno);

	if (strncmp(why, pfx, n) == 0)
		why += n;
	json_t *row = json_pack("{s:I, s:s}", "line", (json_int_t)lineno, "reason", why);

	return json_array_append_new(rejected, row) ? -ENOMEM : 0;
}

int images_stream(FILE *in, const char *basedir, uint64_t max_file, bool skip_invalid, json_t *rejected,
		  images_write_fn write, void *ctx, struct images_stats *st, char *err, size_t errlen)
{
	struct line_reader *lr = NULL;
	struct line_plan pl;
	char *realbase = NULL;
	int rc = 0;

	memset(&pl, 0, sizeof(pl));
	memset(st, 0, sizeof(*st));
	realbase = realpath(basedir && basedir[0] ? basedir : ".", NULL);
	if (!realbase) {
		rc = -errno;
		snprintf(err, errlen, "the dataset's folder \"%.*s\": %s", (int)utf8_prefix(basedir && basedir[0] ? basedir : ".", strlen(basedir && basedir[0] ? basedir : "."), 300), basedir && basedir[0] ? basedir : ".",
			 strerror(errno));
		return rc;
	}
	lr = calloc(1, sizeof(*lr));
	if (!lr) {
		free(realbase);
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
		rc = plan_line(&pl, lr->line.base, lr->line.len, realbase, max_file, st->lines, err, errlen);
		if (rc && rc != -ENOMEM && skip_invalid) {
			/* The item goes as a blank line: nothing of it is sent, and
			 * the daemon's line numbers stay the file's. */
			st->rejected++;
			rc = rejected ? reject_add(rejected, st->lines, err) : 0;
			err[0] = '\0';
		} else if (rc) {
			break;
		} else if (pl.nimg) {
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
	free(realbase);
	return rc;
}

static int buf_writer(void *ctx, const void *p, size_t n) { return buf_append(ctx, p, n); }

char *images_data_url(const char *path, uint64_t max_size, char *err, size_t errlen)
{
	struct img_ref ref;
	struct buf out;
	char *url = NULL, *dir = NULL, *realbase = NULL;
	const char *slash = strrchr(path, '/');
	int rc;

	memset(&ref, 0, sizeof(ref));
	buf_init(&out, base64_len((size_t)max_size) + 64);
	dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	if (!dir) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	realbase = realpath(dir, NULL);
	if (!realbase) {
		img_err(err, errlen, "", path, strerror(errno));
		goto out;
	}
	rc = img_check(&ref, realbase, slash ? slash + 1 : path, max_size, "", err, errlen);
	if (!rc)
		rc = img_write(&ref, buf_writer, &out, "", err, errlen);
	if (!rc)
		url = buf_take(&out);
out:
	free(ref.path);
	free(dir);
	free(realbase);
	buf_free(&out);
	return url;
}

/* ---- the MedVLM-R1 / OmniMedVQA JSON layout -------------------------------- */

/* Replaces the image paths of one record (its "image" or "images": a string
 * or an array of strings) by data: URLs; URLs are kept (data: URLs
 * checked). where names the record. */
static int medvlm_record(json_t *rec, const char *realbase, uint64_t max_file, const char *where,
			 struct images_stats *st, char *err, size_t errlen)
{
	static const char *const keys[] = { "image", "images" };
	struct img_ref ref;
	struct buf url;
	int rc = 0;

	for (size_t k = 0; k < 2 && rc == 0; k++) {
		json_t *v = json_object_get(rec, keys[k]), *e;
		size_t i;

		if (json_is_string(v)) {
			json_t *arr = json_pack("[O]", v);

			if (!arr || json_object_set_new(rec, keys[k], arr)) {
				snprintf(err, errlen, "out of memory");
				return -ENOMEM;
			}
			v = arr;
		}
		if (!json_is_array(v))
			continue; /* absent, or the daemon rejects it with its own message */
		if (json_array_size(v) > IMAGES_MAX_PER_LINE) {
			snprintf(err, errlen, "%s%zu images, more than %d", where, json_array_size(v),
				 IMAGES_MAX_PER_LINE);
			return -E2BIG;
		}
		json_array_foreach(v, i, e) {
			const char *s = json_string_value(e);

			if (!s)
				continue;
			if (strncmp(s, "data:", 5) == 0) {
				rc = data_url_check(s, max_file, where, err, errlen);
				if (rc)
					return rc;
				continue;
			}
			if (is_url(s))
				continue;
			memset(&ref, 0, sizeof(ref));
			rc = img_check(&ref, realbase, s, max_file, where, err, errlen);
			if (rc == 0) {
				buf_init(&url, base64_len((size_t)max_file) + 64);
				rc = img_write(&ref, buf_writer, &url, where, err, errlen);
				if (rc == 0 && json_array_set_new(v, i, json_string(url.base ? url.base : "")))
					rc = -ENOMEM;
				buf_free(&url);
			}
			free(ref.path);
			if (rc)
				return rc;
			st->images++;
		}
	}
	return rc;
}

int images_medvlm(FILE *in, const char *basedir, uint64_t max_file, uint64_t max_doc, FILE *out,
		  struct images_stats *st, char *err, size_t errlen)
{
	json_t *root = NULL, *rec;
	json_error_t jerr;
	char *realbase = NULL, where[200];
	struct stat sb;
	size_t i;
	int rc = -EINVAL;

	memset(st, 0, sizeof(*st));
	if (fstat(fileno(in), &sb) == 0 && (uint64_t)sb.st_size > max_doc) {
		snprintf(err, errlen, "%llu bytes, over the %llu byte limit of a document",
			 (unsigned long long)sb.st_size, (unsigned long long)max_doc);
		return -EFBIG;
	}
	realbase = realpath(basedir, NULL);
	if (!realbase) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", basedir, strerror(errno));
		goto out;
	}
	root = json_loadf(in, 0, &jerr);
	if (!root) {
		snprintf(err, errlen, "line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
		goto out;
	}
	if (!json_is_array(root)) {
		snprintf(err, errlen, "expected a JSON array of VQA records");
		goto out;
	}
	rc = fputc('[', out) == EOF ? -EIO : 0;
	json_array_foreach(root, i, rec) {
		if (rc)
			break;
		if (json_is_object(rec)) {
			json_t *id = json_object_get(rec, "id");

			if (json_is_string(id))
				snprintf(where, sizeof(where), "record %zu: item \"%.*s\": ", i + 1,
					 (int)utf8_prefix(json_string_value(id), strlen(json_string_value(id)), 100),
					 json_string_value(id));
			else
				snprintf(where, sizeof(where), "record %zu: ", i + 1);
			rc = medvlm_record(rec, realbase, max_file, where, st, err, errlen);
			if (rc)
				break;
		}
		if ((i && fputs(",\n", out) == EOF) || json_dumpf(rec, out, JSON_COMPACT) != 0) {
			rc = -EIO;
			snprintf(err, errlen, "cannot write the rewritten document: %s", strerror(errno));
			break;
		}
		/* the record's images are written: free them now */
		json_array_set_new(root, i, json_null());
		st->lines++;
	}
	if (!rc && (fputs("]\n", out) == EOF || fflush(out) != 0)) {
		rc = -EIO;
		snprintf(err, errlen, "cannot write the rewritten document: %s", strerror(errno));
	}
	if (!rc)
		st->bytes = (uint64_t)ftello(out);
out:
	json_decref(root);
	free(realbase);
	return rc;
}
