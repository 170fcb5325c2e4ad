#ifndef MT_SIM_REFER_H
#define MT_SIM_REFER_H
/* medthink-sim (a SIMULATOR, not a model): the refer tasks of
 * docs/refer.md, answered deterministically from the attributes the
 * prompt states, never from the images (it only counts them).
 *
 *   refer:        k expressions for the target, built from its position
 *                 and size rank. Expression 3 names the size rank of the
 *                 NEXT region (R mod N + 1) on purpose, so that with two
 *                 or more lesions the screening picks the wrong region and
 *                 the drop path is exercised; expression 2 names only the
 *                 position, so it is dropped as ambiguous when another
 *                 lesion shares the position.
 *   refer_check:  picks the candidates whose position and size rank match
 *                 what the expression says; one match is a unique pick,
 *                 none or several are {"region":null,"unique":false}.
 * A request without two image parts gets an empty expression list (the
 * daemon then re-asks and finally fails the item). */

#include <jansson.h>

/* The reply content for a refer task (task is the "### Task:" name, text
 * the user message's text, msgs the request's messages), a malloc'ed JSON
 * string; NULL when task is not a refer task. */
char *sim_refer_reply(const char *task, const char *text, json_t *msgs);

#endif
