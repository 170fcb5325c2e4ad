/* The refer steps (stages/refer.h). */
#include "stages/refer.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/utf8.h"
#include "formats/overlay.h"
#include "formats/pngmem.h"
#include "formats/regions.h"

#define REFER_TEXT_MAX ((size_t)64 << 10)

int refer_expressions_per_region(json_t *spec)
{
	json_t *v = json_object_get(json_object_get(spec, "refer"), "expressions_per_region");

	return json_is_integer(v) ? (int)json_integer_value(v) : REFER_DEFAULT_EXPRESSIONS;
}

json_t *refer_schema_write(void)
{
	return json_pack("{s:s, s:{s:{s:s, s:{s:s}}}, s:[s]}", "type", "object", "properties",
			 "expressions", "type", "array", "items", "type", "string", "required",
			 "expressions");
}

json_t *refer_schema_check(void)
{
	return json_pack("{s:s, s:{s:{s:[s,s]}, s:{s:s}, s:{s:s}}, s:[s,s]}", "type", "object",
			 "properties", "region", "type", "integer", "null", "unique", "type",
			 "boolean", "reason", "type", "string", "required", "region", "unique");
}

/* The lesions of the item's mask and its region number. 0, or -EINVAL
 * with err. */
static int item_regions(json_t *item, struct regions *rs, int *k, const char **image, char *err,
			size_t errlen)
{
	json_t *mask = json_object_get(item, "mask");
	const char *png = json_string_value(json_object_get(mask, "png"));
	uint8_t *b = NULL;
	uint16_t *lab = NULL;
	size_t n = 0;
	uint32_t w, h;
	char why[200];
	int rc;

	memset(rs, 0, sizeof(*rs));
	*image = json_string_value(json_array_get(json_object_get(item, "images"), 0));
	*k = (int)json_integer_value(json_object_get(mask, "region"));
	if (!png || !*image) {
		snprintf(err, errlen, "the item has no mask and image (import it with --format masks)");
		return -EINVAL;
	}
	rc = pngmem_from_data_url(png, &b, &n, why, sizeof(why));
	if (!rc)
		rc = pngmem_read_labels(b, n, &lab, &w, &h, why, sizeof(why));
	if (!rc)
		rc = regions_find(lab, w, h, rs, why, sizeof(why));
	free(b);
	free(lab);
	if (rc) {
		snprintf(err, errlen, "the item's mask: %s", why);
		return -EINVAL;
	}
	if (*k < 1 || *k > rs->n) {
		snprintf(err, errlen, "the item's region %d is not in its mask (%d lesions)", *k, rs->n);
		regions_free(rs);
		return -EINVAL;
	}
	return 0;
}

/* "position: P; size rank: R of N" of region k, as the prompts say it. */
static int brief(struct buf *b, const struct regions *rs, int k)
{
	char pos[32];

	regions_position(rs, k, pos, sizeof(pos));
	return buf_printf(b, "position: %s; size rank: %d of %d (1 = largest)", pos, rs->r[k].size_rank,
			  rs->n);
}

/* [system, user with the text and the images] */
static int messages_build(const char *system, const char *text, const char *img1, const char *img2,
			  json_t **out)
{
	*out = json_pack("[{s:s, s:s}, {s:s, s:[{s:s, s:s}, {s:s, s:{s:s}}, {s:s, s:{s:s}}]}]", "role",
			 "system", "content", system, "role", "user", "content", "type", "text", "text",
			 text, "type", "image_url", "image_url", "url", img1, "type", "image_url",
			 "image_url", "url", img2);
	return *out ? 0 : -ENOMEM;
}

static int reask_note(struct buf *b, const struct step_ctx *ctx)
{
	char problem[400];

	if (ctx->attempt <= 0 || !ctx->last_problem)
		return 0;
	utf8_copy(problem, sizeof(problem), ctx->last_problem, "...");
	return buf_printf(b, "\n\nNote: this is attempt %d. The previous reply was not usable: %s. "
			     "Answer again, following the instructions exactly.",
			  ctx->attempt + 1, problem);
}

static void req_fill(const struct step_def *d, struct step_request *req)
{
	req->expect_json = d->wants_json;
	req->temperature = 0.0;
	req->schema = d->schema ? d->schema() : NULL;
	req->schema_name = d->schema_name;
	req->max_tokens = d->max_tokens;
}

