/* SPDX-License-Identifier: MIT */
/* libtether-dataplane: the only code that writes the XDP program's maps.
 * loader.c loads the program and pins or adopts its maps under the pin root;
 * services.c, backends.c, containers.c (which mints container tokens),
 * pools.c (Maglev tables, maglev.c, swapped in atomically) and admission.c
 * (the slow path's budgets) are typed writes and reads of one map each;
 * stats.c sums the per-CPU counters; trace.c switches the packet trace. tetherd's
 * lifecycle state machine is its one writer in production; the bpf tests,
 * the benches and tools/check_pins use it too. Each call returns 0 or a
 * negative errno and changes nothing on failure. */
#ifndef TETHER_DATAPLANE_H
#define TETHER_DATAPLANE_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "core/core.h"
#include "loader.h"
#include "maglev.h"
#include "tether/maps.h"
#include "tether/trace.h"
#include "tether/wire.h"

/* services.c: service address and UDP port (host order). */
int service_add(struct dataplane *dp, const __u8 addr[16], __u16 port, __u32 service_id);
int service_del(struct dataplane *dp, const __u8 addr[16], __u16 port);
/* The router's completion address: DONE and ALIVE datagrams from backends
 * to it are consumed by the XDP program. */
int service_add_completion(struct dataplane *dp, const __u8 addr[16], __u16 port);

/* backends.c: the record is written whole; for an L2 backend src_mac is
 * filled from ifindex, and ifindex is added to tx_ports. vlan: 0 (untagged)
 * or 1..TETHER_VLAN_MAX, else -EINVAL; a routed backend (encap vxlan or
 * ipip) has no VLAN, and its ifindex is 0 or an interface that exists. */
int backend_set(struct dataplane *dp, __u32 backend_id, const struct backend_record *record);
int backend_get(struct dataplane *dp, __u32 backend_id, struct backend_record *record);
int backend_del(struct dataplane *dp, __u32 backend_id);

/* encap.c: the outer source addresses of routed backends (encap_config);
 * whether config has one for addr's family. */
int encap_config_set(struct dataplane *dp, const struct encap_config *config);
int encap_config_get(struct dataplane *dp, struct encap_config *config);
bool encap_source_for(const struct encap_config *config, const __u8 addr[16]);

/* containers.c: install mints a new token for the slot (next generation, a
 * fresh random secret) and zeroes the slot's counters (container_stats), so
 * they count the new container's requests only; remove frees the slot so no
 * old token names it. */
int container_install(struct dataplane *dp, __u32 slot, __u64 function_id, __u32 backend_id,
		      enum container_state state, struct tether_token *token);
/* The same with an identity issued elsewhere (a fleet's store): every router
 * installs the same generation and secret, so they stamp and honour the same
 * tokens. secret is nonzero. */
int container_install_identity(struct dataplane *dp, __u32 slot, __u64 function_id,
			       __u32 backend_id, enum container_state state, __u32 generation,
			       __u64 secret);
int container_set_state(struct dataplane *dp, __u32 slot, enum container_state state,
			__u64 drain_deadline_ns);
int container_get(struct dataplane *dp, __u32 slot, struct container_record *record);
/* Every slot's record (TETHER_MAX_CONTAINERS of them, free ones too), in large
 * batches: a million lookups one by one would take a second. */
int containers_read_all(struct dataplane *dp, struct container_record *records);
/* Every name in container_meta, read in batches (one lookup a slot took 1.7 s
 * for a million containers): fn sees each slot and its NUL-terminated name. */
int container_names_for_each(struct dataplane *dp,
			     void (*fn)(__u32 slot, const char *name, void *ctx), void *ctx);
int container_remove(struct dataplane *dp, __u32 slot);
void container_token(__u32 slot, const struct container_record *record,
		     struct tether_token *token);
/* Every write of a record goes through this: the record and its word in
 * container_live (include/tether/maps.h), in a safe order. */
int container_record_write(struct dataplane *dp, __u32 slot, const struct container_record *old,
			   const struct container_record *record);
__u64 container_live_word(const struct container_record *record);

/* load.c: concurrency limits (0: none), in the container's record; the
 * in-flight accounting of the inflight map (include/tether/maps.h); room
 * reserved as the XDP program reserves it (1: taken, 0: full, -errno), and
 * given back when the request could not be sent after all. */
int container_set_limit(struct dataplane *dp, __u32 slot, __u32 limit);
int container_load_reset(struct dataplane *dp, __u32 slot);
int container_load_read(struct dataplane *dp, __u32 slot, struct container_load *load);
__u64 container_load_in_flight(const struct container_load *load);
int container_take_room(struct dataplane *dp, __u32 slot, __u32 limit);
void container_give_back(struct dataplane *dp, __u32 slot);
/* A backend's liveness key (128 bits; NULL or zero: no data-plane liveness)
 * and how far an ALIVE moves its deadline. A new key starts a new sequence. */
