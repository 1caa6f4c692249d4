// SPDX-License-Identifier: MIT
/* The slow path (user/tetherd/slowpath.h) with real sockets in the test's
 * private network namespace, IPv4 and IPv6:
 *
 *   - the service socket's VIP becomes local on lo, so a client socket in the
 *     namespace reaches it directly (no XDP program here: the test writes the
 *     reason into the status byte as hand_to_slow_path would);
 *   - STRICT failures (reason 2) are answered CONTAINER_GONE at once;
 *   - reason 1 with no warm container is held, announced by one
 *     capacity_needed event (and then at most one per 100 ms), and answered
 *     NO_CAPACITY when the (fake) clock passes hold_ms;
 *   - a held request goes to the first container that turns warm (added warm
 *     or brought up), as an Ethernet frame on tx0 that the test captures on
 *     tx1 and compares byte for byte with the frame pktgen builds: MACs, the
 *     backend's VLAN tag or none, client -> VIP, ports, TTL, STAMPED, the
 *     container's token, checksums (checked again with pktgen's own
 *     checker), the payload;
 *   - a container that came up since takes a request at once, and a request
 *     no XDP program saw (status 0) follows token, affinity and the pool
 *     table as the fast path would;
 *   - full queues answer OVERLOADED, exactly queue_per_function are held;
 *   - malformed requests are answered MALFORMED, non-Tether datagrams and
 *     replies dropped and counted, never answered;
 *   - slowpath_free answers what is still held and takes its VIP off lo. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dataplane/dataplane.h"
#include "lifecycle.h"
#include "pktgen.h"
#include "slowpath.h"
#include "tether/hash.h"
#include "tether_xdp.skel.h"
#include "core/core.h"
#include "xdp_harness.h"

#define NS_PER_MS 1000000ULL
#define F1 PKT_TEST_FUNCTION_ID
#define F2 0x2002ULL
#define HOLD_MS 1000
#define PER_FUNCTION 4
#define TOTAL 6
#define WAIT_MS 2000   /* for what must arrive */
#define QUIET_MS 100   /* for what must not */
#define BACKEND "vm1"

static const __u8 backend_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x0b, 0x01 };
/* A second backend on tx0, on a trunk: VLAN TRUNK_VID. */
#define TRUNK "vm-trunk"
#define TRUNK_VID 100
static const __u8 trunk_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x0b, 0x64 };

struct world {
	int family;
	struct dataplane dp;
	struct lifecycle lc;
	struct slowpath *sp;
	int service_fd, client_fd, capture_fd;
	__u8 vip[16];    /* map form: v4-mapped for IPv4 */
	__u8 client[16];
	__u8 tx0_mac[6];
	GPtrArray *events;
};

static struct world world; /* the lifecycle holds every backend: off the stack */
static __u64 fake_now;
static const int family4 = 4, family6 = 6;
static __u8 frame_buf[PKT_MAX_FRAME];
static __u8 captured[PKT_MAX_FRAME];
static __u8 expected[PKT_MAX_FRAME];

/* ---- the world ------------------------------------------------------------ */

static __u64 fake_clock(void *ctx)
{
	(void)ctx;
	return fake_now;
}

static void on_event(void *ctx, const char *line)
{
	struct world *w = ctx;

	g_ptr_array_add(w->events, g_strdup(line));
}

static void on_container_warm(void *ctx, __u32 slot, __u64 function_id)
{
	struct world *w = ctx;

	if (w->sp)
		slowpath_container_warm(w->sp, slot, function_id);
}

static socklen_t sockaddr_of(const __u8 addr[16], __u16 port, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (addr_is_v4mapped(addr)) {
		struct sockaddr_in *sin = (struct sockaddr_in *)out;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, addr + 12, 4);
		return sizeof(*sin);
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	memcpy(&sin6->sin6_addr, addr, 16);
	return sizeof(*sin6);
}

/* The client: its own address on lo, the test's client port. */
static int open_client(const __u8 addr[16])
{
	struct sockaddr_storage local;
	socklen_t len = sockaddr_of(addr, PKT_TEST_CLIENT_PORT, &local);
	int fd = socket(local.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(vip_make_local(addr) >= 0);
	if (bind(fd, (struct sockaddr *)&local, len))
		fail_msg("binding the client socket: %s", strerror(errno));
	return fd;
}

/* Sees every frame that arrives on tx1, the peer of the backend's tx0. The
 * receive path takes a VLAN tag out of the frame before a packet socket sees
 * it; PACKET_AUXDATA hands it over, and capture_within puts it back. */
static int open_capture(void)
{
	struct sockaddr_ll where = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
		.sll_ifindex = (int)harness_ifindex("tx1"),
	};
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	int on = 1;

	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &on, sizeof(on)), 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&where, sizeof(where)), 0);
	return fd;
}

/* One captured frame as it was on the wire, its VLAN tag put back where the
 * receive path took it from; -1 when none comes within timeout_ms. */
