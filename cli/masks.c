/* The masks import layouts read by the CLI (cli/masks.h). */
#include "cli/masks.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <png.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli/images.h"
#include "common/base64.h"

/* A file's bytes, at most IMAGES_MAX_FILE of them. */
static int read_file(const char *path, const char *name, uint8_t **out, size_t *len, char *err,
                     size_t errlen)
{
	FILE *f = fopen(path, "rb");
	struct stat sb;
	uint8_t *b = NULL;
	int rc = -EINVAL;

	*out = NULL;
	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", name, strerror(errno));
		return rc;
	}
	if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", name);
		goto out;
	}
	if ((uint64_t)sb.st_size > IMAGES_MAX_FILE) {
		snprintf(err, errlen, "%s: %lld bytes, larger than %u", name, (long long)sb.st_size,
		         IMAGES_MAX_FILE);
		goto out;
	}
	b = malloc((size_t)sb.st_size + 1);
	if (!b) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (fread(b, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) {
		snprintf(err, errlen, "%s: read error", name);
		rc = -EIO;
		goto out;
	}
	*out = b;
	*len = (size_t)sb.st_size;
	b = NULL;
	rc = 0;
out:
	free(b);
	fclose(f);
	return rc;
}

/* Decodes a PNG whole with libpng: its size, and for a mask whether any
 * pixel is not 0 (gray masks; a palette's index 0 need not be black, so
 * palette masks are left to the daemon). */
static int png_check(const uint8_t *p, size_t n, const char *name, bool mask, uint32_t *w,
                     uint32_t *h, char *err, size_t errlen)
{
	png_image img;
	uint8_t *buf = NULL;
	int rc = -EINVAL;
	bool palette;

	memset(&img, 0, sizeof(img));
	img.version = PNG_IMAGE_VERSION;
	if (!images_magic_mime(p, n) || strcmp(images_magic_mime(p, n), "image/png") != 0) {
		snprintf(err, errlen, "%s: not a PNG%s%s", name, images_magic_mime(p, n) ? " (it is " : "",
		         images_magic_mime(p, n) ? images_magic_mime(p, n) : "");
		if (images_magic_mime(p, n))
			strncat(err, "; convert it to PNG)", errlen - strlen(err) - 1);
		return -EINVAL;
	}
	if (!png_image_begin_read_from_memory(&img, p, n)) {
		snprintf(err, errlen, "%s: a damaged PNG: %s", name, img.message);
		goto out;
	}
	*w = img.width;
	*h = img.height;
	if (img.width > MASKS_MAX_SIDE || img.height > MASKS_MAX_SIDE) {
		snprintf(err, errlen, "%s: %ux%u pixels, larger than %ux%u", name, img.width, img.height,
		         MASKS_MAX_SIDE, MASKS_MAX_SIDE);
		goto out;
	}
	palette = img.format & PNG_FORMAT_FLAG_COLORMAP;
	img.format = PNG_FORMAT_GRAY;
	buf = malloc(PNG_IMAGE_SIZE(img));
	if (!buf) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (!png_image_finish_read(&img, NULL, buf, 0, NULL)) {
		snprintf(err, errlen, "%s: a damaged PNG: %s", name, img.message);
		goto out;
	}
	if (mask && !palette) {
		size_t i, npx = (size_t)img.width * img.height;

		for (i = 0; i < npx && !buf[i]; i++)
			;
		if (i == npx) {
			snprintf(err, errlen, "%s: the mask is empty: every pixel is 0", name);
			goto out;
		}
	}
	rc = 0;
out:
	png_image_free(&img);
	free(buf);
	return rc;
}

static char *data_url(const uint8_t *p, size_t n)
{
	static const char pre[] = "data:image/png;base64,";
	char *s = malloc(sizeof(pre) + base64_len(n) + 1);

	if (!s)
		return NULL;
	memcpy(s, pre, sizeof(pre) - 1);
	base64_encode(p, n, s + sizeof(pre) - 1);
	return s;
}

/* One pair: checked, then written as one line. img_name and mask_name are
 * how errors name the files; the paths are opened. */
