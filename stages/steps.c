#include "stages/steps.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/utf8.h"
#include "stages/grade.h"
#include "stages/prompts.h"
#include "stages/steps_select.h"
#include "stages/refer.h"
#include "stages/textcheck.h"

static const struct step_def steps[STEP__N];

const struct step_def *step_def(enum step s)
{
	return &steps[(s >= 0 && s < STEP__N) ? s : STEP_SCREEN];
}

const char *step_name(enum step s)
{
	return (s >= 0 && s < STEP__N) ? steps[s].name : "?";
}

int step_parse(const char *name)
{
	for (int i = 0; i < STEP__N; i++)
		if (strcmp(name, steps[i].name) == 0)
			return i;
	return -1;
}

bool step_is_student(enum step s) { return s >= 0 && s < STEP__N && steps[s].student; }

static json_t *schema_screen(void)
{
	return json_pack("{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s, s:i, s:i}, s:{s:s, s:i, s:i}, s:{s:s}},"
			 " s:[s,s], s:b}",
			 "type", "object", "properties",
			 "keep", "type", "boolean",
			 "reason", "type", "string",
			 "quality", "type", "integer", "minimum", 1, "maximum", 5,
			 "difficulty", "type", "integer", "minimum", 1, "maximum", 5,
			 "topic", "type", "string",
			 "required", "keep", "reason", "additionalProperties", 1);
}

static json_t *schema_judge(void)
{
	return json_pack("{s:s, s:{s:{s:[s,s]}, s:{s:s}, s:{s:s}}, s:[s,s]}",
			 "type", "object", "properties",
			 "answer", "type", "string", "null",
			 "correct", "type", "boolean",
			 "reason", "type", "string",
			 "required", "answer", "correct");
}

static json_t *schema_correct(void)
{
	return json_pack("{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}}, s:[s,s,s,s]}",
			 "type", "object", "properties",
			 "missing_knowledge", "type", "string",
			 "critique", "type", "string",
			 "reasoning", "type", "string",
			 "final_answer", "type", "string",
			 "required", "missing_knowledge", "critique", "reasoning", "final_answer");
}

/* Appends text to the content of the last message (a re-ask keeps the task
 * line first in the last user message, as the prompt convention wants). */
static int append_to_last_message(json_t *messages, const char *text)
{
	json_t *last = json_array_get(messages, json_array_size(messages) - 1);
	const char *content = json_string_value(json_object_get(last, "content"));
	struct buf b;
	int rc;

	if (!content)
		return -EINVAL;
	buf_init(&b, (size_t)4 << 20);
	rc = buf_printf(&b, "%s\n\n%s", content, text);
	if (rc == 0)
		rc = json_object_set_new(last, "content", json_string(b.base)) ? -ENOMEM : 0;
	buf_free(&b);
	return rc;
}

/* An item with images (data: URLs, put there by the CLI at import; the
 * daemon never reads a file a dataset names) is asked with OpenAI content
 * parts: the text, then one image_url part per image, for vision models. */
static int attach_images(json_t *messages, json_t *images)
{
	json_t *last, *parts, *img;
	const char *text;
	size_t i;

	if (!json_is_array(images) || json_array_size(images) == 0)
		return 0;
	last = json_array_get(messages, json_array_size(messages) - 1);
	text = json_string_value(json_object_get(last, "content"));
	if (!text)
		return -EINVAL;
	parts = json_pack("[{s:s, s:s}]", "type", "text", "text", text);
	if (!parts)
		return -ENOMEM;
	json_array_foreach(images, i, img)
	{
		const char *url = json_string_value(img);

		if (!url || (strncmp(url, "data:", 5) != 0 && strncmp(url, "https://", 8) != 0 &&
			     strncmp(url, "http://", 7) != 0))
			continue; /* never a file path */
		json_array_append_new(parts, json_pack("{s:s, s:{s:s}}", "type", "image_url",
						       "image_url", "url", url));
	}
	json_object_set_new(last, "content", parts);
	return 0;
}

