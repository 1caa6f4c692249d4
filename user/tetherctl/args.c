// SPDX-License-Identifier: MIT
/* tetherctl's command line to a request (args.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "args.h"

struct parser {
	int argc;
	char *const *argv;
	int next; /* the argument to read next */
	struct ctl_invocation *inv;
	const char *values[CTL_MAX_OPTIONS]; /* as typed, per option; "" for a flag */
	char *message;
	size_t size;
};

static int fail(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct parser *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->message, p->size, fmt, ap);
	va_end(ap);
	return -1;
}

struct quoted {
	char text[64];
};

static struct quoted quoted(const char *arg)
{
	struct quoted q;

	ctl_quote(arg, q.text, sizeof(q.text));
	return q;
}

static bool is_help(const char *arg)
{
	return !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

static bool is_option(const char *arg)
{
	return arg[0] == '-' && arg[1];
}

/* --help anywhere before "--" wins over everything else on the line. */
static bool help_follows(const struct parser *p)
{
	for (int i = p->next; i < p->argc && strcmp(p->argv[i], "--"); i++)
		if (is_help(p->argv[i]))
			return true;
	return false;
}

/* "backend add" */
struct command_name {
	char text[64];
};

static struct command_name name_of(const struct ctl_command *command)
{
	struct command_name n;

	snprintf(n.text, sizeof(n.text), "%s%s%s", command->words[0], command->words[1] ? " " : "",
		 command->words[1] ? command->words[1] : "");
	return n;
}

/* The value of an option given as "--opt=value" or "--opt value", or NULL
 * (with the message) when there is none. */
static const char *option_value(struct parser *p, const char *arg, const char *flag,
				const char *metavar)
{
	const char *equals = strchr(arg, '=');

	if (equals)
		return equals + 1;
	if (p->next < p->argc)
		return p->argv[p->next++];
	fail(p, "option %s needs a value (%s)", flag, metavar);
	return NULL;
}

/* --json and --socket, which may come before or after the command words.
 * Returns 1 when arg was one, 0 when not, -1 on error. */
static int take_global(struct parser *p, const char *arg)
{
	if (!strcmp(arg, "--json")) {
		p->inv->json = true;
		return 1;
	}
	if (strcmp(arg, "--socket") && strncmp(arg, "--socket=", strlen("--socket=")))
		return 0;

	const char *path = option_value(p, arg, "--socket", "PATH");

	if (!path)
		return -1;
	if (!*path)
		return fail(p, "--socket needs a path");
	p->inv->socket_path = path;
	return 1;
}

/* The options before the command words. */
static int parse_leading_options(struct parser *p)
{
	while (p->next < p->argc && is_option(p->argv[p->next])) {
		const char *arg = p->argv[p->next++];

		if (!strcmp(arg, "--"))
			break;
		if (is_help(arg)) {
			p->inv->help = true;
			continue;
		}
		if (!strcmp(arg, "--version")) {
			p->inv->version = true;
			continue;
		}

		int taken = take_global(p, arg);

		if (taken < 0)
			return -1;
		if (!taken)
			return fail(p, "unknown option '%s'; before the command tetherctl takes --socket PATH, --json, --help and --version",
				    quoted(arg).text);
	}
	return 0;
}

/* "add, del, drain, heartbeat, list" */
static void list_second_words(const char *group, char *out, size_t size)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < ctl_command_count && used < size; i++)
		if (!strcmp(ctl_commands[i].words[0], group) && ctl_commands[i].words[1])
			used += snprintf(out + used, size - used, "%s%s", used ? ", " : "",
					 ctl_commands[i].words[1]);
}

/* Reads the command words: sets inv->command, or inv->group alone when only
 * help for the group was asked. */
static int parse_command_words(struct parser *p)
{
	const char *first = p->argv[p->next++];
	char words[128];

	if (!ctl_command_is_group(first)) {
		p->inv->command = ctl_command_find(first, NULL);
		if (!p->inv->command)
			return fail(p, "unknown command '%s'", quoted(first).text);
		return 0;
	}
	p->inv->group = first;
	list_second_words(first, words, sizeof(words));
	if (p->next == p->argc || is_option(p->argv[p->next])) {
		if (p->inv->help || help_follows(p)) {
			p->inv->help = true;
			return 0;
		}
		return fail(p, "'%s' needs one of: %s", first, words);
	}

	const char *second = p->argv[p->next++];

	p->inv->command = ctl_command_find(first, second);
	if (!p->inv->command)
		return fail(p, "unknown command '%s %s'; '%s' takes one of: %s", first,
			    quoted(second).text, first, words);
	return 0;
}

static int take_option(struct parser *p, const char *arg)
{
	const struct ctl_command *command = p->inv->command;
	int n = ctl_option_count(command);
	size_t name_len = strcspn(arg, "=");

	for (int i = 0; i < n; i++) {
		const struct ctl_option *o = &command->options[i];

		if (!o->flag || strlen(o->flag) != name_len || strncmp(o->flag, arg, name_len))
			continue;
		if (p->values[i])
			return fail(p, "option %s given twice", o->flag);
		if (o->kind != CTL_OPT_VALUE && o->kind != CTL_OPT_LOCAL) {
			if (arg[name_len] == '=')
				return fail(p, "option %s takes no value", o->flag);
			p->values[i] = "";
			return 0;
		}
		p->values[i] = option_value(p, arg, o->flag, o->metavar);
		return p->values[i] ? 0 : -1;
	}

	char flags[256] = "";
	size_t used = 0;

	for (int i = 0; i < n; i++)
		if (command->options[i].flag)
			used += snprintf(flags + used, sizeof(flags) - used, " %s",
					 command->options[i].flag);
	if (!used)
		return fail(p, "unknown option '%s': '%s' takes no options", quoted(arg).text,
			    name_of(command).text);
	return fail(p, "unknown option '%s' for '%s'; it takes:%s", quoted(arg).text,
		    name_of(command).text, flags);
}

