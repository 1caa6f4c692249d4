// SPDX-License-Identifier: MIT
/* tetherctl: the command-line client of tetherd's control socket. */
#include <stdlib.h>

#include "run.h"

int main(int argc, char **argv)
{
	return ctl_run(argc, argv, getenv("TETHER_SOCKET"), stdout, stderr);
}