int liveness_set(struct dataplane *dp, __u32 backend_id, const __u64 key[2], __u64 window_ns);
int liveness_get(struct dataplane *dp, __u32 backend_id, struct backend_liveness *live);
/* A function's settings in the pinned functions map (none, or a concurrency
 * of 0, removes its entry). */
int function_settings_set(struct dataplane *dp, __u64 function_id,
			  const struct function_settings *settings);

/* pools.c: builds the function's Maglev table over members and swaps it in
 * atomically; no members removes the pool (the function has no capacity). */
int pool_replace(struct dataplane *dp, __u64 function_id, const struct maglev_member *members,
		 size_t n);
/* Many functions' pools at once (start-up, bulk changes): each swap is still
 * atomic per function; on error, updates before the failing one may be in. */
struct pool_update {
	__u64 function_id;
	const struct maglev_member *members;
	size_t n;
	/* keep_table: table_fd receives an fd of the table swapped in (the
	 * caller closes it), or -1 (pool removed, or the call failed). Reading
	 * a table later by its map id needs CAP_SYS_ADMIN; the fd does not. */
	bool keep_table;
	int table_fd;
};
int pools_replace(struct dataplane *dp, struct pool_update *updates, size_t count);
/* 1 when the function's live table was built from members of this digest
 * (maglev_digest), with an fd of it in *table_fd when that is not NULL (the
 * caller closes it); 0 when it was not or there is none; -errno. */
int pool_table_matches(struct dataplane *dp, __u64 function_id, __u64 digest, int *table_fd);
/* A hash of a table's size and entries (FNV-1a), from an fd of it: equal
 * tables, equal hashes, so routers of a fleet can be compared. */
int pool_table_hash(int table_fd, __u64 *hash);
/* Reads the live table: *size entries into table (at most cap). */
int pool_read(struct dataplane *dp, __u64 function_id, __u32 *table, __u32 cap, __u32 *size);

/* allowed.c: the functions backend name may hold; no entry (-ENOENT from
 * allowed_get): any. */
int allowed_set(struct dataplane *dp, const char *name, const struct allowed_functions *allowed);
int allowed_clear(struct dataplane *dp, const char *name);
int allowed_get(struct dataplane *dp, const char *name, struct allowed_functions *allowed);
/* admission.c: the slow path's budgets (bpf/admission.h). Requests the XDP
 * program would pass up are admitted within their function's rate and burst,
 * then within every function's together; over budget they are answered
 * OVERLOADED by the program, at most answer_rate per second (burst
 * answer_burst), beyond which they are dropped. A rate is per second, 0 for
 * no limit, at most TETHER_ADMIT_MAX_RATE; a burst is at least 1 where the
 * rate is not 0 (else -EINVAL, nothing written). Until set, nothing is
 * budgeted (all zero). get reads back what the program uses. */
struct admission_limits {
	__u32 function_rate, function_burst;
	__u32 total_rate, total_burst;
	__u32 answer_rate, answer_burst;
};
int admission_set(struct dataplane *dp, const struct admission_limits *limits);
int admission_get(struct dataplane *dp, struct admission_limits *limits);

/* stats.c: per-CPU counters summed over CPUs. */
int stats_read(struct dataplane *dp, struct tether_stats *total);
int container_stats_read(struct dataplane *dp, __u32 slot, struct container_counters *total);
/* Entries in the affinity LRU map now, counted with batched lookups (which
 * do not touch the LRU order). The kernel does not count LRU evictions; with
 * this count they are learned - entries - flushed (docs/protocol.md). */
int affinity_entries_read(struct dataplane *dp, __u64 *entries);

/* trace.c: the packet trace (include/tether/trace.h). tetherd alone writes
 * trace_config; lost sums the records the ring had no room for (per CPU);
 * trace_ring_fd is the ring buffer for ring_buffer__new(). The names: bit i
 * of a record's reasons is counter i of struct tether_stats (NULL past the
 * last), and the decision and malformed check as docs/protocol.md has them. */
int trace_config_set(struct dataplane *dp, const struct trace_config *config);
int trace_config_get(struct dataplane *dp, struct trace_config *config);
int trace_lost_read(struct dataplane *dp, __u64 *lost);
int trace_ring_fd(struct dataplane *dp);
const char *trace_reason_name(unsigned bit);
int trace_reason_bit(const char *name); /* -1: no such counter */
const char *trace_decision_name(unsigned decision);
const char *trace_malformed_name(unsigned check);

/* CLOCK_MONOTONIC in ns: the clock of deadlines and heartbeat expiries. */
__u64 monotonic_ns(void);

#endif