int step_request_build(enum step s, const struct step_ctx *ctx, struct step_request *req,
		       char *err, size_t errlen)
{
	json_t *vars = NULL;
	const struct step_def *d;
	const char *reply;
	int rc = -EINVAL;

	memset(req, 0, sizeof(*req));
	if (s < 0 || s >= STEP__N) {
		snprintf(err, errlen, "unknown step %d", (int)s);
		goto out;
	}
	d = &steps[s];
	if (d->text) {
		req->prompt = d->text(ctx, err, errlen);
		if (!req->prompt)
			goto out;
		req->temperature = 0.0;
		req->max_tokens = d->max_tokens;
		req->logprobs = d->logprobs;
		req->echo = d->echo;
		req->embed = d->embedder;
		rc = 0;
		goto out;
	}
	if (d->build) {
		rc = d->build(d, ctx, req, err, errlen);
		goto out;
	}
	reply = json_string_value(json_object_get(ctx->prior, "reply"));
	if (reply) { /* else no vars: no object made and freed per call */
		vars = json_object();
		json_object_set_new(vars, "student_reply", json_string(reply));
	}
	rc = prompts_render(ctx->prompts, d->template_name, ctx->item, vars, &req->messages, err,
			    errlen);
	if (rc)
		goto out;
	if (ctx->attempt > 0 && ctx->last_problem && !d->samples) {
		char note[600], problem[400];

		/* the reason may quote model text: cut on a character boundary
		 * and cleaned, or jansson refuses the message */
		utf8_copy(problem, sizeof(problem), ctx->last_problem, "...");
		snprintf(note, sizeof(note),
			 "Note: this is attempt %d. The previous reply was not usable: %s. "
			 "Answer again, following the instructions exactly.",
			 ctx->attempt + 1, problem);
		rc = append_to_last_message(req->messages, note);
		if (rc) {
			snprintf(err, errlen, "cannot add the re-ask note to template %s",
				 d->template_name);
			goto out;
		}
	}
	rc = attach_images(req->messages, json_object_get(ctx->item, "images"));
	if (rc) {
		snprintf(err, errlen, "the item's images cannot be attached");
		goto out;
	}
	req->expect_json = d->wants_json;
	req->temperature = 0.0;
	req->schema = d->schema ? d->schema() : NULL;
	req->schema_name = d->schema_name;
	req->max_tokens = d->max_tokens;
	if (d->samples) {
		/* Sample k (0-based: the samples stored so far) is its own request
		 * by its seed, so its reply is cached and never asked again. */
		req->temperature = ctx->rl ? ctx->rl->temperature : 1.0;
		req->seed = (int64_t)rl_samples(ctx->prior) + 1;
		rc = 0;
		goto out;
	}
	/* A student answer cut by the token limit is asked again with room to
	 * finish (STEP_CUT_TOKENS_FACTOR times the step's limit). */
	if (d->student && ctx->attempt > 0 && ctx->last_problem &&
	    strncmp(ctx->last_problem, STEP_CUT_REASON, strlen(STEP_CUT_REASON)) == 0)
		req->max_tokens = d->max_tokens * STEP_CUT_TOKENS_FACTOR;
	rc = 0;
out:
	json_decref(vars);
	if (rc)
		step_request_clear(req);
	return rc;
}

void step_request_clear(struct step_request *req)
{
	json_decref(req->messages);
	json_decref(req->schema);
	free(req->prompt);
	memset(req, 0, sizeof(*req));
}

void step_outcome_clear(struct step_outcome *out)
{
	json_decref(out->artifact);
	memset(out, 0, sizeof(*out));
	out->next = -1;
}

