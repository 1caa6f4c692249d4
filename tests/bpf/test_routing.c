// SPDX-License-Identifier: MIT
/* The routing rules (DESIGN.md, "Routing rules") through the real XDP program
 * and BPF_PROG_TEST_RUN: a frame in, then the verdict, every byte of the frame
 * out, the decision counters' deltas, the chosen container's counters and the
 * affinity map are checked against what this file works out by itself:
 *
 *   - which container: from the live pool table (pool_read) and the placement
 *     hashes of include/tether/hash.h, never from the program's answer;
 *   - the frame out: built here from the frame in (backend MAC, the egress
 *     interface's MAC read from the kernel, the client's VLAN tags gone,
 *     STAMPED, the container's token), checksums recomputed from scratch by
 *     pktgen (pkt_fix_csums). Backends on a VLAN: test_vlan.c.
 *
 * Every case is one row of `cases` (one line, or one line expanded over both
 * families and every VLAN layout by ALL_L2) and runs as its own cmocka test
 * on a fresh fixture (tests/lib/fixture.h). Failure messages start with the
 * case's label. Run one case or a group with a cmocka filter pattern as the
 * first argument, e.g. `test_routing '*re-homed*IPv6*'`. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "dataplane/dataplane.h"
#include "fixture.h"
#include "pktgen.h"
#include "tether/hash.h"
#include "tether_xdp.skel.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the table ------------------------------------------------------------ */

enum setup {
	/* No flags: a source port is searched whose flow the pool puts on a
	 * container of the row's backend; the same flow is then sent again. */
	S_FLOW,
	/* KEY, no affinity yet: key_new, affinity learned; then the same key
	 * from another flow: key_hit, the same container. */
	S_KEY_NEW,
	/* KEY learned by a first datagram, then sent again: key_hit. */
	S_KEY_HIT,
	/* KEY whose affinity the test wrote to a container the hash does not
	 * pick (on the other backend): key_hit goes where the entry says. */
	S_KEY_AFFINITY,
	/* KEY learned, its container removed and the pool rebuilt: key_rehomed
	 * to a different live container of F, affinity updated. */
	S_KEY_REHOME,
	/* TOKEN of a container the flow hash does not pick: exactly that slot. */
	S_TOKEN,
	/* KEY learned on one container, then TOKEN+KEY naming another: the
	 * token wins and the affinity moves to the token's container. */
	S_TOKEN_KEY,
	/* TOKEN+KEY with no affinity yet: the token wins, the affinity of
	 * (F, key) is the token's container from then on. */
	S_TOKEN_KEY_FRESH,
	/* Function FIXTURE_F_EMPTY (no pool): slow path. With TOKEN, the token
	 * is F1's (a container of another function). */
	S_NOCAP_EMPTY,
	/* F1 after all its containers were removed and its pool rebuilt. With
	 * KEY, the key was learned before; with TOKEN, the token is one of the
	 * removed containers'. */
	S_NOCAP_DRAINED,
};

struct route_case {
	const char *name;
	enum setup setup;
	__u8 flags;      /* TETHER_F_* of the measured datagram */
	int verdict;     /* XDP_TX: a container on backend 1 (lo, the ingress);
			  * XDP_REDIRECT: on backend 2 (tx0); XDP_PASS: slow path */
	__u64 counters; /* CNT() bits: each of these +1, every other +0 */

	int family; /* 4 or 6 */
	int vlans;  /* 0, 1 or 2 tags */
	int qinq;   /* with 2 tags: outer TPID 0x88a8 (else 0x8100 twice) */

	/* Shape of the frame; zero values give pkt_spec_default()'s. */
	const char *shape;   /* label of the shape */
	int ipv4_opts;       /* IPv4 options, bytes (ihl = 5 + ipv4_opts / 4) */
	int ipv4_fill;       /* enum pkt_ipv4_opt_fill */
	const char *ext;     /* IPv6 chain: "H0 R1 D0" = hop-by-hop, routing,
			      * destination options with their Hdr Ext Len */
	int csum_zero;       /* IPv4: UDP checksum 0 ("not used") */
	int payload;         /* bytes after the Tether header; 0: default, -1: none */
	int trailer;         /* Ethernet padding after the IP packet */
	int junk_token;      /* token bytes not zero in a request without TOKEN */
};

#define CNT(field) (1ull << (offsetof(struct tether_stats, field) / sizeof(__u64)))
#define NO_PAYLOAD (-1)

/* One scenario over both families and every VLAN layout: none, one 802.1Q
 * tag, QinQ (0x88a8 outside 0x8100), and two 802.1Q tags. */
#define ALL_L2(...)                                                  \
	{ __VA_ARGS__, .family = 4, .vlans = 0 },                    \
	{ __VA_ARGS__, .family = 4, .vlans = 1 },                    \
	{ __VA_ARGS__, .family = 4, .vlans = 2, .qinq = 1 },         \
	{ __VA_ARGS__, .family = 4, .vlans = 2 },                    \
	{ __VA_ARGS__, .family = 6, .vlans = 0 },                    \
	{ __VA_ARGS__, .family = 6, .vlans = 1 },                    \
	{ __VA_ARGS__, .family = 6, .vlans = 2, .qinq = 1 },         \
	{ __VA_ARGS__, .family = 6, .vlans = 2 }

/* One frame shape (family, tags, options or extension headers, checksum,
 * sizes) through a spread of the rules: each way a container is chosen, on
 * both backends, and the slow path. */