static ssize_t receive_frame_within(int fd, __u8 *buf, size_t size, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	union {
		struct cmsghdr align;
		char bytes[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = size - 4 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
			      .msg_controllen = sizeof(control) };

	if (poll(&pfd, 1, timeout_ms) <= 0)
		return -1;
	ssize_t len = recvmsg(fd, &msg, MSG_DONTWAIT);

	if (len < 12)
		return len;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		struct tpacket_auxdata aux;

		if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA)
			continue;
		memcpy(&aux, CMSG_DATA(c), sizeof(aux));
		if (!(aux.tp_status & TP_STATUS_VLAN_VALID))
			continue;
		__u16 tpid = aux.tp_status & TP_STATUS_VLAN_TPID_VALID ? aux.tp_vlan_tpid
								      : ETH_P_8021Q;
		__u8 tag[4] = { tpid >> 8, tpid & 0xff, aux.tp_vlan_tci >> 8,
				aux.tp_vlan_tci & 0xff };

		memmove(buf + 16, buf + 12, (size_t)len - 12);
		memcpy(buf + 12, tag, 4);
		len += 4;
	}
	return len;
}

static void start_slowpath(struct world *w)
{
	struct slowpath_config config = {
		.hold_ms = HOLD_MS,
		.queue_per_function = PER_FUNCTION,
		.queue_total = TOTAL,
	};

	w->sp = slowpath_new(&w->lc, &config);
	assert_non_null(w->sp);
	w->service_fd = slowpath_add_service(w->sp, w->vip, PKT_TEST_VIP_PORT);
	if (w->service_fd < 0)
		fail_msg("slowpath_add_service: %s", strerror(-w->service_fd));
}

static int setup(void **state)
{
	struct world *w = &world;
	__u8 backend_addr[16];
	__u32 backend_id;

	w->family = *(const int *)*state;
	*state = w;
	fake_now = 1000 * 1000 * NS_PER_MS;
	if (w->family == 4) {
		pkt_v4mapped(w->vip, PKT_TEST_VIP4);
		pkt_v4mapped(w->client, PKT_TEST_CLIENT4);
		pkt_v4mapped(backend_addr, "10.9.0.2");
	} else {
		pkt_addr6(w->vip, PKT_TEST_VIP6);
		pkt_addr6(w->client, PKT_TEST_CLIENT6);
		pkt_addr6(backend_addr, "2001:db8:9::2");
	}
	w->events = g_ptr_array_new_with_free_func(g_free);
	assert_int_equal(dataplane_open(&w->dp, NULL), 0);

	struct lifecycle_config config = {
		.heartbeat_ms = 600000,
		.drain_ms = 1000,
		.now_ns = fake_clock,
		.observer = { .event = on_event, .container_warm = on_container_warm, .ctx = w },
	};

	assert_int_equal(lifecycle_init(&w->lc, &w->dp, &config), 0);
	if (lc_backend_add(&w->lc, BACKEND, backend_addr, backend_mac, "tx0", 0, 600000,
			   &backend_id))
		fail_msg("lc_backend_add: %s", lifecycle_error(&w->lc));
	assert_int_equal(interface_mac("tx0", w->tx0_mac), 0);
	start_slowpath(w);
	w->client_fd = open_client(w->client);
	w->capture_fd = open_capture();
	g_ptr_array_set_size(w->events, 0);
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;

	slowpath_free(w->sp);
	w->sp = NULL;
	close(w->client_fd);
	close(w->capture_fd);
	lifecycle_free(&w->lc);
	dataplane_close(&w->dp);
	g_ptr_array_free(w->events, TRUE);
	return 0;
}

/* ---- requests and answers ------------------------------------------------- */

/* A valid request of this test's family, client -> VIP. */
static void request_spec(const struct world *w, struct pkt_spec *s, __u64 function_id,
			 __u8 reason, __u64 request_id)
{
	pkt_spec_default(s, w->family);
	s->hdr.function_id = function_id;
	s->hdr.status = reason;
	s->hdr.request_id = request_id;
	s->payload_seed = (__u8)request_id;
}

static void send_datagram(struct world *w, const __u8 *data, size_t len)
{
	struct sockaddr_storage to;
	socklen_t to_len = sockaddr_of(w->vip, PKT_TEST_VIP_PORT, &to);

	if (sendto(w->client_fd, data, len, 0, (struct sockaddr *)&to, to_len) != (ssize_t)len)
		fail_msg("client sendto: %s", strerror(errno));
}

/* The UDP payload pktgen builds for the spec, sent from the client. */
static void send_spec(struct world *w, const struct pkt_spec *s)
{
	struct pkt_view v;
	size_t len = pkt_build(s, frame_buf, sizeof(frame_buf));

	assert_true(len > 0);
	assert_int_equal(pkt_parse(frame_buf, len, &v), 0);
	send_datagram(w, frame_buf + v.payload_off, (size_t)v.payload_len);
}

static struct slowpath_stats stats_now(const struct world *w)
{
	struct slowpath_stats stats;

	slowpath_stats(w->sp, &stats);
	return stats;
}

/* Lets the slow path read until it has received `total` datagrams. */
static void pump(struct world *w, __u64 total)
{
	for (int waited = 0; stats_now(w).received < total; waited += 10) {
		struct pollfd pfd = { .fd = w->service_fd, .events = POLLIN };

		if (waited > WAIT_MS)
			fail_msg("the service socket received %llu datagrams, not %llu",
				 (unsigned long long)stats_now(w).received,
				 (unsigned long long)total);
		if (poll(&pfd, 1, 10) > 0)
			slowpath_readable(w->sp, w->service_fd);
	}
}

static void send_and_pump(struct world *w, const struct pkt_spec *s)
{
	__u64 before = stats_now(w).received;

	send_spec(w, s);
	pump(w, before + 1);
}

