#ifndef MT_CHILDENV_H
#define MT_CHILDENV_H
/* The environment handed to a child process the daemon starts (a student
 * engine, the train hook): the daemon's own environment without the
 * variables that hold API keys. One filter for every child, so a key never
 * reaches a process that has no use for it (SPEC 8, "Secrets stay secret").
 *
 * Removed: every name the caller lists (the daemon lists the api_key_env of
 * every configured endpoint) and the common provider key names of
 * childenv_provider_keys, whether configured or not. Kept: everything else,
 * including tokens a trainer may need (HF_TOKEN, WANDB_API_KEY), and the
 * one name given as keep (a student engine checks its own key). */

#include <stddef.h>

/* The provider key names always removed (OPENAI_API_KEY, ANTHROPIC_API_KEY,
 * ...), NULL-terminated. */
extern const char *const childenv_provider_keys[];

/* True when the NAME=VALUE entry env names one of hide[0..nhide) or
 * childenv_provider_keys, and not keep (may be NULL). */
int childenv_is_hidden(const char *entry, const char *const *hide, size_t nhide, const char *keep);

/* Builds a NULL-terminated copy of envp (borrowed, NULL-terminated) without
 * the hidden entries (see childenv_is_hidden). The array is malloc'ed and
 * taken by the caller (free() it); its strings are borrowed from envp and
 * live as long as envp does. Stores it in *out and returns 0, or -ENOMEM.
 * Any thread; reads nothing but its arguments. */
int childenv_build(char *const *envp, const char *const *hide, size_t nhide, const char *keep, char ***out);

#endif