#define SHAPED(...)                                                                        \
	{ .name = "flow pick", .setup = S_FLOW, .verdict = XDP_TX,                         \
	  .counters = CNT(flow_pick), __VA_ARGS__ },                                       \
	{ .name = "key new", .setup = S_KEY_NEW, .flags = TETHER_F_KEY,                    \
	  .verdict = XDP_REDIRECT, .counters = CNT(key_new), __VA_ARGS__ },                \
	{ .name = "key re-homed", .setup = S_KEY_REHOME, .flags = TETHER_F_KEY,            \
	  .verdict = XDP_TX, .counters = CNT(key_rehomed), __VA_ARGS__ },                  \
	{ .name = "token hit", .setup = S_TOKEN, .flags = TETHER_F_TOKEN,                  \
	  .verdict = XDP_REDIRECT, .counters = CNT(token_hit), __VA_ARGS__ },              \
	{ .name = "token+key moves affinity", .setup = S_TOKEN_KEY,                        \
	  .flags = TETHER_F_TOKEN | TETHER_F_KEY, .verdict = XDP_TX,                       \
	  .counters = CNT(token_hit), __VA_ARGS__ },                                       \
	{ .name = "no capacity (F_EMPTY)", .setup = S_NOCAP_EMPTY, .verdict = XDP_PASS,    \
	  .counters = CNT(no_capacity), __VA_ARGS__ }

static const struct route_case cases[] = {
	/* Rule 3: flow hashing. */
	ALL_L2(.name = "flow pick", .setup = S_FLOW, .verdict = XDP_TX, .counters = CNT(flow_pick)),
	ALL_L2(.name = "flow pick", .setup = S_FLOW, .verdict = XDP_REDIRECT,
	       .counters = CNT(flow_pick)),
	/* Rule 2: keys. */
	ALL_L2(.name = "key new", .setup = S_KEY_NEW, .flags = TETHER_F_KEY, .verdict = XDP_TX,
	       .counters = CNT(key_new)),
	ALL_L2(.name = "key new", .setup = S_KEY_NEW, .flags = TETHER_F_KEY,
	       .verdict = XDP_REDIRECT, .counters = CNT(key_new)),
	ALL_L2(.name = "key hit", .setup = S_KEY_HIT, .flags = TETHER_F_KEY, .verdict = XDP_TX,
	       .counters = CNT(key_hit)),
	ALL_L2(.name = "key hit", .setup = S_KEY_HIT, .flags = TETHER_F_KEY,
	       .verdict = XDP_REDIRECT, .counters = CNT(key_hit)),
	ALL_L2(.name = "key hit via written affinity", .setup = S_KEY_AFFINITY,
	       .flags = TETHER_F_KEY, .verdict = XDP_TX, .counters = CNT(key_hit)),
	ALL_L2(.name = "key hit via written affinity", .setup = S_KEY_AFFINITY,
	       .flags = TETHER_F_KEY, .verdict = XDP_REDIRECT, .counters = CNT(key_hit)),
	ALL_L2(.name = "key re-homed", .setup = S_KEY_REHOME, .flags = TETHER_F_KEY,
	       .verdict = XDP_TX, .counters = CNT(key_rehomed)),
	ALL_L2(.name = "key re-homed", .setup = S_KEY_REHOME, .flags = TETHER_F_KEY,
	       .verdict = XDP_REDIRECT, .counters = CNT(key_rehomed)),
	/* Rule 1: tokens. */
	ALL_L2(.name = "token hit", .setup = S_TOKEN, .flags = TETHER_F_TOKEN, .verdict = XDP_TX,
	       .counters = CNT(token_hit)),
	ALL_L2(.name = "token hit", .setup = S_TOKEN, .flags = TETHER_F_TOKEN,
	       .verdict = XDP_REDIRECT, .counters = CNT(token_hit)),
	ALL_L2(.name = "token+key moves affinity", .setup = S_TOKEN_KEY,
	       .flags = TETHER_F_TOKEN | TETHER_F_KEY, .verdict = XDP_TX,
	       .counters = CNT(token_hit)),
	ALL_L2(.name = "token+key moves affinity", .setup = S_TOKEN_KEY,
	       .flags = TETHER_F_TOKEN | TETHER_F_KEY, .verdict = XDP_REDIRECT,
	       .counters = CNT(token_hit)),
	ALL_L2(.name = "token+key sets affinity", .setup = S_TOKEN_KEY_FRESH,
	       .flags = TETHER_F_TOKEN | TETHER_F_KEY, .verdict = XDP_TX,
	       .counters = CNT(token_hit)),
	ALL_L2(.name = "token+key sets affinity", .setup = S_TOKEN_KEY_FRESH,
	       .flags = TETHER_F_TOKEN | TETHER_F_KEY, .verdict = XDP_REDIRECT,
	       .counters = CNT(token_hit)),
	/* Rule 4: no warm container. */
	ALL_L2(.name = "no capacity (F_EMPTY)", .setup = S_NOCAP_EMPTY, .verdict = XDP_PASS,
	       .counters = CNT(no_capacity)),
	ALL_L2(.name = "no capacity (F_EMPTY)", .setup = S_NOCAP_EMPTY, .flags = TETHER_F_KEY,
	       .verdict = XDP_PASS, .counters = CNT(no_capacity)),
	ALL_L2(.name = "no capacity (F_EMPTY, F1's token)", .setup = S_NOCAP_EMPTY,
	       .flags = TETHER_F_TOKEN, .verdict = XDP_PASS,
	       .counters = CNT(token_foreign) | CNT(no_capacity)),
	ALL_L2(.name = "no capacity (F1 emptied)", .setup = S_NOCAP_DRAINED, .verdict = XDP_PASS,
	       .counters = CNT(no_capacity)),
	ALL_L2(.name = "no capacity (F1 emptied, key learned before)", .setup = S_NOCAP_DRAINED,
	       .flags = TETHER_F_KEY, .verdict = XDP_PASS, .counters = CNT(no_capacity)),
	ALL_L2(.name = "no capacity (F1 emptied, stale token)", .setup = S_NOCAP_DRAINED,
	       .flags = TETHER_F_TOKEN, .verdict = XDP_PASS,
	       .counters = CNT(token_miss) | CNT(no_capacity)),

	/* Frame shapes: route like plain frames, bytes out exact. */
	SHAPED(.family = 4, .vlans = 0, .shape = "IPv4 options 4 NOP", .ipv4_opts = 4,
	       .ipv4_fill = PKT_IPOPT_NOP),
	SHAPED(.family = 4, .vlans = 1, .shape = "IPv4 options 8 RR", .ipv4_opts = 8,
	       .ipv4_fill = PKT_IPOPT_RR),
	SHAPED(.family = 4, .vlans = 2, .qinq = 1, .shape = "IPv4 options 40 EOL (ihl 15)",
	       .ipv4_opts = 40, .ipv4_fill = PKT_IPOPT_EOL),
	SHAPED(.family = 4, .vlans = 0, .shape = "IPv4 UDP checksum 0", .csum_zero = 1),
	SHAPED(.family = 4, .vlans = 2, .qinq = 1, .shape = "IPv4 UDP checksum 0, options 12 RR",
	       .csum_zero = 1, .ipv4_opts = 12, .ipv4_fill = PKT_IPOPT_RR),
	SHAPED(.family = 4, .vlans = 1, .shape = "no payload", .payload = NO_PAYLOAD),
	SHAPED(.family = 4, .vlans = 0, .shape = "odd payload 1", .payload = 1),
	SHAPED(.family = 4, .vlans = 1, .shape = "payload 1201", .payload = 1201),
	SHAPED(.family = 4, .vlans = 0, .shape = "Ethernet padding 10", .trailer = 10),
	SHAPED(.family = 4, .vlans = 2, .shape = "junk token bytes", .junk_token = 1),
	SHAPED(.family = 6, .vlans = 0, .shape = "ext hop-by-hop", .ext = "H0"),
	SHAPED(.family = 6, .vlans = 1, .shape = "ext routing", .ext = "R0"),
	SHAPED(.family = 6, .vlans = 0, .shape = "ext destination options 24", .ext = "D2"),
	SHAPED(.family = 6, .vlans = 2, .qinq = 1, .shape = "ext hop-by-hop, routing",
	       .ext = "H0 R1"),
	SHAPED(.family = 6, .vlans = 0, .shape = "ext hop-by-hop, routing, dest-opts",
	       .ext = "H1 R0 D0"),
	SHAPED(.family = 6, .vlans = 1, .shape = "ext 4: hop-by-hop, dest-opts, routing, dest-opts",
	       .ext = "H0 D1 R2 D0"),
	SHAPED(.family = 6, .vlans = 2, .shape = "ext 4, long (H7 D3 R5 D1)", .ext = "H7 D3 R5 D1"),
	SHAPED(.family = 6, .vlans = 0, .shape = "ext 4, odd payload 3", .ext = "H0 R0 D0 D0",
	       .payload = 3),
	SHAPED(.family = 6, .vlans = 1, .shape = "no payload", .payload = NO_PAYLOAD),
	SHAPED(.family = 6, .vlans = 0, .shape = "payload 1201", .payload = 1201),
	SHAPED(.family = 6, .vlans = 2, .qinq = 1, .shape = "Ethernet padding 7", .trailer = 7),
	SHAPED(.family = 6, .vlans = 0, .shape = "junk token bytes", .junk_token = 1),
};

