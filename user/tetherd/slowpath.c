// SPDX-License-Identifier: MIT
/* The slow path (slowpath.h): requests the XDP program handed up the stack.
 *
 * The status byte says why a request is here: CONTAINER_GONE is answered at
 * once; NO_CAPACITY goes to a warm container when one came up since, else
 * waits in its function's queue. A status of 0 means no XDP program saw the
 * request (not attached, or a packet that came another way): the rules the
 * fast path would have applied run here instead -- token, key affinity,
 * then the pool table with the same hashes -- so the pick is the fast path's.
 *
 * Memory is bounded: a held request is one allocation of its datagram (at
 * most SLOWPATH_MAX_DATAGRAM bytes) plus a small header, at most
 * queue_per_function per function, queue_total and SLOWPATH_MAX_HELD_BYTES
 * in all; past any bound the request is answered OVERLOADED.
 *
 * Answers never go to a datagram with REPLY set: two routers answering each
 * other's answers would ping-pong forever. */
#define _GNU_SOURCE
#include "slowpath.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <netinet/in.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tether/hash.h"
#include "tether_xdp.skel.h"
#include "core/core.h"
#include "routed_send.h"

#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull
/* At most one capacity_needed event per function this often. */
#define EVENT_INTERVAL_NS (100 * NS_PER_MS)
/* A function whose requests still wait is asked for again this often, even
 * with no new request: a watcher that missed the first event (an agent
 * reconnecting to a restarted tetherd) hears it within this. */
#define REMIND_INTERVAL_NS (500 * NS_PER_MS)
/* At most one log line about failed forwards this often. */
#define LOG_INTERVAL_NS NS_PER_S
#define RECV_BUFFER (64 * 1024) /* any UDP datagram, whole */
#define SOCKET_RCVBUF (4 << 20) /* absorbs a burst while the loop is busy */
#define VLAN_HLEN 4
#define FRAME_MAX (ETH_HLEN + VLAN_HLEN + sizeof(struct ipv6hdr) + sizeof(struct udphdr) + \
		   SLOWPATH_MAX_DATAGRAM)
#define TTL 64

struct service {
	int fd;
	__u8 addr[16]; /* v4-mapped for IPv4 */
	__u16 port;    /* host order */
	bool added_vip; /* this slow path put addr on lo */
};

/* Where a request came from, as the socket reported it. */
struct client {
	struct sockaddr_storage sockaddr;
	socklen_t sockaddr_len;
	__u8 addr[16]; /* v4-mapped for IPv4 */
	__be16 port;
};

struct request {
	struct service *service;
	struct client client;
	struct tether_hdr hdr; /* an aligned copy of the datagram's header */
	const __u8 *datagram;  /* header and payload, as received */
	size_t len;
};

struct held_request {
	__u64 arrived_ns;
	/* Held because containers were full (the XDP program's OVERLOADED
	 * reason): answered OVERLOADED, not NO_CAPACITY, when the hold ends;
	 * with has_target (STRICT), only that container (slot, generation)
	 * takes it. */
	bool full;
	bool has_target;
	__u32 target, target_generation;
	struct request req; /* req.datagram points at bytes */
	__u8 bytes[];
};

/* The requests of one function waiting for a warm container. */
struct waiting {
	__u64 function_id;
	GQueue requests; /* struct held_request *, oldest first */
	__u64 last_event_ns;
};

struct slowpath {
	struct lifecycle *lc;
	struct slowpath_config config;
	GHashTable *services; /* fd -> struct service */
	GHashTable *waiting;  /* function_id -> struct waiting, only while non-empty */
	__u32 held_total;
	size_t held_bytes;
	int packet_fd; /* AF_PACKET, opened on the first forward; -1 until then */
	struct routed_send routed; /* routed backends' sockets, opened on first use */
	__u64 last_log_ns;
	__u64 unlogged_failures;
	struct slowpath_stats stats;
	__u8 recv_buffer[RECV_BUFFER] __attribute__((aligned(8)));
	__u8 frame[FRAME_MAX] __attribute__((aligned(8)));
};

/* ---- set-up ------------------------------------------------------------- */

static void waiting_free(gpointer data)
{
	struct waiting *waiting = data;

	g_queue_clear_full(&waiting->requests, g_free);
	g_free(waiting);
}

struct slowpath *slowpath_new(struct lifecycle *lc, const struct slowpath_config *config)
{
	struct slowpath *sp = g_try_new0(struct slowpath, 1);

	if (!sp)
		return NULL;
	sp->lc = lc;
	if (config)
		sp->config = *config;
	if (!sp->config.hold_ms)
		sp->config.hold_ms = 1000;
	if (!sp->config.queue_per_function)
		sp->config.queue_per_function = 256;
	if (!sp->config.queue_total)
		sp->config.queue_total = 16384;
	sp->services = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	sp->waiting = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, waiting_free);
	sp->packet_fd = -1;
	routed_send_init(&sp->routed);
	return sp;
}

