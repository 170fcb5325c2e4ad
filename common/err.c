#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/utf8.h"

int mt_err_set(struct mt_err *e, int rc, const char *code, const char *field, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!e)
		return rc;
	snprintf(e->code, sizeof(e->code), "%s", code ? code : "error");
	snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	utf8_copy(e->message, sizeof(e->message), msg, "...");
	return rc;
}
