/* layers: store common */
/* Fuzz target: the dataset importers (store/import.h). The first byte picks
 * the format (below 192, byte % 6: native, medqa, medmcqa, pubmedqa,
 * sharegpt, csv; from 192, byte % 2: medvlm, masks)
 * and, from its higher bits, small caps and an atomic import that stops at
 * the first rejection; the rest is the file, fed in pieces split by the
 * input's hash. Checks: every item is a normalized item (store/import.h),
 * ids unique, reasons valid UTF-8 and bounded, counts match the callbacks. */
#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "common/utf8.h"
#include "formats/import.h"
#include "tests/fuzz/fuzz.h"

static const char *const formats[] = {"native", "medqa", "medmcqa", "pubmedqa", "sharegpt", "csv",
				       "medvlm", "masks"};

struct state {
	json_t *ids;
	long items, errors;
	bool stop_on_error;
};

static void check_string(json_t *v, const char *what)
{
	const char *s;

	if (!json_is_string(v))
		fuzz_fail("%s is not a string", what);
	s = json_string_value(v);
	if (json_string_length(v) != strlen(s) || utf8_check(s, strlen(s)) != strlen(s))
		fuzz_fail("%s is not valid UTF-8 without NUL", what);
}

static int on_item(void *ud, json_t *item, long line)
{
	struct state *st = ud;
	json_t *opts, *v;
	const char *key, *id;

	fuzz_assert(json_is_object(item));
	fuzz_assert(line >= 0);
	check_string(json_object_get(item, "id"), "id");
	check_string(json_object_get(item, "question"), "question");
	check_string(json_object_get(item, "answer"), "answer");
	fuzz_assert(json_string_length(json_object_get(item, "question")) > 0);
	fuzz_assert(json_string_length(json_object_get(item, "answer")) > 0);
	opts = json_object_get(item, "options");
	if (opts) {
		fuzz_assert(json_is_object(opts) && json_object_size(opts) >= 2);
		json_object_foreach(opts, key, v) check_string(v, "option");
		fuzz_assert(json_object_get(opts, json_string_value(json_object_get(item, "answer"))));
	}
	if ((v = json_object_get(item, "context")))
		check_string(v, "context");
	if ((v = json_object_get(item, "explanation")))
		check_string(v, "explanation");
	if ((v = json_object_get(item, "topic")))
		check_string(v, "topic");
	if ((v = json_object_get(item, "meta")))
		fuzz_assert(json_is_object(v));
	if ((v = json_object_get(item, "mask")))
		fuzz_assert(json_is_object(v) && json_object_get(item, "images"));
	if ((v = json_object_get(item, "images"))) {
		size_t i;
		json_t *im;
		fuzz_assert(json_is_array(v));
		json_array_foreach(v, i, im) check_string(im, "image");
	}
	id = json_string_value(json_object_get(item, "id"));
	if (json_object_get(st->ids, id))
		fuzz_fail("duplicate id \"%s\" handed out", id);
	json_object_set_new(st->ids, id, json_true());
	st->items++;
	json_decref(item);
	return 0;
}

static int on_error(void *ud, long line, const char *reason)
{
	struct state *st = ud;
	size_t n = strlen(reason);

	fuzz_assert(line >= 0);
	fuzz_assert(n > 0 && n < IMPORT_REASON_MAX);
	fuzz_assert(utf8_check(reason, n) == n);
	st->errors++;
	return st->stop_on_error ? 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state st = {0};
	struct import_opts opts = {0};
	struct import_cb cb = {.on_item = on_item, .on_error = on_error, .ud = &st};
	struct import_parser *p;
	struct fuzz_split split;
	char err[256];
	size_t off;
	long items = -1, errors = -1;
	int rc = 0;

	if (size < 1)
		return 0;
	if (data[0] / 6 % 2) {
		opts.max_line_bytes = 64;
		opts.max_doc_bytes = 512;
	}
	st.stop_on_error = data[0] / 12 % 2;
	st.ids = json_object();
	p = import_parser_new(formats[data[0] < 192 ? data[0] % 6 : 6 + data[0] % 2], &opts, &cb, err,
			     sizeof(err));
	fuzz_assert(p != NULL && st.ids != NULL);
	fuzz_split_init(&split, data, size);
	for (off = 1; off < size;) {
		size_t n = fuzz_split_next(&split, size - off, 4096);
		rc = import_parser_feed(p, (const char *)data + off, n);
		if (rc == -ECANCELED)
			fuzz_assert(st.stop_on_error && st.errors > 0);
		else if (rc != 0 && !(st.stop_on_error && rc == 1))
			fuzz_fail("feed returned %d", rc);
		off += n;
	}
	rc = import_parser_finish(p);
	fuzz_assert(rc == 0 || rc == 1 || rc == -ECANCELED);
	fuzz_assert(rc == 0 || st.stop_on_error);
	fuzz_assert(import_parser_finish(p) != 0);
	import_parser_counts(p, &items, &errors);
	fuzz_assert(items == st.items && errors == st.errors);
	if (st.stop_on_error)
		fuzz_assert(st.errors <= 1);
	import_parser_free(p);
	json_decref(st.ids);
	return 0;
}
