// SPDX-License-Identifier: MIT
/* fleet_fill: writes a fleet's state straight into its store, for the fleet
 * bench (tools/bench_fleet.sh): backends, and containers spread over them,
 * as routers would have written them (docs/store.md), in transactions of
 * 100 keys.
 *
 *   fleet_fill --store URL[,URL] --fleet NAME --containers N [--backends B]
 *              [--iface IF] [--functions F] [--warm]
 *
 * Backends are b1..bB on IF (every router of the fleet must have it),
 * without alive keys, so routers hold them down until heartbeats come (the
 * bench measures reading the state, not routing by it); containers are
 * starting unless --warm. Prints "wrote N keys in T s (R keys/s)
 * revision=REV". */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "store/etcd.h"
#include "store_records.h"

#define BATCH 100

struct options {
	const char *store, *fleet, *iface;
	unsigned long containers, backends, functions;
	bool warm;
};

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int usage(void)
{
	fprintf(stderr, "usage: fleet_fill --store URL[,URL] --fleet NAME --containers N "
			"[--backends B] [--iface IF] [--functions F] [--warm]\n");
	return 2;
}

static int parse(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
		{ "store", required_argument, 0, 's' },	{ "fleet", required_argument, 0, 'f' },
		{ "containers", required_argument, 0, 'c' }, { "backends", required_argument, 0, 'b' },
		{ "iface", required_argument, 0, 'i' }, { "functions", required_argument, 0, 'F' },
		{ "warm", no_argument, 0, 'w' },	{ 0 },
	};
	int c;

	*o = (struct options){ .iface = "fab0", .backends = 100, .functions = 10000 };
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (c) {
		case 's': o->store = optarg; break;
		case 'f': o->fleet = optarg; break;
		case 'c': o->containers = strtoul(optarg, NULL, 0); break;
		case 'b': o->backends = strtoul(optarg, NULL, 0); break;
		case 'i': o->iface = optarg; break;
		case 'F': o->functions = strtoul(optarg, NULL, 0); break;
		case 'w': o->warm = true; break;
		default: return -1;
		}
	}
	if (!o->store || !o->fleet || !o->backends || o->backends >= TETHER_MAX_BACKENDS ||
	    !o->functions || o->containers > TETHER_MAX_CONTAINERS)
		return -1;
	return 0;
}

/* Keys and values of one transaction. */
struct batch {
	char keys[BATCH][STORE_KEY_MAX];
	char values[BATCH][STORE_VALUE_MAX];
	struct etcd_op ops[BATCH];
	size_t n;
	unsigned long written;
	int64_t revision;
};

static int flush(struct etcd_client *client, struct batch *b)
{
	struct etcd_txn txn = { .success = b->ops, .n_success = b->n };
	struct etcd_txn_result *result = NULL;
	struct etcd_error error;

	if (!b->n)
		return 0;
	if (etcd_txn_sync(client, &txn, &result, &error) != ETCD_OK) {
		fprintf(stderr, "fleet_fill: %s\n", error.message);
		etcd_txn_result_free(result);
		return -1;
	}
	b->revision = result->header.revision;
	b->written += b->n;
	b->n = 0;
	etcd_txn_result_free(result);
	return 0;
}

static int add(struct etcd_client *client, struct batch *b)
{
	size_t i = b->n++;

	b->ops[i] = (struct etcd_op){ .type = ETCD_OP_PUT, .key = b->keys[i],
				      .value = b->values[i], .value_len = strlen(b->values[i]) };
	return b->n == BATCH ? flush(client, b) : 0;
}

int main(int argc, char **argv)
{
	struct options o;
	char prefix[64], why[512];
	struct batch *b = calloc(1, sizeof(*b));
	__s64 *backend_revisions;

	if (!b || parse(argc, argv, &o) || store_prefix(o.fleet, prefix, sizeof(prefix)))
		return usage();
	struct etcd_client *client = etcd_client_new(NULL, o.store, NULL, why, sizeof(why));

	if (!client) {
		fprintf(stderr, "fleet_fill: %s\n", why);
		return 1;
	}
	backend_revisions = calloc(o.backends + 1, sizeof(*backend_revisions));
	double started = now_s();

	/* Backends one by one: their containers name their create revision. */
	for (unsigned long id = 1; id <= o.backends; id++) {
		struct store_backend backend = { .id = (__u32)id, .heartbeat_ms = 3600000,
						 .state = BACKEND_UP,
						 .mac = { 0x02, 0, 0, 0, (__u8)(id >> 8), (__u8)id } };

		snprintf(backend.iface, sizeof(backend.iface), "%s", o.iface);
		addr_parse("203.0.113.250", backend.addr);
		snprintf(b->keys[b->n], STORE_KEY_MAX, "%sbackends/b%lu", prefix, id);
		store_backend_encode(&backend, b->values[b->n]);
		if (add(client, b) || flush(client, b))
			return 1;
		backend_revisions[id] = b->revision;
	}
	for (unsigned long slot = 0; slot < o.containers; slot++) {
		unsigned long id = 1 + slot % o.backends;
		struct store_container container = {
			.function_id = 1 + slot % o.functions,
			.backend_revision = (__u64)backend_revisions[id],
			.state = o.warm ? CONTAINER_WARM : CONTAINER_STARTING,
			.secret = 0x5ec0000000000001ull + slot,
		};

		snprintf(container.backend, sizeof(container.backend), "b%lu", id);
		store_key_container(prefix, (__u32)slot, b->keys[b->n]);
		store_container_encode(&container, b->values[b->n]);
		if (add(client, b))
			return 1;
	}
	if (flush(client, b))
		return 1;
	double took = now_s() - started;

	printf("wrote %lu keys in %.1f s (%.0f keys/s) revision=%lld\n", b->written, took,
	       b->written / took, (long long)b->revision);
	etcd_client_free(client);
	free(backend_revisions);
	free(b);
	return 0;
}