static void outcome_set(struct step_outcome *out, enum step_result r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void outcome_set(struct step_outcome *out, enum step_result r, const char *fmt, ...)
{
	va_list ap;

	out->result = r;
	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
	/* vsnprintf cuts by bytes: back to a character boundary, and no
	 * invalid byte of a model's text reaches the store, logs or prompts */
	out->reason[utf8_prefix(out->reason, strlen(out->reason), sizeof(out->reason) - 1)] = '\0';
	utf8_sanitize(out->reason);
}

/* An excerpt of model text for a reason: at most 60 bytes, cut on a
 * character boundary. */
static const char *snip(const char *s, char *dst, size_t dstlen)
{
	utf8_copy(dst, dstlen, s ? s : "", "...");
	return dst;
}

/* Screens teacher text (stages/textcheck.h) before it can enter a set.
 * Returns true when the text failed: out is then a re-ask, or on the last
 * attempt a drop, with the reason. quotable: text the reply may quote
 * beside the item (the student's reply), or NULL. */
static bool screen_text(const struct step_def *d, const struct step_ctx *ctx, const char *what,
			const char *text, const char *quotable, unsigned checks,
			struct step_outcome *out)
{
	struct textcheck_input in = { .text = text, .item = ctx->item, .quotable = quotable,
				      .length_cut = ctx->length_cut, .max_tokens = d->max_tokens,
				      .checks = checks };
	struct textcheck_result r;
	json_t *vars = NULL, *msgs = NULL;
	char err[128];
	int rc;

	if (!text)
		return false;
	/* the rendered prompt, for the echo check: the request's own messages
	 * on a first ask (a re-ask's also carry the note on the previous
	 * reply, which is no template text); else rendered again (it cannot
	 * fail here: the request was built from it) */
	if (ctx->messages && ctx->attempt == 0) {
		in.prompt = ctx->messages;
	} else {
		vars = json_object();
		if (quotable)
			json_object_set_new(vars, "student_reply", json_string(quotable));
		if (prompts_render(ctx->prompts, d->template_name, ctx->item, vars, &msgs, err,
				   sizeof(err)) == 0)
			in.prompt = msgs;
	}
	rc = textcheck_run(&in, &r);
	json_decref(msgs);
	json_decref(vars);
	if (rc <= 0)
		return false; /* clean (or out of memory: the other checks still run) */
	if (ctx->attempt + 1 < STEP_MAX_ATTEMPTS)
		outcome_set(out, STEP_RETRY, "screening %s: %s", what, r.reason);
	else
		outcome_set(out, STEP_DROPPED, "screening %s: %s (after %d attempts)", what, r.reason,
			    ctx->attempt + 1);
	return true;
}

/* A reply that cannot be used is re-asked, and on the last attempt the item
 * fails with the reason (kept on its task row). */
static void outcome_bad_reply(struct step_outcome *out, const struct step_ctx *ctx,
			      const char *why)
{
	if (ctx->attempt + 1 < STEP_MAX_ATTEMPTS)
		outcome_set(out, STEP_RETRY, "%s", why);
	else
		outcome_set(out, STEP_FAILED, "%s (after %d attempts)", why, ctx->attempt + 1);
}

static const char *gold_of(json_t *item)
{
	return json_string_value(json_object_get(item, "answer"));
}

static bool item_is_mc(json_t *item)
{
	return json_is_object(json_object_get(item, "options"));
}

/* ---- multi-part gold answers -------------------------------------------- */

/* Most parts of a gold answer the chain check splits out. */
#define GOLD_PARTS_MAX 12

static bool gold_space(const char *p)
{
	return *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || strncmp(p, "\u3000", 3) == 0;
}

/* A sub-question number at p: "2．", "2.", "2、" (one or two digits, >= 2,
 * at the start of the text or after a space or a clause end). Returns its
 * length, or 0. */
static size_t gold_number_at(const char *text, const char *p)
{
	const char *q = p;
	int n = 0;

	if (p > text && !gold_space(p - 1) && !(p - text >= 3 && (strncmp(p - 3, "；", 3) == 0 ||
								    strncmp(p - 3, "。", 3) == 0)) &&
	    p[-1] != ';')
		return 0;
	while (*q >= '0' && *q <= '9' && q - p < 2)
		n = n * 10 + (*q++ - '0');
	if (q == p || (*q >= '0' && *q <= '9') || n < 2)
		return 0;
	if (strncmp(q, "．", 3) == 0 || strncmp(q, "、", 3) == 0)
		return (size_t)(q - p) + 3;
	if (*q == '.' && !(q[1] >= '0' && q[1] <= '9'))
		return (size_t)(q - p) + 1;
	return 0;
}

/* The text after the last "答案：" / "答案:" / "Answer:" in s[0..n), or s. */
static const char *gold_after_marker(const char *s, size_t *n)
{
	static const char *const marks[] = { "答案：", "答案:", "Answer:", "answer:" };
	const char *end = s + *n, *best = NULL;

	for (const char *p = s; p < end; p++)
		for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
			if ((size_t)(end - p) >= strlen(marks[i]) &&
			    memcmp(p, marks[i], strlen(marks[i])) == 0)
				best = p + strlen(marks[i]);
	if (!best)
		return s;
	*n = (size_t)(end - best);
	return best;
}

/* Splits a gold answer with several parts (numbered sub-answers "1. X
 * 2. Y", a sub-question's own "答案：" inside the gold) into its parts,
 * each a new normalized string (grade_normalize) in parts[]. Returns the
 * number of parts (>= 2), or 0 for a gold of one part (or on ENOMEM). */
static size_t gold_split(const char *gold, char **parts)
{
	const char *cut[GOLD_PARTS_MAX + 1];
	size_t ncut = 0, np = 0;
	bool marked = false;

	if (!gold)
		return 0;
	cut[ncut++] = gold;
	for (const char *p = gold; *p && ncut < GOLD_PARTS_MAX; p++) {
		size_t l = gold_number_at(gold, p);

		if (l)
			cut[ncut++] = p;
	}
	marked = strstr(gold, "答案：") || strstr(gold, "答案:");
	if (ncut < 2 && !marked)
		return 0;
	for (size_t i = 0; i < ncut; i++) {
		const char *a = cut[i], *e = i + 1 < ncut ? cut[i + 1] : gold + strlen(gold);
		size_t n, l;
		char *tmp;

		/* "1．" before the first part, "2．" before the others */
		if (i == 0 && *a == '1' && (strncmp(a + 1, "．", 3) == 0 || strncmp(a + 1, "、", 3) == 0))
			a += 4;
		else if (i == 0 && *a == '1' && a[1] == '.')
			a += 2;
		else if (i > 0 && (l = gold_number_at(gold, a)) != 0)
			a += l;
		n = (size_t)(e - a);
		if (i == 0 && ncut == 1) {
			/* no numbers: "X 答案：Y" gives X and Y */
			const char *m = strstr(a, "答案：") ? strstr(a, "答案：") : strstr(a, "答案:");

			tmp = strndup(a, (size_t)(m - a));
			parts[np] = tmp ? grade_normalize(tmp) : NULL;
			free(tmp);
			if (!parts[np])
				goto fail;
			if (*parts[np])
				np++;
			else
				free(parts[np]);
			a = m;
			n = (size_t)(e - a);
		}
		a = gold_after_marker(a, &n);
		tmp = strndup(a, n);
		parts[np] = tmp ? grade_normalize(tmp) : NULL;
		free(tmp);
		if (!parts[np])
			goto fail;
		if (*parts[np])
			np++;
		else
			free(parts[np]);
	}
	if (np >= 2)
		return np;
fail:
	for (size_t i = 0; i < np; i++)
		free(parts[i]);
	return 0;
}

static size_t cp_len(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

/* True when the gold of item has several parts and text covers every one
 * of them (each normalized part, of at least 2 CJK characters or 3 Latin
 * ones, is contained in the normalized text). */
static bool gold_parts_covered(json_t *item, const char *text)
{
	char *parts[GOLD_PARTS_MAX + 1], *nt;
	size_t np;
	bool ok;

	if (item_is_mc(item) || !text)
		return false;
	np = gold_split(gold_of(item), parts);
	if (np == 0)
		return false;
	nt = grade_normalize(text);
	ok = nt != NULL;
	for (size_t i = 0; i < np; i++) {
		size_t need = cp_len(parts[i]) < strlen(parts[i]) ? 2 : 3; /* CJK : Latin */

		if (ok && (cp_len(parts[i]) < need || !strstr(nt, parts[i])))
			ok = false;
		free(parts[i]);
	}
	free(nt);
	return ok;
}

/* The conclusion of a reply: from its last final-answer marker to the end,
 * else its last GOLD_TAIL_BYTES bytes (on a character boundary). */
#define GOLD_TAIL_BYTES 600

static const char *conclusion_of(const char *text)
{
	static const char *const marks[] = { "Final answer", "final answer", "最终答案", "答案",
					     "Answer:" };
	const char *best = NULL;
	size_t n;

	if (!text)
		return NULL;
	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
		for (const char *p = strstr(text, marks[i]); p; p = strstr(p + 1, marks[i]))
			if (!best || p > best)
				best = p;
	if (best)
		return best;
	n = strlen(text);
	if (n <= GOLD_TAIL_BYTES)
		return text;
	text += n - GOLD_TAIL_BYTES;
	while (((unsigned char)*text & 0xC0) == 0x80)
		text++;
	return text;
}

static int json_int_in(json_t *v, int lo, int hi, int dflt)
{
	json_int_t n;

	if (json_is_integer(v))
		n = json_integer_value(v);
	else if (json_is_real(v))
		n = (json_int_t)json_real_value(v);
	else
		return dflt;
	return n < lo ? lo : n > hi ? hi : (int)n;
}

static void reply_screen(const struct step_def *d, const struct step_ctx *ctx, const char *content,
			 json_t *json, struct step_outcome *out)
{
	json_t *keep = json_object_get(json, "keep");
	const char *reason = json_string_value(json_object_get(json, "reason"));
	const char *topic = json_string_value(json_object_get(json, "topic"));
	bool k;

	(void)content;
	if (!json_is_object(json)) {
		outcome_bad_reply(out, ctx, "screening reply has no JSON object");
		return;
	}
	if (json_is_boolean(keep)) {
		k = json_is_true(keep);
	} else if (json_is_string(keep) && (strcmp(json_string_value(keep), "true") == 0 ||
					     strcmp(json_string_value(keep), "keep") == 0)) {
		k = true;
	} else if (json_is_string(keep) && (strcmp(json_string_value(keep), "false") == 0 ||
					     strcmp(json_string_value(keep), "drop") == 0)) {
		k = false;
	} else {
		outcome_bad_reply(out, ctx, "screening reply: \"keep\" is not a boolean");
		return;
	}
	if (!reason || !*reason) {
		outcome_bad_reply(out, ctx, "screening reply: \"reason\" is missing or empty");
		return;
	}
	/* its free text is stored and shown: screened, but not for language or
	 * topic (a terse English reason about a Chinese item is fine) */
	if (screen_text(d, ctx, "reason", reason, NULL,
			TEXTCHECK_BIT(TEXTCHECK_TRUNCATED) | TEXTCHECK_BIT(TEXTCHECK_TOO_LONG) |
				TEXTCHECK_BIT(TEXTCHECK_REPETITION) | TEXTCHECK_BIT(TEXTCHECK_ECHO) |
				TEXTCHECK_BIT(TEXTCHECK_NEW_TASK),
			out))
		return;
	out->artifact = json_pack("{s:b, s:s, s:i, s:i}", "keep", k, "reason", reason,
				  "quality", json_int_in(json_object_get(json, "quality"), 1, 5, 3),
				  "difficulty",
				  json_int_in(json_object_get(json, "difficulty"), 1, 5, 3));
	if (topic && *topic)
		json_object_set_new(out->artifact, "topic", json_string(topic));
	out->artifact_kind = d->writes;
	if (k) {
		outcome_set(out, STEP_DONE, "%s", "");
		out->next = d->next;
	} else {
		outcome_set(out, STEP_DROPPED, "%s", reason);
	}
}

/* The common case, fast: the explanation ends, as the prompt asks, with a
 * line "Final answer: X" naming an option key (optionally "(X)", "X.",
 * "**X**"). Returns true and the key in key (borrowed from options). */
static bool final_line_key(const char *text, json_t *options, const char **key)
{
	const char *end = text + strlen(text), *line, *p;
	char k[32];
	size_t n = 0;
	static const char tag[] = "Final answer:";

	while (end > text && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
		end--;
	line = end;
	while (line > text && line[-1] != '\n')
		line--;
	if ((size_t)(end - line) < sizeof(tag) || strncmp(line, tag, sizeof(tag) - 1) != 0)
		return false;
	p = line + sizeof(tag) - 1;
	while (p < end && (*p == ' ' || *p == '*' || *p == '('))
		p++;
	while (p < end && n < sizeof(k) - 1 && *p != ')' && *p != '.' && *p != '*' && *p != ' ')
		k[n++] = *p++;
	k[n] = '\0';
	while (p < end && (*p == ')' || *p == '.' || *p == '*' || *p == ' '))
		p++;
	if (p != end || n == 0)
		return false;
	{
		const char *ok;
		json_t *v;

		json_object_foreach(options, ok, v)
		{
			if (strcmp(ok, k) == 0) {
				*key = ok;
				return true;
			}
		}
	}
	return false;
}

/* The explanation artifact {"text":text,"final_answer":gold,"verified":v}:
 * the object json_pack("{s:s, s:s, s:b}") made, built directly (json_pack
 * parses its format and checks a few KiB of text a character at a time on
 * every reply); NULL where json_pack gave NULL (text or gold not valid UTF-8,
 * no memory). */
static json_t *explanation_artifact(const char *text, const char *gold, bool verified)
{
	size_t tl = strlen(text), gl = strlen(gold);
	json_t *a, *t, *g;

	if (utf8_check(text, tl) != tl || utf8_check(gold, gl) != gl)
		return NULL;
	a = json_object();
	t = json_stringn_nocheck(text, tl);
	g = json_stringn_nocheck(gold, gl);
	if (!a || !t || !g) {
		json_decref(t);
		json_decref(g);
		json_decref(a);
		return NULL;
	}
	/* (a setter that fails frees the value it was given) */
	if (json_object_set_new_nocheck(a, "text", t)) {
		json_decref(g);
		goto fail;
	}
	if (json_object_set_new_nocheck(a, "final_answer", g) ||
	    json_object_set_new_nocheck(a, "verified", json_boolean(verified)))
		goto fail;
	return a;
fail:
	json_decref(a);
	return NULL;
}

static void reply_explain(const struct step_def *d, const struct step_ctx *ctx, const char *content,
			  json_t *json, struct step_outcome *out)
{
	struct grade_result g;
	const char *gold = gold_of(ctx->item);
	const char *key;

	(void)json;
	if (!content || !*content) {
		outcome_bad_reply(out, ctx, "empty explanation");
		return;
	}
	if (screen_text(d, ctx, "explanation", content, NULL, TEXTCHECK_ALL, out))
		return;
	if (item_is_mc(ctx->item) && gold &&
	    final_line_key(content, json_object_get(ctx->item, "options"), &key) &&
	    strcmp(key, gold) == 0) {
		out->artifact = explanation_artifact(content, gold, true);
		out->artifact_kind = d->writes;
		outcome_set(out, STEP_DONE, "%s", "");
		return;
	}
	if (grade_item(ctx->item, content, &g) != 0) {
		outcome_bad_reply(out, ctx, "explanation cannot be graded");
		return;
	}
	/* An explanation must support the gold answer: one that ends elsewhere
	 * would teach the student the wrong thing. */
	if (g.verdict == GRADE_WRONG || g.verdict == GRADE_AMBIGUOUS ||
	    (g.verdict == GRADE_NONE && item_is_mc(ctx->item))) {
		char why[200], a[64], b[64];

		if (g.verdict == GRADE_WRONG)
			snprintf(why, sizeof(why),
				 "explanation concludes %s, which contradicts the gold answer %s",
				 snip(g.answer, a, sizeof(a)), snip(gold ? gold : "?", b, sizeof(b)));
		else
			snprintf(why, sizeof(why), "explanation does not state a final answer (%s)",
				 grade_verdict_name(g.verdict));
		if (ctx->attempt + 1 < STEP_MAX_ATTEMPTS) {
			outcome_set(out, STEP_RETRY, "%s", why);
		} else {
			outcome_set(out, STEP_DROPPED, "%s (after %d attempts)", why,
				    ctx->attempt + 1);
		}
		return;
	}
	out->artifact = explanation_artifact(content, gold ? gold : "",
					     g.verdict == GRADE_CORRECT ||
						     gold_parts_covered(ctx->item, conclusion_of(content)));
	out->artifact_kind = d->writes;
	outcome_set(out, STEP_DONE, "%s", "");
}

/* answer and eval: the rules grade the student's reply when they can; when
 * they find no single clear answer a judge step follows. */
static void reply_student(const struct step_def *d, const struct step_ctx *ctx, const char *content,
			  json_t *json, struct step_outcome *out)
{
	struct grade_result g;
	const char *verdict;

	(void)json;
	if (!content)
		content = "";
	if (grade_item_opts(ctx->item, content, &(struct grade_opts){ .truncated = ctx->length_cut },
			    &g) != 0) {
		outcome_bad_reply(out, ctx, "student reply cannot be graded");
		return;
	}
	/* Unfinished reasoning has no answer: ask again with a larger token
	 * limit; on the last attempt record it ungraded (no judge: there is
	 * nothing to judge). */
	if (ctx->length_cut && g.verdict == GRADE_NONE) {
		if (ctx->attempt + 1 < STEP_MAX_ATTEMPTS) {
			outcome_set(out, STEP_RETRY, "%s; asked again with %dx max_tokens",
				    STEP_CUT_REASON, STEP_CUT_TOKENS_FACTOR);
			return;
		}
		out->ungraded = true;
		out->artifact = json_pack("{s:s, s:s, s:s, s:s, s:s}", "reply", content, "answer", "",
					  "rule", g.rule ? g.rule : "truncated", "verdict", "ungraded",
					  "graded_by", "rules");
		out->artifact_kind = d->writes;
		outcome_set(out, STEP_DONE, "%s", "");
		out->next = -1;
		return;
	}
	/* an open answer to a gold of several parts that names every part */
	if (g.verdict == GRADE_NEEDS_JUDGE && gold_parts_covered(ctx->item, conclusion_of(content))) {
		g.verdict = GRADE_CORRECT;
		g.rule = "multipart";
	}
	switch (g.verdict) {
	case GRADE_CORRECT:
		verdict = "correct";
		break;
	case GRADE_WRONG:
		verdict = "wrong";
		break;
	default:
		verdict = "unclear";
		break;
	}
	out->artifact = json_pack("{s:s, s:s, s:s, s:s, s:s}", "reply", content, "answer", g.answer,
				  "rule", g.rule ? g.rule : "", "verdict", verdict, "graded_by",
				  "rules");
	out->artifact_kind = d->writes;
	outcome_set(out, STEP_DONE, "%s", "");
	if (g.verdict == GRADE_CORRECT)
		out->next = -1;
	else if (g.verdict == GRADE_WRONG)
		out->next = d->next;
	else
		out->next = d->next_unclear;
}

static void reply_judge(const struct step_def *d, const struct step_ctx *ctx, const char *content,
			json_t *json, struct step_outcome *out)
{
	json_t *ans = json_object_get(json, "answer");
	json_t *correct = json_object_get(json, "correct");
	const char *reason = json_string_value(json_object_get(json, "reason"));
	const char *gold = gold_of(ctx->item);
	const char *reply = json_string_value(json_object_get(ctx->prior, "reply"));
	const char *verdict;
	const char *answer = "";

	(void)content;
	if (!json_is_object(json)) {
		outcome_bad_reply(out, ctx, "judge reply has no JSON object");
		return;
	}
	if (item_is_mc(ctx->item)) {
		/* The judge says which option the student chose; whether that is
		 * right is decided here, against the gold key. */
		json_t *options = json_object_get(ctx->item, "options");
		const char *a = json_string_value(ans);

		if (a && json_object_get(options, a)) {
			answer = a;
			verdict = gold && strcmp(a, gold) == 0 ? "correct" : "wrong";
		} else if (json_is_null(ans) || !ans || (a && !*a)) {
			verdict = "ungraded";
		} else {
			outcome_bad_reply(out, ctx, "judge reply: \"answer\" is not an option key");
			return;
		}
	} else {
		if (json_is_string(ans))
			answer = json_string_value(ans);
		if (json_is_boolean(correct))
			verdict = json_is_true(correct) ? "correct" : "wrong";
		else
			verdict = "ungraded";
	}
	out->judged = true;
	out->ungraded = strcmp(verdict, "ungraded") == 0;
	out->artifact = json_pack("{s:s, s:s, s:s, s:s, s:s}", "reply", reply ? reply : "", "answer",
				  answer, "verdict", verdict, "graded_by", "judge", "judge_reason",
				  reason ? reason : "");
	out->artifact_kind = d->writes;
	outcome_set(out, STEP_DONE, "%s", "");
	out->next = strcmp(verdict, "wrong") == 0 ? d->next : -1;
}

static void reply_correct(const struct step_def *d, const struct step_ctx *ctx, const char *content,
			  json_t *json, struct step_outcome *out)
{
	const char *fields[] = { "missing_knowledge", "critique", "reasoning", "final_answer" };
	const char *final, *reasoning, *gold = gold_of(ctx->item);
	const char *student = json_string_value(json_object_get(ctx->prior, "reply"));
	struct grade_result g;
	char why[200], a[64], b[64];

	(void)content;
	if (!json_is_object(json)) {
		outcome_bad_reply(out, ctx, "correction reply has no JSON object");
		return;
	}
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *v = json_string_value(json_object_get(json, fields[i]));

		if (!v || !*v) {
			snprintf(why, sizeof(why), "correction reply: \"%s\" is missing or empty",
				 fields[i]);
			outcome_bad_reply(out, ctx, why);
			return;
		}
	}
	final = json_string_value(json_object_get(json, "final_answer"));
	reasoning = json_string_value(json_object_get(json, "reasoning"));
	/* the chain is SFT text: screened whole; the critique and the missing
	 * knowledge may quote the student, so not for topic */
	if (screen_text(d, ctx, "reasoning", reasoning, student, TEXTCHECK_ALL, out))
		return;
	for (size_t i = 0; i < 2; i++)
		if (screen_text(d, ctx, fields[i], json_string_value(json_object_get(json, fields[i])),
				student,
				TEXTCHECK_BIT(TEXTCHECK_REPETITION) | TEXTCHECK_BIT(TEXTCHECK_ECHO) |
					TEXTCHECK_BIT(TEXTCHECK_NEW_TASK) |
					TEXTCHECK_BIT(TEXTCHECK_LANGUAGE),
				out))
			return;
	/* The chain must end in the gold answer: checked with the same
	 * extractor that grades the student, on the final answer and on the
	 * reasoning (which must not conclude something else). */
	/* a gold of several parts: the chain ends in it when its final answer,
	 * or else the conclusion of its reasoning, names every part */
	if ((grade_item(ctx->item, final, &g) != 0 || g.verdict != GRADE_CORRECT) &&
	    !gold_parts_covered(ctx->item, final) &&
	    !gold_parts_covered(ctx->item, conclusion_of(reasoning))) {
		snprintf(why, sizeof(why), "corrective chain ends in %s, not the gold answer %s",
			 snip(g.answer[0] ? g.answer : "no answer", a, sizeof(a)),
			 snip(gold ? gold : "?", b, sizeof(b)));
		outcome_bad_reply(out, ctx, why);
		return;
	}
	if (grade_item(ctx->item, reasoning, &g) == 0 && g.verdict == GRADE_WRONG) {
		snprintf(why, sizeof(why), "corrective reasoning concludes %s, not the gold answer %s",
			 snip(g.answer, a, sizeof(a)), snip(gold ? gold : "?", b, sizeof(b)));
		outcome_bad_reply(out, ctx, why);
		return;
	}
	out->artifact = json_pack("{s:O, s:O, s:O, s:s}", "missing_knowledge",
				  json_object_get(json, "missing_knowledge"), "critique",
				  json_object_get(json, "critique"), "reasoning",
				  json_object_get(json, "reasoning"), "final_answer", gold ? gold : "");
	out->artifact_kind = d->writes;
	outcome_set(out, STEP_DONE, "%s", "");
}

/* The steps of the method. eval asks the way answer does, and eval_judge the
 * way judge does, so both phases grade alike; they differ in what they write
 * and in what follows them. */
static const struct step_def steps[STEP__N] = {
	[STEP_SCREEN] = { .name = "screen", .template_name = "screen", .phase = PHASE_STAGE1,
			  .screens = true, .wants_json = true, .schema = schema_screen,
			  .schema_name = "screen_verdict", .max_tokens = 400, .writes = "verdict",
			  .next = STEP_EXPLAIN, .next_unclear = -1, .reply = reply_screen },
	[STEP_EXPLAIN] = { .name = "explain", .template_name = "explain", .phase = PHASE_STAGE1,
			   .max_tokens = 1500, .writes = "explanation", .next = -1,
			   .next_unclear = -1, .reply = reply_explain },
	[STEP_ANSWER] = { .name = "answer", .template_name = "answer", .phase = PHASE_STAGE2,
			  .student = true, .max_tokens = 1500, .writes = "answer",
			  .next = STEP_CORRECT, .next_unclear = STEP_JUDGE, .reply = reply_student },
	[STEP_JUDGE] = { .name = "judge", .template_name = "judge", .phase = PHASE_STAGE2,
			 .wants_json = true, .schema = schema_judge, .schema_name = "judge_verdict",
			 .max_tokens = 300, .reads = "answer", .writes = "grade",
			 .next = STEP_CORRECT, .next_unclear = -1, .reply = reply_judge },
	[STEP_CORRECT] = { .name = "correct", .template_name = "correct", .phase = PHASE_STAGE2,
			   .wants_json = true, .schema = schema_correct, .schema_name = "correction",
			   .max_tokens = 2000, .reads = "answer", .writes = "chain", .next = -1,
			   .next_unclear = -1, .reply = reply_correct },
	[STEP_EVAL] = { .name = "eval", .template_name = "answer", .phase = PHASE_EVAL,
			.student = true, .max_tokens = 1500, .writes = "eval", .next = -1,
			.next_unclear = STEP_EVAL_JUDGE, .reply = reply_student },
	[STEP_EVAL_JUDGE] = { .name = "eval_judge", .template_name = "judge", .phase = PHASE_EVAL,
			      .wants_json = true, .schema = schema_judge,
			      .schema_name = "judge_verdict", .max_tokens = 300, .reads = "eval",
			      .writes = "eval", .next = -1, .next_unclear = -1,
			      .reply = reply_judge },
	/* DIQ-like: embed (the validation share stops here), the teacher's
	 * difficulty rating, the student's loss on the gold answer; held for
	 * the choice, then explain. */
	[STEP_DIQ_EMBED] = { .name = "diq_embed", .template_name = "embedding", .phase = PHASE_STAGE1,
			     .embedder = true, .text = steps_sel_text_embed, .writes = "embedding",
			     .next = STEP_DIQ_RATE, .next_unclear = -1, .reply = steps_sel_reply_embed },
	[STEP_DIQ_RATE] = { .name = "diq_rate", .template_name = "diq_rate", .phase = PHASE_STAGE1,
			    .wants_json = true, .schema = steps_sel_schema_difficulty,
			    .schema_name = "difficulty", .max_tokens = 100, .writes = "difficulty",
			    .next = STEP_DIQ_LOSS, .next_unclear = -1,
			    .reply = steps_sel_reply_difficulty },
	[STEP_DIQ_LOSS] = { .name = "diq_loss", .template_name = "gold_logprobs",
			    .phase = PHASE_STAGE1, .student = true, .screens = true,
			    .text = steps_sel_text_gold, .logprobs = 1, .echo = true, .max_tokens = 1,
			    .writes = "gold_loss", .next = STEP_EXPLAIN, .next_unclear = -1,
			    .reply = steps_sel_reply_gold },
	/* 3DS: the student's 0-100 rating (stage A), its logprobs on the prompt
	 * and the gold answer, its greedy answer, the embedding; held for the
	 * choice, then explain. */
	[STEP_S3_RATE] = { .name = "s3_rate", .template_name = "s3_rate", .phase = PHASE_STAGE1,
			   .student = true, .screens = true, .max_tokens = 16, .writes = "rating",
			   .next = STEP_S3_PROBE, .next_unclear = -1, .reply = steps_sel_reply_rating },
	[STEP_S3_PROBE] = { .name = "s3_probe", .template_name = "gold_logprobs",
			    .phase = PHASE_STAGE1, .student = true, .text = steps_sel_text_gold,
			    .logprobs = 1, .echo = true, .max_tokens = 1, .writes = "gold_loss",
			    .next = STEP_S3_GREEDY, .next_unclear = -1, .reply = steps_sel_reply_gold },
	[STEP_S3_GREEDY] = { .name = "s3_greedy", .template_name = "greedy_logprobs",
			     .phase = PHASE_STAGE1, .student = true, .text = steps_sel_text_prompt,
			     .logprobs = 1, .max_tokens = 256, .writes = "confidence",
			     .next = STEP_S3_EMBED, .next_unclear = -1,
			     .reply = steps_sel_reply_greedy },
	[STEP_S3_EMBED] = { .name = "s3_embed", .template_name = "embedding", .phase = PHASE_STAGE1,
			    .embedder = true, .screens = true, .text = steps_sel_text_embed,
			    .writes = "embedding", .next = STEP_EXPLAIN, .next_unclear = -1,
			    .reply = steps_sel_reply_embed },
	/* A pipeline's checkpoints before stage one and after the first
	 * retrain: the eval steps again, each writing its own artifact. */
	[STEP_EVAL_BASE] = { .name = "eval_baseline", .template_name = "answer",
			     .phase = PHASE_EVAL_BASE, .student = true, .max_tokens = 1500,
			     .writes = "eval_baseline", .next = -1,
			     .next_unclear = STEP_EVAL_BASE_JUDGE, .reply = reply_student },
	[STEP_EVAL_BASE_JUDGE] = { .name = "eval_baseline_judge", .template_name = "judge",
				   .phase = PHASE_EVAL_BASE, .wants_json = true,
				   .schema = schema_judge, .schema_name = "judge_verdict",
				   .max_tokens = 300, .reads = "eval_baseline",
				   .writes = "eval_baseline", .next = -1, .next_unclear = -1,
				   .reply = reply_judge },
	[STEP_EVAL1] = { .name = "eval_stage1", .template_name = "answer", .phase = PHASE_EVAL1,
			 .student = true, .max_tokens = 1500, .writes = "eval_stage1", .next = -1,
			 .next_unclear = STEP_EVAL1_JUDGE, .reply = reply_student },
	[STEP_EVAL1_JUDGE] = { .name = "eval_stage1_judge", .template_name = "judge",
			       .phase = PHASE_EVAL1, .wants_json = true, .schema = schema_judge,
			       .schema_name = "judge_verdict", .max_tokens = 300,
			       .reads = "eval_stage1", .writes = "eval_stage1", .next = -1,
			       .next_unclear = -1, .reply = reply_judge },
	[STEP_REFER] = { .name = "refer", .template_name = "refer", .phase = PHASE_REFER,
			 .wants_json = true, .schema = refer_schema_write,
			 .schema_name = "referring_expressions", .max_tokens = 600,
			 .writes = "refer_expressions", .next = STEP_REFER_CHECK1, .next_unclear = -1,
			 .reply = refer_reply_write, .build = refer_build_write },
#define REFER_CHECK_ROW(I, NEXT)                                                                   \
	[STEP_REFER_CHECK##I] = { .name = "refer_check" #I, .template_name = "refer_check",       \
				  .phase = PHASE_REFER, .wants_json = true,                        \
				  .schema = refer_schema_check, .schema_name = "referring_pick",   \
				  .max_tokens = 300, .reads = "refer_expressions",                  \
				  .writes = "refer_check" #I, .next = NEXT, .next_unclear = -1,     \
				  .reply = refer_reply_check, .build = refer_build_check,           \
				  .index = I }
	REFER_CHECK_ROW(1, STEP_REFER_CHECK2),
	REFER_CHECK_ROW(2, STEP_REFER_CHECK3),
	REFER_CHECK_ROW(3, STEP_REFER_CHECK4),
	REFER_CHECK_ROW(4, STEP_REFER_CHECK5),
	REFER_CHECK_ROW(5, -1),
#undef REFER_CHECK_ROW
	[STEP_RL_SAMPLE] = { .name = "rl_sample", .template_name = "r1", .phase = PHASE_RL,
			     .student = true, .max_tokens = 1024, .reads = "rl", .writes = "rl",
			     .next = -1, .next_unclear = -1, .reply = step_reply_rl,
			     .samples = true },
};

void step_reply_judge(enum step s, const struct step_ctx *ctx, const char *content, json_t *json,
		      struct step_outcome *out)
{
	memset(out, 0, sizeof(*out));
	out->next = -1;
	if (s < 0 || s >= STEP__N) {
		outcome_set(out, STEP_FAILED, "unknown step %d", (int)s);
		return;
	}
	steps[s].reply(&steps[s], ctx, content, json, out);
}

char *step_sft_output(const char *kind, json_t *artifact, json_t *item)
{
	const char *gold = gold_of(item);
	struct buf b;
	const char *text;
	struct grade_result g;

	buf_init(&b, (size_t)8 << 20);
	if (strcmp(kind, "explanation") == 0) {
		text = json_string_value(json_object_get(artifact, "text"));
		if (!text)
			return NULL;
		buf_puts(&b, text);
	} else if (strcmp(kind, "chain") == 0) {
		text = json_string_value(json_object_get(artifact, "reasoning"));
		if (!text || !gold)
			return NULL;
		buf_puts(&b, text);
		/* End in the answer, in the form the student is asked to give it. */
		if (grade_item(item, text, &g) != 0 || g.verdict != GRADE_CORRECT ||
		    strcmp(g.rule ? g.rule : "", "final_answer") != 0)
			buf_printf(&b, "\n\nFinal answer: %s", gold);
	} else {
		return NULL;
	}
	return buf_take(&b);
}