static ssize_t receive_within(int fd, __u8 *buf, size_t size, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (poll(&pfd, 1, timeout_ms) <= 0)
		return -1;
	return recv(fd, buf, size, MSG_DONTWAIT);
}

/* The client's next datagram is an answer to request_id with status. */
static void expect_answer(struct world *w, __u8 status, __u64 request_id,
			  const struct pkt_spec *request)
{
	__u8 buf[256];
	ssize_t len = receive_within(w->client_fd, buf, sizeof(buf), WAIT_MS);
	struct tether_hdr reply;

	if (len < 0)
		fail_msg("no answer (expected status %u for request %llu)", status,
			 (unsigned long long)request_id);
	/* No amplification: an answer (to a source that may be spoofed) is
	 * never larger than the request's UDP payload. */
	if ((size_t)len > TETHER_HDR_LEN + request->payload_len)
		fail_msg("the answer (%zd bytes) is larger than its request (%zu bytes)", len,
			 TETHER_HDR_LEN + request->payload_len);
	assert_int_equal(len, TETHER_HDR_LEN);
	memcpy(&reply, buf, sizeof(reply));
	assert_int_equal(ntohs(reply.magic), TETHER_MAGIC);
	assert_int_equal(reply.version, request->hdr_raw ? request->hdr.version : TETHER_VERSION);
	assert_int_equal(reply.flags, request->hdr.flags | TETHER_F_REPLY);
	assert_int_equal(reply.status, status);
	assert_int_equal(reply.reserved[0] | reply.reserved[1] | reply.reserved[2], 0);
	assert_int_equal(be64toh(reply.request_id), request_id);
	assert_int_equal(be64toh(reply.function_id), request->hdr.function_id);
	assert_int_equal(be64toh(reply.routing_key), request->hdr.routing_key);
	assert_memory_equal(&reply.container_token, request->hdr.token, 16);
}

static void expect_no_answer(struct world *w)
{
	__u8 buf[256];
	ssize_t len = receive_within(w->client_fd, buf, sizeof(buf), QUIET_MS);

	if (len >= 0)
		fail_msg("unexpected answer of %zd bytes, status %u", len,
			 len > 4 ? buf[4] : 0);
}

/* ---- forwarded frames ----------------------------------------------------- */

static bool is_tether_to_vip(const struct world *w, const __u8 *frame, size_t len)
{
	struct pkt_view v;

	if (pkt_parse(frame, len, &v) || v.family != w->family || v.l4_proto != 17 ||
	    v.l4_off < 0 || v.tether_off < 0)
		return false;
	return (frame[v.l4_off + 2] << 8 | frame[v.l4_off + 3]) == PKT_TEST_VIP_PORT;
}

/* The next Tether frame to the VIP on tx1 (the link's own chatter skipped);
 * its length, or -1 when none comes within timeout_ms. */
static ssize_t capture_within(struct world *w, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 10) {
		ssize_t len = receive_frame_within(w->capture_fd, captured, sizeof(captured), 10);

		if (len > 0 && is_tether_to_vip(w, captured, (size_t)len))
			return len;
	}
	return -1;
}

/* The frame the fast path would send for the request: Ethernet to the
 * backend from tx0 with the backend's VLAN tag (vid, PCP 0) or none (0), TTL
 * 64, the container's token stamped, status 0. */
static size_t expected_frame(const struct world *w, const struct pkt_spec *request,
			     const struct tether_token *token, const __u8 mac[6], __u16 vid)
{
	struct pkt_spec s = *request;

	memcpy(s.dst_mac, mac, 6);
	memcpy(s.src_mac, w->tx0_mac, 6);
	s.vlan_count = vid ? 1 : 0;
	s.vlan_tci[0] = vid;
	s.qinq = 0;
	s.ttl = 64;
	s.tos = 0;
	s.ip_id = 0;
	s.ipv4_frag = 0x4000;
	s.hdr.flags |= TETHER_F_STAMPED;
	s.hdr.status = TETHER_STATUS_OK;
	memcpy(s.hdr.token, token, 16);
	size_t len = pkt_build(&s, expected, sizeof(expected));

	assert_true(len > 0);
	return len;
}

/* Forwarded to the container of token on backend mac, tagged vid (0: not). */
static void expect_forwarded_to(struct world *w, const struct pkt_spec *request,
				const struct tether_token *token, const __u8 mac[6], __u16 vid)
{
	ssize_t len = capture_within(w, WAIT_MS);

	if (len < 0)
		fail_msg("no frame for request %llu on tx1",
			 (unsigned long long)request->hdr.request_id);
	size_t want_len = expected_frame(w, request, token, mac, vid);
	long diff = pkt_first_diff(captured, (size_t)len, expected, want_len);

	if (diff >= 0) {
		fprintf(stderr, "captured:\n");
		pkt_hexdump(stderr, captured, (size_t)len);
		fprintf(stderr, "expected:\n");
		pkt_hexdump(stderr, expected, want_len);
		fail_msg("forwarded frame differs at byte %ld", diff);
	}
	/* Checked again with pktgen's checker, independent of the builder. */
	assert_true(pkt_udp_csum_valid(captured, (size_t)len));
	assert_int_not_equal(pkt_udp_csum_compute(captured, (size_t)len), 0);
	if (w->family == 4)
		assert_true(pkt_ipv4_csum_valid(captured, (size_t)len));

	struct pkt_tether hdr;

	assert_int_equal(pkt_tether_read(captured, (size_t)len, &hdr), 0);
	assert_true(hdr.flags & TETHER_F_STAMPED);
	assert_memory_equal(hdr.token, token, 16);
	assert_int_equal(hdr.request_id, request->hdr.request_id);

	struct pkt_view v;

	assert_int_equal(pkt_parse(captured, (size_t)len, &v), 0);
	assert_int_equal(v.vlan_count, vid ? 1 : 0);
	if (vid) {
		assert_int_equal(v.vlan_tpid[0], ETH_P_8021Q);
		assert_int_equal(v.vlan_tci[0], vid);
	}
}

