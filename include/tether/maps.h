/* SPDX-License-Identifier: MIT */
/* Keys and values of every BPF map, shared by the XDP program and userspace.
 * The maps themselves are declared in bpf/maps.h; their names (at most 15
 * characters, the bpffs pin names) are listed here so userspace uses the same. */
#ifndef TETHER_MAPS_H
#define TETHER_MAPS_H

#include <linux/types.h>

#define TETHER_MAX_SERVICES 1024
#define TETHER_MAX_BACKENDS 4096
#define TETHER_MAX_CONTAINERS (1u << 20) /* slots; token.slot < this */
#define TETHER_MAX_FUNCTIONS 65536       /* functions with a warm pool */
#define TETHER_MAX_AFFINITY (1u << 20)   /* (function, key) entries, LRU */
#define TETHER_MAX_PORTS 256             /* egress interfaces */
#define TETHER_MAX_ADMIT_FUNCTIONS 65536 /* per-function budgets, LRU */

/* A pool table picks a container for a hash; when the picked one cannot take
 * work (its backend just missed its heartbeats), the next few slots are tried
 * before the request goes to the slow path. */
#define TETHER_POOL_PROBES 4

#define TETHER_VLAN_MAX 4094 /* 802.1Q VIDs 1..4094; 0 = untagged, 4095 reserved */

#define TETHER_MAP_SERVICES "services"
#define TETHER_MAP_BACKENDS "backends"
#define TETHER_MAP_CONTAINERS "containers"
#define TETHER_MAP_CONTAINER_STATS "container_stats"
#define TETHER_MAP_AFFINITY "affinity"
#define TETHER_MAP_POOLS "pools"
#define TETHER_MAP_TX_PORTS "tx_ports"
#define TETHER_MAP_STATS "stats"
#define TETHER_MAP_BACKEND_META "backend_meta"
#define TETHER_MAP_CONTAINER_META "container_meta"
#define TETHER_MAP_ALLOWED "allowed_funcs"
#define TETHER_MAP_ADMIT_CONFIG "admit_config"
#define TETHER_MAP_ADMIT_BUCKETS "admit_buckets"
#define TETHER_MAP_ADMIT_FUNCTIONS "admit_functions"
#define TETHER_MAP_INFLIGHT "inflight"
#define TETHER_MAP_LIVENESS "liveness"
#define TETHER_MAP_FUNCTIONS "functions"
#define TETHER_MAP_CONTAINER_LIVE "container_live"
#define TETHER_MAP_ENCAP_CONFIG "encap_config"
#define TETHER_MAP_NEXTHOP_CACHE "nexthop_cache"
#define TETHER_NAME_MAX 32 /* names of backends and containers, with the NUL */

/* services: which (address, UDP port) pairs are Tether service addresses.
 * IPv4 addresses are stored v4-mapped (::ffff:a.b.c.d). For every service the
 * library also keeps an entry with port 0 for its address alone: fragments and
 * packets whose UDP header cannot be read are judged by address. */
struct service_key {
	__u8 addr[16];
	__be16 port; /* 0: the address-only entry */
	__u16 pad;
};

enum service_kind {
	SERVICE_REQUESTS = 0,   /* clients' requests (the pad of earlier versions: 0) */
	SERVICE_COMPLETION = 1, /* the router's completion address: DONE and ALIVE
				 * datagrams from backends, consumed by the program */
};

struct service_info {
	__u32 service_id;
	__u32 kind; /* enum service_kind; where a pad was */
};

enum backend_state {
	BACKEND_FREE = 0, /* slot unused */
	BACKEND_UP = 1,
	BACKEND_DRAINING = 2,
	BACKEND_DOWN = 3,
};

/* How a backend is reached (DESIGN.md, "Forwarding"; bpf/encap.h). */
enum backend_encap {
	BACKEND_L2 = 0,    /* on a segment of this host: MACs rewritten, redirected */
	BACKEND_VXLAN = 1, /* routed: outer IP, UDP 4789, VXLAN (its VNI), inner Ethernet */
	BACKEND_IPIP = 2,  /* routed: outer IP around the request's IP packet */
};

#define TETHER_VNI_MAX 0xffffff /* 24 bits */
#define TETHER_VXLAN_PORT 4789