int refer_build_write(const struct step_def *d, const struct step_ctx *ctx, struct step_request *req,
		      char *err, size_t errlen)
{
	struct regions rs;
	struct buf b;
	const char *image;
	char *overlay = NULL, line[600];
	int k, kexp = refer_expressions_per_region(ctx->spec), rc;

	buf_init(&b, REFER_TEXT_MAX);
	rc = item_regions(ctx->item, &rs, &k, &image, err, errlen);
	if (rc)
		goto out;
	rc = overlay_data_url(image, &rs, k, &overlay, line, sizeof(line));
	if (rc) {
		snprintf(err, errlen, "cannot draw the overlay: %s", line);
		goto out;
	}
	regions_describe(&rs, k, line, sizeof(line));
	rc = buf_printf(&b,
			"### Task: refer\n"
			"Write %d different referring expressions for one lesion of this medical image: "
			"each must single out that lesion among the %d lesion%s of the image, so that a "
			"reader who sees only the image and the expression can point to it.\n\n"
			"The first image is the original. The second is the same image with the target "
			"lesion outlined in red.\n\n"
			"Target lesion (measured on the mask): %s.\n"
			"Attributes: ",
			kexp, rs.n, rs.n == 1 ? "" : "s", line);
	if (!rc)
		rc = brief(&b, &rs, k);
	if (!rc && rs.n > 1)
		rc = buf_puts(&b, "\n\nThe other lesions of the image:");
	for (int o = 1; !rc && o <= rs.n; o++) {
		if (o == k)
			continue;
		rc = buf_puts(&b, "\n- ");
		if (!rc)
			rc = brief(&b, &rs, o);
	}
	if (!rc)
		rc = buf_printf(&b,
				"\n\nRules:\n"
				"- Describe the lesion as a radiologist would: where it is (left and right "
				"as seen in the image), its size compared with the others, its shape or "
				"appearance when visible.\n"
				"- Never mention the outline, colours, numbers or pixel coordinates.\n"
				"- Each expression is one phrase or sentence of at most 40 words; the %d "
				"expressions differ in wording or in the features they use.\n\n"
				"Reply with exactly one JSON object and nothing else:\n"
				"{\"expressions\": [\"...\"]}",
				kexp);
	if (!rc)
		rc = reask_note(&b, ctx);
	if (rc) {
		snprintf(err, errlen, "the refer prompt is too long");
		goto out;
	}
	rc = messages_build("You are an expert radiologist who writes precise referring expressions "
			    "for lesions in medical images. You reply with a single JSON object only.",
			    b.base, image, overlay, &req->messages);
	if (rc) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	req_fill(d, req);
out:
	free(overlay);
	buf_free(&b);
	regions_free(&rs);
	return rc;
}

int refer_build_check(const struct step_def *d, const struct step_ctx *ctx, struct step_request *req,
		      char *err, size_t errlen)
{
	struct regions rs;
	struct buf b;
	const char *image, *expr;
	char *overlay = NULL, why[300];
	int k, rc;

	buf_init(&b, REFER_TEXT_MAX);
	expr = json_string_value(json_array_get(json_object_get(ctx->prior, "expressions"), (size_t)d->index - 1));
	rc = item_regions(ctx->item, &rs, &k, &image, err, errlen);
	if (rc)
		goto out;
	if (!expr) {
		snprintf(err, errlen, "no expression %d was written for this region", d->index);
		rc = -EINVAL;
		goto out;
	}
	rc = overlay_data_url(image, &rs, 0, &overlay, why, sizeof(why));
	if (rc) {
		snprintf(err, errlen, "cannot draw the overlay: %s", why);
		goto out;
	}
	rc = buf_printf(&b,
			"### Task: refer_check\n"
			"The first image is a medical image. The second is the same image with each of "
			"its %d candidate lesion%s outlined in its own colour and numbered.\n\n"
			"Candidates:",
			rs.n, rs.n == 1 ? "" : "s");
	for (int o = 1; !rc && o <= rs.n; o++) {
		rc = buf_printf(&b, "\n%d: ", o);
		if (!rc)
			rc = brief(&b, &rs, o);
	}
	if (!rc)
		rc = buf_printf(&b,
				"\n\nReferring expression:\n<<<\n%s\n>>>\n\n"
				"Which candidate does the expression refer to? Judge from the image and "
				"the expression alone. If it fits no candidate, or fits more than one "
				"equally well, \"region\" is null and \"unique\" is false.\n\n"
				"Reply with exactly one JSON object and nothing else:\n"
				"{\"region\": 1, \"unique\": true, \"reason\": \"one short sentence\"}",
				expr);
	if (!rc)
		rc = reask_note(&b, ctx);
	if (rc) {
		snprintf(err, errlen, "the refer_check prompt is too long");
		goto out;
	}
	rc = messages_build("You locate lesions in medical images from referring expressions. You "
			    "reply with a single JSON object only.",
			    b.base, image, overlay, &req->messages);
	if (rc) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	req_fill(d, req);
out:
	free(overlay);
	buf_free(&b);
	regions_free(&rs);
	return rc;
}

