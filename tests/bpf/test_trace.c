// SPDX-License-Identifier: MIT
/* The packet trace (bpf/trace.h), in the real kernel with BPF_PROG_TEST_RUN
 * against the fixture's world: with the trace off nothing reaches the ring;
 * with it on, every kind of decision appears once per frame with the reason
 * its counters give (token hit, miss and foreign, key new, hit and rehomed,
 * flow pick, token and key overflow, no capacity, strict gone, full, shed
 * and shed dropped, malformed and which check, fragment, DONE, ALIVE, a bad
 * completion), the container, backend, client and ingress interface; filters on function, key and container keep only what they
 * name. The world is loaded once for the file; each test leaves it as it
 * found it. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "fixture.h"
#include "tether_xdp.skel.h"

#define MAX_SEEN 16
#define COMPLETION_PORT 7778

static __u8 frame[PKT_MAX_FRAME];
static struct xdp_result res;
static struct ring_buffer *ring;
static struct trace_record seen[MAX_SEEN];
static int seen_count;
static __u16 next_port = 41000;

static int on_record(void *ctx, void *data, size_t size)
{
	(void)ctx;
	assert_int_equal(size, sizeof(struct trace_record));
	if (seen_count < MAX_SEEN)
		memcpy(&seen[seen_count], data, size);
	seen_count++;
	return 0;
}

static void trace_on(struct fixture *fx, __u32 filters, __u64 function_id, __u64 key, __u32 slot)
{
	struct trace_config config = { .enabled = 1, .filters = filters,
				       .function_id = function_id, .routing_key = key,
				       .slot = slot };

	assert_int_equal(trace_config_set(&fx->dp, &config), 0);
}

static void trace_off(struct fixture *fx)
{
	assert_int_equal(trace_config_set(&fx->dp, &(struct trace_config){ 0 }), 0);
}

static struct pkt_spec spec(__u64 function_id, __u8 flags, __u64 key)
{
	struct pkt_spec s;

	pkt_spec_default(&s, 4);
	s.src_port = next_port++;
	s.hdr.function_id = function_id;
	s.hdr.flags = flags;
	s.hdr.routing_key = key;
	return s;
}

static struct pkt_spec token_spec(__u64 function_id, __u8 flags, const struct tether_token *t)
{
	struct pkt_spec s = spec(function_id, flags | TETHER_F_TOKEN, 0);

	memcpy(s.hdr.token, t, sizeof(*t));
	return s;
}

/* Runs the frame of s; returns how many records it left in the ring (the
 * first is in seen[0]). */
static int run(struct fixture *fx, const struct pkt_spec *s)
{
	size_t len = pkt_build(s, frame, sizeof(frame));
	struct tether_stats delta;

	assert_true(len > 0 && len <= HARNESS_FRAME_MAX);
	seen_count = 0;
	fixture_run(fx, frame, len, &res, &delta);
	assert_true(ring_buffer__consume(ring) >= 0);
	return seen_count;
}

/* As run(), for the first len bytes of s's frame (a frame cut short). */
static int run_cut(struct fixture *fx, const struct pkt_spec *s, size_t len)
{
	size_t full = pkt_build(s, frame, sizeof(frame));
	struct tether_stats delta;

	assert_true(full >= len);
	seen_count = 0;
	fixture_run(fx, frame, len, &res, &delta);
	assert_true(ring_buffer__consume(ring) >= 0);
	return seen_count;
}

static __u64 bit(const char *counter)
{
	int i = trace_reason_bit(counter);

	assert_true(i >= 0);
	return 1ull << i;
}

/* One record, of that decision, with exactly these reasons. */
static const struct trace_record *expect_one(struct fixture *fx, const struct pkt_spec *s,
					     __u8 decision, __u64 reasons)
{
	int n = run(fx, s);

	if (n != 1)
		fail_msg("%d records for one frame, want 1", n);
	const struct trace_record *r = &seen[0];

	if (r->decision != decision || r->reasons != reasons) {
		char got[256] = "";

		for (unsigned i = 0; i < 64; i++)
			if (r->reasons & (1ull << i))
				snprintf(got + strlen(got), sizeof(got) - strlen(got), " %s",
					 trace_reason_name(i));
		fail_msg("decision %s reasons%s (%#llx), want %s %#llx",
			 trace_decision_name(r->decision), got, (unsigned long long)r->reasons,
			 trace_decision_name(decision), (unsigned long long)reasons);
	}
	return r;
}