/* nexthop_cache: PERCPU_ARRAY indexed by backend id, the data plane's own:
 * the FIB's answer for a routed backend (bpf/encap.h), kept for
 * TETHER_NEXTHOP_TTL_NS, so a route or neighbour change is followed within
 * that time without a lookup on every packet. Failures are never kept. */
#define TETHER_NEXTHOP_TTL_NS 50000000ULL

struct nexthop_entry {
	__u64 expires_ns; /* coarse CLOCK_MONOTONIC; 0: empty */
	__u8 dest[16];    /* the backend address it was looked up for */
	__u32 ifindex;    /* egress */
	__u32 mtu;        /* the egress MTU (the FIB's) */
	__u8 dmac[6];
	__u8 smac[6];
	/* Filled with the rest for the per-packet work (bpf/encap.h): */
	__u32 ip_sum;     /* outer IPv4: the unfolded sum of the header's fixed
			   * words (addresses, DF); IPv6: of VXLAN's checksum
			   * words fixed for this hop (addresses, protocol,
			   * port, flags, inner source MAC) */
	__u8 source[16];  /* the outer source address it was filled with */
};

/* backends: ARRAY indexed by backend_id. */
struct backend_record {
	/* CLOCK_MONOTONIC ns after which the backend counts as down unless a
	 * heartbeat moved it on; 0 = no heartbeat deadline. Checked in the data
	 * plane so a silent VM loses its traffic at once, tetherd alive or not. */
	__u64 heartbeat_expiry_ns;
	__u32 state;   /* enum backend_state */
	/* L2: the interface that reaches the backend. Routed: 0, the kernel's
	 * FIB chooses the egress for each packet; or the only interface the
	 * outer packet may leave by (--iface). */
	__u32 ifindex;
	__u8 mac[6]; /* L2: the backend's address; vxlan: the inner frame's destination */
	union {
		__u8 src_mac[6]; /* L2: the edge host's address on ifindex */
		/* Routed backends have no fixed source MAC (the FIB gives it),
		 * so its bytes hold the VNI, as the VXLAN header carries it. */
		struct {
			__u8 vni[3]; /* vxlan: the VNI, big-endian; ipip: 0 */
			__u8 pad[3];
		} tunnel;
	};
	/* The backend's 802.1Q VLAN id (1-4094) when it sits on a trunk, 0 when
	 * it takes untagged frames: forwarded frames leave with this tagging,
	 * whatever tags they came in with (bpf/forward.h). Where a pad was, so
	 * records pinned by older versions (pad 0: untagged) keep their shape.
	 * L2 only: a routed frame leaves as the FIB's interface sends it. */
	__u16 vlan;
	__u8 encap; /* enum backend_encap; where a pad was (0: L2, as before) */
	__u8 pad;
	/* The backend's IP, v4-mapped for IPv4: informational for L2, the outer
	 * destination (and so the outer family) for routed backends. */
	__u8 addr[16];
};

_Static_assert(sizeof(struct backend_record) == 48,
	       "backend records keep the size pinned maps of earlier versions have");

static inline __u32 backend_vni(const struct backend_record *backend)
{
	return (__u32)backend->tunnel.vni[0] << 16 | (__u32)backend->tunnel.vni[1] << 8 |
	       backend->tunnel.vni[2];
}

static inline void backend_set_vni(struct backend_record *backend, __u32 vni)
{
	backend->tunnel.vni[0] = (__u8)(vni >> 16);
	backend->tunnel.vni[1] = (__u8)(vni >> 8);
	backend->tunnel.vni[2] = (__u8)vni;
}

/* The inner destination MAC of a VXLAN backend added without one:
 * 02:54:45 ("TE", locally administered) and the VNI; tether-agent --decap
 * vxlan gives its vxlan device this address. */
static inline void tether_vxlan_default_mac(__u32 vni, __u8 mac[6])
{
	mac[0] = 0x02;
	mac[1] = 0x54;
	mac[2] = 0x45;
	mac[3] = (__u8)(vni >> 16);
	mac[4] = (__u8)(vni >> 8);
	mac[5] = (__u8)vni;
}

/* encap_config: ARRAY with one entry, written by tetherd at start
 * (--encap-source): the outer source addresses of routed backends' packets.
 * 0 / all zero: none for that family (tetherd refuses routed backends of a
 * family without one; the program drops and counts encap_failed). */
struct encap_config {
	__be32 source4;
	__u32 pad;
	__u8 source6[16];
};

