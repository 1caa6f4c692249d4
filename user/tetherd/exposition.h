/* SPDX-License-Identifier: MIT */
/* The Prometheus text exposition format (version 0.0.4), written: families
 * (# HELP, # TYPE, then their samples, together), label values escaped,
 * names checked against the format's rules. No I/O: metrics.c fills a
 * GString with it and the HTTP server sends it. A name or label the format
 * does not allow, a counter without _total, a family written twice or a
 * sample outside its family is a bug: the writer marks itself failed (and
 * says why) rather than send what a scraper would reject. */
#ifndef TETHER_EXPOSITION_H
#define TETHER_EXPOSITION_H

#include <glib.h>
#include <stdbool.h>
#include <linux/types.h>

#define EXPO_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum expo_type { EXPO_COUNTER, EXPO_GAUGE };

struct expo {
	GString *out;
	bool failed;
	char why[256];        /* the first mistake, when failed */
	char family[128];     /* the family being written; empty: none yet */
	enum expo_type type;
	GHashTable *families; /* names written so far */
};

void expo_init(struct expo *e, GString *out);
void expo_free(struct expo *e);

/* Starts a family: its # HELP (help escaped) and # TYPE lines. Counter names
 * end in _total; names are [a-zA-Z_:][a-zA-Z0-9_:]*. */
void expo_family(struct expo *e, const char *name, enum expo_type type, const char *help);

/* One sample of the current family: labels are name, value pairs ending with
 * NULL (or NULL for none). Label names are [a-zA-Z_][a-zA-Z0-9_]*, not
 * starting with "__", each once; values are any text (escaped; bytes that are
 * not UTF-8 replaced). */
void expo_sample_u64(struct expo *e, const char *const *labels, __u64 value);
void expo_sample(struct expo *e, const char *const *labels, double value);

/* Exposed for the tests. */
bool expo_metric_name_valid(const char *name);
bool expo_label_name_valid(const char *name);
void expo_escape_label_value(GString *out, const char *value);

#endif
