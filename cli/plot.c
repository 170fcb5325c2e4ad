#include "cli/plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/utf8.h"

#define W 900.0
#define FONT "font-family=\"sans-serif\""

/* Colours of the checkpoints / series, in order. */
static const char *const palette[] = { "#8c8c8c", "#4e79a7", "#f28e2b", "#59a14f", "#e15759",
				       "#76b7b2", "#edc948", "#b07aa1" };
#define NPALETTE (sizeof(palette) / sizeof(palette[0]))

static double num(const json_t *o, const char *k)
{
	double v = json_number_value(json_object_get(o, k));

	return isfinite(v) ? v : 0;
}

static double arr_num(const json_t *a, size_t i)
{
	double v = json_number_value(json_array_get(a, i));

	return isfinite(v) ? v : 0;
}

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

char *plot_label(char *dst, size_t dstlen, const char *text, int max_chars)
{
	char clean[1024];
	size_t len, i = 0;
	int chars = 0;

	utf8_copy(clean, sizeof(clean), text ? text : "", NULL);
	len = strlen(clean);
	/* the byte where character max_chars would start */
	while (i < len && chars < max_chars) {
		i++;
		while (i < len && ((unsigned char)clean[i] & 0xC0) == 0x80)
			i++;
		chars++;
	}
	if (i < len) {
		/* cut: room for "..." in the count */
		size_t keep = 0;
		int k = 0;

		while (keep < len && k < max_chars - 3) {
			keep++;
			while (keep < len && ((unsigned char)clean[keep] & 0xC0) == 0x80)
				keep++;
			k++;
		}
		if (keep + 4 > sizeof(clean))
			keep = utf8_prefix(clean, keep, sizeof(clean) - 4);
		memcpy(clean + keep, "...", 4);
		len = keep + 3;
	}
	/* dst may be shorter than the label: cut again on a boundary */
	len = utf8_prefix(clean, len, dstlen - 1);
	memcpy(dst, clean, len);
	dst[len] = '\0';
	return dst;
}

int plot_xml_text(struct buf *out, const char *s)
{
	int rc = 0;

	for (; s && *s && !rc; s++) {
		unsigned char c = (unsigned char)*s;

		switch (c) {
		case '&': rc = buf_puts(out, "&amp;"); break;
		case '<': rc = buf_puts(out, "&lt;"); break;
		case '>': rc = buf_puts(out, "&gt;"); break;
		case '"': rc = buf_puts(out, "&quot;"); break;
		case '\'': rc = buf_puts(out, "&apos;"); break;
		default:
			rc = c < 0x20 && c != '\t' && c != '\n' ? buf_puts(out, " ") : buf_append(out, s, 1);
		}
	}
	return rc;
}

/* A text element; the text is escaped. */
static int text_at(struct buf *b, double x, double y, const char *anchor, int size, const char *extra,
		   const char *text)
{
	int rc = buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%d\" " FONT "%s%s>",
			    x, y, anchor, size, extra ? " " : "", extra ? extra : "");

	rc = rc ? rc : plot_xml_text(b, text);
	return rc ? rc : buf_puts(b, "</text>\n");
}

static int svg_open(struct buf *b, double h, const char *title)
{
	int rc = buf_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			       "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
			       "viewBox=\"0 0 %.0f %.0f\">\n<title>",
			    W, h, W, h);

	rc = rc ? rc : plot_xml_text(b, title);
	rc = rc ? rc : buf_printf(b, "</title>\n<rect width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", W, h);
	return rc ? rc : text_at(b, W / 2, 26, "middle", 16, "font-weight=\"bold\"", title);
}

static int svg_close(struct buf *b) { return buf_puts(b, "</svg>\n"); }