enum container_state {
	CONTAINER_FREE = 0, /* slot unused */
	CONTAINER_STARTING = 1,
	CONTAINER_WARM = 2,
	CONTAINER_DRAINING = 3,
	CONTAINER_GONE = 4,
};

/* containers: ARRAY indexed by slot (the token's slot). A token names the
 * record when slot, generation and secret all match. */
struct container_record {
	__u64 function_id;
	__u64 secret;            /* the token's secret, random per container */
	__u64 drain_deadline_ns; /* CLOCK_MONOTONIC; meaningful when DRAINING */
	__u32 generation;        /* bumped each time the slot is reused */
	__u32 backend_id;
	__u32 state; /* enum container_state */
	/* Requests in flight this container may have (the function's
	 * concurrency limit, or the container's own); 0 = no limit. Where a
	 * pad was, so records pinned by earlier versions read as unlimited.
	 * The paths read the record anyway: the in-flight count (inflight) is
	 * read only when this is set. */
	__u32 limit;
};

/* container_stats: an ARRAY of (possible CPUs) x TETHER_MAX_CONTAINERS
 * entries, CPU-major: entry cpu * TETHER_MAX_CONTAINERS + slot. Each CPU owns
 * its entries (no atomics, no shared cache lines), and unlike a PERCPU_ARRAY
 * a counter costs one memory access, not a pointer table plus the counter:
 * with a million containers that is one cache miss instead of two. */
struct container_counters {
	__u64 packets;
	__u64 bytes;
};

/* inflight: ARRAY (BPF_F_MMAPABLE) indexed by slot: the accounting of
 * requests in flight, for containers with a limit. All counts are cumulative
 * since the slot was installed (containers.c zeroes them), so a lost or
 * replayed datagram cannot leave them wrong for long:
 *
 *   in flight = started - cancelled - done - lost
 *
 * started: reservations, taken atomically before a request is forwarded (the
 *   XDP program, and the slow path through the mmapped map); cancelled: those
 *   given back because the container turned out full;
 * done: the highest cumulative finished count a DONE reported (raised, never
 *   lowered: a lost DONE is covered by the next, a replay changes nothing);
 * lost: requests forwarded before the previous mark that the container never
 *   received (from a DONE's received count, at most once per
 *   TETHER_RECONCILE_NS): mark is (started - cancelled) at that previous
 *   reconcile and mark_ns its time. */
struct container_load {
	__u64 started;
	__u64 cancelled;
	__u64 done;
	__u64 lost;
	__u64 mark;
	__u64 mark_ns;
};

/* A container's counts are reconciled with the received count its DONEs
 * carry at most this often: a request forwarded before one reconcile and not
 * received by the next one is taken as lost (one-way delays are far below). */
#define TETHER_RECONCILE_NS 20000000ULL

/* liveness: ARRAY indexed by backend id: the key that authenticates the
 * backend's ALIVE datagrams (128 random bits from its agent, registered with
 * add backend or heartbeat backend), the highest sequence number accepted, and
 * how far an ALIVE moves the heartbeat deadline. key 0: no data-plane
 * liveness for this backend. */
struct backend_liveness {
	__u64 key[2];
	__u64 last_seq;
	__u64 window_ns;
};

/* affinity: LRU_HASH (function, routing key) -> container, learned on the
 * fast path. The generation makes an entry for a reused slot a miss.
 *
 * An entry the program learned also holds what a hit needs of its container
 * (issue 15, docs/dataplane-speed.md): the token's secret and the backend, so
 * that a hit reads the entry, the container's word in container_live and the
 * backend, and not the container's 40-byte record (a cache miss of its own
 * with a million containers). The secret is random per container: when
 * container_live[slot] holds the entry's secret, the slot still holds the
 * container the entry was learned for (of the key's function, checked when
 * it was learned), warm and without a limit. Entries written with secret 0
 * (userspace, earlier versions, carried over) take the record's way, as every
 * entry did before. */
struct affinity_key {
	__u64 function_id;
	__u64 routing_key;
};

struct affinity_value {
	__u32 slot;
	__u32 generation;
	__u64 secret;     /* the container's token secret; 0: read the record */
	__u32 backend_id; /* the container's backend, meaningful with secret */
	__u32 pad;
};

/* The value of the version before (issue 15): carried over into the new
 * shape when a pinned affinity map of 8-byte values is adopted. */