/* ---- per-test state and reporting ----------------------------------------- */

struct route_test {
	const struct route_case *c;
	const char *label;
	long index;
	struct fixture fx;
};

static char labels[ARRAY_SIZE(cases)][200];
static __u8 lo_mac[6], tx0_mac[6]; /* read from the kernel in main */

#define CHECK(t, cond, ...)                                       \
	do {                                                      \
		if (!(cond)) {                                    \
			print_error("[%s] ", (t)->label);         \
			print_error(__VA_ARGS__);                 \
			print_error("\n");                        \
			fail();                                   \
		}                                                 \
	} while (0)

static const char *const stat_names[] = {
	"token_hit", "token_miss", "token_foreign", "key_hit",     "key_new",
	"key_rehomed", "flow_pick", "no_capacity", "strict_gone", "malformed",
	"fragment", "pass", "no_route", "retag_failed", "shed", "shed_dropped",
	"token_overflow", "key_overflow", "full", "done", "done_stale", "done_forged",
	"lost_fixed", "alive", "alive_replayed", "alive_forged", "completion_bad",
	"encap_vxlan", "encap_ipip", "fib_no_route", "fib_no_neigh", "too_big", "encap_slow", "encap_failed",
};
_Static_assert(ARRAY_SIZE(stat_names) == sizeof(struct tether_stats) / sizeof(__u64),
	       "a name for every counter");

static void describe(const struct route_case *c, char *out, size_t size)
{
	const char *l2 = c->vlans == 0 ? "no VLAN"
			 : c->vlans == 1 ? "802.1Q"
			 : c->qinq ? "QinQ 88a8+8100" : "802.1Q+802.1Q";

	snprintf(out, size, "%s -> %s | IPv%d | %s%s%s", c->name, xdp_verdict_name(c->verdict),
		 c->family, l2, c->shape ? " | " : "", c->shape ? c->shape : "");
}

/* ---- what the test works out by itself ------------------------------------ */

#define POOL_CAP 4096

struct pool {
	__u32 size;
	__u32 table[POOL_CAP]; /* table[i] is entry i + 1 */
};

static void read_pool(struct route_test *t, __u64 function_id, struct pool *pool)
{
	int err = pool_read(&t->fx.dp, function_id, pool->table, POOL_CAP, &pool->size);

	CHECK(t, err == 0, "pool_read(%#llx) failed: %d", (unsigned long long)function_id, err);
	CHECK(t, pool->size > 0 && pool->size <= POOL_CAP, "pool of %#llx has size %u",
	      (unsigned long long)function_id, pool->size);
}