/* A "nice" step for an axis from 0 to max with about n ticks. */
static double nice_step(double max, int n)
{
	double raw = max / n, mag, f;

	if (!(raw > 0))
		return 1;
	mag = pow(10, floor(log10(raw)));
	f = raw / mag;
	return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

/* The y axis of a plot area (x0, y0) - (x1, y1) from 0 to ymax, with
 * gridlines and the label; returns the scale (pixels per unit) in *k. */
static int y_axis(struct buf *b, double x0, double y0, double x1, double y1, double ymax,
		  const char *fmt, const char *label, double *k)
{
	double step = nice_step(ymax, 5);
	char t[64];
	int rc = 0;

	if (!(ymax > 0))
		ymax = 1;
	ymax = ceil(ymax / step) * step;
	*k = (y1 - y0) / ymax;
	for (double v = 0; v <= ymax + step / 2 && !rc; v += step) {
		double y = y1 - v * *k;

		rc = buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n",
				x0, y, x1, y);
		snprintf(t, sizeof(t), fmt, v);
		rc = rc ? rc : text_at(b, x0 - 6, y + 4, "end", 11, NULL, t);
	}
	rc = rc ? rc : buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n"
				     "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n",
				  x0, y0, x0, y1, x0, y1, x1, y1);
	if (!rc) {
		char tr[96];

		snprintf(tr, sizeof(tr), "transform=\"rotate(-90 %.1f %.1f)\"", 18.0, (y0 + y1) / 2);
		rc = text_at(b, 18, (y0 + y1) / 2, "middle", 12, tr, label);
	}
	return rc;
}

/* ---- progress ----------------------------------------------------------- */

int plot_progress_svg(struct buf *b, const json_t *tl, const char *title)
{
	const json_t *pts = json_object_get(tl, "points"), *p;
	double x0 = 70, x1 = W - 30, y0 = 60, y1 = 330, H = 400, k, ymax = 0, t0, span, cost = 0;
	double bucket = num(tl, "bucket_s");
	size_t n = json_array_size(pts), i;
	static const char *const series[] = { "items_done", "calls" };
	char t[96];
	int rc;

	json_array_foreach(pts, i, p)
	{
		for (size_t s = 0; s < 2; s++)
			if (num(p, series[s]) > ymax)
				ymax = num(p, series[s]);
		cost += num(p, "cost_usd");
	}
	rc = svg_open(b, H, title);
	snprintf(t, sizeof(t), "per bucket of %.0f s", bucket > 0 ? bucket : 1);
	rc = rc ? rc : y_axis(b, x0, y0, x1, y1, ymax, "%.0f", t, &k);
	t0 = n ? num(json_array_get(pts, 0), "t") : 0;
	span = n > 1 ? num(json_array_get(pts, n - 1), "t") - t0 : 1;
	if (!(span > 0))
		span = 1;
	/* x ticks: time since the job started */
	for (int i2 = 0; i2 <= 5 && !rc; i2++) {
		double v = span * i2 / 5, x = x0 + (x1 - x0) * i2 / 5;

		if (span >= 600)
			snprintf(t, sizeof(t), "%.1f min", v / 60);
		else
			snprintf(t, sizeof(t), span >= 10 ? "%.0f s" : "%.1f s", v);
		rc = text_at(b, x, y1 + 18, "middle", 11, NULL, t);
	}
	rc = rc ? rc : text_at(b, (x0 + x1) / 2, y1 + 40, "middle", 12, NULL, "time since the job started");
	for (size_t s = 0; s < 2 && !rc; s++) {
		rc = buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
				palette[1 + s]);
		json_array_foreach(pts, i, p)
		{
			double x = x0 + (x1 - x0) * (n > 1 ? (num(p, "t") - t0) / span : 0.5);

			if (rc)
				break;
			rc = buf_printf(b, "%s%.1f,%.1f", i ? " " : "", x, y1 - num(p, series[s]) * k);
		}
		rc = rc ? rc : buf_puts(b, "\"/>\n");
		rc = rc ? rc : buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n",
					  x0 + 10 + 190.0 * (double)s, H - 32, palette[1 + s]);
		rc = rc ? rc : text_at(b, x0 + 28 + 190.0 * (double)s, H - 22, "start", 12, NULL,
				       s == 0 ? "item steps done" : "model calls");
	}
	snprintf(t, sizeof(t), "spend $%.4f over %zu buckets", cost, n);
	rc = rc ? rc : text_at(b, x1, H - 22, "end", 12, NULL, t);
	return rc ? rc : svg_close(b);
}

/* ---- eval --------------------------------------------------------------- */

#define EVAL_MAX_GROUPS 24