struct affinity_value_v1 {
	__u32 slot;
	__u32 generation;
};

/* container_live: ARRAY indexed by slot, one 64-bit word each (8 MiB for a
 * million slots, dense enough to stay in the last-level cache): the
 * container's secret while it is warm and has no concurrency limit, else 0.
 * Kept by user/lib/dataplane (containers.c, load.c) beside every change of a
 * record, cleared before a change that takes work away and set after one
 * that gives it, and rebuilt from the records whenever the maps are opened.
 * BPF_F_MMAPABLE: userspace writes the words in place. */

/* pools: HASH_OF_MAPS function_id -> pool table, an ARRAY of __u32 sized for
 * its pool (BPF_F_INNER_MAP). Entry 0 holds the table size M, entries 1..M
 * container slots, so a packet sees size and slots of one table: the swap is
 * one pointer update of the outer map. Entries M+1 and M+2 hold the low and
 * high halves of the digest of the members the table was built from, for a
 * restarted tetherd to know which tables are still right; the program never
 * reads past M. */
#define TETHER_POOL_SIZE_INDEX 0
#define TETHER_POOL_TABLE_ENTRIES(size) ((size) + 3)
#define TETHER_POOL_DIGEST_INDEX(size) ((size) + 1)

/* stats: PERCPU_ARRAY with one entry; a counter for every decision. */
struct tether_stats {
	__u64 token_hit;     /* token named a live container of the function */
	__u64 token_miss;    /* no such container, wrong secret, gone, not accepting */
	__u64 token_foreign; /* token of a container of another function */
	__u64 key_hit;       /* affinity entry's container took the request */
	__u64 key_new;       /* no entry: picked from the pool and learned */
	__u64 key_rehomed;   /* entry's container gone: picked anew and learned */
	__u64 flow_pick;     /* neither token nor key: picked by flow hash */
	__u64 no_capacity;   /* no warm container: handed to the slow path */
	__u64 strict_gone;   /* STRICT and the asked-for container is gone */
	__u64 malformed;     /* for a service address but not a valid request */
	__u64 fragment;      /* IP fragment for a service address */
	__u64 pass;          /* not for a service address: to the host stack */
	__u64 no_route;      /* fault, on top of the decision: the backend's
			      * interface is missing from tx_ports; dropped */
	__u64 retag_failed;  /* fault, on top of the decision: the frame could
			      * not be given the backend's VLAN tagging
			      * (bpf_xdp_adjust_head failed); dropped */
	__u64 shed;          /* on top of no_capacity, strict_gone or full: over the
			      * slow path's budget, answered OVERLOADED by the
			      * XDP program itself (XDP_TX), never passed up */
	__u64 shed_dropped;  /* on top of no_capacity, strict_gone or full: over the
			      * budget and over the cap on answers (or, never
			      * seen, the frame could not be shortened); dropped */
	/* Concurrency limits, completions and liveness (issue 11). */
	__u64 token_overflow; /* token's container full: sent to a sibling */
	__u64 key_overflow;   /* key's container full: sent to a sibling, affinity kept */
	__u64 full;           /* no container with room (or STRICT's full): slow path */
	__u64 done;           /* a DONE applied */
	__u64 done_stale;     /* a DONE that reported nothing new (replayed, reordered) */
	__u64 done_forged;    /* a DONE naming no live container of its function, or
			       * from another interface than its backend's: ignored */
	__u64 lost_fixed;     /* requests found lost on their way, uncounted */
	__u64 alive;          /* an ALIVE that moved its backend's deadline */
	__u64 alive_replayed; /* an ALIVE with a sequence already seen: ignored */
	__u64 alive_forged;   /* an ALIVE with a wrong tag, backend or interface */
	__u64 completion_bad; /* for the completion address but neither DONE nor ALIVE */
	/* Routed backends (issue 12, bpf/encap.h); on top of the decision. */
	__u64 encap_vxlan;    /* sent in VXLAN to a routed backend */
	__u64 encap_ipip;     /* sent in IPIP to a routed backend */
	__u64 fib_no_route;   /* the FIB has no usable route to the backend (none,
			       * unreachable, blackhole, prohibited, local, or
			       * forwarding off on the lookup's interface); also
			       * counted in no_route; to the slow path */
	__u64 fib_no_neigh;   /* the next hop's neighbour is not resolved: to the
			       * slow path, whose send lets the kernel resolve it */
	__u64 too_big;        /* the encapsulated frame would exceed the egress
			       * MTU: to the slow path, answered TOO_BIG */
	__u64 encap_slow;     /* to the slow path instead: an IPv4 request without
			       * a UDP checksum for VXLAN over IPv6 (whose outer
			       * checksum would need the whole payload summed) */
	__u64 encap_failed;   /* fault: no --encap-source of the outer family, or
			       * the frame could not be grown; dropped */
};

