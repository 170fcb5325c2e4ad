#include "daemon/upload.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "store/store.h"

struct upload {
	struct store *st;
	struct import_parser *parser;
	struct upload_caps caps;
	int64_t dataset;
	bool skip_invalid;
	bool done;          /* committed or dropped */
	bool failed;        /* atomic import hit a bad record: store nothing more */
	int store_error;
	int feed_error;
	json_t **batch;     /* caps.batch_items slots */
	size_t nbatch;
	int64_t next_seq;
	json_t *rejected;
	int64_t nrejected;
	long first_bad_line;
	char first_bad[IMPORT_REASON_MAX];
	char name[UPLOAD_NAME_MAX];
	char format[32];
	/* No format given: the first bytes wait here until they tell the
	 * layout (import_format_sniff); then the parser and the dataset are
	 * made and these bytes fed first. */
	bool sniffing;
	struct buf head;
	int sniff_error;    /* -EBADMSG: layout not told (sniff_msg says why) */
	char sniff_msg[300];
};

static void upload_batch_drop(struct upload *u)
{
	for (size_t i = 0; i < u->nbatch; i++)
		json_decref(u->batch[i]);
	u->nbatch = 0;
}

static int upload_flush(struct upload *u)
{
	size_t dup = 0;
	int rc = 0;

	if (!u->nbatch)
		return 0;
	if (!u->failed && !u->store_error) {
		rc = store_items_insert(u->st, u->dataset, u->next_seq, u->batch, u->nbatch, &dup);
		if (rc == -EEXIST) {
			u->failed = true;
			snprintf(u->first_bad, sizeof(u->first_bad), "duplicate id \"%s\"",
				 json_string_value(json_object_get(u->batch[dup], "id")));
		} else if (rc) {
			u->store_error = rc;
		}
	}
	u->next_seq += (int64_t)u->nbatch;
	if (u->caps.items_read)
		*u->caps.items_read += u->nbatch;
	upload_batch_drop(u);
	return rc;
}

static int upload_on_item(void *ud, json_t *item, long line)
{
	struct upload *u = ud;

	(void)line;
	if (u->failed) {
		json_decref(item);
		return 0;
	}
	u->batch[u->nbatch++] = item;
	if (u->nbatch == u->caps.batch_items)
		upload_flush(u);
	return 0;
}

static int upload_on_error(void *ud, long line, const char *reason)
{
	struct upload *u = ud;

	if (u->nrejected == 0) {
		u->first_bad_line = line;
		snprintf(u->first_bad, sizeof(u->first_bad), "%s", reason);
	}
	u->nrejected++;
	if ((size_t)u->nrejected <= u->caps.rejected_max)
		json_array_append_new(u->rejected,
				      json_pack("{s:i, s:s}", "line", (int)line, "reason", reason));
	if (!u->skip_invalid)
		u->failed = true; /* keep reading to report more lines, store nothing */
	return 0;
}

/* Frees what only the input needed (the parser's id set can be large). */
static void upload_release(struct upload *u)
{
	if (u->batch)
		upload_batch_drop(u);
	free(u->batch);
	u->batch = NULL;
	import_parser_free(u->parser);
	u->parser = NULL;
	buf_free(&u->head);
	json_decref(u->rejected);
	u->rejected = NULL;
}

static void upload_drop(struct upload *u)
{
	if (!u->done && u->dataset > 0)
		store_dataset_abort(u->st, u->dataset);
	u->done = true;
}

/* Makes the parser for fmt and the dataset (state "importing"). */
static int upload_start(struct upload *u, const struct import_format *fmt, struct mt_err *e)
{
	struct import_cb cb = { upload_on_item, upload_on_error, u };
	char err[256];
	int rc;

	snprintf(u->format, sizeof(u->format), "%s", fmt->name);
	u->parser = import_parser_new(fmt->name, &u->caps.import, &cb, err, sizeof(err));
	if (!u->parser)
		return mt_err_set(e, -EBADMSG, "bad_format", "format", "%s", err);
	rc = store_dataset_create(u->st, u->name, fmt->name, &u->dataset);
	if (rc)
		return mt_err_set(e, -EIO, "store", NULL, "cannot create the dataset: %s", strerror(-rc));
	return 0;
}