int plot_eval_svg(struct buf *b, const json_t *job)
{
	const json_t *ev = json_object_get(job, "eval"), *cks = json_object_get(ev, "checkpoints"), *c;
	json_t *groups = json_array(), *one = NULL, *v;
	const char *k;
	size_t nck, ng, i;
	double x0 = 70, x1 = W - 20, y0 = 60, y1 = 330, H, kk, gw;
	char t[160], title[200], lab[64];
	int rc = 0;

	if (!json_is_object(ev) || !groups) {
		json_decref(groups);
		return -EINVAL;
	}
	if (!json_is_array(cks) || json_array_size(cks) == 0) {
		/* a report from before there were checkpoints */
		one = json_pack("[O]", ev);
		json_object_set_new(json_array_get(one, 0), "name", json_string("eval"));
		cks = one;
	}
	nck = json_array_size(cks);
	/* groups: overall, then the topics of any checkpoint (sorted by name) */
	json_array_append_new(groups, json_null());
	{
		json_t *names = json_object();

		json_array_foreach(cks, i, c)
			json_object_foreach(json_object_get(c, "by_topic"), k, v)
				json_object_set(names, k, json_true());
		json_object_foreach(names, k, v)
			if (json_array_size(groups) < EVAL_MAX_GROUPS)
				json_array_append_new(groups, json_string(k));
		json_decref(names);
	}
	ng = json_array_size(groups);
	H = 400 + 18.0 * (double)nck;
	snprintf(title, sizeof(title), "Accuracy per checkpoint: %s", str(job, "id"));
	rc = svg_open(b, H, title);
	rc = rc ? rc : y_axis(b, x0, y0, x1, y1, 100, "%.0f%%", "accuracy (%), whiskers: 95% interval", &kk);
	gw = (x1 - x0) / (double)ng;
	for (size_t g = 0; g < ng && !rc; g++) {
		const char *name = json_string_value(json_array_get(groups, g));
		double bw = gw * 0.8 / (double)nck;

		for (size_t ci = 0; ci < nck && !rc; ci++) {
			const json_t *o = json_array_get(cks, ci), *ci95;
			double acc, lo, hi, x, y;

			if (name)
				o = json_object_get(json_object_get(o, "by_topic"), name);
			if (!json_is_object(o))
				continue;
			ci95 = json_object_get(o, "ci95");
			acc = 100 * num(o, "accuracy");
			lo = 100 * arr_num(ci95, 0);
			hi = 100 * arr_num(ci95, 1);
			x = x0 + gw * (double)g + gw * 0.1 + bw * (double)ci;
			y = y1 - acc * kk;
			rc = buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
					   "<title>",
					x, y, bw * 0.9, acc * kk, palette[ci % NPALETTE]);
			snprintf(t, sizeof(t), " %.1f%% (%lld/%lld), 95%% interval %.1f to %.1f%%", acc,
				 (long long)json_integer_value(json_object_get(o, "correct")),
				 (long long)json_integer_value(json_object_get(o, "total")), lo, hi);
			rc = rc ? rc : plot_xml_text(b, str(json_array_get(cks, ci), "name"));
			rc = rc ? rc : plot_xml_text(b, t);
			rc = rc ? rc : buf_puts(b, "</title></rect>\n");
			if (!rc && json_is_array(ci95)) {
				double cx = x + bw * 0.45;

				rc = buf_printf(b, "<path d=\"M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f\" "
						   "stroke=\"#222\" fill=\"none\"/>\n",
						cx, y1 - lo * kk, y1 - hi * kk, cx - 3, y1 - lo * kk, cx + 3,
						cx - 3, y1 - hi * kk, cx + 3);
			}
		}
		plot_label(lab, sizeof(lab), name ? name : "overall", gw > 90 ? 18 : gw > 50 ? 10 : 6);
		rc = rc ? rc : text_at(b, x0 + gw * ((double)g + 0.5), y1 + 16, "middle", 11,
				       name ? NULL : "font-weight=\"bold\"", lab);
	}
	/* legend: one line per checkpoint with its change from the baseline */
	for (size_t ci = 0; ci < nck && !rc; ci++) {
		const json_t *o = json_array_get(cks, ci), *ch = json_object_get(o, "change");
		double y = y1 + 44 + 18.0 * (double)ci;
		char name[64];

		plot_label(name, sizeof(name), str(o, "name"), 24);
		if (json_is_object(ch))
			snprintf(t, sizeof(t), "%s: %.1f%%, change from %s %+.1f points (95%% interval %+.1f to %+.1f)",
				 name, 100 * num(o, "accuracy"), str(ch, "from"), 100 * num(ch, "delta"),
				 100 * arr_num(json_object_get(ch, "ci95"), 0),
				 100 * arr_num(json_object_get(ch, "ci95"), 1));
		else
			snprintf(t, sizeof(t), "%s: %.1f%% (%lld/%lld)", name, 100 * num(o, "accuracy"),
				 (long long)json_integer_value(json_object_get(o, "correct")),
				 (long long)json_integer_value(json_object_get(o, "total")));
		rc = buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", x0,
				y - 10, palette[ci % NPALETTE]);
		rc = rc ? rc : text_at(b, x0 + 18, y, "start", 12, NULL, t);
	}
	if (!rc && str(ev, "note")[0])
		rc = text_at(b, x0, H - 8, "start", 11, "fill=\"#a00\"", str(ev, "note"));
	json_decref(groups);
	json_decref(one);
	return rc ? rc : svg_close(b);
}