static void describe(const __u8 addr[16], __u16 port, char *out, size_t size)
{
	char text[INET6_ADDRSTRLEN];

	addr_format(addr, text, sizeof(text));
	snprintf(out, size, addr_is_v4mapped(addr) ? "%s:%u" : "[%s]:%u", text, port);
}

static int set_option(int fd, int level, int name, const char *option_name, const char *where)
{
	int on = 1;

	if (!setsockopt(fd, level, name, &on, sizeof(on)))
		return 0;
	int err = -errno;

	fprintf(stderr, "tetherd: slow path socket on %s: setting %s failed: %s%s\n", where,
		option_name, strerror(-err),
		err == -EPERM ? " (tetherd needs CAP_NET_ADMIN)" : "");
	return err;
}

/* Bound to VIP:port, able to send from the VIP whatever the host's
 * addresses are (FREEBIND to bind, TRANSPARENT to send). */
static int open_service_socket(const __u8 addr[16], __u16 port, const char *where)
{
	bool v4 = addr_is_v4mapped(addr);
	int fd = socket(v4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int err, rcvbuf = SOCKET_RCVBUF;

	if (fd < 0) {
		err = -errno;
		fprintf(stderr, "tetherd: cannot open the slow path socket for %s: %s\n", where,
			strerror(errno));
		return err;
	}
	if (v4)
		err = set_option(fd, IPPROTO_IP, IP_FREEBIND, "IP_FREEBIND", where) ?:
		      set_option(fd, IPPROTO_IP, IP_TRANSPARENT, "IP_TRANSPARENT", where);
	else
		err = set_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY", where) ?:
		      set_option(fd, IPPROTO_IPV6, IPV6_FREEBIND, "IPV6_FREEBIND", where) ?:
		      set_option(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, "IPV6_TRANSPARENT", where);
	if (err)
		goto fail;
	/* Best effort: the kernel caps it at net.core.rmem_max. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));

	struct sockaddr_storage local = {};
	socklen_t local_len;

	if (v4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&local;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, addr + 12, 4);
		local_len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&local;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, addr, 16);
		local_len = sizeof(*sin6);
	}
	if (bind(fd, (struct sockaddr *)&local, local_len)) {
		err = -errno;
		fprintf(stderr, "tetherd: cannot bind the slow path socket to %s: %s%s\n", where,
			strerror(errno),
			errno == EADDRINUSE ? " (another tetherd, or a service listed twice?)" : "");
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return err;
}

int slowpath_add_service(struct slowpath *sp, const __u8 addr[16], __u16 port)
{
	char where[INET6_ADDRSTRLEN + 8];

	describe(addr, port, where, sizeof(where));
	int fd = open_service_socket(addr, port, where);

	if (fd < 0)
		return fd;
	int local = vip_make_local(addr);

	if (local < 0) {
		fprintf(stderr, "tetherd: cannot add the service address of %s to lo: %s; without "
				"it the requests the XDP program hands up never reach tetherd\n",
			where, strerror(-local));
		close(fd);
		return local;
	}
	struct service *service = g_new0(struct service, 1);

	service->fd = fd;
	memcpy(service->addr, addr, 16);
	service->port = port;
	service->added_vip = local == 0;
	g_hash_table_insert(sp->services, GINT_TO_POINTER(fd), service);
	return fd;
}

/* ---- answers ------------------------------------------------------------ */

static void count_answer(struct slowpath *sp, __u8 status)
{
	switch (status) {
	case TETHER_STATUS_NO_CAPACITY: sp->stats.no_capacity++; break;
	case TETHER_STATUS_CONTAINER_GONE: sp->stats.container_gone++; break;
	case TETHER_STATUS_OVERLOADED: sp->stats.overloaded++; break;
	case TETHER_STATUS_TOO_BIG: sp->stats.too_big++; break;
	default: sp->stats.malformed++; break;
	}
}

/* The request's header back to the client, from VIP:port, with REPLY and
 * the status; request_id, function, key and token as received. */
static void answer(struct slowpath *sp, const struct request *req, __u8 status)
{
	struct tether_hdr reply = req->hdr;

	count_answer(sp, status);
	reply.flags |= TETHER_F_REPLY;
	reply.status = status;
	memset(reply.reserved, 0, sizeof(reply.reserved));
	if (sendto(req->service->fd, &reply, sizeof(reply), MSG_DONTWAIT,
		   (const struct sockaddr *)&req->client.sockaddr, req->client.sockaddr_len) < 0)
		sp->stats.send_errors++;
}

/* ---- the frame a backend receives -------------------------------------- */

/* RFC 1071 over bytes in network order, added to sum. */
static __u64 csum_add(__u64 sum, const void *data, size_t len)
{
	const __u8 *bytes = data;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (__u32)bytes[i] << 8 | bytes[i + 1];
	if (i < len)
		sum += (__u32)bytes[i] << 8;
	return sum;
}

static __u16 csum_finish(__u64 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* The IP headers are built aside and copied: after the 14-byte Ethernet
 * header they are not 4-byte aligned, as struct iphdr and ipv6hdr must be. */
static size_t write_ipv4(__u8 *at, const struct request *req, size_t udp_len)
{
	struct iphdr ip = {
		.version = 4,
		.ihl = 5,
		.tot_len = htons(sizeof(ip) + udp_len),
		.frag_off = htons(0x4000), /* DF, as the client's stack sets it */
		.ttl = TTL,
		.protocol = IPPROTO_UDP,
	};

	memcpy(&ip.saddr, req->client.addr + 12, 4);
	memcpy(&ip.daddr, req->service->addr + 12, 4);
	ip.check = htons(csum_finish(csum_add(0, &ip, sizeof(ip))));
	memcpy(at, &ip, sizeof(ip));
	return sizeof(ip);
}

static size_t write_ipv6(__u8 *at, const struct request *req, size_t udp_len)
{
	struct ipv6hdr ip6 = {
		.version = 6,
		.payload_len = htons(udp_len),
		.nexthdr = IPPROTO_UDP,
		.hop_limit = TTL,
	};

	memcpy(&ip6.saddr, req->client.addr, 16);
	memcpy(&ip6.daddr, req->service->addr, 16);
	memcpy(at, &ip6, sizeof(ip6));
	return sizeof(ip6);
}

/* The header as the fast path stamps it (bpf/forward.h stamp_token): the
 * container's token, STAMPED, and status 0 (the XDP program's reason is
 * ours, not the backend's). */
static void stamp(__u8 *at, const struct request *req, __u32 slot,
		  const struct container_record *container)
{
	struct tether_hdr hdr = req->hdr;

	hdr.flags |= TETHER_F_STAMPED;
	hdr.status = TETHER_STATUS_OK;
	container_token(slot, container, &hdr.container_token);
	memcpy(at, &hdr, sizeof(hdr));
}

static __u16 udp_checksum(const struct request *req, const __u8 *udp, size_t udp_len)
{
	bool v4 = addr_is_v4mapped(req->service->addr);
	__be16 pseudo[2] = { htons(IPPROTO_UDP), htons(udp_len) };
	__u64 sum = 0;

	sum = csum_add(sum, v4 ? req->client.addr + 12 : req->client.addr, v4 ? 4 : 16);
	sum = csum_add(sum, v4 ? req->service->addr + 12 : req->service->addr, v4 ? 4 : 16);
	sum = csum_add(sum, pseudo, sizeof(pseudo));
	__u16 check = csum_finish(csum_add(sum, udp, udp_len));

	return check ? check : 0xffff; /* 0 means "no checksum" */
}

/* The Ethernet header with the backend's own tagging, as the fast path
 * sends it (bpf/forward.h retag_for_backend): one 802.1Q tag with its VID,
 * PCP and DEI 0, when it has a VLAN, else none. (Whatever tags the client's
 * frame had, the socket that received the request never saw them.) Returns
 * its length. */
static size_t write_ethernet(__u8 *frame, const struct backend_record *backend, bool v4)
{
	__be16 l3_proto = htons(v4 ? ETH_P_IP : ETH_P_IPV6);
	size_t offset = 2 * ETH_ALEN;

	memcpy(frame, backend->mac, ETH_ALEN);
	memcpy(frame + ETH_ALEN, backend->src_mac, ETH_ALEN);
	if (backend->vlan) {
		__be16 tag[2] = { htons(ETH_P_8021Q), htons(backend->vlan) };

		memcpy(frame + offset, tag, sizeof(tag));
		offset += VLAN_HLEN;
	}
	memcpy(frame + offset, &l3_proto, sizeof(l3_proto));
	return offset + sizeof(l3_proto);
}

/* Ethernet, IP, UDP and the stamped request; returns the frame's length. */
static size_t build_frame(__u8 *frame, const struct request *req, __u32 slot,
			  const struct container_record *container,
			  const struct backend_record *backend)
{
	bool v4 = addr_is_v4mapped(req->service->addr);
	size_t udp_len = sizeof(struct udphdr) + req->len;
	size_t offset = write_ethernet(frame, backend, v4);

	offset += v4 ? write_ipv4(frame + offset, req, udp_len)
		     : write_ipv6(frame + offset, req, udp_len);

	struct udphdr *udp = (struct udphdr *)(frame + offset);

	udp->source = req->client.port;
	udp->dest = htons(req->service->port);
	udp->len = htons(udp_len);
	udp->check = 0;
	memcpy(frame + offset + sizeof(*udp), req->datagram, req->len);
	stamp(frame + offset + sizeof(*udp), req, slot, container);
	udp->check = htons(udp_checksum(req, (const __u8 *)udp, udp_len));
	return offset + udp_len;
}

static int send_frame(struct slowpath *sp, const struct backend_record *backend,
		      const __u8 *frame, size_t len)
{
	if (sp->packet_fd < 0) {
		/* Protocol 0: a socket that only sends, never receives. */
		sp->packet_fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (sp->packet_fd < 0)
			return -errno;
	}
	struct sockaddr_ll to = {
		.sll_family = AF_PACKET,
		.sll_ifindex = (int)backend->ifindex,
		.sll_protocol = ((const struct ethhdr *)frame)->h_proto,
		.sll_halen = ETH_ALEN,
	};

	memcpy(to.sll_addr, backend->mac, ETH_ALEN);
	if (sendto(sp->packet_fd, frame, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -errno;
	return 0;
}

/* A routed backend: through the kernel, which routes and resolves. */
static int send_routed(struct slowpath *sp, const struct backend_record *backend, size_t len)
{
	struct encap_config sources = {};
	int err = encap_config_get(sp->lc->dp, &sources);

	return err ? err : routed_send(&sp->routed, &sources, backend, sp->frame, len, ETH_HLEN, 0);
}

static void log_forward_failure(struct slowpath *sp, __u32 backend_id, __u32 ifindex, int err)
{
	__u64 now = lifecycle_now(sp->lc);
	char more[64] = "";

	if (sp->last_log_ns && now - sp->last_log_ns < LOG_INTERVAL_NS) {
		sp->unlogged_failures++;
		return;
	}
	if (sp->unlogged_failures)
		snprintf(more, sizeof(more), "; %llu more since the last message",
			 (unsigned long long)sp->unlogged_failures);
	fprintf(stderr, "tetherd: slow path: cannot send a request to backend %u on interface "
			"%u: %s%s; the client was answered (send_errors in `tetherctl stats` "
			"counts these%s)\n",
		backend_id, ifindex, strerror(-err),
		err == -EMSGSIZE ? " (the request is larger than the interface's MTU)" : "", more);
	sp->last_log_ns = now;
	sp->unlogged_failures = 0;
}

/* A KEY request teaches the affinity map, as on the fast path, so the key's
 * next requests follow it there. A failed update only costs a re-home. */
static void remember_affinity(struct slowpath *sp, const struct request *req, __u32 slot,
			      const struct container_record *container)
{
	if (!(req->hdr.flags & TETHER_F_KEY))
		return;
	struct affinity_key key = {
		.function_id = be64toh(req->hdr.function_id),
		.routing_key = be64toh(req->hdr.routing_key),
	};
	struct affinity_value value = { .slot = slot, .generation = container->generation };

	bpf_map_update_elem(bpf_map__fd(sp->lc->dp->skel->maps.affinity), &key, &value, BPF_ANY);
}

/* Sends the request to the container at slot. A request that cannot leave
 * is answered: MALFORMED when it is too large for the backend's link (a retry
 * cannot help), OVERLOADED otherwise (it may). */
static bool forward(struct slowpath *sp, const struct request *req, __u32 slot)
{
	const struct container_record *container = &sp->lc->containers[slot];
	struct backend_record backend = {};
	/* Room is reserved as the XDP program reserves it (bpf/load.h). */
	int room = container_take_room(sp->lc->dp, slot, container->limit);

	if (room == 0)
		return false;
	/* The map's record, not the mirror: backend_set fills src_mac there. */
	int err = room < 0 ? room : backend_get(sp->lc->dp, container->backend_id, &backend);

	if (!err) {
		size_t len = build_frame(sp->frame, req, slot, container, &backend);

		err = backend.encap == BACKEND_L2 ? send_frame(sp, &backend, sp->frame, len)
						  : send_routed(sp, &backend, len);
	}
	if (err) {
		if (room > 0)
			container_give_back(sp->lc->dp, slot);
		sp->stats.send_errors++;
		log_forward_failure(sp, container->backend_id, backend.ifindex, err);
		answer(sp, req, err != -EMSGSIZE		? TETHER_STATUS_OVERLOADED
				: backend.encap == BACKEND_L2 ? TETHER_STATUS_MALFORMED
							      : TETHER_STATUS_TOO_BIG);
		return true;
	}
	sp->stats.forwarded++;
	remember_affinity(sp, req, slot, container);
	return true;
}

/* ---- choosing a container ---------------------------------------------- */

static bool backend_takes_work(const struct lifecycle *lc, __u32 backend_id, __u64 now,
			       bool new_work)
{
	if (backend_id >= TETHER_MAX_BACKENDS || !lc->backends[backend_id].in_use)
		return false;
	const struct backend *backend = &lc->backends[backend_id];

	if (backend->record.heartbeat_expiry_ns && now >= backend->record.heartbeat_expiry_ns)
		return false;
	if (backend->record.state == BACKEND_UP)
		return true;
	return !new_work && backend->record.state == BACKEND_DRAINING;
}

/* bpf/routing.h choose_container, on the controller's mirror. */
static bool takes_work(const struct lifecycle *lc, __u32 slot, __u32 generation,
		       __u64 function_id, __u64 now, bool new_work)
{
	if (slot >= TETHER_MAX_CONTAINERS)
		return false;
	const struct container_record *container = &lc->containers[slot];

	if (container->state == CONTAINER_FREE || container->generation != generation ||
	    container->function_id != function_id)
		return false;
	bool container_ok = container->state == CONTAINER_WARM ||
			    (!new_work && container->state == CONTAINER_DRAINING &&
			     now < container->drain_deadline_ns);

	return container_ok && backend_takes_work(lc, container->backend_id, now, new_work);
}

static bool in_pool(const struct lifecycle *lc, __u32 slot, __u64 function_id)
{
	return slot < TETHER_MAX_CONTAINERS && lc->containers[slot].function_id == function_id &&
	       lc_container_in_pool(lc, &lc->containers[slot]);
}

/* The table the lifecycle kept, else one opened by its id (that needs
 * CAP_SYS_ADMIN, which tetherd has dropped: then -1). *opened: close it. */
static int table_fd(struct slowpath *sp, __u64 function_id, bool *opened)
{
	struct function *function = lc_function(sp->lc, function_id);
	__u32 table_id;

	*opened = false;
	if (function && function->table_fd >= 0)
		return function->table_fd;
	if (bpf_map_lookup_elem(bpf_map__fd(sp->lc->dp->skel->maps.pools), &function_id,
				&table_id))
		return -1;
	int fd = bpf_map_get_fd_by_id(table_id);

	*opened = fd >= 0;
	return fd;
}

/* The fast path's pick: the function's table in the data plane, the entry
 * the hash falls on and the next few. */
static bool pick_from_table(struct slowpath *sp, __u64 function_id, __u64 hash, __u32 *slot)
{
	__u32 size, size_index = TETHER_POOL_SIZE_INDEX;
	bool found = false, opened;
	int fd = table_fd(sp, function_id, &opened);

	if (fd < 0)
		return false;
	if (!bpf_map_lookup_elem(fd, &size_index, &size) && size) {
		__u32 index = tether_pool_index(hash, size);

		for (int probe = 0; probe < TETHER_POOL_PROBES && !found; probe++) {
			found = !bpf_map_lookup_elem(fd, &index, slot) &&
				in_pool(sp->lc, *slot, function_id);
			index = index >= size ? 1 : index + 1;
		}
	}
	if (opened)
		close(fd);
	return found;
}

/* The table is rebuilt after each batch of lifecycle changes; until then
 * a container that just turned warm is not in it: take the lowest warm slot. */
static bool pick_any_warm(struct slowpath *sp, __u64 function_id, __u32 *slot)
{
	struct function *function = lc_function(sp->lc, function_id);
	GHashTableIter iter;
	gpointer key;
	bool found = false;

	if (!function)
		return false;
	g_hash_table_iter_init(&iter, function->slots);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		__u32 candidate = GPOINTER_TO_UINT(key) - 1;

		if (in_pool(sp->lc, candidate, function_id) && (!found || candidate < *slot)) {
			*slot = candidate;
			found = true;
		}
	}
	return found;
}

/* Any warm container of the function that takes the request now (room
 * reserved and the request sent): the lowest slot first. */
static bool forward_to_any_with_room(struct slowpath *sp, const struct request *req)
{
	__u64 function_id = be64toh(req->hdr.function_id);
	struct function *function = lc_function(sp->lc, function_id);
	GHashTableIter iter;
	gpointer key;

	if (!function)
		return false;
	g_hash_table_iter_init(&iter, function->slots);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		__u32 candidate = GPOINTER_TO_UINT(key) - 1;

		if (in_pool(sp->lc, candidate, function_id) && forward(sp, req, candidate))
			return true;
	}
	return false;
}

/* Rules 2 and 3's hash: of the key, else of the flow. */
static __u64 placement_hash(const struct request *req)
{
	__u64 function_id = be64toh(req->hdr.function_id);

	if (req->hdr.flags & TETHER_F_KEY)
		return tether_hash_key(function_id, be64toh(req->hdr.routing_key));
	return tether_hash_flow(req->client.addr, req->service->addr, req->client.port,
				htons(req->service->port));
}

static bool pick_warm(struct slowpath *sp, const struct request *req, __u32 *slot)
{
	__u64 function_id = be64toh(req->hdr.function_id);

	return pick_from_table(sp, function_id, placement_hash(req), slot) ||
	       pick_any_warm(sp, function_id, slot);
}

enum decision {
	DECIDE_FORWARD, /* to *slot */
	DECIDE_GONE,    /* answer CONTAINER_GONE */
	DECIDE_NONE,    /* no container takes it now */
};

/* Rules 1 and 2 before the pool, for requests no XDP program saw. */
static enum decision by_token_or_key(struct slowpath *sp, const struct request *req, __u64 now,
				     __u32 *slot)
{
	const struct tether_hdr *hdr = &req->hdr;
	__u64 function_id = be64toh(hdr->function_id);
	bool strict = hdr->flags & TETHER_F_STRICT;

	if (hdr->flags & TETHER_F_TOKEN) {
		__u32 token_slot = ntohl(hdr->container_token.slot);

		if (token_slot < TETHER_MAX_CONTAINERS &&
		    sp->lc->containers[token_slot].secret == hdr->container_token.secret &&
		    takes_work(sp->lc, token_slot, ntohl(hdr->container_token.generation),
			       function_id, now, false)) {
			*slot = token_slot;
			return DECIDE_FORWARD;
		}
		if (strict)
			return DECIDE_GONE;
	}
	if (hdr->flags & TETHER_F_KEY) {
		struct affinity_key key = { function_id, be64toh(hdr->routing_key) };
		struct affinity_value known;

		if (!bpf_map_lookup_elem(bpf_map__fd(sp->lc->dp->skel->maps.affinity), &key,
					 &known)) {
			if (takes_work(sp->lc, known.slot, known.generation, function_id, now,
				       false)) {
				*slot = known.slot;
				return DECIDE_FORWARD;
			}
			if (strict)
				return DECIDE_GONE;
		}
	}
	return DECIDE_NONE;
}

/* NO_CAPACITY too: the XDP program hands over with it not only a request
 * for a function without warm containers but also one whose routed backend
 * it could not reach (no route, an unresolved neighbour): that request's
 * token or key still names its container, which the kernel's routing here
 * may reach. */
static enum decision decide(struct slowpath *sp, const struct request *req, __u32 *slot)
{
	if (req->hdr.status == TETHER_STATUS_OK || req->hdr.status == TETHER_STATUS_NO_CAPACITY) {
		enum decision early = by_token_or_key(sp, req, lifecycle_now(sp->lc), slot);

		if (early != DECIDE_NONE)
			return early;
	}
	return pick_warm(sp, req, slot) ? DECIDE_FORWARD : DECIDE_NONE;
}

/* ---- holding ------------------------------------------------------------ */

static struct waiting *waiting_for(struct slowpath *sp, __u64 function_id)
{
	return g_hash_table_lookup(sp->waiting, &function_id);
}

static void emit_capacity_needed(struct slowpath *sp, struct waiting *waiting, __u64 now)
{
	const struct lifecycle_observer *observer = &sp->lc->config.observer;
	char line[128];

	waiting->last_event_ns = now;
	sp->stats.capacity_requests++;
	if (!observer->event)
		return;
	snprintf(line, sizeof(line), "event=capacity_needed function=%llu waiting=%u",
		 (unsigned long long)waiting->function_id, waiting->requests.length);
	observer->event(observer->ctx, line);
}

static bool has_room(const struct slowpath *sp, const struct waiting *waiting, size_t len)
{
	return (!waiting || waiting->requests.length < sp->config.queue_per_function) &&
	       sp->held_total < sp->config.queue_total &&
	       sp->held_bytes + len <= SLOWPATH_MAX_HELD_BYTES;
}

static void hold_for(struct slowpath *sp, const struct request *req, bool full,
		     bool has_target, __u32 target);

static void hold(struct slowpath *sp, const struct request *req)
{
	hold_for(sp, req, false, false, 0);
}

static void hold_for(struct slowpath *sp, const struct request *req, bool full,
		     bool has_target, __u32 target)
{
	__u64 function_id = be64toh(req->hdr.function_id);
	struct waiting *waiting = waiting_for(sp, function_id);
	__u64 now = lifecycle_now(sp->lc);

	if (!has_room(sp, waiting, req->len)) {
		answer(sp, req, TETHER_STATUS_OVERLOADED);
		return;
	}
	if (!waiting) {
		waiting = g_new0(struct waiting, 1);
		waiting->function_id = function_id;
		g_queue_init(&waiting->requests);
		g_hash_table_insert(sp->waiting, &waiting->function_id, waiting);
	}
	struct held_request *held = g_malloc(sizeof(*held) + req->len);

	held->arrived_ns = now;
	held->full = full;
	held->has_target = has_target;
	held->target = target;
	held->target_generation = has_target ? sp->lc->containers[target].generation : 0;
	held->req = *req;
	memcpy(held->bytes, req->datagram, req->len);
	held->req.datagram = held->bytes;
	g_queue_push_tail(&waiting->requests, held);
	sp->held_total++;
	sp->held_bytes += req->len;
	sp->stats.held++;
	/* The first request of an episode asks at once; later ones remind the
	 * orchestrator at a bounded rate. */
	if (waiting->requests.length == 1 || now - waiting->last_event_ns >= EVENT_INTERVAL_NS)
		emit_capacity_needed(sp, waiting, now);
}

static struct held_request *take_oldest(struct slowpath *sp, struct waiting *waiting)
{
	struct held_request *held = g_queue_pop_head(&waiting->requests);

	if (held) {
		sp->held_total--;
		sp->held_bytes -= held->req.len;
	}
	return held;
}

/* ---- requests ----------------------------------------------------------- */

enum datagram_kind {
	DATAGRAM_REQUEST,
	DATAGRAM_MALFORMED, /* a Tether header, but not a valid request: answered */
	DATAGRAM_FOREIGN,   /* no Tether header, or a reply: dropped */
};

static bool reserved_zero(const struct tether_hdr *hdr)
{
	return !hdr->reserved[0] && !hdr->reserved[1] && !hdr->reserved[2];
}

/* As the XDP program validates (bpf/parse.h), plus the reasons it can put
 * into the status byte, and the size the slow path can forward. */
static enum datagram_kind classify(const struct tether_hdr *hdr, size_t len)
{
	if (len < TETHER_HDR_LEN || ntohs(hdr->magic) != TETHER_MAGIC ||
	    hdr->flags & TETHER_F_REPLY)
		return DATAGRAM_FOREIGN;
	if (hdr->version != TETHER_VERSION || hdr->flags & ~TETHER_F_CLIENT_MASK ||
	    !reserved_zero(hdr) || !hdr->function_id ||
	    (hdr->status > TETHER_STATUS_CONTAINER_GONE &&
	     hdr->status != TETHER_STATUS_OVERLOADED && hdr->status != TETHER_STATUS_TOO_BIG) ||
	    len > SLOWPATH_MAX_DATAGRAM)
		return DATAGRAM_MALFORMED;
	return DATAGRAM_REQUEST;
}

/* The XDP program found the containers full (its OVERLOADED reason): STRICT
 * waits for its own container (the token's, else the key's), anything else
 * for any container of the function with room; oldest first, within the
 * hold time (slowpath_place_full). */
static void handle_full(struct slowpath *sp, const struct request *req)
{
	__u32 slot;

	sp->stats.held_full++;
	if (req->hdr.flags & TETHER_F_STRICT) {
		struct request probe = *req;

		probe.hdr.status = TETHER_STATUS_OK;
		switch (by_token_or_key(sp, &probe, lifecycle_now(sp->lc), &slot)) {
		case DECIDE_FORWARD:
			if (!forward(sp, req, slot))
				hold_for(sp, req, true, true, slot);
			return;
		case DECIDE_GONE:
			answer(sp, req, TETHER_STATUS_CONTAINER_GONE);
			return;
		case DECIDE_NONE:
			break;
		}
	}
	if (!forward_to_any_with_room(sp, req))
		hold_for(sp, req, true, false, 0);
}

static void handle_request(struct slowpath *sp, const struct request *req)
{
	__u32 slot;

	if (req->hdr.status == TETHER_STATUS_CONTAINER_GONE) {
		answer(sp, req, TETHER_STATUS_CONTAINER_GONE);
		return;
	}
	if (req->hdr.status == TETHER_STATUS_OVERLOADED) {
		handle_full(sp, req);
		return;
	}
	/* Too large for a routed backend's path once encapsulated: another
	 * container's path may be larger, but the answer must not depend on
	 * which one a key lands on. */
	if (req->hdr.status == TETHER_STATUS_TOO_BIG) {
		answer(sp, req, TETHER_STATUS_TOO_BIG);
		return;
	}
	switch (decide(sp, req, &slot)) {
	case DECIDE_FORWARD:
		if (forward(sp, req, slot))
			break;
		/* Full: STRICT waits for its own container, the rest for any. */
		if (req->hdr.flags & TETHER_F_STRICT)
			hold_for(sp, req, true, true, slot);
		else if (!forward_to_any_with_room(sp, req))
			hold_for(sp, req, true, false, 0);
		break;
	case DECIDE_GONE:
		answer(sp, req, TETHER_STATUS_CONTAINER_GONE);
		break;
	case DECIDE_NONE:
		hold(sp, req);
		break;
	}
}

static void handle_datagram(struct slowpath *sp, struct request *req)
{
	sp->stats.received++;
	if (req->len >= TETHER_HDR_LEN)
		memcpy(&req->hdr, req->datagram, TETHER_HDR_LEN);
	switch (classify(&req->hdr, req->len)) {
	case DATAGRAM_FOREIGN:
		sp->stats.malformed++;
		break;
	case DATAGRAM_MALFORMED:
		answer(sp, req, TETHER_STATUS_MALFORMED);
		break;
	case DATAGRAM_REQUEST:
		handle_request(sp, req);
		break;
	}
}

static void client_from_sockaddr(struct client *client)
{
	if (client->sockaddr.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&client->sockaddr;
		static const __u8 v4mapped_prefix[12] = { [10] = 0xff, [11] = 0xff };

		memcpy(client->addr, v4mapped_prefix, 12);
		memcpy(client->addr + 12, &sin->sin_addr, 4);
		client->port = sin->sin_port;
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&client->sockaddr;

		memcpy(client->addr, &sin6->sin6_addr, 16);
		client->port = sin6->sin6_port;
	}
}

void slowpath_readable(struct slowpath *sp, int fd)
{
	struct service *service = g_hash_table_lookup(sp->services, GINT_TO_POINTER(fd));

	if (!service)
		return;
	for (;;) {
		struct request req = { .service = service, .datagram = sp->recv_buffer };

		req.client.sockaddr_len = sizeof(req.client.sockaddr);
		ssize_t len = recvfrom(fd, sp->recv_buffer, sizeof(sp->recv_buffer), 0,
				       (struct sockaddr *)&req.client.sockaddr,
				       &req.client.sockaddr_len);

		if (len < 0) {
			if (errno == EINTR)
				continue;
			return; /* EAGAIN: all read */
		}
		req.len = (size_t)len;
		client_from_sockaddr(&req.client);
		handle_datagram(sp, &req);
	}
}

/* ---- capacity and time -------------------------------------------------- */

void slowpath_container_warm(struct slowpath *sp, __u32 slot, __u64 function_id)
{
	struct waiting *waiting = waiting_for(sp, function_id);
	struct held_request *held;

	if (!waiting || !in_pool(sp->lc, slot, function_id))
		return;
	while ((held = g_queue_peek_head(&waiting->requests)) && !held->has_target) {
		if (!forward(sp, &held->req, slot))
			break; /* full: the rest wait for room (slowpath_place_full) */
		take_oldest(sp, waiting);
		g_free(held);
	}
	if (g_queue_is_empty(&waiting->requests))
		g_hash_table_remove(sp->waiting, &function_id);
	else
		slowpath_place_full(sp);
}

/* Held requests whose containers were full go out, oldest first, as soon as
 * one has room (called every millisecond while any waits, and on warm). */
void slowpath_place_full(struct slowpath *sp)
{
	GHashTableIter iter;
	gpointer value;

	if (!sp->held_total)
		return;
	g_hash_table_iter_init(&iter, sp->waiting);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		struct waiting *waiting = value;
		bool any_full = false;

		for (GList *link = waiting->requests.head; link;) {
			struct held_request *held = link->data;
			GList *next = link->next;
			bool sent = false;

			if (held->has_target) {
				const struct container_record *c = &sp->lc->containers[held->target];

				if (c->generation != held->target_generation ||
				    !takes_work(sp->lc, held->target, c->generation,
						be64toh(held->req.hdr.function_id),
						lifecycle_now(sp->lc), false)) {
					answer(sp, &held->req, TETHER_STATUS_CONTAINER_GONE);
					sent = true;
				} else {
					sent = forward(sp, &held->req, held->target);
				}
			} else if (!any_full) {
				sent = forward_to_any_with_room(sp, &held->req);
				any_full = !sent; /* the next ones cannot go either */
			}
			if (sent) {
				g_queue_delete_link(&waiting->requests, link);
				sp->held_total--;
				sp->held_bytes -= held->req.len;
				g_free(held);
			}
			link = next;
		}
		if (g_queue_is_empty(&waiting->requests))
			g_hash_table_iter_remove(&iter);
	}
}

static bool waited_out(const struct slowpath *sp, const struct held_request *held, __u64 now)
{
	return now - held->arrived_ns >= sp->config.hold_ms * NS_PER_MS;
}

void slowpath_tick(struct slowpath *sp)
{
	__u64 now = lifecycle_now(sp->lc);
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, sp->waiting);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		struct waiting *waiting = value;
		struct held_request *held;

		/* Oldest first: stop at the first that may still wait. */
		while ((held = g_queue_peek_head(&waiting->requests)) && waited_out(sp, held, now)) {
			take_oldest(sp, waiting);
			answer(sp, &held->req, held->full ? TETHER_STATUS_OVERLOADED
							  : TETHER_STATUS_NO_CAPACITY);
			g_free(held);
		}
		if (g_queue_is_empty(&waiting->requests))
			g_hash_table_iter_remove(&iter);
		else if (now - waiting->last_event_ns >= REMIND_INTERVAL_NS)
			emit_capacity_needed(sp, waiting, now);
	}
}