/* The dataset's name into out: name when no dataset has it; else, with
 * unique, the first free "name-2", "name-3", ...; without, a 409. */
static int upload_name_pick(struct store *st, const char *name, bool unique, char *out, size_t outlen,
			    struct mt_err *e)
{
	int64_t id = 0;
	int rc = store_dataset_name_find(st, name, &id);

	snprintf(out, outlen, "%s", name);
	if (rc < 0)
		return mt_err_set(e, -EIO, "store", NULL, "cannot look up dataset names: %s", strerror(-rc));
	if (rc == 0)
		return 0;
	if (!unique)
		return mt_err_set(e, -EALREADY, "name_taken", "name",
				  "a dataset named \"%s\" already exists (ds_%" PRId64
				  "); choose another name (a job naming it would not know which one you mean)",
				  name, id);
	for (int n = 2; n < 10000; n++) {
		if ((size_t)snprintf(out, outlen, "%s-%d", name, n) >= outlen)
			return mt_err_set(e, -EBADMSG, "bad_name", "name", "name is longer than %d bytes",
					  UPLOAD_NAME_MAX - 8);
		rc = store_dataset_name_find(st, out, &id);
		if (rc <= 0)
			return rc < 0 ? mt_err_set(e, -EIO, "store", NULL, "cannot look up dataset names: %s",
						   strerror(-rc))
				      : 0;
	}
	return mt_err_set(e, -EALREADY, "name_taken", "name", "too many datasets named \"%s-N\"", name);
}

int upload_new(struct store *st, const char *name, const char *format, bool skip_invalid, bool unique,
	       const struct upload_caps *caps, struct upload **out, struct mt_err *e)
{
	struct upload *u = NULL;
	int rc;

	*out = NULL;
	if (format && *format && !import_format_known(format))
		return mt_err_set(e, -EBADMSG, "bad_format", "format",
				  "unknown format \"%s\"; expected one of: %s", format,
				  import_format_list());
	if (name && strlen(name) >= UPLOAD_NAME_MAX)
		return mt_err_set(e, -EBADMSG, "bad_name", "name", "name is longer than %d bytes",
				  UPLOAD_NAME_MAX - 1);
	u = calloc(1, sizeof(*u));
	if (!u)
		return mt_err_set(e, -ENOMEM, "oom", NULL, "out of memory");
	u->st = st;
	if (caps)
		u->caps = *caps;
	if (!u->caps.batch_items)
		u->caps.batch_items = UPLOAD_BATCH_DEFAULT;
	if (!u->caps.rejected_max)
		u->caps.rejected_max = UPLOAD_REJECTED_DEFAULT;
	u->skip_invalid = skip_invalid;
	if (!name || !*name) {
		name = "unnamed";
		unique = true;
	}
	rc = upload_name_pick(st, name, unique, u->name, sizeof(u->name), e);
	if (rc)
		goto out;
	u->batch = calloc(u->caps.batch_items, sizeof(*u->batch));
	u->rejected = json_array();
	buf_init(&u->head, IMPORT_SNIFF_MAX);
	if (!u->batch || !u->rejected) {
		rc = mt_err_set(e, -ENOMEM, "oom", NULL, "out of memory");
		goto out;
	}
	if (!format || !*format) {
		u->sniffing = true;
		*out = u;
		return 0;
	}
	rc = upload_start(u, import_format_find(format), e);
	if (rc)
		goto out;
	*out = u;
	u = NULL;
out:
	upload_free(u);
	return rc;
}

/* The head is enough (or all there is): picks the layout, starts, and
 * feeds the head. Errors are kept for upload_finish. */
static void upload_sniff_decide(struct upload *u, bool all)
{
	const struct import_format *fmt;
	struct mt_err e = { 0 };
	int rc;

	u->sniffing = false;
	fmt = import_format_sniff(u->head.base ? u->head.base : "", u->head.len, all, u->sniff_msg,
				  sizeof(u->sniff_msg));
	if (!fmt) {
		u->sniff_error = -EBADMSG;
		goto out;
	}
	rc = upload_start(u, fmt, &e);
	if (rc) {
		u->sniff_error = rc;
		snprintf(u->sniff_msg, sizeof(u->sniff_msg), "%s", e.message);
		goto out;
	}
	if (u->head.len)
		upload_feed(u, u->head.base, u->head.len);
out:
	buf_free(&u->head);
}

