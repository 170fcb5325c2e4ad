#ifndef MT_REFER_EXPORT_H
#define MT_REFER_EXPORT_H
/* The regions of a refer job as the document exporters take them
 * (formats/export.h, struct export_format.document): each region item that
 * has its expressions, with each expression's verdict and the split of its
 * image. Loop thread: reads the store whole (a refer job's regions, a few
 * thousand rows); see docs/refer.md. */

#include <jansson.h>
#include <stdint.h>

struct store;

/* *out (new reference): the array described in formats/export.h, in item
 * order. spec (borrowed) is the job's stored spec: its seed and
 * eval_fraction split the images (all regions of an image together) into
 * "train" and "val" as the runner splits items. 0, -EINVAL (spec), -EIO,
 * -ENOMEM. */
int refer_export_regions(struct store *st, int64_t job, int64_t dataset, json_t *spec, json_t **out);

#endif
