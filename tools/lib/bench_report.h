/* The figures a bench tool prints: one aligned row each on stdout and, with
 * --json FILE, the same figures as {"figures": [...]} for make bench. */
#ifndef TETHER_TOOLS_BENCH_REPORT_H
#define TETHER_TOOLS_BENCH_REPORT_H

/* Rows' names padded to name_width; json_path may be NULL (stdout only). */
void bench_report_open(const char *json_path, int name_width);
void bench_report(const char *name, double value, const char *unit);
void bench_report_close(void);

/* "TOOL: WHAT: strerror(err)" on stderr, exit 1 (err may be negative). */
_Noreturn void bench_fail(const char *what, int err);

#endif