int upload_feed(struct upload *u, const char *data, size_t len)
{
	int rc;

	if (u->sniff_error)
		return 0; /* reported by upload_finish; the rest is read and dropped */
	if (u->sniffing) {
		size_t room = IMPORT_SNIFF_MAX - u->head.len, take = len < room ? len : room;

		if (buf_append(&u->head, data, take) != 0) {
			u->feed_error = -ENOMEM;
			u->sniff_error = -ENOMEM;
			snprintf(u->sniff_msg, sizeof(u->sniff_msg), "out of memory");
			return -ENOMEM;
		}
		if (!import_sniff_enough(u->head.base, u->head.len))
			return 0;
		upload_sniff_decide(u, false);
		if (u->sniff_error || take == len)
			return 0;
		data += take;
		len -= take;
	}
	rc = import_parser_feed(u->parser, data, len);

	if (rc && !u->feed_error)
		u->feed_error = rc;
	return rc;
}

int upload_finish(struct upload *u, json_t **result, struct mt_err *e)
{
	long items = 0;
	int rc;

	*result = NULL;
	if (u->sniffing)
		upload_sniff_decide(u, true);
	if (u->sniff_error) {
		rc = u->sniff_error == -EBADMSG
			     ? mt_err_set(e, -EBADMSG, "bad_format", "format", "%s", u->sniff_msg)
			     : mt_err_set(e, u->sniff_error, u->sniff_error == -EIO ? "store" : "oom", NULL, "%s",
					  u->sniff_msg);
		upload_drop(u);
		upload_release(u);
		return rc;
	}
	rc = import_parser_finish(u->parser);
	if (rc && !u->feed_error)
		u->feed_error = rc;
	upload_flush(u);
	import_parser_counts(u->parser, &items, NULL);
	if (u->store_error) {
		rc = mt_err_set(e, -EIO, "store", NULL, "cannot store the dataset: %s",
				strerror(-u->store_error));
	} else if (u->feed_error) {
		rc = mt_err_set(e, -ENOMEM, "oom", NULL, "out of memory reading the dataset: %s",
				strerror(-u->feed_error));
	} else if (u->failed || (items == 0 && u->nrejected > 0)) {
		if (u->first_bad_line > 0)
			rc = mt_err_set(e, -EINVAL, "invalid_dataset", "body", "line %ld: %s",
					u->first_bad_line, u->first_bad);
		else
			rc = mt_err_set(e, -EINVAL, "invalid_dataset", "body", "%s", u->first_bad);
		*result = json_pack("{s:O, s:I, s:s}", "rejected", u->rejected, "rejected_count",
				    (json_int_t)u->nrejected, "format", u->format);
	} else if (store_dataset_finish(u->st, u->dataset, items, u->rejected) != 0) {
		rc = mt_err_set(e, -EIO, "store", NULL, "cannot finish the dataset import");
	} else {
		u->done = true;
		*result = store_dataset_get(u->st, u->dataset);
		if (!*result)
			return mt_err_set(e, -EIO, "store", NULL, "cannot read back dataset ds_%" PRId64,
					  u->dataset);
		json_object_set_new(*result, "rejected_count", json_integer(u->nrejected));
		log_info("dataset ds_%" PRId64 " (%s, %s): %ld items, %" PRId64 " rejected", u->dataset,
			 u->name, u->format, items, u->nrejected);
		upload_release(u);
		/* A large import leaves a large heap (the parser's id set); hand it
		 * back to the system rather than carry it through the next job. */
		if (items > 100000)
			malloc_trim(0);
		return 0;
	}
	upload_drop(u);
	upload_release(u);
	return rc;
}

void upload_abort(struct upload *u)
{
	if (!u)
		return;
	log_warn("dataset upload %s aborted by the client; nothing stored", u->name);
	upload_free(u);
}

void upload_free(struct upload *u)
{
	if (!u)
		return;
	upload_drop(u);
	upload_release(u);
	free(u);
}
