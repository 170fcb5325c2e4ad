#ifndef MT_STORE_TIMELINE_H
#define MT_STORE_TIMELINE_H
/* A job's activity over time: its calls (count, tokens, cost) and its item
 * steps finished done, summed per time bucket. Same rules as store/store.h
 * (loop thread; short reads). */

#include <jansson.h>
#include <stdint.h>

struct store;

/* At most this many points in a timeline. */
#define STORE_TIMELINE_MAX_POINTS 500

/* The job's timeline as {"bucket_s":S,"points":[{"t":T,"calls":N,
 * "tokens_in":N,"tokens_out":N,"cost_usd":x,"items_done":N}]}: one point per
 * bucket of S seconds from the bucket of the job's creation to the bucket of
 * its end (now while it is not finished), empty buckets included, t the
 * bucket's start in unix seconds. bucket_s <= 0 picks the smallest of 1, 2,
 * 5, 10, 15, 30 s, 1, 2, 5, 10, 15, 30 min, 1, 2, 3, 6, 12 h, then whole
 * days, that fits max_points points; a bucket_s that gives more points is
 * widened to fit (the answer says the S it used). max_points is capped to
 * STORE_TIMELINE_MAX_POINTS. Two grouped reads over the job's rows of the
 * calls and tasks tables (their job_id indexes).
 * *out: new object. 0, -ENOENT for no such job, or a negative errno. */
int store_job_timeline(struct store *st, int64_t job, int64_t bucket_s, int max_points,
		       json_t **out);

/* The bucket the timeline uses for a span of span_s seconds with at most
 * max_points points when asked for bucket_s (<= 0: the automatic choice);
 * pure. */
int64_t store_timeline_bucket(double span_s, int64_t bucket_s, int max_points);

#endif