static int take_positional(struct parser *p, const char *arg)
{
	const struct ctl_command *command = p->inv->command;
	int n = ctl_option_count(command);

	for (int i = 0; i < n; i++) {
		if (!command->options[i].flag && !p->values[i]) {
			p->values[i] = arg;
			return 0;
		}
	}
	return fail(p, "unexpected argument '%s' for '%s'", quoted(arg).text,
		    name_of(command).text);
}

/* The arguments after the command words. */
static int parse_command_arguments(struct parser *p)
{
	bool positional_only = false;

	while (p->next < p->argc) {
		const char *arg = p->argv[p->next++];
		int taken;

		if (positional_only || !is_option(arg)) {
			if (take_positional(p, arg))
				return -1;
		} else if (!strcmp(arg, "--")) {
			positional_only = true;
		} else if ((taken = take_global(p, arg)) != 0) {
			if (taken < 0)
				return -1;
		} else if (take_option(p, arg)) {
			return -1;
		}
	}
	return 0;
}

/* From --socket or $TETHER_SOCKET: it must fit a sockaddr_un. */
static int check_socket_path(struct parser *p)
{
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;

	if (strlen(p->inv->socket_path) <= max)
		return 0;
	return fail(p, "the socket path '%s' is too long: at most %zu bytes",
		    quoted(p->inv->socket_path).text, max);
}

static int check_required(struct parser *p)
{
	const struct ctl_command *command = p->inv->command;
	int n = ctl_option_count(command);

	for (int i = 0; i < n; i++) {
		const struct ctl_option *o = &command->options[i];

		if (!o->required || p->values[i])
			continue;
		if (o->flag)
			return fail(p, "missing %s %s for '%s'", o->flag, o->metavar,
				    name_of(command).text);
		return fail(p, "missing %s for '%s'", o->metavar, name_of(command).text);
	}
	return 0;
}

/* Checks one value and adds it to the request. */
static int add_value(struct parser *p, const struct ctl_option *o, const char *value,
		     struct proto_writer *w)
{
	char word[PROTO_LINE_MAX];

	if (ctl_value_check(o->type, o->flag ? o->flag : o->metavar, value, word, sizeof(word),
			    p->message, p->size))
		return -1;
	proto_record_str(w, o->key, word);
	if (!strcmp(o->key, "deadline_ms"))
		p->inv->deadline_ms = strtoull(word, NULL, 10);
	if (!o->flag && !p->inv->target[0])
		snprintf(p->inv->target, sizeof(p->inv->target), "%s", word);
	return 0;
}

/* A value for tetherctl itself: checked as any, kept, not sent. */
static int keep_value(struct parser *p, const struct ctl_option *o, const char *value)
{
	char word[PROTO_LINE_MAX];

	if (ctl_value_check(o->type, o->flag, value, word, sizeof(word), p->message, p->size))
		return -1;
	if (!strcmp(o->key, "count")) {
		p->inv->count = strtoull(word, NULL, 10);
		if (!p->inv->count)
			return fail(p, "%s 0 would print nothing: give 1 or more, or leave it out "
				       "to trace until interrupted", o->flag);
	}
	return 0;
}

static int build_request(struct parser *p)
{
	const struct ctl_command *command = p->inv->command;
	int n = ctl_option_count(command), err = 0;
	struct proto_writer w;

	proto_writer_init(&w);
	proto_request_begin(&w, command->verb, command->noun);
	for (int i = 0; i < n && !err; i++) {
		const struct ctl_option *o = &command->options[i];

		if (!p->values[i])
			continue;
		if (o->kind == CTL_OPT_VALUE)
			err = add_value(p, o, p->values[i], &w);
		else if (o->kind == CTL_OPT_FLAG)
			proto_record_str(&w, o->key, o->fixed);
		else if (o->kind == CTL_OPT_LOCAL)
			err = keep_value(p, o, p->values[i]);
		else
			p->inv->wait = true;
	}
	proto_record_end(&w);
	if (!err && (w.failed || w.len >= sizeof(p->inv->request)))
		err = fail(p, "the request would be longer than %d bytes", PROTO_LINE_MAX);
	if (!err)
		memcpy(p->inv->request, w.data, w.len + 1);
	proto_writer_free(&w);
	return err;
}

int ctl_parse_args(int argc, char *const argv[], const char *env_socket,
		   struct ctl_invocation *inv, char *message, size_t message_size)
{
	struct parser p = { .argc = argc, .argv = argv, .next = 1, .inv = inv,
			    .message = message, .size = message_size };

	memset(inv, 0, sizeof(*inv));
	inv->socket_path = env_socket && *env_socket ? env_socket : CTL_DEFAULT_SOCKET;
	if (parse_leading_options(&p))
		return -1;
	if (inv->version)
		return 0;
	if (p.next == argc) {
		if (inv->help)
			return 0;
		return fail(&p, "no command given");
	}
	if (parse_command_words(&p))
		return -1;
	if (inv->help || help_follows(&p)) {
		inv->help = true;
		return 0;
	}
	if (parse_command_arguments(&p) || check_required(&p) || check_socket_path(&p))
		return -1;
	return build_request(&p);
}
