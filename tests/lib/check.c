// SPDX-License-Identifier: MIT
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

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