static void expect_container(const struct trace_record *r, struct fixture *fx, long slot)
{
	struct container_record c;

	assert_true(slot >= 0);
	assert_true(r->has & TRACE_HAS_CONTAINER);
	assert_int_equal(r->slot, slot);
	assert_int_equal(container_get(&fx->dp, r->slot, &c), 0);
	assert_int_equal(r->generation, c.generation);
	assert_int_equal(r->backend_id, c.backend_id);
}

static void test_nothing_written_while_off(void **state)
{
	struct fixture *fx = *state;
	struct pkt_spec s = spec(FIXTURE_F1, TETHER_F_KEY, 7);
	__u64 lost;

	trace_off(fx);
	for (int i = 0; i < 20; i++)
		assert_int_equal(run(fx, &s), 0);
	assert_int_equal(trace_lost_read(&fx->dp, &lost), 0);
	assert_int_equal(lost, 0);
}

static void test_the_record_names_client_interface_and_container(void **state)
{
	struct fixture *fx = *state;
	struct pkt_spec s = spec(FIXTURE_F1, 0, 0);
	__u8 client[16];

	s.hdr.request_id = 0xabcdef;
	trace_on(fx, 0, 0, 0, 0);
	const struct trace_record *r = expect_one(fx, &s, TRACE_FORWARD, bit("flow_pick"));

	expect_container(r, fx, fixture_stamped_slot(&res));
	assert_int_equal(pkt_v4mapped(client, PKT_TEST_CLIENT4), 0);
	assert_memory_equal(r->client_addr, client, 16);
	assert_int_equal(r->client_port, s.src_port);
	assert_int_equal(r->ifindex, fx->lo_ifindex);
	assert_int_equal(r->function_id, FIXTURE_F1);
	assert_int_equal(r->request_id, 0xabcdef);
	assert_int_equal(r->action, res.verdict);
	assert_true(r->has & TRACE_HAS_HEADER);
	assert_true(r->time_ns > 0);
	trace_off(fx);
}

static void test_tokens(void **state)
{
	struct fixture *fx = *state;
	struct tether_token wrong = fx->tokens[12];

	trace_on(fx, 0, 0, 0, 0);
	struct pkt_spec s = token_spec(FIXTURE_F1, 0, &fx->tokens[12]);
	const struct trace_record *r = expect_one(fx, &s, TRACE_FORWARD, bit("token_hit"));

	expect_container(r, fx, 12);
	assert_true(r->has & TRACE_HAS_TOKEN);
	assert_int_equal(r->token_slot, 12);

	wrong.secret = ~wrong.secret;
	s = token_spec(FIXTURE_F1, 0, &wrong);
	expect_one(fx, &s, TRACE_FORWARD, bit("token_miss") | bit("flow_pick"));

	s = token_spec(FIXTURE_F1, 0, &fx->tokens[20]); /* F2's */
	expect_one(fx, &s, TRACE_FORWARD, bit("token_foreign") | bit("flow_pick"));

	s = token_spec(FIXTURE_F1, TETHER_F_STRICT, &wrong);
	r = expect_one(fx, &s, TRACE_SLOW_PATH, bit("token_miss") | bit("strict_gone"));
	assert_int_equal(r->action, XDP_PASS);
	trace_off(fx);
}

static void test_keys(void **state)
{
	struct fixture *fx = *state;
	__u64 key = 0x5eed0001;

	trace_on(fx, 0, 0, 0, 0);
	struct pkt_spec s = spec(FIXTURE_F1, TETHER_F_KEY, key);
	const struct trace_record *r = expect_one(fx, &s, TRACE_FORWARD, bit("key_new"));
	__u32 home = r->slot;

	assert_int_equal(r->routing_key, key);
	assert_true(r->flags & TETHER_F_KEY);
	r = expect_one(fx, &s, TRACE_FORWARD, bit("key_hit"));
	assert_int_equal(r->slot, home);

	/* The home container is replaced: the key re-homes. */
	struct affinity_key akey = { .function_id = FIXTURE_F1, .routing_key = key };
	struct affinity_value stale = { .slot = home, .generation = 0xdead };

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(fx->dp.skel->maps.affinity), &akey,
					     &stale, BPF_ANY), 0);
	expect_one(fx, &s, TRACE_FORWARD, bit("key_rehomed"));
	trace_off(fx);
}

