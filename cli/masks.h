#ifndef MT_CLI_MASKS_H
#define MT_CLI_MASKS_H
/* `medthink import --format masks PATH` (docs/refer.md): image + mask
 * pairs read here, at import, and sent as data only (the daemon never
 * opens a path). PATH is either
 *   - a folder holding img/ and mask/, with the same file names (*.png);
 *   - a JSON Lines file whose lines name both, relative to its folder:
 *     {"id":"case-1","image":"img/1.png","mask":"mask/1.png"} ("id" optional:
 *     the image's file name without its extension).
 * Both files must be PNGs (by their first bytes) of at most IMAGES_MAX_FILE
 * bytes and MASKS_MAX_SIDE pixels a side, of the same width and height,
 * readable whole by libpng, and the mask must not be all 0 (a gray mask;
 * the daemon checks palette masks and finds the lesions). Any problem stops
 * the import before anything is sent, naming the file and the problem.
 *
 * The body written is the `masks` layout the daemon reads: one line a pair,
 * {"id":ID,"file":NAME,"image":"data:image/png;base64,...","mask":"data:..."}. */

#include <stdint.h>
#include <stdio.h>

#define MASKS_MAX_SIDE 4096u
#define MASKS_MAX_LINE ((size_t)1 << 20) /* the daemon's line limit */

/* Reads the pairs of path (a folder or a JSONL file, see above) and writes
 * the body to out (borrowed); *pairs gets their count. 0, or a negative
 * errno with err naming the file and the problem. */
int masks_build(const char *path, FILE *out, uint64_t *pairs, char *err, size_t errlen);

#endif
