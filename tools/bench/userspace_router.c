// SPDX-License-Identifier: MIT
/* The forwarding benchmark's userspace baseline: the router a team would write
 * without XDP. One thread, recvmmsg/sendmmsg in batches of 64, the same routing
 * rules as Tether's data plane (DESIGN.md, "Routing rules"): a hash table
 * token -> container (checked against the request's function), a hash table
 * (function, routing key) -> container for key affinity (learned on a miss by
 * consistent hashing over the function's pool), and the same Maglev tables for
 * flows. It stamps the chosen container's token into the header, sets STAMPED
 * and sends the datagram over UDP to the container's backend.
 *
 *   userspace_router --listen ADDR:PORT --table FILE [--batch N] [--ready FILE]
 *
 * FILE is written by forward_ctl setup: lines of
 *   backend ID IPV4 PORT
 *   container SLOT TOKEN(32 hex digits, wire bytes) FUNCTION BACKEND
 *   pool FUNCTION SIZE SLOT...
 *   affinity FUNCTION KEY SLOT
 * On SIGTERM or SIGINT it prints its counters as one JSON object on stdout. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <endian.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "tether/hash.h"
#include "tether/wire.h"

#define MAX_BATCH 256
#define MAX_DATAGRAM 2048

struct container {
	__u8 token[16];
	__u64 function_id;
	__u32 backend;
	__u32 used;
};

/* Open addressing, linear probing; sizes are powers of two. */
struct token_entry {
	__u8 token[16];
	__u32 container; /* index + 1; 0 = empty */
};

struct affinity_entry {
	__u64 function_id, routing_key;
	__u32 container; /* index + 1; 0 = empty */
};

struct pool {
	__u64 function_id; /* 0 = empty */
	__u32 size;
	__u32 *slots; /* container indices */
};

struct router {
	struct sockaddr_in *backends;
	__u32 n_backends;
	struct container *containers;
	__u32 n_containers;
	struct token_entry *tokens;
	__u32 token_mask;
	struct affinity_entry *affinity;
	__u32 affinity_mask, affinity_used;
	struct pool *pools;
	__u32 pool_mask;
	__u8 vip[16]; /* v4-mapped, for the flow hash */
	__u16 vip_port; /* network order */
};

struct counters {
	__u64 received, forwarded, token, key_hit, key_new, flow, malformed, no_route, send_failed;
};

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "userspace_router: %s: %s\n", what, strerror(err));
	exit(1);
}

static __u32 pow2_at_least(__u64 n)
{
	__u32 size = 16;

	while (size < n)
		size <<= 1;
	return size;
}

static __u64 token_hash(const __u8 token[16])
{
	__u64 a, b;

	memcpy(&a, token, 8);
	memcpy(&b, token + 8, 8);
	return tether_mix64(a ^ tether_mix64(b));
}

static int hex_token(const char *text, __u8 out[16])
{
	if (strlen(text) != 32)
		return -1;
	for (int i = 0; i < 16; i++) {
		unsigned int byte;

		if (sscanf(text + 2 * i, "%2x", &byte) != 1)
			return -1;
		out[i] = byte;
	}
	return 0;
}

static struct pool *pool_find(struct router *r, __u64 function_id)
{
	for (__u32 i = tether_mix64(function_id) & r->pool_mask;; i = (i + 1) & r->pool_mask) {
		if (r->pools[i].function_id == function_id || !r->pools[i].function_id)
			return &r->pools[i];
	}
}

static struct affinity_entry *affinity_find(struct router *r, __u64 function_id, __u64 key)
{
	for (__u32 i = tether_hash_key(function_id, key) & r->affinity_mask;;
	     i = (i + 1) & r->affinity_mask) {
		struct affinity_entry *e = &r->affinity[i];

		if (!e->container || (e->function_id == function_id && e->routing_key == key))
			return e;
	}
}