/* Where the program must land first for a hash (every container in the
 * fixture's pools is warm on an up backend, so the first probe takes it). */
static __u32 pool_pick(const struct pool *pool, __u64 hash)
{
	return pool->table[tether_pool_index(hash, pool->size) - 1];
}

static __u64 flow_hash(const struct pkt_spec *s)
{
	__u8 src[16], dst[16];

	pkt_map_addr(s->family, s->src_addr, src);
	pkt_map_addr(s->family, s->dst_addr, dst);
	/* Ports "as on the wire": the big-endian field loaded as it lies. */
	return tether_hash_flow(src, dst, htons(s->src_port), htons(s->dst_port));
}

static int verdict_of_slot(__u32 slot)
{
	return fixture_backend_of(slot) == FIXTURE_BACKEND_LOCAL ? XDP_TX : XDP_REDIRECT;
}

static __u32 backend_of_verdict(int verdict)
{
	return verdict == XDP_TX ? FIXTURE_BACKEND_LOCAL : FIXTURE_BACKEND_REMOTE;
}

static __u32 other_backend(__u32 backend)
{
	return backend == FIXTURE_BACKEND_LOCAL ? FIXTURE_BACKEND_REMOTE : FIXTURE_BACKEND_LOCAL;
}

/* A container of F1 on a backend, varied from case to case. */
static __u32 f1_slot_on(const struct route_test *t, __u32 backend)
{
	__u32 first = backend == FIXTURE_BACKEND_LOCAL ? 10 : 12;

	return first + (__u32)(t->index % 2);
}

/* Sets a source port whose flow the pool puts on `backend`, and not on
 * `not_slot` (-1: any slot); returns the slot. */
static __u32 find_port(struct route_test *t, struct pkt_spec *s, const struct pool *pool,
		       __u32 backend, long not_slot)
{
	for (__u32 port = PKT_TEST_CLIENT_PORT; port < PKT_TEST_CLIENT_PORT + 4096; port++) {
		s->src_port = (__u16)port;

		__u32 slot = pool_pick(pool, flow_hash(s));

		if (fixture_backend_of(slot) == backend && (long)slot != not_slot)
			return slot;
	}
	CHECK(t, 0, "no source port puts the flow on backend %u", backend);
	return 0;
}

/* A routing key of F1 the pool puts on `backend` (0: any) and not on
 * `not_slot` (-1: any slot); *slot is where. */
static __u64 find_key(struct route_test *t, const struct pool *pool, __u32 backend,
		      long not_slot, __u32 *slot)
{
	__u64 first = 0x5eed000000000000ULL + (__u64)t->index * 10000;

	for (__u64 key = first; key < first + 4096; key++) {
		*slot = pool_pick(pool, tether_hash_key(FIXTURE_F1, key));
		if ((!backend || fixture_backend_of(*slot) == backend) && (long)*slot != not_slot)
			return key;
	}
	CHECK(t, 0, "no key of F1 lands on backend %u", backend);
	return 0;
}

/* Moves to the next source port whose flow the pool does not put on
 * not_slot: another flow that the flow hash alone would send elsewhere. */
static void other_flow(struct route_test *t, struct pkt_spec *s, const struct pool *pool,
		       __u32 not_slot)
{
	for (int i = 0; i < 4096; i++) {
		s->src_port++;
		if (pool_pick(pool, flow_hash(s)) != not_slot)
			return;
	}
	CHECK(t, 0, "no other flow found");
}

static void token_bytes(const struct tether_token *token, __u8 out[16])
{
	memcpy(out, token, 16);
}

/* ---- the map checks ------------------------------------------------------- */

static int affinity_fd(struct route_test *t)
{
	return bpf_map__fd(t->fx.dp.skel->maps.affinity);
}

/* (F, key) -> slot with the container's current generation; slot -1: no entry. */
static void check_affinity(struct route_test *t, const char *step, __u64 function_id,
			   __u64 key, long slot)
{
	struct affinity_key k = { .function_id = function_id, .routing_key = key };
	struct affinity_value v = {};
	int err = bpf_map_lookup_elem(affinity_fd(t), &k, &v) ? -errno : 0;

	if (slot < 0) {
		CHECK(t, err == -ENOENT, "%s: affinity of (%#llx, %#llx) should not exist, is slot %u",
		      step, (unsigned long long)function_id, (unsigned long long)key, v.slot);
		return;
	}

	struct container_record record;

	CHECK(t, err == 0, "%s: no affinity entry for (%#llx, %#llx): %d", step,
	      (unsigned long long)function_id, (unsigned long long)key, err);
	CHECK(t, container_get(&t->fx.dp, (__u32)slot, &record) == 0, "%s: slot %ld is free",
	      step, slot);
	CHECK(t, v.slot == (__u32)slot && v.generation == record.generation,
	      "%s: affinity of key %#llx is slot %u generation %u, expected slot %ld generation %u",
	      step, (unsigned long long)key, v.slot, v.generation, slot, record.generation);
}

static unsigned affinity_count(struct route_test *t)
{
	struct affinity_key key, next;
	const struct affinity_key *previous = NULL;
	unsigned n = 0;

	while (!bpf_map_get_next_key(affinity_fd(t), previous, &next)) {
		key = next;
		previous = &key;
		n++;
	}
	return n;
}

static void write_affinity(struct route_test *t, __u64 key, __u32 slot)
{
	struct container_record record;
	struct affinity_key k = { .function_id = FIXTURE_F1, .routing_key = key };

	CHECK(t, container_get(&t->fx.dp, slot, &record) == 0, "slot %u is free", slot);

	struct affinity_value v = { .slot = slot, .generation = record.generation };

	CHECK(t, bpf_map_update_elem(affinity_fd(t), &k, &v, BPF_ANY) == 0,
	      "writing the affinity entry failed: %d", -errno);
}

