#include "stages/sets.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "formats/export.h"
#include "stages/kinds.h"
#include "stages/prompts.h"
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
	json_t *prompts; /* an rl job's prompt snapshot: its set is its kept prompts */
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

/* The prompt snapshot of job when it is an rl job (its set 1 is made in the
 * rl phase), else NULL. */
static json_t *rl_prompts(struct store *st, int64_t job)
{
	json_t *row = store_job_get(st, job), *snap = NULL;
	int k = job_kind_parse(json_string_value(json_object_get(row, "kind")));

	if (k >= 0 && job_kind_def((enum job_kind)k)->set1_phase == PHASE_RL)
		snap = store_job_prompts(st, job);
	json_decref(row);
	return snap;
}

/* An rl job's record: the item if its artifact says the keep rule kept it,
 * asked with the job's r1 prompt. */
static int page_rl(struct page *p, int64_t seq, json_t *content, json_t *item)
{
	struct export_opts o = { .no_ids = !p->ids };
	json_t *msgs = NULL;
	char *line = NULL, err[256];
	int rc = 0;

	if (!json_is_true(json_object_get(content, "kept")))
		return 0;
	if (prompts_render(p->prompts, step_def(STEP_RL_SAMPLE)->template_name, item, NULL, &msgs,
			   err, sizeof(err)) != 0) {
		log_warn("export: item %lld: %s", (long long)seq, err);
		return 0;
	}
	o.prompt = json_string_value(json_object_get(json_array_get(msgs, json_array_size(msgs) - 1),
						     "content"));
	rc = export_record(p->format, item, NULL, &o, &line);
	if (rc) {
		log_warn("export: item %lld: cannot format record (%d)", (long long)seq, rc);
		rc = 0;
	} else {
		rc = p->emit(p->ud, line, strlen(line));
	}
	free(line);
	json_decref(msgs);
	return rc;
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
	if (p->prompts) {
		rc = page_rl(p, seq, content, item);
		goto out;
	}
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
	if (set == 1) {
		p.prompts = rl_prompts(st, job);
		if (p.prompts)
			p.kind = step_def(STEP_RL_SAMPLE)->writes;
	}
	rc = store_artifacts_each(st, job, p.kind, *cursor, limit, page_one, &p);
	json_decref(p.prompts);
	if (rc)
		return rc;
	return p.n;
}