/* Forwarded to the world's untagged backend. */
static void expect_forwarded(struct world *w, const struct pkt_spec *request,
			     const struct tether_token *token)
{
	expect_forwarded_to(w, request, token, backend_mac, 0);
}

static void expect_nothing_forwarded(struct world *w)
{
	if (capture_within(w, QUIET_MS) >= 0)
		fail_msg("a frame was forwarded that should not have been");
}

/* ---- events --------------------------------------------------------------- */

static unsigned count_events(const struct world *w, const char *prefix)
{
	unsigned n = 0;

	for (guint i = 0; i < w->events->len; i++)
		if (g_str_has_prefix(g_ptr_array_index(w->events, i), prefix))
			n++;
	return n;
}

static const char *last_event(const struct world *w, const char *prefix)
{
	for (guint i = w->events->len; i > 0; i--)
		if (g_str_has_prefix(g_ptr_array_index(w->events, i - 1), prefix))
			return g_ptr_array_index(w->events, i - 1);
	return "";
}

static void expect_capacity_event(const struct world *w, __u64 function_id, unsigned waiting)
{
	char line[128];

	snprintf(line, sizeof(line), "event=capacity_needed function=%llu waiting=%u",
		 (unsigned long long)function_id, waiting);
	assert_string_equal(last_event(w, "event=capacity_needed"), line);
}

static void add_container(struct world *w, __u64 function_id, const char *name,
			  enum container_state state, __u32 *slot, struct tether_token *token)
{
	if (lc_container_add(&w->lc, function_id, BACKEND, name, state, slot, token))
		fail_msg("lc_container_add: %s", lifecycle_error(&w->lc));
}

/* ---- the cases ------------------------------------------------------------ */

static void test_strict_gone_answered_at_once(void **state)
{
	struct world *w = *state;
	struct pkt_spec s;

	request_spec(w, &s, F1, TETHER_STATUS_CONTAINER_GONE, 77);
	s.hdr.flags = TETHER_F_TOKEN | TETHER_F_STRICT | TETHER_F_KEY;
	s.hdr.routing_key = 0xabcdef;
	pkt_token(s.hdr.token, 123, 4, 0x1122334455667788ULL);
	send_and_pump(w, &s);
	expect_answer(w, TETHER_STATUS_CONTAINER_GONE, 77, &s);
	expect_no_answer(w); /* one answer per request: no amplification */
	assert_int_equal(slowpath_waiting(w->sp, 0), 0);
	assert_int_equal(stats_now(w).container_gone, 1);
	assert_int_equal(stats_now(w).held, 0);
	assert_int_equal(count_events(w, "event=capacity_needed"), 0);
	expect_nothing_forwarded(w);
}

static void test_held_then_no_capacity(void **state)
{
	struct world *w = *state;
	struct pkt_spec first, second;

	request_spec(w, &first, F1, TETHER_STATUS_NO_CAPACITY, 5);
	send_and_pump(w, &first);
	assert_int_equal(slowpath_waiting(w->sp, F1), 1);
	assert_int_equal(slowpath_waiting(w->sp, 0), 1);
	assert_int_equal(count_events(w, "event=capacity_needed"), 1);
	expect_capacity_event(w, F1, 1);
	expect_no_answer(w);

	fake_now += 500 * NS_PER_MS;
	request_spec(w, &second, F1, TETHER_STATUS_NO_CAPACITY, 6);
	send_and_pump(w, &second);
	assert_int_equal(slowpath_waiting(w->sp, F1), 2);

	/* The first has waited just under hold_ms: still held. */
	fake_now += (HOLD_MS - 500) * NS_PER_MS - 1;
	slowpath_tick(w->sp);
	assert_int_equal(slowpath_waiting(w->sp, F1), 2);
	expect_no_answer(w);

	fake_now += 1;
	slowpath_tick(w->sp);
	expect_answer(w, TETHER_STATUS_NO_CAPACITY, 5, &first);
	assert_int_equal(slowpath_waiting(w->sp, F1), 1);

	fake_now += 500 * NS_PER_MS;
	slowpath_tick(w->sp);
	expect_answer(w, TETHER_STATUS_NO_CAPACITY, 6, &second);
	assert_int_equal(slowpath_waiting(w->sp, 0), 0);

	struct slowpath_stats stats = stats_now(w);

	assert_int_equal(stats.received, 2);
	assert_int_equal(stats.held, 2);
	assert_int_equal(stats.no_capacity, 2);
	assert_int_equal(stats.forwarded, 0);
	expect_nothing_forwarded(w);
}

