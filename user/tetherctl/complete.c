// SPDX-License-Identifier: MIT
/* Completion of tetherctl's command line from the command table (complete.h). */
#include <string.h>

#include "command_table.h"
#include "complete.h"

/* The options tetherctl takes before or after the command words (args.c). */
static const char *const global_options[] = { "--socket", "--json", "--help" };

static void offer(GString *out, const char *word, const char *prefix)
{
	if (!strncmp(word, prefix, strlen(prefix)))
		g_string_append_printf(out, "%s\n", word);
}

/* The first words of the commands, each once, in the table's order. */
static void offer_first_words(GString *out, const char *prefix)
{
	for (size_t i = 0; i < ctl_command_count; i++) {
		bool seen = false;

		for (size_t j = 0; j < i && !seen; j++)
			seen = !strcmp(ctl_commands[j].words[0], ctl_commands[i].words[0]);
		if (!seen)
			offer(out, ctl_commands[i].words[0], prefix);
	}
}

static void offer_second_words(GString *out, const char *group, const char *prefix)
{
	for (size_t i = 0; i < ctl_command_count; i++)
		if (!strcmp(ctl_commands[i].words[0], group) && ctl_commands[i].words[1])
			offer(out, ctl_commands[i].words[1], prefix);
}

/* The option of command whose flag is word ("--addr" or "--addr=..."). */
static const struct ctl_option *find_option(const struct ctl_command *command,
					    const char *word)
{
	size_t len = strcspn(word, "=");

	for (int i = 0; command && i < ctl_option_count(command); i++) {
		const char *flag = command->options[i].flag;

		if (flag && strlen(flag) == len && !strncmp(flag, word, len))
			return &command->options[i];
	}
	return NULL;
}

static bool given(char *const words[], int count, const char *flag)
{
	size_t len = strlen(flag);

	for (int i = 0; i < count; i++)
		if (!strncmp(words[i], flag, len) && (!words[i][len] || words[i][len] == '='))
			return true;
	return false;
}

void ctl_complete(GString *out, int count, char *const words[])
{
	const char *current = count ? words[count - 1] : "";
	const char *group = NULL;
	const struct ctl_command *command = NULL;
	int typed = count ? count - 1 : 0;

	for (int i = 0; i < typed; i++) {
		const char *word = words[i];
		const struct ctl_option *option;

		if (!strcmp(word, "--socket") || ((option = find_option(command, word)) &&
						  (option->kind == CTL_OPT_VALUE || option->kind == CTL_OPT_LOCAL) &&
						  !strchr(word, '='))) {
			if (i + 1 == typed)
				return; /* the current word is that option's value */
			i++;
			continue;
		}
		if (word[0] == '-' || command)
			continue; /* an option, or a positional argument */
		if (group) {
			command = ctl_command_find(group, word);
			if (!command)
				return; /* no such command: nothing fits */
			continue;
		}
		if (ctl_command_is_group(word)) {
			group = word;
			continue;
		}
		command = ctl_command_find(word, NULL);
		if (!command)
			return;
	}
	if (current[0] == '-') {
		for (int i = 0; command && i < ctl_option_count(command); i++) {
			const char *flag = command->options[i].flag;

			if (flag && !given(words, typed, flag))
				offer(out, flag, current);
		}
		for (size_t i = 0; i < G_N_ELEMENTS(global_options); i++)
			if (!given(words, typed, global_options[i]))
				offer(out, global_options[i], current);
		if (!group && !command && !given(words, typed, "--version"))
			offer(out, "--version", current);
		return;
	}
	if (command)
		return; /* a positional value: nothing to offer */
	if (group)
		offer_second_words(out, group, current);
	else
		offer_first_words(out, current);
}
