#ifndef MT_ITEM_H
#define MT_ITEM_H
/* Small readers of a normalized item (formats/import.h describes it),
 * shared by the exporters and the prompts so both show an item alike.
 * Pure; any thread. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* True when item (borrowed) is multiple-choice: a non-empty "options"
 * object. */
bool item_is_mc(json_t *item);

/* The "A. text" lines of an options object (keys in stored order, joined
 * by '\n', no trailing newline), as a new string (caller frees) of at most
 * max bytes; NULL for a non-object, over max, or on ENOMEM. */
char *item_options_text(json_t *options, size_t max);

#endif
