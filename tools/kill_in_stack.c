// SPDX-License-Identifier: MIT
/* kill_in_stack: SIGKILL a process the moment its kernel stack shows a given
 * call, for the fault tests (tests/e2e/test_faults.sh kills tetherd inside a
 * pool swap):
 *
 *   kill_in_stack --pid PID --within-ms N WORD...
 *
 * Reads /proc/PID/stack in a tight loop until one sample holds every WORD
 * (substrings of the frames' names, e.g. bpf_map_do_batch synchronize_rcu),
 * then sends SIGKILL at once. A shell cannot do this: on kernels that expedite
 * the RCU grace period, the wait after a map-in-map update lasts tens of
 * microseconds, gone before a shell's next command runs. A process killed in
 * the kernel dies when its system call returns: the update is done, and what
 * the process would have done after it never happens.
 *
 * Prints the matching sample's frames and exits 0 when it killed; exits 1
 * without killing when N ms passed without a match or the process ended;
 * exits 2 on bad usage or when the stack cannot be read (needs root). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static bool holds_every_word(const char *stack, char **words, int count)
{
	for (int i = 0; i < count; i++)
		if (!strstr(stack, words[i]))
			return false;
	return true;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: kill_in_stack --pid PID --within-ms N WORD...\n");
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "within-ms", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	long pid = 0, within_ms = -1;
	char path[64], stack[8192];
	long long deadline;
	int opt, fd;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'p':
			pid = strtol(optarg, NULL, 10);
			break;
		case 'w':
			within_ms = strtol(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (pid <= 0 || within_ms < 0 || optind == argc) {
		usage(stderr);
		return 2;
	}
	snprintf(path, sizeof(path), "/proc/%ld/stack", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "kill_in_stack: cannot open %s: %s\n", path, strerror(errno));
		return errno == ENOENT ? 1 : 2;
	}
	deadline = now_ms() + within_ms;
	while (now_ms() < deadline) {
		/* seq_file: a read at offset 0 samples the stack afresh */
		ssize_t n = pread(fd, stack, sizeof(stack) - 1, 0);

		if (n < 0) {
			if (errno == ESRCH || errno == ENOENT)
				break; /* the process ended */
			fprintf(stderr, "kill_in_stack: cannot read %s: %s\n", path,
				strerror(errno));
			close(fd);
			return 2;
		}
		stack[n] = '\0';
		if (holds_every_word(stack, argv + optind, argc - optind)) {
			if (kill((pid_t)pid, SIGKILL)) {
				fprintf(stderr, "kill_in_stack: kill %ld: %s\n", pid, strerror(errno));
				close(fd);
				return 1;
			}
			fputs(stack, stdout);
			close(fd);
			return 0;
		}
	}
	close(fd);
	return 1;
}
