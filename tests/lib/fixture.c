// SPDX-License-Identifier: MIT
#include "fixture.h"

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tether/hash.h"

const __u8 fixture_local_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x01, 0x01 };
const __u8 fixture_remote_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x02, 0x02 };

static void check(int err, const char *what)
{
	if (err) {
		fprintf(stderr, "fixture: %s failed: %d\n", what, err);
		abort();
	}
}

void fixture_enter_netns(void)
{
	harness_enter_private_netns();
}

__u32 fixture_backend_of(__u32 slot)
{
	if (slot == 12 || slot == 13)
		return FIXTURE_BACKEND_REMOTE;
	return FIXTURE_BACKEND_LOCAL;
}

static void add_services(struct fixture *fx)
{
	__u8 vip[16];

	pkt_v4mapped(vip, PKT_TEST_VIP4);
	check(service_add(&fx->dp, vip, PKT_TEST_VIP_PORT, 1), "service_add v4");
	pkt_addr6(vip, PKT_TEST_VIP6);
	check(service_add(&fx->dp, vip, PKT_TEST_VIP_PORT, 2), "service_add v6");
}

static void add_backends(struct fixture *fx)
{
	struct backend_record local = { .state = BACKEND_UP, .ifindex = fx->lo_ifindex };
	struct backend_record remote = { .state = BACKEND_UP, .ifindex = fx->tx0_ifindex };

	memcpy(local.mac, fixture_local_mac, 6);
	memcpy(remote.mac, fixture_remote_mac, 6);
	check(backend_set(&fx->dp, FIXTURE_BACKEND_LOCAL, &local), "backend_set local");
	check(backend_set(&fx->dp, FIXTURE_BACKEND_REMOTE, &remote), "backend_set remote");
}

void fixture_set_backend_vlan(struct fixture *fx, __u32 backend_id, __u16 vid)
{
	struct backend_record record;

	check(backend_get(&fx->dp, backend_id, &record), "backend_get");
	record.vlan = vid;
	check(backend_set(&fx->dp, backend_id, &record), "backend_set with a VLAN");
}

static void add_containers(struct fixture *fx, __u64 function_id, __u32 first, __u32 count)
{
	for (__u32 slot = first; slot < first + count; slot++)
		check(container_install(&fx->dp, slot, function_id, fixture_backend_of(slot),
					CONTAINER_WARM, &fx->tokens[slot]),
		      "container_install");
	fixture_rebuild_pool(fx, function_id);
}

void fixture_rebuild_pool(struct fixture *fx, __u64 function_id)
{
	__u32 first = function_id == FIXTURE_F1 ? FIXTURE_F1_FIRST_SLOT : FIXTURE_F2_FIRST_SLOT;
	__u32 count = function_id == FIXTURE_F1 ? FIXTURE_F1_CONTAINERS : FIXTURE_F2_CONTAINERS;
	struct maglev_member members[8];
	size_t n = 0;

	for (__u32 slot = first; slot < first + count; slot++) {
		struct container_record record;

		if (container_get(&fx->dp, slot, &record) == 0 && record.state == CONTAINER_WARM)
			members[n++] = (struct maglev_member){ .id = slot, .slot = slot };
	}
	check(pool_replace(&fx->dp, function_id, members, n), "pool_replace");
}

void fixture_setup(struct fixture *fx)
{
	memset(fx, 0, sizeof(*fx));
	fx->lo_ifindex = harness_ifindex("lo");
	fx->tx0_ifindex = harness_ifindex("tx0");
	check(dataplane_open(&fx->dp, NULL), "dataplane_open");
	add_services(fx);
	add_backends(fx);
	add_containers(fx, FIXTURE_F1, FIXTURE_F1_FIRST_SLOT, FIXTURE_F1_CONTAINERS);
	add_containers(fx, FIXTURE_F2, FIXTURE_F2_FIRST_SLOT, FIXTURE_F2_CONTAINERS);
}

void fixture_teardown(struct fixture *fx)
{
	dataplane_close(&fx->dp);
}

