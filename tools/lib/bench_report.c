/* The figures a bench tool prints (bench_report.h). */
#define _GNU_SOURCE
#include "bench_report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static FILE *json;
static int json_first = 1;
static int width = 52;

void bench_fail(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what,
		strerror(err < 0 ? -err : err));
	exit(1);
}

void bench_report_open(const char *json_path, int name_width)
{
	width = name_width;
	if (!json_path)
		return;
	json = fopen(json_path, "w");
	if (!json)
		bench_fail(json_path, errno);
	fprintf(json, "{\"figures\": [");
}

void bench_report(const char *name, double value, const char *unit)
{
	printf("%-*s %14.1f %s\n", width, name, value, unit);
	if (json)
		fprintf(json, "%s{\"name\": \"%s\", \"value\": %.3f, \"unit\": \"%s\"}",
			json_first ? "" : ", ", name, value, unit);
	json_first = 0;
}

void bench_report_close(void)
{
	if (!json)
		return;
	fprintf(json, "]}\n");
	fclose(json);
	json = NULL;
}