static void test_held_then_container_added_warm(void **state)
{
	struct world *w = *state;
	struct pkt_spec s;
	struct tether_token token;
	__u32 slot;

	request_spec(w, &s, F1, TETHER_STATUS_NO_CAPACITY, 42);
	s.hdr.flags = TETHER_F_KEY;
	s.hdr.routing_key = 99;
	s.payload_len = 300;
	s.payload_seed = 7;
	send_and_pump(w, &s);
	assert_int_equal(slowpath_waiting(w->sp, F1), 1);

	add_container(w, F1, "c1", CONTAINER_WARM, &slot, &token);
	expect_forwarded(w, &s, &token);
	assert_int_equal(slowpath_waiting(w->sp, 0), 0);
	assert_int_equal(stats_now(w).forwarded, 1);
	expect_no_answer(w);

	/* The key's next requests follow it on the fast path. */
	struct affinity_key key = { F1, 99 };
	struct affinity_value value;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(w->dp.skel->maps.affinity), &key,
					     &value), 0);
	assert_int_equal(value.slot, slot);
	assert_int_equal(value.generation, ntohl(token.generation));

	/* Nothing is left to answer when the hold time passes. */
	fake_now += 2 * HOLD_MS * NS_PER_MS;
	slowpath_tick(w->sp);
	expect_no_answer(w);
}

static void test_held_then_container_up(void **state)
{
	struct world *w = *state;
	struct pkt_spec first, second;
	struct tether_token token;
	__u32 slot;

	request_spec(w, &first, F1, TETHER_STATUS_NO_CAPACITY, 1);
	send_and_pump(w, &first);
	request_spec(w, &second, F1, TETHER_STATUS_NO_CAPACITY, 2);
	second.hdr.flags = TETHER_F_TOKEN; /* a stale token, not STRICT */
	pkt_token(second.hdr.token, 999, 1, 42);
	send_and_pump(w, &second);

	/* A starting container takes nothing, even when announced as warm. */
	add_container(w, F1, "c1", CONTAINER_STARTING, &slot, &token);
	slowpath_container_warm(w->sp, slot, F1);
	assert_int_equal(slowpath_waiting(w->sp, F1), 2);
	expect_nothing_forwarded(w);

	/* Nor a warm container of another function. */
	struct tether_token other_token;
	__u32 other;

	add_container(w, F2, "c2", CONTAINER_WARM, &other, &other_token);
	slowpath_container_warm(w->sp, other, F1);
	assert_int_equal(slowpath_waiting(w->sp, F1), 2);
	expect_nothing_forwarded(w);

	if (lc_container_up(&w->lc, slot))
		fail_msg("lc_container_up: %s", lifecycle_error(&w->lc));
	expect_forwarded(w, &first, &token); /* oldest first */
	expect_forwarded(w, &second, &token);
	assert_int_equal(slowpath_waiting(w->sp, 0), 0);
	assert_int_equal(stats_now(w).forwarded, 2);
}

/* Held requests for a container on a backend on a trunk leave with its VLAN
 * tag (PCP 0), as the fast path sends them; the untagged backend's still
 * leave untagged. */
static void test_held_forwarded_with_backend_vlan(void **state)
{
	struct world *w = *state;
	__u8 trunk_addr[16];
	__u32 trunk_id, slot, plain_slot;
	struct tether_token token, plain_token;
	struct pkt_spec first, second, third;

	if (w->family == 4)
		pkt_v4mapped(trunk_addr, "10.9.0.3");
	else
		pkt_addr6(trunk_addr, "2001:db8:9::3");
	if (lc_backend_add(&w->lc, TRUNK, trunk_addr, trunk_mac, "tx0", TRUNK_VID, 600000,
			   &trunk_id))
		fail_msg("lc_backend_add: %s", lifecycle_error(&w->lc));
	g_ptr_array_set_size(w->events, 0);

	request_spec(w, &first, F1, TETHER_STATUS_NO_CAPACITY, 71);
	first.hdr.flags = TETHER_F_KEY;
	first.hdr.routing_key = 7100;
	first.payload_len = 211;
	send_and_pump(w, &first);
	request_spec(w, &second, F1, TETHER_STATUS_NO_CAPACITY, 72);
	send_and_pump(w, &second);
	assert_int_equal(slowpath_waiting(w->sp, F1), 2);

	if (lc_container_add(&w->lc, F1, TRUNK, "t1", CONTAINER_WARM, &slot, &token))
		fail_msg("lc_container_add: %s", lifecycle_error(&w->lc));
	expect_forwarded_to(w, &first, &token, trunk_mac, TRUNK_VID);
	expect_forwarded_to(w, &second, &token, trunk_mac, TRUNK_VID);
	assert_int_equal(stats_now(w).forwarded, 2);
	assert_int_equal(stats_now(w).send_errors, 0);
	expect_no_answer(w);

	/* The untagged backend beside it on the same interface: no tag. */
	request_spec(w, &third, F2, TETHER_STATUS_NO_CAPACITY, 73);
	send_and_pump(w, &third);
	add_container(w, F2, "p1", CONTAINER_WARM, &plain_slot, &plain_token);
	expect_forwarded(w, &third, &plain_token);
	assert_int_equal(stats_now(w).forwarded, 3);
}

/* A container came up between the XDP program's decision and the read. */
static void test_warm_since_forwarded_at_once(void **state)
{
	struct world *w = *state;
	struct pkt_spec s;
	struct tether_token token;
	__u32 slot;

	add_container(w, F1, "c1", CONTAINER_WARM, &slot, &token);
	request_spec(w, &s, F1, TETHER_STATUS_NO_CAPACITY, 8);
	send_and_pump(w, &s);
	expect_forwarded(w, &s, &token);
	assert_int_equal(slowpath_waiting(w->sp, 0), 0);
	assert_int_equal(stats_now(w).held, 0);
	assert_int_equal(count_events(w, "event=capacity_needed"), 0);
	expect_no_answer(w);
}