static void affinity_put(struct router *r, __u64 function_id, __u64 key, __u32 container)
{
	struct affinity_entry *e = affinity_find(r, function_id, key);

	if (!e->container) {
		/* Bounded like Tether's LRU map: when full, stop learning. */
		if (r->affinity_used * 4 >= (r->affinity_mask + 1) * 3)
			return;
		r->affinity_used++;
	}
	*e = (struct affinity_entry){ function_id, key, container + 1 };
}

/* The table file: counts first, then fill. */
static void load_table(struct router *r, const char *path)
{
	FILE *f = fopen(path, "r");
	char word[32];
	__u32 backends = 0, containers = 0, pools = 0, affinity = 0;

	if (!f)
		die(path, errno);
	while (fscanf(f, "%31s", word) == 1) {
		int c;

		if (!strcmp(word, "backend"))
			backends++;
		else if (!strcmp(word, "container"))
			containers++;
		else if (!strcmp(word, "pool"))
			pools++;
		else if (!strcmp(word, "affinity"))
			affinity++;
		while ((c = fgetc(f)) != EOF && c != '\n')
			;
	}
	r->n_backends = backends;
	r->backends = calloc(backends + 1, sizeof(*r->backends));
	r->n_containers = containers;
	r->containers = calloc(containers + 1, sizeof(*r->containers));
	r->token_mask = pow2_at_least(2ull * containers) - 1;
	r->tokens = calloc(r->token_mask + 1, sizeof(*r->tokens));
	/* Room to learn as many keys again as the table brings. */
	r->affinity_mask = pow2_at_least(4ull * affinity + 1024) - 1;
	r->affinity = calloc(r->affinity_mask + 1, sizeof(*r->affinity));
	r->pool_mask = pow2_at_least(2ull * pools) - 1;
	r->pools = calloc(r->pool_mask + 1, sizeof(*r->pools));
	if (!r->backends || !r->containers || !r->tokens || !r->affinity || !r->pools)
		die("memory", ENOMEM);

	rewind(f);
	while (fscanf(f, "%31s", word) == 1) {
		if (!strcmp(word, "backend")) {
			unsigned int id, port;
			char addr[64];

			if (fscanf(f, "%u %63s %u", &id, addr, &port) != 3 || id >= backends)
				die("table: backend line", EINVAL);
			r->backends[id].sin_family = AF_INET;
			r->backends[id].sin_port = htons(port);
			if (inet_pton(AF_INET, addr, &r->backends[id].sin_addr) != 1)
				die("table: backend address", EINVAL);
		} else if (!strcmp(word, "container")) {
			unsigned int slot, backend;
			unsigned long long function_id;
			char hex[40];

			if (fscanf(f, "%u %39s %llu %u", &slot, hex, &function_id, &backend) != 4 ||
			    slot >= containers || backend >= backends)
				die("table: container line", EINVAL);
			struct container *c = &r->containers[slot];

			if (hex_token(hex, c->token))
				die("table: token", EINVAL);
			c->function_id = function_id;
			c->backend = backend;
			c->used = 1;
			__u32 i = token_hash(c->token) & r->token_mask;

			while (r->tokens[i].container)
				i = (i + 1) & r->token_mask;
			memcpy(r->tokens[i].token, c->token, 16);
			r->tokens[i].container = slot + 1;
		} else if (!strcmp(word, "pool")) {
			unsigned long long function_id;
			unsigned int size;

			if (fscanf(f, "%llu %u", &function_id, &size) != 2 || !function_id || !size)
				die("table: pool line", EINVAL);
			struct pool *p = pool_find(r, function_id);

			p->function_id = function_id;
			p->size = size;
			p->slots = malloc(size * sizeof(*p->slots));
			if (!p->slots)
				die("memory", ENOMEM);
			for (unsigned int i = 0; i < size; i++)
				if (fscanf(f, "%u", &p->slots[i]) != 1 || p->slots[i] >= containers)
					die("table: pool slot", EINVAL);
		} else if (!strcmp(word, "affinity")) {
			unsigned long long function_id, key;
			unsigned int slot;

			if (fscanf(f, "%llu %llu %u", &function_id, &key, &slot) != 3 ||
			    slot >= containers)
				die("table: affinity line", EINVAL);
			affinity_put(r, function_id, key, slot);
		} else {
			die("table: unknown line", EINVAL);
		}
	}
	fclose(f);
}