static void test_slow_path_and_shed(void **state)
{
	struct fixture *fx = *state;
	struct admission_limits limits = { .function_rate = 1, .function_burst = 1 };

	trace_on(fx, 0, 0, 0, 0);
	struct pkt_spec s = spec(FIXTURE_F_EMPTY, 0, 0);
	const struct trace_record *r = expect_one(fx, &s, TRACE_SLOW_PATH, bit("no_capacity"));

	assert_false(r->has & TRACE_HAS_CONTAINER);
	assert_int_equal(admission_set(&fx->dp, &limits), 0);
	expect_one(fx, &s, TRACE_SLOW_PATH, bit("no_capacity"));
	r = expect_one(fx, &s, TRACE_SHED, bit("no_capacity") | bit("shed"));
	assert_int_equal(r->action, XDP_TX);
	assert_int_equal(admission_set(&fx->dp, &(struct admission_limits){ 0 }), 0);
	trace_off(fx);
}

static void test_shed_dropped(void **state)
{
	struct fixture *fx = *state;
	struct admission_limits limits = { .function_rate = 1, .function_burst = 1,
					   .answer_rate = 1, .answer_burst = 1 };
	struct pkt_spec s = spec(0x4004, 0, 0); /* a function of its own: a fresh bucket */

	assert_int_equal(admission_set(&fx->dp, &limits), 0);
	trace_on(fx, 0, 0, 0, 0);
	expect_one(fx, &s, TRACE_SLOW_PATH, bit("no_capacity"));
	expect_one(fx, &s, TRACE_SHED, bit("no_capacity") | bit("shed"));
	const struct trace_record *r =
		expect_one(fx, &s, TRACE_SHED_DROPPED, bit("no_capacity") | bit("shed_dropped"));

	assert_int_equal(r->action, XDP_DROP);
	trace_off(fx);
	assert_int_equal(admission_set(&fx->dp, &(struct admission_limits){ 0 }), 0);
}

/* F2's two containers with room for one request each. */
static void limit_f2(struct fixture *fx, __u32 limit)
{
	for (__u32 slot = FIXTURE_F2_FIRST_SLOT; slot < FIXTURE_F2_FIRST_SLOT + 2; slot++) {
		assert_int_equal(container_set_limit(&fx->dp, slot, limit), 0);
		assert_int_equal(container_load_reset(&fx->dp, slot), 0);
	}
}

static void test_overflows(void **state)
{
	struct fixture *fx = *state;
	struct pkt_spec s = spec(FIXTURE_F2, TETHER_F_KEY, 0x0f10);
	const struct trace_record *r;

	limit_f2(fx, 1);
	trace_on(fx, 0, 0, 0, 0);
	r = expect_one(fx, &s, TRACE_FORWARD, bit("key_new"));
	__u32 home = r->slot;

	r = expect_one(fx, &s, TRACE_FORWARD, bit("key_overflow"));
	assert_int_not_equal(r->slot, home);
	r = expect_one(fx, &s, TRACE_SLOW_PATH, bit("full"));
	assert_true(r->has & TRACE_HAS_CONTAINER); /* the home container, found full */

	limit_f2(fx, 1);
	struct pkt_spec by_token = token_spec(FIXTURE_F2, 0, &fx->tokens[home]);

	expect_one(fx, &by_token, TRACE_FORWARD, bit("token_hit"));
	by_token.src_port = next_port++;
	expect_one(fx, &by_token, TRACE_FORWARD, bit("token_overflow") | bit("flow_pick"));
	trace_off(fx);
	limit_f2(fx, 0);
}

/* A datagram for the completion address with these flags. */
static struct pkt_spec completion_spec(__u64 function_id, __u8 flags)
{
	struct pkt_spec s;

	pkt_spec_default(&s, 4);
	s.src_port = next_port++;
	s.dst_port = COMPLETION_PORT;
	s.hdr.function_id = function_id;
	s.hdr.flags = flags;
	s.payload_len = TETHER_DONE_PAYLOAD_LEN;
	return s;
}

static void test_alive_and_completion_bad(void **state)
{
	struct fixture *fx = *state;
	struct pkt_spec alive = completion_spec(FIXTURE_BACKEND_LOCAL, TETHER_F_ALIVE | TETHER_F_STAMPED);
	struct pkt_spec bad = completion_spec(FIXTURE_F1, TETHER_F_DONE); /* no STAMPED */
	__u8 vip[16];

	assert_int_equal(pkt_v4mapped(vip, PKT_TEST_VIP4), 0);
	assert_int_equal(service_add_completion(&fx->dp, vip, COMPLETION_PORT), 0);
	trace_on(fx, 0, 0, 0, 0);
	const struct trace_record *r = expect_one(fx, &alive, TRACE_ALIVE, bit("alive_forged"));

	assert_true(r->has & TRACE_HAS_BACKEND);
	assert_int_equal(r->backend_id, FIXTURE_BACKEND_LOCAL);
	expect_one(fx, &bad, TRACE_COMPLETION_BAD, bit("completion_bad"));
	trace_off(fx);
	assert_int_equal(service_del(&fx->dp, vip, COMPLETION_PORT), 0);
}