/* ---- reading the state -------------------------------------------------- */

__u32 slowpath_waiting(const struct slowpath *sp, __u64 function_id)
{
	if (!function_id)
		return sp->held_total;
	const struct waiting *waiting = g_hash_table_lookup(sp->waiting, &function_id);

	return waiting ? waiting->requests.length : 0;
}

void slowpath_stats(const struct slowpath *sp, struct slowpath_stats *stats)
{
	*stats = sp->stats;
}

void slowpath_each_waiting(const struct slowpath *sp,
			   void (*fn)(void *ctx, __u64 function_id, __u32 waiting), void *ctx)
{
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, sp->waiting);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		const struct waiting *waiting = value;

		fn(ctx, waiting->function_id, waiting->requests.length);
	}
}

/* ---- tear-down ---------------------------------------------------------- */

/* Nothing is dropped silently, not even at exit. */
static void answer_all_held(struct slowpath *sp)
{
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, sp->waiting);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		struct held_request *held;

		while ((held = take_oldest(sp, value))) {
			answer(sp, &held->req, TETHER_STATUS_NO_CAPACITY);
			g_free(held);
		}
	}
}

static void close_services(struct slowpath *sp)
{
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, sp->services);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		struct service *service = value;

		close(service->fd);
		if (service->added_vip)
			vip_remove_local(service->addr);
	}
}

void slowpath_free(struct slowpath *sp)
{
	if (!sp)
		return;
	answer_all_held(sp);
	close_services(sp);
	if (sp->packet_fd >= 0)
		close(sp->packet_fd);
	routed_send_close(&sp->routed);
	g_hash_table_destroy(sp->waiting);
	g_hash_table_destroy(sp->services);
	g_free(sp);
}
