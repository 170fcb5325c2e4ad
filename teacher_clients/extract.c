/* A JSON object out of a model's reply text. */
#include "teacher_clients/extract.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static json_t *try_object(const char *s, size_t len)
{
	json_t *j = json_loadb(s, len, JSON_REJECT_DUPLICATES, NULL);

	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* The end of the balanced {...} starting at s[0] == '{', or NULL. */
static const char *balanced_end(const char *s)
{
	int depth = 0, in_str = 0;
	const char *p;

	for (p = s; *p; p++) {
		if (in_str) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '"')
				in_str = 0;
			continue;
		}
		if (*p == '"')
			in_str = 1;
		else if (*p == '{')
			depth++;
		else if (*p == '}' && --depth == 0)
			return p;
	}
	return NULL;
}

int extract_json_object(const char *text, json_t **out, char *err, size_t errlen)
{
	const char *p, *f, *end;
	json_t *j;

	*out = NULL;
	if (!text) {
		snprintf(err, errlen, "no reply text to extract JSON from");
		return -EBADMSG;
	}
	j = try_object(text, strlen(text));
	if (j)
		goto found;
	/* A fenced block: ```json\n...``` or ```\n...``` */
	for (f = strstr(text, "```"); f; f = strstr(end + 3, "```")) {
		const char *body = f + 3;
		while (isalpha((unsigned char)*body))
			body++;
		end = strstr(body, "```");
		if (!end)
			break;
		j = try_object(body, (size_t)(end - body));
		if (j)
			goto found;
	}
	for (p = strchr(text, '{'); p; p = strchr(p + 1, '{')) {
		end = balanced_end(p);
		if (!end)
			break;
		j = try_object(p, (size_t)(end - p + 1));
		if (j)
			goto found;
	}
	snprintf(err, errlen, "reply text holds no JSON object (%zu bytes, %s)", strlen(text),
		 strchr(text, '{') ? "no balanced {...} parses" : "no '{' at all");
	return -EBADMSG;
found:
	*out = j;
	return 0;
}