static void outcome(struct step_outcome *out, enum step_result r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void outcome(struct step_outcome *out, enum step_result r, const char *fmt, ...)
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
		outcome(out, STEP_RETRY, "%s", why);
	else
		outcome(out, STEP_FAILED, "%s (after %d attempts)", why, ctx->attempt + 1);
}

/* s without its leading and trailing white space, as a new JSON string, or
 * NULL when blank. */
static json_t *trimmed(const char *s)
{
	size_t n;

	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return n ? json_stringn(s, n) : NULL;
}

void refer_reply_write(const struct step_def *d, const struct step_ctx *ctx, const char *content,
		       json_t *json, struct step_outcome *out)
{
	json_t *list = json_object_get(json, "expressions"), *kept = NULL, *e, *mask;
	int want = refer_expressions_per_region(ctx->spec);
	char why[200];
	size_t i;

	(void)content;
	if (!json_is_array(list)) {
		bad_reply(out, ctx, "the reply has no \"expressions\" array");
		return;
	}
	kept = json_array();
	json_array_foreach(list, i, e) {
		json_t *t, *o;
		size_t j;
		bool dup = false;

		if (!json_is_string(e) || (int)json_array_size(kept) == want)
			continue;
		t = trimmed(json_string_value(e));
		if (!t)
			continue;
		if (json_string_length(t) > REFER_EXPRESSION_MAX) {
			json_decref(t);
			json_decref(kept);
			snprintf(why, sizeof(why), "expression %zu is longer than %d bytes", i + 1,
				 REFER_EXPRESSION_MAX);
			bad_reply(out, ctx, why);
			return;
		}
		json_array_foreach(kept, j, o)
			dup |= strcasecmp(json_string_value(o), json_string_value(t)) == 0;
		if (dup)
			json_decref(t);
		else
			json_array_append_new(kept, t);
	}
	if ((int)json_array_size(kept) < want) {
		snprintf(why, sizeof(why), "the reply has %zu different non-empty expressions; %d were asked",
			 json_array_size(kept), want);
		json_decref(kept);
		bad_reply(out, ctx, why);
		return;
	}
	mask = json_object_get(ctx->item, "mask");
	out->result = STEP_DONE;
	out->artifact_kind = d->writes;
	out->artifact = json_pack("{s:O?, s:O?, s:O?, s:o}", "image_id", json_object_get(mask, "image_id"),
				  "region", json_object_get(mask, "region"), "attributes",
				  json_object_get(mask, "attributes"), "expressions", kept);
	out->next = d->next;
}

void refer_reply_check(const struct step_def *d, const struct step_ctx *ctx, const char *content,
		       json_t *json, struct step_outcome *out)
{
	json_t *region = json_object_get(json, "region"), *unique = json_object_get(json, "unique");
	json_t *exprs = json_object_get(ctx->prior, "expressions");
	int target = (int)json_integer_value(json_object_get(json_object_get(ctx->item, "mask"), "region"));
	const char *expr = json_string_value(json_array_get(exprs, (size_t)d->index - 1));
	const char *said = json_string_value(json_object_get(json, "reason"));
	char reason[200];
	bool kept;

	(void)content;
	if (!json_is_object(json) || !(json_is_integer(region) || json_is_null(region)) ||
	    !json_is_boolean(unique)) {
		bad_reply(out, ctx, "the reply needs \"region\" (a number or null) and \"unique\" (true or false)");
		return;
	}
	kept = json_is_true(unique) && json_is_integer(region) && json_integer_value(region) == target;
	if (kept)
		snprintf(reason, sizeof(reason), "kept: the screener picked region %d, uniquely", target);
	else if (!json_is_integer(region) || !json_is_true(unique))
		snprintf(reason, sizeof(reason), "dropped: ambiguous, the screener could not single out "
			 "one region (the target is %d)", target);
	else
		snprintf(reason, sizeof(reason), "dropped: the screener picked region %lld, the target is %d",
			 (long long)json_integer_value(region), target);
	out->result = STEP_DONE;
	out->artifact_kind = d->writes;
	out->artifact = json_pack("{s:i, s:s, s:i, s:O, s:b, s:b, s:s, s:s?}", "index", d->index,
				  "expression", expr ? expr : "", "target", target, "pick", region,
				  "unique", json_is_true(unique), "kept", kept, "reason", reason,
				  "screener_reason", said);
	out->next = d->index < (int)json_array_size(exprs) && d->next >= 0 ? d->next : -1;
}