/* ---- one datagram through the program ------------------------------------- */

struct expect {
	const char *step;  /* names the datagram in messages */
	int verdict;
	__u64 counters; /* CNT() bits */
	long slot;         /* the chosen container; -1: slow path */
	__u8 status;       /* slow path: the status byte the program writes */
};

#define STAT_SLOTS 32 /* the fixture's slots are below this */

static __u8 frame_in[HARNESS_FRAME_MAX], frame_expected[HARNESS_FRAME_MAX];
static struct xdp_result result;

static void dump_frames(const __u8 *expected, size_t expected_len, const __u8 *got,
			size_t got_len)
{
	fprintf(stderr, "expected frame (%zu bytes):\n", expected_len);
	pkt_hexdump(stderr, expected, expected_len);
	fprintf(stderr, "frame out (%zu bytes):\n", got_len);
	pkt_hexdump(stderr, got, got_len);
}

/* The frame the backend must receive: the frame in, Ethernet addresses
 * rewritten for the container's backend, the client's VLAN tags replaced by
 * the backend's tagging (the fixture's backends take untagged frames),
 * STAMPED set, the container's token written, checksums recomputed from
 * scratch. Returns its length. */
static size_t expected_forward(struct route_test *t, const struct expect *e, size_t len)
{
	static __u8 relinked[HARNESS_FRAME_MAX];
	struct pkt_view v;
	struct container_record record;
	struct backend_record backend;
	__u32 slot = (__u32)e->slot;

	CHECK(t, container_get(&t->fx.dp, slot, &record) == 0, "%s: slot %u is free", e->step,
	      slot);
	CHECK(t, record.backend_id == fixture_backend_of(slot),
	      "%s: slot %u is on backend %u, the fixture says %u", e->step, slot,
	      record.backend_id, fixture_backend_of(slot));
	CHECK(t, backend_get(&t->fx.dp, record.backend_id, &backend) == 0,
	      "%s: backend %u is missing", e->step, record.backend_id);

	int local = fixture_backend_of(slot) == FIXTURE_BACKEND_LOCAL;
	size_t out_len = pkt_rewrite_l2(frame_in, len, local ? fixture_local_mac : fixture_remote_mac,
					local ? lo_mac : tx0_mac, backend.vlan, relinked,
					sizeof(relinked));

	CHECK(t, out_len > 0, "%s: pkt_rewrite_l2 failed", e->step);
	memcpy(frame_expected, relinked, out_len);
	CHECK(t, pkt_parse(frame_expected, out_len, &v) == 0 && v.tether_off >= 0,
	      "%s: the frame in does not parse", e->step);

	__u8 *hdr = frame_expected + v.tether_off;
	__u8 token[16], minted[16];

	hdr[offsetof(struct tether_hdr, flags)] |= TETHER_F_STAMPED;
	pkt_token(token, slot, record.generation, record.secret);
	token_bytes(&t->fx.tokens[slot], minted);
	CHECK(t, memcmp(token, minted, 16) == 0,
	      "%s: slot %u's record does not match the token container_install minted", e->step,
	      slot);
	memcpy(hdr + offsetof(struct tether_hdr, container_token), token, 16);
	CHECK(t, pkt_fix_csums(frame_expected, out_len) == 0, "%s: pkt_fix_csums failed", e->step);
	return out_len;
}

/* The frame the host stack must receive: the frame in with the status byte
 * set and the UDP checksum fixed (an IPv4 checksum of 0 stays 0), its
 * Ethernet header and tags as they came. Returns its length. */
static size_t expected_slow_path(struct route_test *t, const struct expect *e, size_t len)
{
	struct pkt_view v;

	memcpy(frame_expected, frame_in, len);
	CHECK(t, pkt_parse(frame_expected, len, &v) == 0 && v.tether_off >= 0,
	      "%s: the frame in does not parse", e->step);
	frame_expected[v.tether_off + offsetof(struct tether_hdr, status)] = e->status;
	CHECK(t, pkt_fix_csums(frame_expected, len) == 0, "%s: pkt_fix_csums failed", e->step);
	return len;
}

static void read_container_stats(struct route_test *t, struct container_counters *out)
{
	for (__u32 slot = 0; slot < STAT_SLOTS; slot++)
		CHECK(t, container_stats_read(&t->fx.dp, slot, &out[slot]) == 0,
		      "container_stats_read(%u) failed", slot);
}

/* Builds the frame of spec s, runs it, and checks verdict, container, every
 * counter, every byte and the per-container counters. Returns the slot the
 * frame was stamped with (-1 for the slow path). */