/* Admission to the slow path (bpf/admission.h): the requests the XDP program
 * would pass up the stack (no warm container, STRICT and gone, or every
 * container at its limit) are budgeted per function first, then for all functions together; one over
 * either budget is answered OVERLOADED in place (bpf/forward.h
 * answer_in_place), within a cap on such answers, beyond which it is
 * dropped. Each budget is a rate with a burst, kept as GCRA (the "virtual
 * scheduling" form of a token bucket): one 64-bit theoretical arrival time
 * (TAT) per bucket, moved on by one interval per admitted request with a
 * compare-and-swap, so every CPU shares one bucket and a request is admitted
 * when TAT - now <= tolerance. A bucket that refuses writes nothing.
 *
 * admit_config: ARRAY with one entry, written by tetherd at start (its
 * options); all zero (a program loaded without tetherd, the tests' world)
 * budgets nothing: every such request goes up, as before admission existed. */
#define TETHER_ADMIT_MAX_RATE 1000000000u /* per second: an interval of 1 ns */

struct admit_rate {
	__u64 interval_ns;  /* 1e9 / rate; 0: no limit (rate 0) */
	__u64 tolerance_ns; /* (burst - 1) * interval_ns */
	__u32 rate;         /* per second, as configured; 0: no limit */
	__u32 burst;        /* admitted at once after a quiet while (>= 1) */
};

struct admit_config {
	struct admit_rate function; /* each function's requests to the slow path */
	struct admit_rate total;    /* every function's together */
	struct admit_rate answers;  /* OVERLOADED answers sent by the XDP program */
};

/* admit_buckets: ARRAY of the buckets every function shares, a cache line
 * each (CPUs write them under load). admit_functions: LRU_HASH function_id
 * (host order) -> struct admit_bucket, one per function seen lately; a
 * function's first request finds no entry and makes one (a full bucket). */
enum admit_bucket_index {
	ADMIT_BUCKET_TOTAL = 0,
	ADMIT_BUCKET_ANSWERS = 1,
	ADMIT_BUCKETS = 2,
};

struct admit_bucket {
	__u64 tat_ns; /* CLOCK_MONOTONIC; 0: full */
};

struct admit_shared_bucket {
	__u64 tat_ns;
	__u64 pad[7];
};

/* backend_meta and container_meta: what tetherd knows that the XDP program
 * does not need, pinned with the other maps so a restarted tetherd rebuilds
 * its whole view from the pin root. The program never reads them. */
struct backend_meta {
	char name[TETHER_NAME_MAX];
	char iface[16];
	__u32 heartbeat_ms;
	__u32 pad;
	__u64 drain_deadline_ns; /* CLOCK_MONOTONIC; when the backend drains */
};

struct container_meta {
	char name[TETHER_NAME_MAX]; /* the agent's local name, may be empty */
};

/* allowed_funcs: HASH backend name -> the functions the backend may hold,
 * the operator's (set backend functions=...); a name without an entry may
 * hold any. Kept by name, not by id, so that it outlives the backend's
 * registrations: an agent that removes and adds its backend again is held to
 * it. tetherd enforces it on the requests of connections bound to that
 * backend; the program never reads it. */
#define TETHER_ALLOWED_RANGES 16

struct allowed_key {
	char name[TETHER_NAME_MAX];
};

struct function_range {
	__u64 first, last; /* inclusive */
};

struct allowed_functions {
	__u32 count; /* ranges used; 0: none allowed */
	__u32 pad;
	struct function_range ranges[TETHER_ALLOWED_RANGES];
};

/* functions: HASH function_id -> its settings (set function), pinned so a
 * restarted tetherd knows them; the program never reads it (the limit it
 * needs is copied into every container record). */
struct function_settings {
	__u32 concurrency; /* requests in flight per container; 0: no limit */
	__u32 pad;
};

#endif