/* A routed backend's request the XDP program could not send (no route, an
 * unresolved neighbour) comes with NO_CAPACITY: its token still decides. */
static void test_handed_over_keeps_its_token(void **state)
{
	struct world *w = *state;
	struct tether_token tokens[2];
	__u32 slots[2];
	struct pkt_spec s;

	add_container(w, F1, "c1", CONTAINER_WARM, &slots[0], &tokens[0]);
	add_container(w, F1, "c2", CONTAINER_WARM, &slots[1], &tokens[1]);
	assert_int_equal(lifecycle_flush_pools(&w->lc), 0);
	for (int i = 0; i < 2; i++) {
		request_spec(w, &s, F1, TETHER_STATUS_NO_CAPACITY, 20 + i);
		s.hdr.flags = TETHER_F_TOKEN | TETHER_F_STRICT;
		memcpy(s.hdr.token, &tokens[i], 16);
		send_and_pump(w, &s);
		expect_forwarded(w, &s, &tokens[i]);
	}
	assert_int_equal(stats_now(w).forwarded, 2);
}

/* The slot the pool table puts the hash on (the fast path's pick). */
static __u32 table_pick(struct world *w, __u64 function_id, __u64 hash)
{
	static __u32 table[1 << 16];
	__u32 size;

	assert_int_equal(pool_read(&w->dp, function_id, table, 1 << 16, &size), 0);
	assert_true(size > 0);
	return table[tether_pool_index(hash, size) - 1];
}

/* Status 0: no XDP program saw it; the slow path applies the rules. */
static void test_unrouted_follows_the_rules(void **state)
{
	struct world *w = *state;
	struct tether_token tokens[2];
	__u32 slots[2];
	struct pkt_spec s;

	add_container(w, F1, "c1", CONTAINER_WARM, &slots[0], &tokens[0]);
	add_container(w, F1, "c2", CONTAINER_WARM, &slots[1], &tokens[1]);
	assert_int_equal(lifecycle_flush_pools(&w->lc), 0);

	/* Rule 1: the token names the container. */
	for (int i = 0; i < 2; i++) {
		request_spec(w, &s, F1, TETHER_STATUS_OK, 10 + i);
		s.hdr.flags = TETHER_F_TOKEN;
		memcpy(s.hdr.token, &tokens[i], 16);
		send_and_pump(w, &s);
		expect_forwarded(w, &s, &tokens[i]);
	}

	/* A forged token with STRICT: CONTAINER_GONE. */
	request_spec(w, &s, F1, TETHER_STATUS_OK, 12);
	s.hdr.flags = TETHER_F_TOKEN | TETHER_F_STRICT;
	memcpy(s.hdr.token, &tokens[0], 16);
	s.hdr.token[15] ^= 1;
	send_and_pump(w, &s);
	expect_answer(w, TETHER_STATUS_CONTAINER_GONE, 12, &s);

	/* Rule 2: the key's pick is the pool table's. */
	__u64 key = 4242;
	__u32 pick = table_pick(w, F1, tether_hash_key(F1, key));

	request_spec(w, &s, F1, TETHER_STATUS_OK, 13);
	s.hdr.flags = TETHER_F_KEY;
	s.hdr.routing_key = key;
	send_and_pump(w, &s);
	expect_forwarded(w, &s, &tokens[pick == slots[0] ? 0 : 1]);

	/* Rule 3: the flow's pick is the pool table's. */
	pick = table_pick(w, F1, tether_hash_flow(w->client, w->vip, htons(PKT_TEST_CLIENT_PORT),
						  htons(PKT_TEST_VIP_PORT)));
	request_spec(w, &s, F1, TETHER_STATUS_OK, 14);
	send_and_pump(w, &s);
	expect_forwarded(w, &s, &tokens[pick == slots[0] ? 0 : 1]);

	/* No warm container of the function: held, as with reason 1. */
	request_spec(w, &s, F2, TETHER_STATUS_OK, 15);
	send_and_pump(w, &s);
	assert_int_equal(slowpath_waiting(w->sp, F2), 1);
	assert_int_equal(stats_now(w).forwarded, 4);
}

