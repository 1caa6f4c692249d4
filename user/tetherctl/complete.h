/* SPDX-License-Identifier: MIT */
/* Shell completion from the command table: `tetherctl __complete WORD...`
 * (a hidden command, what dist/tetherctl.bash-completion calls) prints the
 * words that may come next, so the completion never lists commands or
 * options of its own that could drift from the table. */
#ifndef TETHER_CTL_COMPLETE_H
#define TETHER_CTL_COMPLETE_H

#include <glib.h>

/* The hidden command's name: argv[1] of a completion request. */
#define CTL_COMPLETE_COMMAND "__complete"

/* words[0..count-2] are the words typed after "tetherctl", words[count-1] the
 * one being completed ("" when a new word starts; count 0 is the same). Appends
 * to out, one a line, every word that may stand there and begins with it:
 * command words, the command's options not given yet, the global options.
 * Nothing where a value is due (after --addr, --socket, positionals). */
void ctl_complete(GString *out, int count, char *const words[]);

#endif