static long send_frame(struct route_test *t, const struct pkt_spec *s, const struct expect *e)
{
	struct container_counters before[STAT_SLOTS], after[STAT_SLOTS];
	struct tether_stats delta;
	size_t len = pkt_build(s, frame_in, sizeof(frame_in));

	CHECK(t, len > 0, "%s: pkt_build failed", e->step);
	read_container_stats(t, before);
	fixture_run(&t->fx, frame_in, len, &result, &delta);
	read_container_stats(t, after);

	/* The verdict, then where it went: the clearest message first. */
	long stamped = fixture_stamped_slot(&result);

	CHECK(t, result.verdict == e->verdict, "%s: verdict %s (%d), expected %s (stamped slot %ld)",
	      e->step, xdp_verdict_name(result.verdict), result.verdict, xdp_verdict_name(e->verdict),
	      stamped);
	if (e->slot >= 0)
		CHECK(t, stamped == e->slot, "%s: routed to slot %ld, expected slot %ld", e->step,
		      stamped, e->slot);

	/* Every counter: the expected ones +1, all others unchanged. */
	const __u64 *d = (const __u64 *)&delta;
	char diff[512] = "";
	size_t used = 0;

	for (size_t i = 0; i < ARRAY_SIZE(stat_names); i++) {
		__u64 want = (e->counters >> i) & 1;

		if (d[i] != want && used < sizeof(diff))
			used += (size_t)snprintf(diff + used, sizeof(diff) - used,
						 " %s %+lld (expected +%llu)", stat_names[i],
						 (long long)d[i], (unsigned long long)want);
	}
	CHECK(t, used == 0, "%s: counter deltas wrong:%s", e->step, diff);

	/* Every byte. */
	size_t want_len = e->slot >= 0 ? expected_forward(t, e, len) : expected_slow_path(t, e, len);

	CHECK(t, result.len == want_len, "%s: frame out is %u bytes, expected %zu (frame in %zu)",
	      e->step, result.len, want_len, len);

	long first = pkt_first_diff(frame_expected, want_len, result.frame, result.len);

	if (first >= 0)
		dump_frames(frame_expected, want_len, result.frame, result.len);
	CHECK(t, first < 0, "%s: frame out differs from the expected frame at byte %ld "
	      "(expected %02x, got %02x)", e->step, first, frame_expected[first],
	      result.frame[first]);

	/* The checksum, judged on its own too. */
	struct pkt_view v;

	CHECK(t, pkt_parse(result.frame, result.len, &v) == 0, "%s: frame out does not parse",
	      e->step);
	__u16 field = (__u16)(result.frame[v.l4_off + 6] << 8 | result.frame[v.l4_off + 7]);

	if (s->family == 4 && s->udp_csum_zero)
		CHECK(t, field == 0, "%s: IPv4 UDP checksum 0 became %#06x", e->step, field);
	else
		CHECK(t, field == pkt_udp_csum_compute(result.frame, result.len),
		      "%s: UDP checksum %#06x, should be %#06x", e->step, field,
		      pkt_udp_csum_compute(result.frame, result.len));

	/* Per-container counters: the chosen one +1 packet, +the bytes that left. */
	for (__u32 slot = 0; slot < STAT_SLOTS; slot++) {
		__u64 packets = after[slot].packets - before[slot].packets;
		__u64 bytes = after[slot].bytes - before[slot].bytes;
		int chosen = e->slot >= 0 && slot == (__u32)e->slot;

		CHECK(t, packets == (chosen ? 1u : 0u) && bytes == (chosen ? want_len : 0),
		      "%s: slot %u counted %llu packets, %llu bytes; expected %u, %zu", e->step,
		      slot, (unsigned long long)packets, (unsigned long long)bytes, chosen ? 1 : 0,
		      chosen ? want_len : (size_t)0);
	}
	return stamped;
}

/* ---- the frame of a case -------------------------------------------------- */

static void parse_ext(struct route_test *t, const char *text, struct pkt_spec *s)
{
	while (text && *text) {
		if (*text == ' ') {
			text++;
			continue;
		}
		CHECK(t, s->ipv6_ext_count < PKT_MAX_IPV6_EXT, "too many extension headers");

		struct pkt_ipv6_ext *e = &s->ipv6_ext[s->ipv6_ext_count++];
		char kind = *text++;

		e->type = kind == 'H' ? 0 : kind == 'R' ? 43 : kind == 'D' ? 60 : 255;
		CHECK(t, e->type != 255, "extension header '%c' unknown", kind);
		e->len = (__u8)strtoul(text, (char **)&text, 10);
	}
}

static void spec_for(struct route_test *t, struct pkt_spec *s)
{
	const struct route_case *c = t->c;

	pkt_spec_default(s, c->family);
	s->vlan_count = c->vlans;
	s->qinq = c->qinq;
	s->vlan_tci[0] = 0xa064; /* PCP 5, VID 100 */
	s->vlan_tci[1] = 0x10c8; /* DEI, VID 200 */
	s->tos = 0x28;
	s->ipv6_flow_label = 0xbeef5;
	s->ipv4_options_len = c->ipv4_opts;
	s->ipv4_options_fill = c->ipv4_fill;
	parse_ext(t, c->ext, s);
	s->udp_csum_zero = c->csum_zero;
	if (c->payload)
		s->payload_len = c->payload < 0 ? 0 : (size_t)c->payload;
	s->payload_seed = 0x5a;
	s->trailer_len = (size_t)c->trailer;
	s->hdr.flags = c->flags;
	s->hdr.request_id = 0x0123456789abcdefULL;
	if (c->junk_token)
		for (int i = 0; i < 16; i++)
			s->hdr.token[i] = (__u8)(0xc3 + 37 * i);
}

static void next_datagram(struct pkt_spec *s)
{
	s->hdr.request_id++;
	s->payload_seed += 11;
}

static void set_token(struct route_test *t, struct pkt_spec *s, __u32 slot)
{
	token_bytes(&t->fx.tokens[slot], s->hdr.token);
}

static void remove_f1_container(struct route_test *t, __u32 slot)
{
	int err = container_remove(&t->fx.dp, slot);

	CHECK(t, err == 0, "container_remove(%u) failed: %d", slot, err);
}

/* ---- the scenarios -------------------------------------------------------- */

static void run_flow(struct route_test *t, struct pkt_spec *s, const struct pool *pool)
{
	const struct route_case *c = t->c;
	__u32 slot = find_port(t, s, pool, backend_of_verdict(c->verdict), -1);
	struct expect e = { "first datagram of the flow", c->verdict, c->counters, slot, 0 };

	send_frame(t, s, &e);
	/* The same flow, always the same container. */
	e.step = "same flow again";
	for (int i = 0; i < 3; i++) {
		next_datagram(s);
		send_frame(t, s, &e);
	}
	CHECK(t, affinity_count(t) == 0, "a flow pick learned an affinity");
}