static void test_queue_full_overloaded(void **state)
{
	struct world *w = *state;
	struct pkt_spec specs[PER_FUNCTION + 2];

	for (int i = 0; i < PER_FUNCTION + 2; i++) {
		request_spec(w, &specs[i], F1, TETHER_STATUS_NO_CAPACITY, 100 + i);
		send_and_pump(w, &specs[i]);
	}
	assert_int_equal(slowpath_waiting(w->sp, F1), PER_FUNCTION);
	expect_answer(w, TETHER_STATUS_OVERLOADED, 100 + PER_FUNCTION, &specs[PER_FUNCTION]);
	expect_answer(w, TETHER_STATUS_OVERLOADED, 101 + PER_FUNCTION, &specs[PER_FUNCTION + 1]);
	expect_no_answer(w);
	/* All held at the same instant: one event. */
	assert_int_equal(count_events(w, "event=capacity_needed"), 1);

	/* The total bound: F2 gets what is left of it. */
	struct pkt_spec f2[TOTAL - PER_FUNCTION + 1];

	for (int i = 0; i < TOTAL - PER_FUNCTION + 1; i++) {
		request_spec(w, &f2[i], F2, TETHER_STATUS_NO_CAPACITY, 200 + i);
		send_and_pump(w, &f2[i]);
	}
	assert_int_equal(slowpath_waiting(w->sp, F2), TOTAL - PER_FUNCTION);
	assert_int_equal(slowpath_waiting(w->sp, 0), TOTAL);
	expect_answer(w, TETHER_STATUS_OVERLOADED, 200 + TOTAL - PER_FUNCTION,
		      &f2[TOTAL - PER_FUNCTION]);
	expect_no_answer(w);
	assert_int_equal(stats_now(w).overloaded, 3);
	assert_int_equal(stats_now(w).held, TOTAL);

	/* The held ones all get their answer at the end of the hold time. */
	fake_now += HOLD_MS * NS_PER_MS;
	slowpath_tick(w->sp);
	for (int i = 0; i < TOTAL; i++) {
		__u8 buf[64];

		assert_int_equal(receive_within(w->client_fd, buf, sizeof(buf), WAIT_MS),
				 TETHER_HDR_LEN);
		assert_int_equal(buf[4], TETHER_STATUS_NO_CAPACITY);
	}
	assert_int_equal(slowpath_waiting(w->sp, 0), 0);
}

static void test_capacity_events_rate_limited(void **state)
{
	struct world *w = *state;
	struct pkt_spec s;

	request_spec(w, &s, F1, TETHER_STATUS_NO_CAPACITY, 1);
	send_and_pump(w, &s);
	expect_capacity_event(w, F1, 1);
	request_spec(w, &s, F1, TETHER_STATUS_NO_CAPACITY, 2);
	send_and_pump(w, &s);
	fake_now += 99 * NS_PER_MS;
	request_spec(w, &s, F1, TETHER_STATUS_NO_CAPACITY, 3);
	send_and_pump(w, &s);
	assert_int_equal(count_events(w, "event=capacity_needed"), 1);

	fake_now += 1 * NS_PER_MS;
	request_spec(w, &s, F1, TETHER_STATUS_NO_CAPACITY, 4);
	send_and_pump(w, &s);
	assert_int_equal(count_events(w, "event=capacity_needed"), 2);
	expect_capacity_event(w, F1, 4);

	/* Another function asks for itself at once. */
	request_spec(w, &s, F2, TETHER_STATUS_NO_CAPACITY, 5);
	send_and_pump(w, &s);
	assert_int_equal(count_events(w, "event=capacity_needed"), 3);
	expect_capacity_event(w, F2, 1);
	assert_int_equal(stats_now(w).capacity_requests, 3);
}

/* Requests that still wait remind the orchestrator every 500 ms, with no
 * new request: an agent that missed the first event (reconnecting) hears. */
static void test_capacity_reminded_while_waiting(void **state)
{
	struct world *w = *state;
	struct pkt_spec s;

	request_spec(w, &s, F1, TETHER_STATUS_NO_CAPACITY, 1);
	send_and_pump(w, &s);
	assert_int_equal(count_events(w, "event=capacity_needed"), 1);
	fake_now += 500 * NS_PER_MS - 1;
	slowpath_tick(w->sp);
	assert_int_equal(count_events(w, "event=capacity_needed"), 1);
	fake_now += 1;
	slowpath_tick(w->sp);
	assert_int_equal(count_events(w, "event=capacity_needed"), 2);
	expect_capacity_event(w, F1, 1);
	slowpath_tick(w->sp); /* not again at once */
	assert_int_equal(count_events(w, "event=capacity_needed"), 2);
	assert_int_equal(stats_now(w).capacity_requests, 2);
	/* Answered at hold_ms: nothing waits, nothing more is asked. */
	fake_now += HOLD_MS * NS_PER_MS;
	slowpath_tick(w->sp);
	expect_answer(w, TETHER_STATUS_NO_CAPACITY, 1, &s);
	fake_now += 500 * NS_PER_MS;
	slowpath_tick(w->sp);
	assert_int_equal(count_events(w, "event=capacity_needed"), 2);
}

struct malformed_case {
	const char *name;
	void (*edit)(struct pkt_spec *s);
	bool answered; /* MALFORMED; else dropped */
};

static void bad_version(struct pkt_spec *s) { s->hdr_raw = 1; s->hdr.version = 2; }
static void stamped_flag(struct pkt_spec *s) { s->hdr.flags = TETHER_F_STAMPED; }
static void reserved_flag(struct pkt_spec *s) { s->hdr.flags = TETHER_F_KEY | 0x08; }
static void reserved_byte(struct pkt_spec *s) { s->hdr.reserved[1] = 1; }
static void function_zero(struct pkt_spec *s) { s->hdr.function_id = 0; }
static void unknown_status(struct pkt_spec *s) { s->hdr.status = TETHER_STATUS_MALFORMED; }
static void too_large(struct pkt_spec *s)
{
	s->payload_len = SLOWPATH_MAX_DATAGRAM + 1 - TETHER_HDR_LEN;
}
static void wrong_magic(struct pkt_spec *s) { s->hdr_raw = 1; s->hdr.magic = 0x5446; }
static void short_datagram(struct pkt_spec *s) { s->no_tether = 1; s->payload_len = 47; }
static void reply_flag(struct pkt_spec *s) { s->hdr.flags = TETHER_F_REPLY; }