static struct fixture the_fixture;

int fixture_cmocka_setup(void **state)
{
	fixture_setup(&the_fixture);
	*state = &the_fixture;
	return 0;
}

int fixture_cmocka_teardown(void **state)
{
	fixture_teardown(*state);
	return 0;
}

void fixture_run(struct fixture *fx, const __u8 *frame, size_t len, struct xdp_result *result,
		 struct tether_stats *delta)
{
	struct tether_stats before, after;

	check(stats_read(&fx->dp, &before), "stats_read");
	check(harness_run(&fx->dp, frame, len, fx->lo_ifindex, result), "harness_run");
	check(stats_read(&fx->dp, &after), "stats_read");
	stats_delta(&before, &after, delta);
}

long fixture_stamped_slot(const struct xdp_result *result)
{
	struct pkt_tether hdr;
	__u32 slot;

	if (pkt_tether_read(result->frame, result->len, &hdr) ||
	    !(hdr.flags & TETHER_F_STAMPED))
		return -1;
	memcpy(&slot, hdr.token, 4);
	return ntohl(slot);
}

int fixture_takes_new_work(struct fixture *fx, __u32 slot, __u64 function_id)
{
	struct container_record c;
	struct backend_record b;

	if (container_get(&fx->dp, slot, &c) || c.state != CONTAINER_WARM ||
	    c.function_id != function_id || backend_get(&fx->dp, c.backend_id, &b) ||
	    b.state != BACKEND_UP)
		return 0;
	return b.heartbeat_expiry_ns == 0 || monotonic_ns() < b.heartbeat_expiry_ns;
}

#define FIXTURE_POOL_CAP 4096

long fixture_model_pick(struct fixture *fx, __u64 function_id, __u64 hash)
{
	static __u32 table[FIXTURE_POOL_CAP];
	__u32 size = 0;

	if (pool_read(&fx->dp, function_id, table, FIXTURE_POOL_CAP, &size) || size == 0 ||
	    size > FIXTURE_POOL_CAP)
		return -1;
	__u32 index = tether_pool_index(hash, size);

	for (int probe = 0; probe < TETHER_POOL_PROBES; probe++) {
		if (fixture_takes_new_work(fx, table[index - 1], function_id))
			return table[index - 1];
		index = index >= size ? 1 : index + 1;
	}
	return -1;
}

static void map_text_addr(int family, const char *text, __u8 out[16])
{
	if (family == 4)
		pkt_v4mapped(out, text);
	else
		pkt_addr6(out, text);
}

static void default_flow_addrs(int family, __u8 src[16], __u8 dst[16])
{
	map_text_addr(family, family == 4 ? PKT_TEST_CLIENT4 : PKT_TEST_CLIENT6, src);
	map_text_addr(family, family == 4 ? PKT_TEST_VIP4 : PKT_TEST_VIP6, dst);
}

__u64 fixture_flow_hash(int family, __u16 src_port)
{
	__u8 src[16], dst[16];

	default_flow_addrs(family, src, dst);
	return tether_hash_flow(src, dst, htons(src_port), htons(PKT_TEST_VIP_PORT));
}

__u64 fixture_flow_spread(int family, __u16 src_port)
{
	__u8 src[16], dst[16];

	default_flow_addrs(family, src, dst);
	return tether_spread_flow(src, dst, htons(src_port), htons(PKT_TEST_VIP_PORT));
}

void fixture_expect_output(const char *name, const char *what, const struct xdp_result *result,
			   const __u8 *want, size_t len)
{
	if (result->len != len)
		fail_msg("[%s] %s is %u bytes, want %zu", name, what, result->len, len);
	long at = pkt_first_diff(result->frame, result->len, want, len);

	if (at >= 0) {
		fprintf(stderr, "[%s] output:\n", name);
		pkt_hexdump(stderr, result->frame, result->len);
		fprintf(stderr, "[%s] expected:\n", name);
		pkt_hexdump(stderr, want, len);
		fail_msg("[%s] %s differs from the expected bytes at offset %ld", name, what, at);
	}
}
