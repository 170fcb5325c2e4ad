#include "stages/sets.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "formats/export.h"
#include "stages/steps.h"
#include "store/store.h"
#include "store/work.h"

const char *sets_kind(int set)
{
	return set == 1 ? "explanation" : set == 2 ? "chain" : NULL;
}

struct page {
	struct store *st;
	int64_t job;
	int64_t dataset;
	const char *kind;
	const struct export_format *format;
	bool ids;
	int64_t *cursor;
	int n;
	int (*emit)(void *, const char *, size_t);
	void *ud;
};

/* A record of a job that chose its items by scores (diq, 3ds) carries them
 * as "selection" beside "id" (so --no-ids leaves both out). Takes line. */
static char *with_selection(struct page *p, int64_t seq, char *line)
{
	json_t *sel = store_artifact_get(p->st, p->job, "selection", seq);
	char *s = sel ? json_dumps(sel, JSON_COMPACT) : NULL, *out = NULL;
	size_t n = strlen(line);

	json_decref(sel);
	/* the record is one object on one line: "...}\n" */
	if (s && n >= 2 && line[n - 1] == '\n' && line[n - 2] == '}' &&
	    asprintf(&out, "%.*s,\"selection\":%s}\n", (int)(n - 2), line, s) >= 0) {
		free(line);
		line = out;
	}
	free(s);
	return line;
}

static int page_one(void *ud, int64_t seq, json_t *content)
{
	struct page *p = ud;
	json_t *item = store_item_get(p->st, p->dataset, seq);
	struct export_opts o = { .no_ids = !p->ids };
	char *output = NULL, *line = NULL;
	int rc = 0;

	*p->cursor = seq;
	p->n++;
	if (!item)
		return 0;
	output = step_sft_output(p->kind, content, item);
	if (!output)
		goto out;
	rc = export_record(p->format, item, output, &o, &line);
	if (rc) {
		log_warn("export: item %lld: cannot format record (%d)", (long long)seq, rc);
		rc = 0;
		goto out;
	}
	if (p->ids)
		line = with_selection(p, seq, line);
	rc = p->emit(p->ud, line, strlen(line));
out:
	free(line);
	free(output);
	json_decref(item);
	return rc;
}

int sets_export_page(struct store *st, int64_t job, int64_t dataset, int set,
		     const struct export_format *format, bool ids,
		     int64_t *cursor, int limit, int (*emit)(void *ud, const char *line, size_t len),
		     void *ud)
{
	struct page p = { .st = st, .job = job, .dataset = dataset, .kind = sets_kind(set), .format = format,
			  .ids = ids, .cursor = cursor, .emit = emit, .ud = ud };
	int rc;

	if (!p.kind)
		return -EINVAL;
	rc = store_artifacts_each(st, job, p.kind, *cursor, limit, page_one, &p);
	if (rc)
		return rc;
	return p.n;
}