static void test_full(void **state)
{
	struct fixture *fx = *state;

	for (__u32 slot = FIXTURE_F2_FIRST_SLOT; slot < FIXTURE_F2_FIRST_SLOT + 2; slot++) {
		assert_int_equal(container_load_reset(&fx->dp, slot), 0);
		assert_int_equal(container_set_limit(&fx->dp, slot, 1), 0);
	}
	trace_on(fx, 0, 0, 0, 0);
	struct pkt_spec s = spec(FIXTURE_F2, 0, 0);
	const struct trace_record *r;
	int forwarded = 0, full = 0;

	/* Two containers with room for one each: two go, the third finds all full. */
	for (int i = 0; i < 3; i++) {
		s.src_port = next_port++;
		assert_int_equal(run(fx, &s), 1);
		r = &seen[0];
		if (r->decision == TRACE_FORWARD)
			forwarded++;
		if (r->decision == TRACE_SLOW_PATH && (r->reasons & bit("full")))
			full++;
	}
	assert_int_equal(forwarded, 2);
	assert_int_equal(full, 1);
	trace_off(fx);
	for (__u32 slot = FIXTURE_F2_FIRST_SLOT; slot < FIXTURE_F2_FIRST_SLOT + 2; slot++) {
		assert_int_equal(container_set_limit(&fx->dp, slot, 0), 0);
		assert_int_equal(container_load_reset(&fx->dp, slot), 0);
	}
}

static void test_malformed_says_which_check(void **state)
{
	struct fixture *fx = *state;
	struct pkt_spec s;
	const struct trace_record *r;

	trace_on(fx, 0, 0, 0, 0);
	s = spec(FIXTURE_F1, 0, 0);
	s.hdr.magic = 0x4142;
	r = expect_one(fx, &s, TRACE_MALFORMED, bit("malformed"));
	assert_string_equal(trace_malformed_name(r->malformed), "magic");

	s = spec(FIXTURE_F1, 0, 0);
	s.hdr.version = 9;
	r = expect_one(fx, &s, TRACE_MALFORMED, bit("malformed"));
	assert_string_equal(trace_malformed_name(r->malformed), "version");

	s = spec(FIXTURE_F1, TETHER_F_DONE, 0);
	r = expect_one(fx, &s, TRACE_MALFORMED, bit("malformed"));
	assert_string_equal(trace_malformed_name(r->malformed), "flags");

	s = spec(FIXTURE_F1, 0, 0);
	s.hdr.status = 1;
	r = expect_one(fx, &s, TRACE_MALFORMED, bit("malformed"));
	assert_string_equal(trace_malformed_name(r->malformed), "status");

	s = spec(FIXTURE_F1, 0, 0);
	s.hdr.reserved[1] = 1;
	r = expect_one(fx, &s, TRACE_MALFORMED, bit("malformed"));
	assert_string_equal(trace_malformed_name(r->malformed), "reserved");

	s = spec(0, 0, 0);
	r = expect_one(fx, &s, TRACE_MALFORMED, bit("malformed"));
	assert_string_equal(trace_malformed_name(r->malformed), "function");

	/* Cut inside the IPv4 header; inside a VLAN tag. */
	s = spec(FIXTURE_F1, 0, 0);
	assert_int_equal(run_cut(fx, &s, 14 + 10), 1);
	assert_int_equal(seen[0].decision, TRACE_MALFORMED);
	assert_string_equal(trace_malformed_name(seen[0].malformed), "ip");
	s.vlan_count = 1;
	s.vlan_tci[0] = 5;
	assert_int_equal(run_cut(fx, &s, 14 + 2), 1);
	assert_int_equal(seen[0].decision, TRACE_MALFORMED);
	assert_string_equal(trace_malformed_name(seen[0].malformed), "ethernet");

	s = spec(FIXTURE_F1, 0, 0);
	s.no_tether = 1; /* 16 bytes of payload: shorter than the header */
	r = expect_one(fx, &s, TRACE_MALFORMED, bit("malformed"));
	assert_string_equal(trace_malformed_name(r->malformed), "length");
	trace_off(fx);
}

