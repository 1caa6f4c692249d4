// SPDX-License-Identifier: MIT
/* echo_backend: a stand-in VM backend for the end-to-end tests.
 *
 *   echo_backend --vip ADDR:PORT [--vip ADDR:PORT ...] --name NAME
 *
 * Binds a UDP socket on each service address (the VIP lives on the VM's lo)
 * and answers every Tether request straight to its sender (direct server
 * return): the request's header with REPLY set, status 0, the flags, function,
 * routing key and request id as received, and the container token as the
 * router stamped it -- that is how a client learns its token -- followed by
 * the payload "served-by=NAME slot=SLOT".
 *
 * A request the router did not stamp (no STAMPED flag) did not come through
 * the router's decision, so it is not run: it is answered CONTAINER_GONE.
 * Datagrams that are not Tether requests get no answer. On SIGTERM or SIGINT
 * it prints its counts and exits 0. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/core.h"
#include "tether/wire.h"

#define MAX_VIPS 8
#define MAX_DATAGRAM 65536

struct counts {
	unsigned long long received; /* datagrams read */
	unsigned long long served;   /* stamped requests answered OK */
	unsigned long long unstamped; /* answered CONTAINER_GONE */
	unsigned long long ignored;  /* not a Tether request: no answer */
	unsigned long long send_errors;
};

static volatile sig_atomic_t stop;

static void on_signal(int signo)
{
	(void)signo;
	stop = 1;
}

static const char usage[] =
	"usage: echo_backend --vip ADDR:PORT [--vip ADDR:PORT ...] --name NAME\n"
	"Answers Tether requests on the service addresses straight to the client\n"
	"with the router's token and the payload \"served-by=NAME slot=SLOT\".\n";

static int open_socket(const char *text)
{
	struct sockaddr_storage addr;
	__u8 vip[16];
	__u16 port;
	int one = 1;

	if (endpoint_parse(text, vip, &port)) {
		fprintf(stderr, "echo_backend: --vip '%s' is not ADDR:PORT or [IPv6]:PORT\n", text);
		return -1;
	}
	socklen_t len = endpoint_sockaddr(vip, port, &addr);
	int fd = socket(addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0 ||
	    (addr.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(fd, (struct sockaddr *)&addr, len)) {
		fprintf(stderr, "echo_backend: cannot bind %s: %s\n", text, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Turns the request in buf into its answer in place; returns the answer's
 * length, or 0 when the datagram is not a Tether request. */
static size_t make_reply(const char *name, __u8 *buf, size_t len, struct counts *counts)
{
	struct tether_hdr *hdr = (struct tether_hdr *)buf;

	if (len < TETHER_HDR_LEN || ntohs(hdr->magic) != TETHER_MAGIC ||
	    hdr->version != TETHER_VERSION || (hdr->flags & TETHER_F_REPLY)) {
		counts->ignored++;
		return 0;
	}
	bool stamped = hdr->flags & TETHER_F_STAMPED;
	char *payload = (char *)buf + TETHER_HDR_LEN;
	size_t room = MAX_DATAGRAM - TETHER_HDR_LEN;
	int n;

	hdr->flags |= TETHER_F_REPLY;
	memset(hdr->reserved, 0, sizeof(hdr->reserved));
	if (stamped) {
		hdr->status = TETHER_STATUS_OK;
		n = snprintf(payload, room, "served-by=%s slot=%u", name,
			     ntohl(hdr->container_token.slot));
		counts->served++;
	} else {
		hdr->status = TETHER_STATUS_CONTAINER_GONE;
		n = snprintf(payload, room, "served-by=%s unstamped", name);
		counts->unstamped++;
	}
	return TETHER_HDR_LEN + (size_t)n;
}

static void serve(int fd, const char *name, __u8 *buf, struct counts *counts)
{
	for (;;) {
		struct sockaddr_storage from;
		socklen_t from_len = sizeof(from);
		ssize_t len = recvfrom(fd, buf, MAX_DATAGRAM, 0, (struct sockaddr *)&from,
				       &from_len);

		if (len < 0)
			return; /* EAGAIN: drained; anything else: try again on the next poll */
		counts->received++;
		size_t reply_len = make_reply(name, buf, (size_t)len, counts);

		if (reply_len &&
		    sendto(fd, buf, reply_len, 0, (struct sockaddr *)&from, from_len) < 0)
			counts->send_errors++;
	}
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "vip", required_argument, 0, 'v' },
		{ "name", required_argument, 0, 'n' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct pollfd fds[MAX_VIPS];
	const char *vips[MAX_VIPS];
	const char *name = NULL;
	int nvips = 0, opt;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (opt == 'v' && nvips < MAX_VIPS) {
			vips[nvips++] = optarg;
		} else if (opt == 'n') {
			name = optarg;
		} else if (opt == 'h') {
			fputs(usage, stdout);
			return 0;
		} else {
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind < argc || !nvips || !name || !*name || strlen(name) > 64 || strpbrk(name, " =\n")) {
		fputs(usage, stderr);
		return 2;
	}
	for (int i = 0; i < nvips; i++) {
		fds[i].fd = open_socket(vips[i]);
		fds[i].events = POLLIN;
		if (fds[i].fd < 0)
			return 1;
	}

	struct sigaction action = { .sa_handler = on_signal };

	sigaction(SIGTERM, &action, NULL);
	sigaction(SIGINT, &action, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("echo_backend %s: serving", name);
	for (int i = 0; i < nvips; i++)
		printf(" %s", vips[i]);
	printf("\n");

	static __u8 buf[MAX_DATAGRAM];
	struct counts counts = {};

	while (!stop) {
		if (poll(fds, nvips, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("echo_backend: poll");
			return 1;
		}
		for (int i = 0; i < nvips; i++)
			if (fds[i].revents & POLLIN)
				serve(fds[i].fd, name, buf, &counts);
	}
	printf("echo_backend %s: received=%llu served=%llu unstamped=%llu ignored=%llu "
	       "send_errors=%llu\n",
	       name, counts.received, counts.served, counts.unstamped, counts.ignored,
	       counts.send_errors);
	return 0;
}
