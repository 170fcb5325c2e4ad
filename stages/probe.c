/* The capability probe at submit: a selection that reads the student's
 * prompt logprobs (diq, 3ds) is refused at once, naming the engine and the
 * capability, when the student cannot give them (llama.cpp's server and
 * Ollama ignore echo), instead of failing item by item. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "stages/runner_int.h"
#include "teacher_clients/client.h"

/* A prompt whose tokens any tokenizer splits into several. */
#define PROBE_PROMPT "Question: which organ makes insulin?\nAnswer: the pancreas"

struct probe {
	struct runner *r;
	json_t *spec;
	runner_submit_cb cb;
	void *ud;
	char student[96];
	char strategy[32];
};

/* True when the reply holds logprobs of the prompt's own tokens. */
static bool probe_has_prompt_logprobs(json_t *reply, char *what, size_t whatlen)
{
	json_t *c0 = json_array_get(json_object_get(reply, "choices"), 0);
	json_t *lp = json_object_get(c0, "logprobs");
	json_t *tok = json_object_get(lp, "tokens"), *tlp = json_object_get(lp, "token_logprobs");
	json_t *off = json_object_get(lp, "text_offset");
	size_t plen = strlen(PROBE_PROMPT), n = 0;

	const char *text = json_string_value(json_object_get(c0, "text"));

	if (!text || strncmp(text, PROBE_PROMPT, plen) != 0) {
		snprintf(what, whatlen, "a text that does not start with the prompt (echo ignored)");
		return false;
	}
	if (!json_is_object(lp)) {
		snprintf(what, whatlen, "no logprobs at all");
		return false;
	}
	if (!json_is_array(tok) || !json_is_array(tlp)) {
		snprintf(what, whatlen, "logprobs without tokens and token_logprobs");
		return false;
	}
	for (size_t i = 0; i < json_array_size(tlp); i++) {
		json_t *o = json_array_get(off, i);
		bool in_prompt = json_is_integer(o) ? json_integer_value(o) < (json_int_t)plen
						    : i + 1 < json_array_size(tlp);

		if (in_prompt && json_is_number(json_array_get(tlp, i)))
			n++;
	}
	if (n == 0) {
		snprintf(what, whatlen, "logprobs of the generated token only (%zu token%s)",
			 json_array_size(tlp), json_array_size(tlp) == 1 ? "" : "s");
		return false;
	}
	return true;
}

static void probe_done(void *ud, const struct client_result *res)
{
	struct probe *p = ud;
	struct mt_err err = { 0 };
	char what[120];
	int64_t id = 0;
	int rc;

	if (res->err) {
		rc = mt_err_set(&err, -EINVAL, "capability_probe", "student",
				"cannot probe student engine \"%s\" for prompt logprobs (needed by "
				"selection strategy %s): %s",
				p->student, p->strategy, res->message ? res->message : "no reply");
	} else if (!probe_has_prompt_logprobs(res->reply, what, sizeof(what))) {
		const char *model = json_string_value(json_object_get(res->reply, "model"));

		rc = mt_err_set(&err, -EINVAL, "missing_capability", "student",
				"student engine \"%s\"%s%s%s does not give prompt logprobs: "
				"/v1/completions with echo:true, logprobs:1 returned %s. Selection "
				"strategy %s needs them (vLLM and SGLang give them; llama.cpp's "
				"server and Ollama do not)",
				p->student, model ? " (model " : "", model ? model : "", model ? ")" : "",
				what, p->strategy);
	} else {
		rc = runner_job_submit(p->r, p->spec, &id, &err);
	}
	if (rc == 0)
		log_info("submit: student %s gives prompt logprobs: job_%" PRId64 " created",
			 p->student, id);
	p->cb(p->ud, rc, id, &err);
	json_decref(p->spec);
	free(p);
}

int runner_job_submit_probed(struct runner *r, json_t *spec, int64_t *id, struct mt_err *err,
			     runner_submit_cb cb, void *ud)
{
	struct jobspec js = { 0 };
	struct client_opts o = { .temperature = 0, .max_tokens = 1, .logprobs = 1, .echo = true,
				 .no_cache = true };
	struct probe *p;
	json_t *prompts = NULL;
	int64_t ds;
	int rc;

	if (jobspec_parse(spec, &js, err) != 0 || !select_get(js.strategy)->needs_logprobs)
		return runner_job_submit(r, spec, id, err);
	/* everything else first: a spec with a typo is refused without a call */
	rc = runner_spec_check(r, spec, &js, &ds, &prompts, err);
	json_decref(prompts);
	if (rc)
		return rc;
	p = calloc(1, sizeof(*p));
	if (!p)
		return mt_err_set(err, -ENOMEM, "internal", NULL, "out of memory");
	p->r = r;
	p->spec = json_incref(spec);
	p->cb = cb;
	p->ud = ud;
	snprintf(p->student, sizeof(p->student), "%s", js.student);
	snprintf(p->strategy, sizeof(p->strategy), "%s", select_get(js.strategy)->name);
	rc = client_complete(r->cl, js.student, &o, PROBE_PROMPT, probe_done, p);
	if (rc) {
		json_decref(p->spec);
		free(p);
		return mt_err_set(err, -EINVAL, "capability_probe", "student",
				  "cannot probe student engine \"%s\": %s", js.student, strerror(-rc));
	}
	return 1;
}