static int pair_write(FILE *out, const char *id, const char *img_path, const char *img_name,
                      const char *mask_path, const char *mask_name, char *err, size_t errlen)
{
	uint8_t *ib = NULL, *mb = NULL;
	size_t in = 0, mn = 0;
	uint32_t iw, ih, mw, mh;
	char *iu = NULL, *mu = NULL, *line = NULL;
	json_t *o = NULL;
	int rc;

	rc = read_file(img_path, img_name, &ib, &in, err, errlen);
	if (!rc)
		rc = read_file(mask_path, mask_name, &mb, &mn, err, errlen);
	if (!rc)
		rc = png_check(ib, in, img_name, false, &iw, &ih, err, errlen);
	if (!rc)
		rc = png_check(mb, mn, mask_name, true, &mw, &mh, err, errlen);
	if (rc)
		goto out;
	if (iw != mw || ih != mh) {
		snprintf(err, errlen, "%s is %ux%u pixels but its image %s is %ux%u: sizes must match",
		         mask_name, mw, mh, img_name, iw, ih);
		rc = -EINVAL;
		goto out;
	}
	iu = data_url(ib, in);
	mu = data_url(mb, mn);
	o = json_pack("{s:s, s:s, s:s, s:s}", "id", id, "file", img_name, "image", iu ? iu : "",
	              "mask", mu ? mu : "");
	line = o && iu && mu ? json_dumps(o, JSON_COMPACT) : NULL;
	if (!line) {
		snprintf(err, errlen, "%s: cannot encode the pair (an id that is not UTF-8?)", img_name);
		rc = -EINVAL;
		goto out;
	}
	if (strlen(line) >= MASKS_MAX_LINE) {
		snprintf(err, errlen, "%s with %s: %zu bytes as a dataset line, over the daemon's %zu",
		         img_name, mask_name, strlen(line), MASKS_MAX_LINE);
		rc = -EINVAL;
		goto out;
	}
	if (fprintf(out, "%s\n", line) < 0) {
		snprintf(err, errlen, "cannot write the import body: %s", strerror(errno));
		rc = -EIO;
	}
out:
	free(ib);
	free(mb);
	free(iu);
	free(mu);
	free(line);
	json_decref(o);
	return rc;
}

static bool is_png_name(const char *s)
{
	const char *dot = strrchr(s, '.');

	return dot && strcasecmp(dot, ".png") == 0;
}

static int png_filter(const struct dirent *d) { return d->d_name[0] != '.'; }

static int join(char *out, size_t len, const char *a, const char *b, const char *c)
{
	int n = snprintf(out, len, "%s/%s%s%s", a, b, c ? "/" : "", c ? c : "");

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The id of a pair: the file name without its extension. */
static void stem(const char *name, char *out, size_t len)
{
	const char *dot = strrchr(name, '.');
	size_t n = dot && dot != name ? (size_t)(dot - name) : strlen(name);

	snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), name);
}

static int build_folder(const char *dir, FILE *out, uint64_t *pairs, char *err, size_t errlen)
{
	struct dirent **imgs = NULL, **masks = NULL;
	char ip[PATH_MAX], mp[PATH_MAX], iname[PATH_MAX], mname[PATH_MAX], id[256];
	int ni = -1, nm = -1, rc = 0;
	struct stat sb;

	if (join(ip, sizeof(ip), dir, "img", NULL) || join(mp, sizeof(mp), dir, "mask", NULL)) {
		snprintf(err, errlen, "%s: path too long", dir);
		return -ENAMETOOLONG;
	}
	ni = scandir(ip, &imgs, png_filter, alphasort);
	if (ni < 0) {
		snprintf(err, errlen, "%s/img: %s (a masks folder holds img/ and mask/)", dir, strerror(errno));
		rc = -ENOENT;
		goto out;
	}
	nm = scandir(mp, &masks, png_filter, alphasort);
	if (nm < 0) {
		snprintf(err, errlen, "%s/mask: %s (a masks folder holds img/ and mask/)", dir, strerror(errno));
		rc = -ENOENT;
		goto out;
	}
	for (int i = 0; i < nm && !rc; i++) {
		if (join(ip, sizeof(ip), dir, "img", masks[i]->d_name) == 0 && stat(ip, &sb) != 0) {
			snprintf(err, errlen, "mask/%s has no image img/%s (the names must match)",
			         masks[i]->d_name, masks[i]->d_name);
			rc = -ENOENT;
		}
	}
	for (int i = 0; i < ni && !rc; i++) {
		const char *name = imgs[i]->d_name;

		snprintf(iname, sizeof(iname), "img/%s", name);
		snprintf(mname, sizeof(mname), "mask/%s", name);
		if (!is_png_name(name)) {
			snprintf(err, errlen, "%s: not a PNG (the masks import reads PNG images and masks)", iname);
			rc = -EINVAL;
			break;
		}
		if (join(ip, sizeof(ip), dir, "img", name) || join(mp, sizeof(mp), dir, "mask", name)) {
			snprintf(err, errlen, "%s: path too long", iname);
			rc = -ENAMETOOLONG;
			break;
		}
		if (stat(mp, &sb) != 0) {
			snprintf(err, errlen, "%s has no mask %s (the names must match)", iname, mname);
			rc = -ENOENT;
			break;
		}
		stem(name, id, sizeof(id));
		rc = pair_write(out, id, ip, iname, mp, mname, err, errlen);
		if (!rc)
			(*pairs)++;
	}
	if (!rc && ni == 0) {
		snprintf(err, errlen, "%s/img: no images", dir);
		rc = -ENOENT;
	}
out:
	for (int i = 0; i < ni; i++)
		free(imgs[i]);
	for (int i = 0; i < nm; i++)
		free(masks[i]);
	free(imgs);
	free(masks);
	return rc;
}