/* ---- funnel ------------------------------------------------------------- */

static double cnt(const json_t *counts, const char *step, const char *what)
{
	return num(json_object_get(counts, step), what);
}

static double cnt_all(const json_t *counts, const char *step)
{
	static const char *const f[] = { "pending", "in_flight", "done", "failed", "dropped" };
	double s = 0;

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		s += cnt(counts, step, f[i]);
	return s;
}

int plot_funnel_svg(struct buf *b, const json_t *job)
{
	const json_t *c = json_object_get(job, "counts");
	struct {
		const char *label;
		double n;
	} rows[6];
	double x0 = 200, x1 = W - 90, y0 = 60, rh = 38, max = 0, H;
	char title[160], t[64];
	int rc;

	/* stage one: what screening saw, what it kept, what got an explanation */
	rows[0].label = "screened";
	rows[0].n = cnt(c, "screen", "done") + cnt(c, "screen", "dropped") + cnt(c, "screen", "failed");
	rows[1].label = "kept";
	rows[1].n = json_object_get(c, "screen") ? cnt(c, "screen", "done") : cnt_all(c, "explain");
	rows[2].label = "explained";
	rows[2].n = cnt(c, "explain", "done");
	/* stage two: answered, wrong (sent to the correction), corrected */
	rows[3].label = "answered";
	rows[3].n = cnt(c, "answer", "done");
	rows[4].label = "wrong";
	rows[4].n = cnt_all(c, "correct");
	rows[5].label = "corrected";
	rows[5].n = cnt(c, "correct", "done");
	for (int i = 0; i < 6; i++)
		if (rows[i].n > max)
			max = rows[i].n;
	if (!(max > 0))
		max = 1;
	H = y0 + rh * 6 + 40;
	snprintf(title, sizeof(title), "Funnel: %s", str(job, "id"));
	rc = svg_open(b, H, title);
	for (int i = 0; i < 6 && !rc; i++) {
		double y = y0 + rh * i + (i >= 3 ? 14 : 0), w = (x1 - x0) * rows[i].n / max;

		rc = text_at(b, x0 - 10, y + 20, "end", 13, NULL, rows[i].label);
		rc = rc ? rc : buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n",
					  x0, y + 4, w, rh - 10, palette[i < 3 ? 1 : 2]);
		snprintf(t, sizeof(t), "%.0f", rows[i].n);
		rc = rc ? rc : text_at(b, x0 + w + 6, y + 20, "start", 12, NULL, t);
	}
	rc = rc ? rc : text_at(b, 20, y0 + 8, "start", 11, "fill=\"#555\"", "stage one");
	rc = rc ? rc : text_at(b, 20, y0 + rh * 3 + 22, "start", 11, "fill=\"#555\"", "stage two");
	rc = rc ? rc : text_at(b, (x0 + x1) / 2, H - 12, "middle", 12, NULL, "items");
	return rc ? rc : svg_close(b);
}