static int pick_from_pool(struct router *r, __u64 function_id, __u64 hash)
{
	struct pool *p = pool_find(r, function_id);

	if (!p->function_id)
		return -1;
	return p->slots[tether_pool_index(hash, p->size) - 1];
}

/* The routing rules; returns the container's index or -1 (dropped: in this
 * benchmark every request has a warm container, so nothing needs a slow path). */
static int route(struct router *r, struct tether_hdr *hdr, const struct sockaddr_in *from,
		 struct counters *n)
{
	__u64 function_id = be64toh(hdr->function_id);

	if (hdr->flags & TETHER_F_TOKEN) {
		const __u8 *token = (const __u8 *)&hdr->container_token;

		for (__u32 i = token_hash(token) & r->token_mask; r->tokens[i].container;
		     i = (i + 1) & r->token_mask) {
			if (memcmp(r->tokens[i].token, token, 16))
				continue;
			__u32 c = r->tokens[i].container - 1;

			if (r->containers[c].function_id != function_id)
				break;
			if (hdr->flags & TETHER_F_KEY)
				affinity_put(r, function_id, be64toh(hdr->routing_key), c);
			n->token++;
			return c;
		}
		if (hdr->flags & TETHER_F_STRICT)
			return -1;
	}
	if (hdr->flags & TETHER_F_KEY) {
		__u64 key = be64toh(hdr->routing_key);
		struct affinity_entry *e = affinity_find(r, function_id, key);

		if (e->container) {
			n->key_hit++;
			return e->container - 1;
		}
		int c = pick_from_pool(r, function_id, tether_hash_key(function_id, key));

		if (c >= 0) {
			affinity_put(r, function_id, key, c);
			n->key_new++;
		}
		return c;
	}
	__u8 src[16] = { [10] = 0xff, [11] = 0xff };

	memcpy(&src[12], &from->sin_addr, 4);
	n->flow++;
	return pick_from_pool(r, function_id,
			      tether_hash_flow(src, r->vip, from->sin_port, r->vip_port));
}

static int request_ok(const struct tether_hdr *hdr, ssize_t len)
{
	return len >= TETHER_HDR_LEN && hdr->magic == htons(TETHER_MAGIC) &&
	       hdr->version == TETHER_VERSION && !(hdr->flags & ~TETHER_F_CLIENT_MASK) &&
	       hdr->function_id != 0;
}

static void stamp(struct tether_hdr *hdr, const struct container *c)
{
	memcpy(&hdr->container_token, c->token, 16);
	hdr->flags |= TETHER_F_STAMPED;
}