/* A path a JSONL line names: relative, without "..", inside base. */
static int line_path(const char *base, long line, const char *key, const char *rel, char *out,
                     size_t len, char *err, size_t errlen)
{
	if (!rel || !rel[0]) {
		snprintf(err, errlen, "line %ld: \"%s\" must be a non-empty string (a path)", line, key);
		return -EINVAL;
	}
	if (rel[0] == '/' || strstr(rel, "..")) {
		snprintf(err, errlen, "line %ld: %s \"%s\": a path must be relative to the file's folder, "
		         "without \"..\"", line, key, rel);
		return -EINVAL;
	}
	if (join(out, len, base, rel, NULL)) {
		snprintf(err, errlen, "line %ld: %s: path too long", line, key);
		return -ENAMETOOLONG;
	}
	return 0;
}

static int build_jsonl(const char *file, FILE *out, uint64_t *pairs, char *err, size_t errlen)
{
	FILE *f = fopen(file, "rb");
	char *lbuf = NULL, ip[PATH_MAX], mp[PATH_MAX], id[256], inner[400];
	const char *slash = strrchr(file, '/');
	char base[PATH_MAX];
	size_t cap = 0;
	long line = 0;
	ssize_t got;
	int rc = 0;

	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		return rc;
	}
	snprintf(base, sizeof(base), "%.*s", slash ? (int)(slash - file) : 1, slash ? file : ".");
	while (!rc && (got = getline(&lbuf, &cap, f)) >= 0) {
		json_error_t je;
		json_t *o, *v;
		const char *im, *mk;

		line++;
		if (strspn(lbuf, " \t\r\n") == (size_t)got)
			continue;
		o = json_loads(lbuf, 0, &je);
		if (!json_is_object(o)) {
			snprintf(err, errlen, "line %ld: not a JSON object (%s)", line, o ? "another value" : je.text);
			json_decref(o);
			rc = -EINVAL;
			break;
		}
		im = json_string_value(json_object_get(o, "image"));
		mk = json_string_value(json_object_get(o, "mask"));
		rc = line_path(base, line, "image", im, ip, sizeof(ip), err, errlen);
		if (!rc)
			rc = line_path(base, line, "mask", mk, mp, sizeof(mp), err, errlen);
		v = json_object_get(o, "id");
		if (!rc && v && !json_is_string(v)) {
			snprintf(err, errlen, "line %ld: \"id\" must be a string", line);
			rc = -EINVAL;
		}
		if (!rc) {
			if (v)
				snprintf(id, sizeof(id), "%s", json_string_value(v));
			else
				stem(strrchr(im, '/') ? strrchr(im, '/') + 1 : im, id, sizeof(id));
			rc = pair_write(out, id, ip, im, mp, mk, inner, sizeof(inner));
			if (rc)
				snprintf(err, errlen, "line %ld: %s", line, inner);
			else
				(*pairs)++;
		}
		json_decref(o);
	}
	if (!rc && line == 0) {
		snprintf(err, errlen, "%s: no lines", file);
		rc = -ENOENT;
	}
	free(lbuf);
	fclose(f);
	return rc;
}

int masks_build(const char *path, FILE *out, uint64_t *pairs, char *err, size_t errlen)
{
	struct stat sb;

	*pairs = 0;
	if (stat(path, &sb) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (S_ISDIR(sb.st_mode))
		return build_folder(path, out, pairs, err, errlen);
	return build_jsonl(path, out, pairs, err, errlen);
}