static void test_fragment(void **state)
{
	struct fixture *fx = *state;
	struct pkt_spec s = spec(FIXTURE_F1, 0, 0);

	s.family = 6;
	pkt_spec_default(&s, 6);
	s.hdr.function_id = FIXTURE_F1;
	s.ipv6_ext_count = 1;
	s.ipv6_ext[0] = (struct pkt_ipv6_ext){ .type = 44, .frag = 1 };
	trace_on(fx, 0, 0, 0, 0);
	expect_one(fx, &s, TRACE_FRAGMENT, bit("fragment"));
	trace_off(fx);
}

static void test_done_forged(void **state)
{
	struct fixture *fx = *state;
	struct pkt_spec s = token_spec(FIXTURE_F1, 0, &fx->tokens[12]);
	__u8 vip[16];

	pkt_spec_default(&s, 4);
	memcpy(s.hdr.token, &fx->tokens[12], 16);
	s.hdr.function_id = FIXTURE_F1;
	s.hdr.flags = TETHER_F_DONE | TETHER_F_STAMPED;
	s.dst_port = COMPLETION_PORT;
	s.payload_len = TETHER_DONE_PAYLOAD_LEN;
	assert_int_equal(pkt_v4mapped(vip, PKT_TEST_VIP4), 0);
	assert_int_equal(service_add_completion(&fx->dp, vip, COMPLETION_PORT), 0);
	trace_on(fx, 0, 0, 0, 0);
	/* From lo, not container 12's backend's interface: not taken. */
	const struct trace_record *r = expect_one(fx, &s, TRACE_DONE, bit("done_forged"));

	assert_true(r->has & TRACE_HAS_TOKEN);
	assert_int_equal(r->token_slot, 12);
	trace_off(fx);
	assert_int_equal(service_del(&fx->dp, vip, COMPLETION_PORT), 0);
}

static void test_filters(void **state)
{
	struct fixture *fx = *state;
	struct pkt_spec f1 = spec(FIXTURE_F1, TETHER_F_KEY, 77), f2 = spec(FIXTURE_F2, 0, 0);
	struct pkt_spec other_key = spec(FIXTURE_F1, TETHER_F_KEY, 78);
	struct pkt_spec no_key = spec(FIXTURE_F1, 0, 0);

	trace_on(fx, TRACE_FILTER_FUNCTION, FIXTURE_F2, 0, 0);
	assert_int_equal(run(fx, &f1), 0);
	assert_int_equal(run(fx, &f2), 1);

	trace_on(fx, TRACE_FILTER_KEY, 0, 77, 0);
	assert_int_equal(run(fx, &f1), 1);
	assert_int_equal(run(fx, &other_key), 0);
	assert_int_equal(run(fx, &no_key), 0);
	assert_int_equal(run(fx, &f2), 0);

	struct pkt_spec to_12 = token_spec(FIXTURE_F1, 0, &fx->tokens[12]);
	struct pkt_spec to_13 = token_spec(FIXTURE_F1, 0, &fx->tokens[13]);

	trace_on(fx, TRACE_FILTER_CONTAINER, 0, 0, 13);
	assert_int_equal(run(fx, &to_12), 0);
	assert_int_equal(run(fx, &to_13), 1);
	assert_int_equal(seen[0].slot, 13);

	trace_on(fx, TRACE_FILTER_FUNCTION | TRACE_FILTER_KEY, FIXTURE_F2, 77, 0);
	assert_int_equal(run(fx, &f1), 0);
	trace_off(fx);
}

static int setup(void **state)
{
	fixture_cmocka_setup(state);
	struct fixture *fx = *state;

	ring = ring_buffer__new(trace_ring_fd(&fx->dp), on_record, NULL, NULL);
	return ring ? 0 : -1;
}

static int teardown(void **state)
{
	ring_buffer__free(ring);
	return fixture_cmocka_teardown(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nothing_written_while_off),
		cmocka_unit_test(test_the_record_names_client_interface_and_container),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_slow_path_and_shed),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_shed_dropped),
		cmocka_unit_test(test_overflows),
		cmocka_unit_test(test_alive_and_completion_bad),
		cmocka_unit_test(test_malformed_says_which_check),
		cmocka_unit_test(test_fragment),
		cmocka_unit_test(test_done_forged),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_nothing_written_while_off),
	};

	fixture_enter_netns();
	return cmocka_run_group_tests(tests, setup, teardown);
}
