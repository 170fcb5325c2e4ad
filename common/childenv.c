#include "common/childenv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Teachers' and embedders' keys under the names their SDKs read by default:
 * a hook or engine that links such an SDK would otherwise pick them up. */
const char *const childenv_provider_keys[] = {
	"OPENAI_API_KEY",   "AZURE_OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY",
	"GOOGLE_API_KEY",   "MISTRAL_API_KEY",      "GROQ_API_KEY",      "TOGETHER_API_KEY",
	"DEEPSEEK_API_KEY", "COHERE_API_KEY",       "OPENROUTER_API_KEY", "FIREWORKS_API_KEY",
	"XAI_API_KEY",      "DASHSCOPE_API_KEY",    "MOONSHOT_API_KEY",  "PERPLEXITY_API_KEY",
	"VOYAGE_API_KEY",   NULL,
};

static int names(const char *entry, size_t len, const char *name)
{
	return name != NULL && strlen(name) == len && memcmp(entry, name, len) == 0;
}

int childenv_is_hidden(const char *entry, const char *const *hide, size_t nhide, const char *keep)
{
	const char *eq = strchr(entry, '=');
	size_t len = eq != NULL ? (size_t)(eq - entry) : strlen(entry);

	if (names(entry, len, keep))
		return 0;
	for (size_t i = 0; i < nhide; i++)
		if (names(entry, len, hide[i]))
			return 1;
	for (size_t i = 0; childenv_provider_keys[i] != NULL; i++)
		if (names(entry, len, childenv_provider_keys[i]))
			return 1;
	return 0;
}

int childenv_build(char *const *envp, const char *const *hide, size_t nhide, const char *keep, char ***out)
{
	size_t n = 0, k = 0;
	char **env;

	*out = NULL;
	while (envp != NULL && envp[n] != NULL)
		n++;
	env = calloc(n + 1, sizeof(*env));
	if (env == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!childenv_is_hidden(envp[i], hide, nhide, keep))
			env[k++] = envp[i];
	*out = env;
	return 0;
}