static void run_key_new(struct route_test *t, struct pkt_spec *s, const struct pool *pool)
{
	const struct route_case *c = t->c;
	__u32 slot;

	s->hdr.routing_key = find_key(t, pool, backend_of_verdict(c->verdict), -1, &slot);
	/* The flow would go elsewhere: only the key can make this slot. */
	find_port(t, s, pool, other_backend(backend_of_verdict(c->verdict)), slot);
	send_frame(t, s, &(struct expect){ "new key", c->verdict, c->counters, slot, 0 });
	check_affinity(t, "after the new key", FIXTURE_F1, s->hdr.routing_key, slot);

	/* The same key from another flow: the same container. */
	other_flow(t, s, pool, slot);
	next_datagram(s);
	send_frame(t, s, &(struct expect){ "same key, other flow", c->verdict, CNT(key_hit), slot, 0 });
	check_affinity(t, "after the key hit", FIXTURE_F1, s->hdr.routing_key, slot);
}

static void run_key_hit(struct route_test *t, struct pkt_spec *s, const struct pool *pool)
{
	const struct route_case *c = t->c;
	__u32 slot;

	s->hdr.routing_key = find_key(t, pool, backend_of_verdict(c->verdict), -1, &slot);
	send_frame(t, s, &(struct expect){ "learning datagram", c->verdict, CNT(key_new), slot, 0 });
	next_datagram(s);
	send_frame(t, s, &(struct expect){ "same key again", c->verdict, c->counters, slot, 0 });
	check_affinity(t, "after the key hit", FIXTURE_F1, s->hdr.routing_key, slot);
}

static void run_key_affinity(struct route_test *t, struct pkt_spec *s, const struct pool *pool)
{
	const struct route_case *c = t->c;
	__u32 target = f1_slot_on(t, backend_of_verdict(c->verdict)), hashed;

	/* A key the hash puts on the other backend, remembered on target. */
	s->hdr.routing_key =
		find_key(t, pool, other_backend(backend_of_verdict(c->verdict)), -1, &hashed);
	write_affinity(t, s->hdr.routing_key, target);
	send_frame(t, s, &(struct expect){ "key with an affinity", c->verdict, c->counters, target, 0 });
	check_affinity(t, "after the key hit", FIXTURE_F1, s->hdr.routing_key, target);
}

static void run_key_rehome(struct route_test *t, struct pkt_spec *s, const struct pool *full)
{
	const struct route_case *c = t->c;
	__u32 removed = t->index % 2 ? 12 : 10; /* one on each backend, case by case */
	static struct pool without, again;
	__u32 first_slot, slot;
	__u64 key;

	/* Learn where the keys of `removed` go once it is gone (the pool of the
	 * three others), then put it back (a new generation and token). */
	remove_f1_container(t, removed);
	fixture_rebuild_pool(&t->fx, FIXTURE_F1);
	read_pool(t, FIXTURE_F1, &without);
	CHECK(t, container_install(&t->fx.dp, removed, FIXTURE_F1, fixture_backend_of(removed),
				   CONTAINER_WARM, &t->fx.tokens[removed]) == 0,
	      "container_install(%u) failed", removed);
	fixture_rebuild_pool(&t->fx, FIXTURE_F1);
	read_pool(t, FIXTURE_F1, &again);
	CHECK(t, again.size == full->size &&
		 !memcmp(again.table, full->table, full->size * sizeof(__u32)),
	      "the pool rebuilt over the same containers is a different table");

	/* A key on `removed` now whose new home is on the row's backend. */
	for (key = 0x4e40000000000000ULL + (__u64)t->index * 100000;; key++) {
		__u64 hash = tether_hash_key(FIXTURE_F1, key);

		first_slot = pool_pick(full, hash);
		slot = pool_pick(&without, hash);
		if (first_slot == removed &&
		    fixture_backend_of(slot) == backend_of_verdict(c->verdict))
			break;
		CHECK(t, key < 0x4e40000000000000ULL + (__u64)t->index * 100000 + 100000,
		      "no key to re-home found");
	}
	s->hdr.routing_key = key;
	send_frame(t, s, &(struct expect){ "learning datagram", verdict_of_slot(removed), CNT(key_new),
				     removed, 0 });
	check_affinity(t, "after learning", FIXTURE_F1, key, removed);

	remove_f1_container(t, removed);
	fixture_rebuild_pool(&t->fx, FIXTURE_F1);
	read_pool(t, FIXTURE_F1, &again);
	CHECK(t, again.size == without.size &&
		 !memcmp(again.table, without.table, without.size * sizeof(__u32)),
	      "the pool without slot %u is not the table seen before", removed);

	next_datagram(s);
	long got = send_frame(t, s, &(struct expect){ "after its container was removed", c->verdict,
						c->counters, slot, 0 });
	struct container_record record;

	CHECK(t, got != (long)removed, "re-homed to the removed container %u", removed);
	CHECK(t, container_get(&t->fx.dp, slot, &record) == 0 &&
		 record.function_id == FIXTURE_F1 && record.state == CONTAINER_WARM,
	      "re-homed to slot %u, not a warm container of F1", slot);
	check_affinity(t, "after re-homing", FIXTURE_F1, key, slot);

	next_datagram(s);
	send_frame(t, s, &(struct expect){ "re-homed key again", c->verdict, CNT(key_hit), slot, 0 });
}

static void run_token(struct route_test *t, struct pkt_spec *s, const struct pool *pool)
{
	const struct route_case *c = t->c;
	__u32 backend = backend_of_verdict(c->verdict);
	__u32 target = f1_slot_on(t, backend);

	/* The flow hash would pick the other backend. */
	find_port(t, s, pool, other_backend(backend), target);
	set_token(t, s, target);
	send_frame(t, s, &(struct expect){ "token", c->verdict, c->counters, target, 0 });
	next_datagram(s);
	send_frame(t, s, &(struct expect){ "token again", c->verdict, c->counters, target, 0 });
	CHECK(t, affinity_count(t) == 0, "a token without KEY learned an affinity");
}

