// SPDX-License-Identifier: MIT
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>
#include <glib.h>

#include "check.h"

void check_failed(const char *file, int line, const char *cond, const char *fmt, ...)
{
	char message[2048];
	va_list args;

	va_start(args, fmt);
	vsnprintf(message, sizeof(message), fmt, args);
	va_end(args);
	print_error("%s\n    (failed: %s)\n", message, cond);
	_fail(file, line);
}

static GPtrArray *kept_strings;

const char *check_string_keep(char *text)
{
	if (!kept_strings)
		kept_strings = g_ptr_array_new_with_free_func(g_free);
	g_ptr_array_add(kept_strings, text);
	return text;
}

const char *S(const char *fmt, ...)
{
	va_list args;
	char *text;

	va_start(args, fmt);
	text = g_strdup_vprintf(fmt, args);
	va_end(args);
	return check_string_keep(text);
}

void check_strings_free(void)
{
	if (kept_strings)
		g_ptr_array_free(kept_strings, TRUE);
	kept_strings = NULL;
}
