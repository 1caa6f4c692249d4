// SPDX-License-Identifier: MIT
/* The token file: how shell scripts chain invocations (invoke.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "invoke.h"

int token_file_read(const char *path, struct tether_session *session)
{
	char line[128] = "";
	uint8_t token[TETHER_TOKEN_LEN];
	FILE *f = fopen(path, "r");

	if (!f && errno == ENOENT)
		return 0;
	if (!f) {
		fprintf(stderr, "tether-invoke: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, " \t\r\n")] = '\0';
	if (!line[0])
		return 0;
	if (tether_token_from_hex(line, token)) {
		fprintf(stderr, "tether-invoke: %s holds '%.40s', not a token (32 hex digits)\n",
			path, line);
		return -1;
	}
	tether_session_set_token(session, token);
	return 0;
}

int token_file_write(const char *path, const struct tether_session *session)
{
	char hex[TETHER_TOKEN_HEX_LEN + 1], temporary[4096];
	FILE *f;

	if (!session->has_token) {
		if (unlink(path) && errno != ENOENT)
			goto fail;
		return 0;
	}
	/* A script that reads the file while we write it sees the old token
	 * or the new one, never half of one. */
	if ((size_t)snprintf(temporary, sizeof(temporary), "%s.tmp.%d", path, (int)getpid()) >=
	    sizeof(temporary)) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	tether_token_to_hex(session->token, hex);
	f = fopen(temporary, "w");
	if (!f)
		goto fail;
	bool written = fprintf(f, "%s\n", hex) > 0;

	if (fclose(f) || !written || rename(temporary, path)) {
		int error = errno;

		unlink(temporary);
		errno = error;
		goto fail;
	}
	return 0;
fail:
	fprintf(stderr, "tether-invoke: cannot update %s: %s\n", path, strerror(errno));
	return -1;
}