int main(int argc, char **argv)
{
	struct router r = { 0 };
	struct counters n = { 0 };
	const char *listen_arg = NULL, *table = NULL, *ready = NULL;
	unsigned int batch = 64;
	int option;
	static const struct option options[] = { { "listen", required_argument, 0, 'l' },
						 { "table", required_argument, 0, 't' },
						 { "batch", required_argument, 0, 'b' },
						 { "ready", required_argument, 0, 'r' },
						 { 0, 0, 0, 0 } };

	while ((option = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (option == 'l')
			listen_arg = optarg;
		else if (option == 't')
			table = optarg;
		else if (option == 'b')
			batch = strtoul(optarg, NULL, 10);
		else if (option == 'r')
			ready = optarg;
		else
			return 2;
	}
	if (!listen_arg || !table || !batch || batch > MAX_BATCH) {
		fprintf(stderr, "usage: userspace_router --listen ADDR:PORT --table FILE "
				"[--batch 1..%d] [--ready FILE]\n", MAX_BATCH);
		return 2;
	}
	char host[64];
	const char *colon = strrchr(listen_arg, ':');
	struct sockaddr_in bind_addr = { .sin_family = AF_INET };

	if (!colon || colon - listen_arg >= (long)sizeof(host))
		die("--listen ADDR:PORT", EINVAL);
	memcpy(host, listen_arg, colon - listen_arg);
	host[colon - listen_arg] = '\0';
	if (inet_pton(AF_INET, host, &bind_addr.sin_addr) != 1)
		die("--listen ADDR:PORT (IPv4)", EINVAL);
	bind_addr.sin_port = htons(atoi(colon + 1));
	r.vip[10] = r.vip[11] = 0xff;
	memcpy(&r.vip[12], &bind_addr.sin_addr, 4);
	r.vip_port = bind_addr.sin_port;
	load_table(&r, table);

	int rx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int buffer = 8 << 20;

	if (rx < 0 || tx < 0)
		die("socket", errno);
	/* FORCE: past rmem_max/wmem_max (root); plain as a fallback. */
	if (setsockopt(rx, SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof(buffer)))
		setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof(buffer));
	if (setsockopt(tx, SOL_SOCKET, SO_SNDBUFFORCE, &buffer, sizeof(buffer)))
		setsockopt(tx, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof(buffer));
	if (bind(rx, (struct sockaddr *)&bind_addr, sizeof(bind_addr)))
		die("bind", errno);

	struct sigaction sa = { .sa_handler = on_signal }; /* no SA_RESTART: recvmmsg returns */

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	static __u8 buffers[MAX_BATCH][MAX_DATAGRAM];
	static struct mmsghdr in[MAX_BATCH], out[MAX_BATCH];
	static struct iovec in_iov[MAX_BATCH], out_iov[MAX_BATCH];
	static struct sockaddr_in from[MAX_BATCH];

	for (unsigned int i = 0; i < batch; i++) {
		in_iov[i] = (struct iovec){ buffers[i], MAX_DATAGRAM };
		in[i].msg_hdr = (struct msghdr){ .msg_name = &from[i],
						 .msg_namelen = sizeof(from[i]),
						 .msg_iov = &in_iov[i],
						 .msg_iovlen = 1 };
	}
	if (ready) {
		FILE *f = fopen(ready, "w");

		if (!f || fclose(f))
			die(ready, errno);
	}
	while (!stopping) {
		int got = recvmmsg(rx, in, batch, MSG_WAITFORONE, NULL);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			die("recvmmsg", errno);
		}
		unsigned int m = 0;

		n.received += got;
		for (int i = 0; i < got; i++) {
			struct tether_hdr *hdr = (struct tether_hdr *)buffers[i];
			ssize_t len = in[i].msg_len;

			in[i].msg_hdr.msg_namelen = sizeof(from[i]);
			if (!request_ok(hdr, len)) {
				n.malformed++;
				continue;
			}
			int c = route(&r, hdr, &from[i], &n);

			if (c < 0) {
				n.no_route++;
				continue;
			}
			stamp(hdr, &r.containers[c]);
			out_iov[m] = (struct iovec){ buffers[i], (size_t)len };
			out[m].msg_hdr = (struct msghdr){
				.msg_name = &r.backends[r.containers[c].backend],
				.msg_namelen = sizeof(struct sockaddr_in),
				.msg_iov = &out_iov[m],
				.msg_iovlen = 1,
			};
			m++;
		}
		for (unsigned int done = 0; done < m;) {
			int sent = sendmmsg(tx, out + done, m - done, 0);

			if (sent < 0) {
				if (errno == EINTR)
					continue;
				/* This datagram is lost; go on with the rest. */
				n.send_failed++;
				done++;
				continue;
			}
			done += sent;
			n.forwarded += sent;
		}
	}
	printf("{\"received\": %llu, \"forwarded\": %llu, \"token\": %llu, \"key_hit\": %llu, "
	       "\"key_new\": %llu, \"flow\": %llu, \"malformed\": %llu, \"no_route\": %llu, "
	       "\"send_failed\": %llu}\n",
	       (unsigned long long)n.received, (unsigned long long)n.forwarded,
	       (unsigned long long)n.token, (unsigned long long)n.key_hit,
	       (unsigned long long)n.key_new, (unsigned long long)n.flow,
	       (unsigned long long)n.malformed, (unsigned long long)n.no_route,
	       (unsigned long long)n.send_failed);
	return 0;
}
