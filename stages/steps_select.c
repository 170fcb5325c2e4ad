/* The scoring steps of the DIQ-like and 3DS selections. */
#include "stages/steps_select.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/hash.h"
#include "common/utf8.h"
#include "formats/item.h"
#include "stages/select.h"
#include "stages/selmath.h"

/* The longest text sent, and the largest embedding taken. */
#define SEL_TEXT_MAX ((size_t)256 << 10)
#define SEL_EMBED_DIM_MAX 16384
#define SEL_TOKENS_MAX 65536

static void set_outcome(struct step_outcome *out, enum step_result r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_outcome(struct step_outcome *out, enum step_result r, const char *fmt, ...)
{
	va_list ap;

	out->result = r;
	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
	out->reason[utf8_prefix(out->reason, strlen(out->reason), sizeof(out->reason) - 1)] = '\0';
	utf8_sanitize(out->reason);
}

static void bad_reply(struct step_outcome *out, const struct step_ctx *ctx, const char *why)
{
	if (ctx->attempt + 1 < STEP_MAX_ATTEMPTS)
		set_outcome(out, STEP_RETRY, "%s", why);
	else
		set_outcome(out, STEP_FAILED, "%s (after %d attempts)", why, ctx->attempt + 1);
}

static void done(const struct step_def *d, struct step_outcome *out, json_t *artifact)
{
	out->artifact = artifact;
	out->artifact_kind = d->writes;
	set_outcome(out, STEP_DONE, "%s", "");
	out->next = d->next;
}

/* ---- texts ----------------------------------------------------------------- */

static int text_prompt(json_t *item, struct buf *b)
{
	const char *q = json_string_value(json_object_get(item, "question"));
	int rc;

	if (!q)
		return -EINVAL;
	rc = buf_printf(b, "Question: %s\n", q);
	if (rc == 0 && item_is_mc(item)) {
		char *opts = item_options_text(json_object_get(item, "options"), SEL_TEXT_MAX);

		if (!opts)
			return -ENOMEM;
		rc = buf_printf(b, "%s\n", opts);
		free(opts);
	}
	if (rc == 0)
		rc = buf_puts(b, "Answer:");
	return rc;
}

char *steps_sel_text_prompt(const struct step_ctx *ctx, char *err, size_t errlen)
{
	struct buf b;

	buf_init(&b, SEL_TEXT_MAX);
	if (text_prompt(ctx->item, &b) != 0) {
		buf_free(&b);
		snprintf(err, errlen, "the item has no question, or it is over %zu bytes", SEL_TEXT_MAX);
		return NULL;
	}
	return buf_take(&b);
}

long steps_sel_prompt_len(json_t *item)
{
	struct buf b;
	long n;

	buf_init(&b, SEL_TEXT_MAX);
	n = text_prompt(item, &b) == 0 ? (long)b.len : -1;
	buf_free(&b);
	return n;
}

char *steps_sel_text_gold(const struct step_ctx *ctx, char *err, size_t errlen)
{
	const char *gold = json_string_value(json_object_get(ctx->item, "answer"));
	struct buf b;
	int rc;

	buf_init(&b, SEL_TEXT_MAX);
	rc = gold ? text_prompt(ctx->item, &b) : -EINVAL;
	if (rc == 0) {
		const char *opt = json_string_value(
			json_object_get(json_object_get(ctx->item, "options"), gold));

		/* a key alone carries little to score: the key and its text */
		rc = opt ? buf_printf(&b, " %s. %s", gold, opt) : buf_printf(&b, " %s", gold);
	}
	if (rc) {
		buf_free(&b);
		snprintf(err, errlen, "the item has no question or answer, or it is over %zu bytes",
			 SEL_TEXT_MAX);
		return NULL;
	}
	return buf_take(&b);
}

char *steps_sel_text_embed(const struct step_ctx *ctx, char *err, size_t errlen)
{
	const char *q = json_string_value(json_object_get(ctx->item, "question"));
	struct buf b;
	int rc;

	buf_init(&b, SEL_TEXT_MAX);
	rc = q ? buf_puts(&b, q) : -EINVAL;
	if (rc == 0 && item_is_mc(ctx->item)) {
		char *opts = item_options_text(json_object_get(ctx->item, "options"), SEL_TEXT_MAX);

		rc = opts ? buf_printf(&b, "\n%s", opts) : -ENOMEM;
		free(opts);
	}
	if (rc) {
		buf_free(&b);
		snprintf(err, errlen, "the item has no question, or it is over %zu bytes", SEL_TEXT_MAX);
		return NULL;
	}
	return buf_take(&b);
}

bool steps_sel_is_validation(int64_t seed, const char *ext_id, double fraction)
{
	char pre[48];
	uint64_t h;

	if (!(fraction > 0))
		return false;
	snprintf(pre, sizeof(pre), "validation:%lld:", (long long)seed);
	h = fnv1a64(0xcbf29ce484222325ULL, pre, strlen(pre));
	h = hash_mix64(fnv1a64(h, ext_id ? ext_id : "", ext_id ? strlen(ext_id) : 0));
	return (double)(h >> 11) / 9007199254740992.0 < fraction;
}

/* ---- replies --------------------------------------------------------------- */

void steps_sel_reply_embed(const struct step_def *d, const struct step_ctx *ctx,
			   const char *content, json_t *json, struct step_outcome *out)
{
	json_t *e = json_object_get(json_array_get(json_object_get(ctx->reply, "data"), 0),
				    "embedding");
	const double frac = ctx->sel ? ctx->sel->validation_fraction : 0;
	bool validation;
	json_t *a;

	(void)content;
	(void)json;
	if (!json_is_array(e) || json_array_size(e) == 0) {
		bad_reply(out, ctx, "embedding reply has no data[0].embedding");
		return;
	}
	if (json_array_size(e) > SEL_EMBED_DIM_MAX) {
		set_outcome(out, STEP_FAILED, "embedding of %zu values is over the limit of %d",
			    json_array_size(e), SEL_EMBED_DIM_MAX);
		return;
	}
	validation = d->next == STEP_DIQ_RATE &&
		     (ctx->validation_item ||
		      steps_sel_is_validation(ctx->seed,
					      json_string_value(json_object_get(ctx->item, "id")),
					      frac));
	{
		/* stored as float32 in base64: the choice reads back every
		 * vector of the job at once */
		double *v = calloc(json_array_size(e), sizeof(*v));
		char *enc = NULL;
		size_t i;
		json_t *x;

		json_array_foreach(e, i, x)
			if (v)
				v[i] = json_number_value(x);
		enc = v ? selmath_vec_encode(v, json_array_size(e)) : NULL;
		free(v);
		if (!enc) {
			set_outcome(out, STEP_FAILED, "out of memory");
			return;
		}
		a = json_pack("{s:s, s:I, s:b}", "embedding_f32", enc, "dim",
			      (json_int_t)json_array_size(e), "keep", !validation);
		free(enc);
	}
	if (validation)
		json_object_set_new(a, "validation", json_true());
	done(d, out, a);
	if (validation)
		out->next = -1; /* the validation share is only embedded */
}

json_t *steps_sel_schema_difficulty(void)
{
	return json_pack("{s:s, s:{s:{s:s, s:i, s:i}, s:{s:s, s:i, s:i}, s:{s:s, s:i, s:i}},"
			 " s:[s,s,s]}",
			 "type", "object", "properties",
			 "knowledge", "type", "integer", "minimum", 1, "maximum", 5,
			 "reasoning", "type", "integer", "minimum", 1, "maximum", 5,
			 "overall", "type", "integer", "minimum", 1, "maximum", 5,
			 "required", "knowledge", "reasoning", "overall");
}

void steps_sel_reply_difficulty(const struct step_def *d, const struct step_ctx *ctx,
				const char *content, json_t *json, struct step_outcome *out)
{
	static const char *const axes[] = { "knowledge", "reasoning", "overall" };
	json_int_t v[3];
	char why[120];

	(void)content;
	if (!json_is_object(json)) {
		bad_reply(out, ctx, "difficulty reply has no JSON object");
		return;
	}
	for (int i = 0; i < 3; i++) {
		json_t *x = json_object_get(json, axes[i]);
		double f = json_is_number(x) ? json_number_value(x) : NAN;

		if (!(f >= 1 && f <= 5) || f != floor(f)) {
			snprintf(why, sizeof(why), "difficulty reply: \"%s\" is not an integer from 1 to 5",
				 axes[i]);
			bad_reply(out, ctx, why);
			return;
		}
		v[i] = (json_int_t)f;
	}
	done(d, out, json_pack("{s:I, s:I, s:I}", "knowledge", v[0], "reasoning", v[1], "overall",
			       v[2]));
}

/* The completion's token logprobs: tokens[i], logprobs[i] (NaN for null)
 * and offsets[i] (NULL when the engine gives none). 0, or -EBADMSG with why. */
struct toks {
	const char **tok;
	double *lp;
	int64_t *off;
	size_t n;
};

static void toks_free(struct toks *t)
{
	free(t->tok);
	free(t->lp);
	free(t->off);
	memset(t, 0, sizeof(*t));
}

static int toks_read(json_t *reply, struct toks *t, char *why, size_t whylen)
{
	json_t *lp = json_object_get(json_array_get(json_object_get(reply, "choices"), 0), "logprobs");
	json_t *tok = json_object_get(lp, "tokens"), *tlp = json_object_get(lp, "token_logprobs");
	json_t *off = json_object_get(lp, "text_offset");
	size_t n;

	memset(t, 0, sizeof(*t));
	if (!json_is_array(tok) || !json_is_array(tlp) || json_array_size(tok) == 0) {
		snprintf(why, whylen, "the student gave no token logprobs (choices[0].logprobs.tokens)");
		return -EBADMSG;
	}
	n = json_array_size(tok);
	if (json_array_size(tlp) != n || (json_is_array(off) && json_array_size(off) != n) ||
	    n > SEL_TOKENS_MAX) {
		snprintf(why, whylen, "the student's logprobs are inconsistent (%zu tokens)", n);
		return -EBADMSG;
	}
	t->tok = calloc(n, sizeof(*t->tok));
	t->lp = calloc(n, sizeof(*t->lp));
	t->off = json_is_array(off) ? calloc(n, sizeof(*t->off)) : NULL;
	if (!t->tok || !t->lp || (json_is_array(off) && !t->off)) {
		toks_free(t);
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *x = json_array_get(tlp, i);

		t->tok[i] = json_string_value(json_array_get(tok, i));
		if (!t->tok[i] || (!json_is_number(x) && !json_is_null(x))) {
			toks_free(t);
			snprintf(why, whylen, "the student's logprobs: token %zu is malformed", i);
			return -EBADMSG;
		}
		t->lp[i] = json_is_number(x) ? json_number_value(x) : NAN;
		if (t->off)
			t->off[i] = json_integer_value(json_array_get(off, i));
	}
	t->n = n;
	return 0;
}

static json_t *num_or_zero(double x)
{
	return json_real(isfinite(x) ? x : 0);
}

void steps_sel_reply_gold(const struct step_def *d, const struct step_ctx *ctx, const char *content,
			  json_t *json, struct step_outcome *out)
{
	struct toks t;
	char why[200], err[120];
	long plen = steps_sel_prompt_len(ctx->item);
	char *full = steps_sel_text_gold(ctx, err, sizeof(err));
	double pl, al;
	size_t pk, ak;

	(void)content;
	(void)json;
	if (plen < 0 || !full) {
		free(full);
		set_outcome(out, STEP_FAILED, "the item cannot be scored: %s", err);
		return;
	}
	if (toks_read(ctx->reply, &t, why, sizeof(why)) != 0) {
		free(full);
		/* asking again gets the same answer from the same engine */
		set_outcome(out, STEP_FAILED, "%s", why);
		return;
	}
	/* with echo the text is the prompt then the gold answer, then the one
	 * generated token, which is left out */
	if (t.n < 2) {
		toks_free(&t);
		free(full);
		set_outcome(out, STEP_FAILED, "the student did not echo the prompt's logprobs (echo)");
		return;
	}
	selmath_span_loss(t.tok, t.lp, t.off, t.n, 0, plen, &pl, &pk);
	selmath_span_loss(t.tok, t.lp, t.off, t.n, plen, (int64_t)strlen(full), &al, &ak);
	done(d, out,
	     json_pack("{s:o, s:o, s:I, s:o, s:I, s:b}", "prompt_loss", num_or_zero(pl), "ppl",
		       num_or_zero(selmath_perplexity(pl)), "prompt_tokens", (json_int_t)pk,
		       "answer_loss", num_or_zero(al), "answer_tokens", (json_int_t)ak, "keep", 1));
	toks_free(&t);
	free(full);
}

void steps_sel_reply_greedy(const struct step_def *d, const struct step_ctx *ctx,
			    const char *content, json_t *json, struct step_outcome *out)
{
	struct toks t;
	char why[200], cut[512];
	double m;
	size_t k;

	(void)json;
	if (toks_read(ctx->reply, &t, why, sizeof(why)) != 0) {
		set_outcome(out, STEP_FAILED, "%s", why);
		return;
	}
	/* every token is the student's own answer (no echo) */
	selmath_span_loss(t.tok, t.lp, NULL, t.n, 0, INT64_MAX, &m, &k);
	utf8_copy(cut, sizeof(cut), content ? content : "", "...");
	done(d, out,
	     json_pack("{s:o, s:I, s:s}", "confidence_loss", num_or_zero(m), "tokens", (json_int_t)k,
		       "answer", cut));
	toks_free(&t);
}

void steps_sel_reply_rating(const struct step_def *d, const struct step_ctx *ctx,
			    const char *content, json_t *json, struct step_outcome *out)
{
	double thr = ctx->sel ? ctx->sel->rating_threshold : 85;
	const char *p = content ? content : "";
	char *end;
	double v;

	(void)json;
	while (*p && !(*p >= '0' && *p <= '9'))
		p++;
	v = strtod(p, &end);
	if (end == p || !(v >= 0 && v <= 100)) {
		bad_reply(out, ctx, "rating reply holds no number from 0 to 100");
		return;
	}
	done(d, out, json_pack("{s:f, s:f, s:b}", "score", v, "threshold", thr, "keep", v >= thr));
	if (v < thr) {
		set_outcome(out, STEP_DROPPED, "the student's rating %g is below the threshold %g", v,
			    thr);
		out->next = -1;
	}
}