static void run_token_key(struct route_test *t, struct pkt_spec *s, const struct pool *pool,
			  int learned_before)
{
	const struct route_case *c = t->c;
	__u32 backend = backend_of_verdict(c->verdict);
	__u32 target = f1_slot_on(t, backend), hashed;

	/* The key and the flow would both go to the other backend. */
	s->hdr.routing_key = find_key(t, pool, other_backend(backend), -1, &hashed);
	find_port(t, s, pool, other_backend(backend), target);
	if (learned_before) {
		s->hdr.flags = TETHER_F_KEY;
		send_frame(t, s, &(struct expect){ "key alone, learning", verdict_of_slot(hashed),
					     CNT(key_new), hashed, 0 });
		check_affinity(t, "after learning", FIXTURE_F1, s->hdr.routing_key, hashed);
		next_datagram(s);
	} else {
		check_affinity(t, "before", FIXTURE_F1, s->hdr.routing_key, -1);
	}
	s->hdr.flags = c->flags;
	set_token(t, s, target);
	send_frame(t, s, &(struct expect){ "token and key", c->verdict, c->counters, target, 0 });
	check_affinity(t, "after token and key", FIXTURE_F1, s->hdr.routing_key, target);

	/* The key alone now follows the token's container. */
	next_datagram(s);
	s->hdr.flags = TETHER_F_KEY;
	memset(s->hdr.token, 0, sizeof(s->hdr.token));
	send_frame(t, s, &(struct expect){ "key alone afterwards", c->verdict, CNT(key_hit), target, 0 });
}

static void run_no_capacity(struct route_test *t, struct pkt_spec *s, const struct pool *pool)
{
	const struct route_case *c = t->c;
	__u32 slot;
	__u64 key = 0;

	if (c->flags & TETHER_F_KEY)
		key = find_key(t, pool, 0, -1, &slot);
	if (c->setup == S_NOCAP_EMPTY) {
		s->hdr.function_id = FIXTURE_F_EMPTY;
		if (c->flags & TETHER_F_TOKEN)
			set_token(t, s, f1_slot_on(t, FIXTURE_BACKEND_LOCAL)); /* F1's */
	} else {
		if (c->flags & TETHER_F_KEY) {
			s->hdr.routing_key = key;
			s->hdr.flags = TETHER_F_KEY;
			send_frame(t, s, &(struct expect){ "learning datagram", verdict_of_slot(slot),
						     CNT(key_new), slot, 0 });
			next_datagram(s);
		}
		if (c->flags & TETHER_F_TOKEN)
			set_token(t, s, f1_slot_on(t, FIXTURE_BACKEND_REMOTE));
		for (__u32 i = 0; i < FIXTURE_F1_CONTAINERS; i++)
			remove_f1_container(t, FIXTURE_F1_FIRST_SLOT + i);
		fixture_rebuild_pool(&t->fx, FIXTURE_F1);

		__u32 table[1], size;

		CHECK(t, pool_read(&t->fx.dp, FIXTURE_F1, table, 1, &size) == -ENOENT,
		      "F1 still has a pool after all its containers were removed");
	}
	s->hdr.routing_key = key;
	s->hdr.flags = c->flags;

	unsigned before = affinity_count(t);

	send_frame(t, s, &(struct expect){ "no warm container", XDP_PASS, c->counters, -1,
				     TETHER_STATUS_NO_CAPACITY });
	CHECK(t, affinity_count(t) == before, "the slow path changed the affinity map");
	if (c->setup == S_NOCAP_EMPTY && (c->flags & TETHER_F_KEY))
		check_affinity(t, "after the slow path", FIXTURE_F_EMPTY, key, -1);
}

static void run_case(void **state)
{
	struct route_test *t = *state;
	const struct route_case *c = t->c;
	static struct pkt_spec s;
	static struct pool pool;

	spec_for(t, &s);
	read_pool(t, FIXTURE_F1, &pool);
	switch (c->setup) {
	case S_FLOW:
		run_flow(t, &s, &pool);
		break;
	case S_KEY_NEW:
		run_key_new(t, &s, &pool);
		break;
	case S_KEY_HIT:
		run_key_hit(t, &s, &pool);
		break;
	case S_KEY_AFFINITY:
		run_key_affinity(t, &s, &pool);
		break;
	case S_KEY_REHOME:
		run_key_rehome(t, &s, &pool);
		break;
	case S_TOKEN:
		run_token(t, &s, &pool);
		break;
	case S_TOKEN_KEY:
		run_token_key(t, &s, &pool, 1);
		break;
	case S_TOKEN_KEY_FRESH:
		run_token_key(t, &s, &pool, 0);
		break;
	case S_NOCAP_EMPTY:
	case S_NOCAP_DRAINED:
		run_no_capacity(t, &s, &pool);
		break;
	}
}

/* ---- cmocka --------------------------------------------------------------- */

static int setup(void **state)
{
	const struct route_case *c = *state;
	struct route_test *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	t->c = c;
	t->index = c - cases;
	t->label = labels[t->index];
	fixture_setup(&t->fx);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct route_test *t = *state;

	fixture_teardown(&t->fx);
	free(t);
	return 0;
}

int main(int argc, char **argv)
{
	static struct CMUnitTest tests[ARRAY_SIZE(cases)];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char text[160];

		describe(&cases[i], text, sizeof(text));
		snprintf(labels[i], sizeof(labels[i]), "%03zu %s", i, text);
		tests[i] = (struct CMUnitTest){
			.name = labels[i],
			.test_func = run_case,
			.setup_func = setup,
			.teardown_func = teardown,
			.initial_state = (void *)&cases[i],
		};
	}
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);

	fixture_enter_netns();
	if (interface_mac("lo", lo_mac) || interface_mac("tx0", tx0_mac)) {
		fprintf(stderr, "test_routing: cannot read the MACs of lo and tx0\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
