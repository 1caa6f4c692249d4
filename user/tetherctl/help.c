// SPDX-License-Identifier: MIT
/* tetherctl's help (help.h). */
#include <string.h>

#include "help.h"

#define USAGE_PREFIX "usage: tetherctl [--socket PATH] [--json] "

/* "--addr ADDR", "NAME", "--warm" */
static void append_option(GString *out, const struct ctl_option *o)
{
	if (o->flag)
		g_string_append(out, o->flag);
	if (o->flag && o->metavar)
		g_string_append_c(out, ' ');
	if (o->metavar)
		g_string_append(out, o->metavar);
}

void ctl_synopsis(GString *out, const struct ctl_command *command)
{
	g_string_append(out, command->words[0]);
	if (command->words[1])
		g_string_append_printf(out, " %s", command->words[1]);
	for (int i = 0; i < ctl_option_count(command); i++) {
		const struct ctl_option *o = &command->options[i];

		g_string_append(out, o->required ? " " : " [");
		append_option(out, o);
		if (!o->required)
			g_string_append_c(out, ']');
	}
}

static bool in_group(const struct ctl_command *command, const char *group)
{
	return !group || !strcmp(command->words[0], group);
}

/* Each command of group (NULL: all): its synopsis, then what it does. */
static void list_commands(GString *out, const char *group)
{
	for (size_t i = 0; i < ctl_command_count; i++) {
		if (!in_group(&ctl_commands[i], group))
			continue;
		g_string_append(out, "  ");
		ctl_synopsis(out, &ctl_commands[i]);
		g_string_append_printf(out, "\n      %s\n", ctl_commands[i].summary);
	}
}

static void help_all(GString *out)
{
	g_string_append(out, USAGE_PREFIX "COMMAND [ARGS]\n"
			     "\n"
			     "The command-line client of tetherd's control socket.\n"
			     "\n"
			     "Commands:\n");
	list_commands(out, NULL);
	g_string_append(out,
			"\n"
			"Options:\n"
			"  --socket PATH  tetherd's control socket (default $TETHER_SOCKET, else " CTL_DEFAULT_SOCKET ")\n"
			"  --json         JSON for programs instead of tables: an array of objects,\n"
			"                 an object for a single record, {\"ok\":true} for a bare ok\n"
			"  --help         this help; 'tetherctl COMMAND --help' explains one command\n"
			"  --version      print the version (tetherctl VERSION) and exit\n"
			"\n"
			"Durations: 30s, 500ms, 2m, 1h or plain milliseconds.\n"
			"Exit status: 0 done; 1 tetherd refused the request, could not be reached, or a\n"
			"--wait deadline passed with work left; 2 a usage error (nothing was sent).\n");
}

/* "backend add|del|drain|heartbeat|list [ARGS]" */
static void help_group(GString *out, const char *group)
{
	const char *separator = " ";

	g_string_append_printf(out, USAGE_PREFIX "%s", group);
	for (size_t i = 0; i < ctl_command_count; i++) {
		if (!in_group(&ctl_commands[i], group))
			continue;
		g_string_append_printf(out, "%s%s", separator, ctl_commands[i].words[1]);
		separator = "|";
	}
	g_string_append(out, " [ARGS]\n\nCommands:\n");
	list_commands(out, group);
}

/* "add backend name addr mac iface [heartbeat_ms]": what the command sends,
 * for those who talk to the socket with socat. */
static void append_request(GString *out, const struct ctl_command *command)
{
	g_string_append_printf(out, "%s %s", command->verb, command->noun);
	for (int i = 0; i < ctl_option_count(command); i++) {
		const struct ctl_option *o = &command->options[i];

		if (o->kind == CTL_OPT_WAIT || o->kind == CTL_OPT_LOCAL)
			continue;
		if (o->kind == CTL_OPT_FLAG)
			g_string_append_printf(out, " [%s=%s]", o->key, o->fixed);
		else if (o->required)
			g_string_append_printf(out, " %s=", o->key);
		else
			g_string_append_printf(out, " [%s=]", o->key);
	}
}

static void help_command(GString *out, const struct ctl_command *command)
{
	int n = ctl_option_count(command);
	g_autoptr(GPtrArray) labels = g_ptr_array_new_with_free_func(g_free);
	int width = 0;

	g_string_append(out, USAGE_PREFIX);
	ctl_synopsis(out, command);
	g_string_append_printf(out, "\n\n%s.\n", command->summary);
	for (int i = 0; i < n; i++) {
		GString *label = g_string_new(NULL);

		append_option(label, &command->options[i]);
		width = MAX(width, (int)label->len);
		g_ptr_array_add(labels, g_string_free(label, FALSE));
	}
	if (n)
		g_string_append_c(out, '\n');
	for (int i = 0; i < n; i++)
		g_string_append_printf(out, "  %-*s  %s\n", width,
				       (const char *)g_ptr_array_index(labels, i),
				       command->options[i].help);
	g_string_append(out, "\nRequest: ");
	append_request(out, command);
	g_string_append_c(out, '\n');
}

void ctl_help(GString *out, const struct ctl_invocation *inv)
{
	if (inv->command)
		help_command(out, inv->command);
	else if (inv->group)
		help_group(out, inv->group);
	else
		help_all(out);
}

void ctl_usage(GString *out, const struct ctl_invocation *inv)
{
	if (inv->command) {
		g_string_append(out, USAGE_PREFIX);
		ctl_synopsis(out, inv->command);
		g_string_append_c(out, '\n');
	} else if (inv->group) {
		const char *prefix = "usage: tetherctl ";

		for (size_t i = 0; i < ctl_command_count; i++) {
			if (!in_group(&ctl_commands[i], inv->group))
				continue;
			g_string_append(out, prefix);
			ctl_synopsis(out, &ctl_commands[i]);
			g_string_append_c(out, '\n');
			prefix = "       tetherctl ";
		}
	} else {
		g_string_append(out, USAGE_PREFIX "COMMAND [ARGS]; see 'tetherctl --help'\n");
	}
}