static const struct malformed_case malformed_cases[] = {
	{ "version 2", bad_version, true },
	{ "STAMPED from a client", stamped_flag, true },
	{ "reserved flag 0x08", reserved_flag, true },
	{ "reserved byte", reserved_byte, true },
	{ "function 0", function_zero, true },
	{ "status 3", unknown_status, true },
	{ "larger than SLOWPATH_MAX_DATAGRAM", too_large, true },
	{ "wrong magic", wrong_magic, false },
	{ "47 bytes", short_datagram, false },
	{ "a reply (never answered: no ping-pong)", reply_flag, false },
};

static void test_malformed(void **state)
{
	struct world *w = *state;
	size_t n = sizeof(malformed_cases) / sizeof(malformed_cases[0]);

	for (size_t i = 0; i < n; i++) {
		struct pkt_spec s;

		request_spec(w, &s, F1, TETHER_STATUS_NO_CAPACITY, 300 + i);
		s.hdr.magic = TETHER_MAGIC;
		s.hdr.version = TETHER_VERSION;
		malformed_cases[i].edit(&s);
		send_and_pump(w, &s);
		fprintf(stderr, "[ malformed ] %s\n", malformed_cases[i].name);
		if (malformed_cases[i].answered)
			expect_answer(w, TETHER_STATUS_MALFORMED, 300 + i, &s);
		else
			expect_no_answer(w);
		assert_int_equal(stats_now(w).malformed, i + 1);
	}
	assert_int_equal(slowpath_waiting(w->sp, 0), 0);
	assert_int_equal(stats_now(w).held, 0);
	expect_no_answer(w); /* one answer per request at most */

	/* The largest request the slow path takes is held, not malformed. */
	struct pkt_spec largest;

	request_spec(w, &largest, F1, TETHER_STATUS_NO_CAPACITY, 400);
	largest.payload_len = SLOWPATH_MAX_DATAGRAM - TETHER_HDR_LEN;
	send_and_pump(w, &largest);
	assert_int_equal(slowpath_waiting(w->sp, F1), 1);
}

/* A held request too large for the backend's link (tx0's MTU is 1500) is
 * answered, counted, never silently lost. */
static void test_forward_refused_answered(void **state)
{
	struct world *w = *state;
	struct pkt_spec s;
	struct tether_token token;
	__u32 slot;

	request_spec(w, &s, F1, TETHER_STATUS_NO_CAPACITY, 500);
	s.payload_len = 4000;
	send_and_pump(w, &s);
	assert_int_equal(slowpath_waiting(w->sp, F1), 1);
	add_container(w, F1, "c1", CONTAINER_WARM, &slot, &token);
	expect_answer(w, TETHER_STATUS_MALFORMED, 500, &s);
	assert_int_equal(stats_now(w).send_errors, 1);
	assert_int_equal(stats_now(w).forwarded, 0);
	assert_int_equal(slowpath_waiting(w->sp, 0), 0);
	expect_nothing_forwarded(w);
}

static bool address_is_local(const __u8 addr[16])
{
	struct sockaddr_storage local;
	socklen_t len = sockaddr_of(addr, 0, &local);
	int fd = socket(local.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int bound = bind(fd, (struct sockaddr *)&local, len);

	close(fd);
	return bound == 0;
}

static void test_free_answers_and_removes_vip(void **state)
{
	struct world *w = *state;
	struct pkt_spec s;

	assert_true(address_is_local(w->vip));
	request_spec(w, &s, F1, TETHER_STATUS_NO_CAPACITY, 600);
	send_and_pump(w, &s);
	slowpath_free(w->sp);
	w->sp = NULL;
	expect_answer(w, TETHER_STATUS_NO_CAPACITY, 600, &s);
	assert_false(address_is_local(w->vip));

	/* A new slow path puts it back (teardown frees it again). */
	start_slowpath(w);
	assert_true(address_is_local(w->vip));
}

#define BOTH_FAMILIES(test)                                                                   \
	{ .name = #test " ipv4", .test_func = test, .setup_func = setup,                      \
	  .teardown_func = teardown, .initial_state = (void *)&family4 },                     \
	{ .name = #test " ipv6", .test_func = test, .setup_func = setup,                      \
	  .teardown_func = teardown, .initial_state = (void *)&family6 }

int main(void)
{
	harness_enter_private_netns();

	const struct CMUnitTest tests[] = {
		BOTH_FAMILIES(test_strict_gone_answered_at_once),
		BOTH_FAMILIES(test_held_then_no_capacity),
		BOTH_FAMILIES(test_held_then_container_added_warm),
		BOTH_FAMILIES(test_held_then_container_up),
		BOTH_FAMILIES(test_held_forwarded_with_backend_vlan),
		BOTH_FAMILIES(test_warm_since_forwarded_at_once),
		BOTH_FAMILIES(test_unrouted_follows_the_rules),
		BOTH_FAMILIES(test_handed_over_keeps_its_token),
		BOTH_FAMILIES(test_queue_full_overloaded),
		BOTH_FAMILIES(test_capacity_events_rate_limited),
		BOTH_FAMILIES(test_capacity_reminded_while_waiting),
		BOTH_FAMILIES(test_malformed),
		BOTH_FAMILIES(test_forward_refused_answered),
		BOTH_FAMILIES(test_free_answers_and_removes_vip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
