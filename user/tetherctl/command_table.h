/* SPDX-License-Identifier: MIT */
/* tetherctl's commands: what the operator types ("backend add NAME --addr
 * ADDR ...") and the request it becomes ("add backend name=... addr=..."),
 * described as data, so that argument parsing, help and tests all read the
 * same table. */
#ifndef TETHER_CTL_COMMANDS_H
#define TETHER_CTL_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

#include "values.h"

#define CTL_MAX_OPTIONS 10

enum ctl_option_kind {
	CTL_OPT_VALUE, /* takes a value, sent as key=value */
	CTL_OPT_FLAG,  /* no value; sends key=fixed (--warm: state=warm) */
	CTL_OPT_WAIT,  /* --wait: tetherctl itself waits; nothing is sent */
	CTL_OPT_LOCAL, /* a value for tetherctl itself (--count); nothing is sent */
};

struct ctl_option {
	const char *flag;    /* "--addr"; NULL for a positional argument */
	const char *metavar; /* "ADDR", how help shows the value; NULL: none */
	const char *key;     /* the protocol key it sends */
	const char *fixed;   /* CTL_OPT_FLAG: the value it sends */
	enum ctl_option_kind kind;
	enum ctl_value_type type;
	bool required;
	const char *help;
};

/* How a successful answer prints with --json. */
enum ctl_shape {
	CTL_SHAPE_LIST,   /* always an array, even of one record or none */
	CTL_SHAPE_SINGLE, /* an object when there is one record; {"ok":true} for none */
};

enum ctl_mode {
	CTL_MODE_CALL,  /* one request, one answer */
	CTL_MODE_WATCH, /* "ok", then a stream of events */
	CTL_MODE_TRACE, /* "ok", then a stream of trace records (trace.c) */
};

/* What --wait waits for, once the drain request is answered. */
enum ctl_wait_kind {
	CTL_WAIT_NONE,      /* the command has no --wait */
	CTL_WAIT_CONTAINER, /* until the container is gone */
	CTL_WAIT_BACKEND,   /* until the backend has no container left */
};

struct ctl_command {
	const char *words[2];    /* as typed: "backend" "add"; "stats" NULL */
	const char *verb, *noun; /* as sent: "add" "backend" */
	/* Positional arguments first; the request carries the keys in this
	 * order. Ends at the first entry with neither flag nor metavar. */
	struct ctl_option options[CTL_MAX_OPTIONS];
	enum ctl_shape shape;
	enum ctl_mode mode;
	enum ctl_wait_kind wait;
	const char *summary;
};

extern const struct ctl_command ctl_commands[];
extern const size_t ctl_command_count;

/* The command typed as first [second] (second is NULL or ignored for a
 * one-word command), or NULL. */
const struct ctl_command *ctl_command_find(const char *first, const char *second);

/* How many options command has: they end at the first entry with neither
 * flag nor metavar, or at CTL_MAX_OPTIONS. */
int ctl_option_count(const struct ctl_command *command);

/* True when first is the first word of a two-word command ("backend"). */
bool ctl_command_is_group(const char *first);

#endif
