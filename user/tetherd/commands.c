// SPDX-License-Identifier: MIT
/* The requests of docs/protocol.md: each handler checks its arguments, calls
 * the lifecycle (the one interface that changes state) and writes records. */
#include "commands.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "control.h"
#include "fleet.h"
#include "nexthop.h"
#include "tether_xdp.skel.h"

#define NS_PER_MS 1000000ull

/* What run returns for a request answered later, by control_answer(). */
#define ANSWER_LATER ((enum proto_error)-1)

struct command {
	const char *verb, *noun;
	const char *const *keys; /* allowed keys, NULL-terminated */
	bool bound_ok;           /* for a connection bound to a backend, kept to it */
	enum proto_error (*run)(struct tetherd *d, const struct requester *who,
				const struct proto_request *req, struct proto_writer *w,
				char *message, size_t size);
	/* Lifecycle changes: read the request, then run it here or write it
	 * through the fleet's store (run_change). */
	enum proto_error (*parse)(struct tetherd *d, const struct requester *who,
				  const struct proto_request *req, struct lc_request *r,
				  char *message, size_t size);
};

static enum proto_error lifecycle_failed(struct tetherd *d, enum proto_error code, char *message,
					 size_t size)
{
	if (code)
		snprintf(message, size, "%s", lifecycle_error(&d->lc));
	return code;
}

static __s64 ms_until(struct tetherd *d, __u64 deadline_ns)
{
	__u64 now = lifecycle_now(&d->lc);

	if (!deadline_ns)
		return -1;
	return deadline_ns > now ? (__s64)((deadline_ns - now) / NS_PER_MS) : 0;
}

/* A connection bound to a backend ("auth agent backend=NAME") acts on that
 * backend and its containers only, whichever secret it authenticated with. */
static bool is_bound(const struct requester *who)
{
	return who->remote && who->backend[0];
}

static enum proto_error check_backend_allowed(const struct requester *who, const char *backend,
					      char *message, size_t size)
{
	if (!is_bound(who) || !strcmp(who->backend, backend))
		return PROTO_OK;
	snprintf(message, size, "this agent is bound to backend '%s', not '%s': it may change "
		 "%s and %s's containers only", who->backend, backend, who->backend, who->backend);
	return PROTO_UNAUTHORIZED;
}

static enum proto_error check_container_allowed(struct tetherd *d, const struct requester *who,
						__u32 slot, char *message, size_t size)
{
	const struct container_record *record = lc_container(&d->lc, slot);

	if (!record)
		return lifecycle_failed(d, PROTO_NOT_FOUND, message, size);
	const char *backend = d->lc.backends[record->backend_id].meta.name;

	if (!is_bound(who) || !strcmp(who->backend, backend))
		return PROTO_OK;
	snprintf(message, size, "container %u is on backend '%s'; this agent is bound to backend "
		 "'%s' and may change %s's containers only", slot, backend, who->backend,
		 who->backend);
	return PROTO_UNAUTHORIZED;
}

static enum proto_error refuse_bound(const struct requester *who, const struct proto_request *req,
				     char *message, size_t size)
{
	snprintf(message, size, "'%s %s' is not for an agent bound to backend '%s': it may add, "
		 "heartbeat, drain, del and list backend %s, add, up, drain, idle, del, list and "
		 "show its containers, and watch events; the rest takes the shared secret or the "
		 "local socket", req->verb, req->noun, who->backend, who->backend);
	return PROTO_UNAUTHORIZED;
}

/* --- backends --- */

/* The functions backend name may hold: "7,9,256-511", or "any". */
static const char *allowed_text(struct tetherd *d, const char *name)
{
	static char text[256];
	struct allowed_functions allowed;

	if (allowed_get(&d->dp, name, &allowed))
		return "any";
	proto_functions_format(&allowed, text, sizeof(text));
	return text;
}

static void write_backend(struct tetherd *d, struct proto_writer *w, const struct backend *b)
{
	char addr[64], mac[18];

	addr_format(b->record.addr, addr, sizeof(addr));
	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", b->record.mac[0],
		 b->record.mac[1], b->record.mac[2], b->record.mac[3], b->record.mac[4],
		 b->record.mac[5]);
	bool down = lifecycle_backend_down(&d->lc, b);

	proto_record_begin(w);
	proto_record_str(w, "backend", b->meta.name);
	proto_record_u64(w, "id", b->id);
	proto_record_str(w, "state", down ? "down" : backend_state_name(b->record.state));
	proto_record_str(w, "addr", addr);
	proto_record_str(w, "mac", mac);
	proto_record_str(w, "iface", b->meta.iface);
	proto_record_u64(w, "vlan", b->record.vlan);
	proto_record_str(w, "encap", proto_encap_name(b->record.encap));
	/* L2 records hold the source MAC where a routed one's VNI is. */
	proto_record_u64(w, "vni", b->record.encap == BACKEND_VXLAN ? backend_vni(&b->record) : 0);
	/* Routed: the FIB's next hop of the moment, as the program finds it. */
	char hop[96] = "-";

	if (b->record.encap != BACKEND_L2)
		nexthop_describe(b->record.addr, b->record.ifindex, hop, sizeof(hop));
	proto_record_str(w, "nexthop", hop);
	proto_record_u64(w, "heartbeat_ms", b->meta.heartbeat_ms);
	proto_record_u64(w, "expires_in_ms", ms_until(d, b->record.heartbeat_expiry_ns) < 0
						     ? 0
						     : ms_until(d, b->record.heartbeat_expiry_ns));
	proto_record_u64(w, "containers", b->containers);
	proto_record_str(w, "functions", allowed_text(d, b->meta.name));
	proto_record_end(w);
}

/* alive_key=: the backend's key for ALIVE datagrams, 32 hex digits (128
 * random bits from its agent), not all zero. */
static enum proto_error get_alive_key(const struct proto_request *req, struct lc_request *r,
				      char *message, size_t size)
{
	__u8 bytes[16];
	enum proto_error err = proto_get_token(req, "alive_key", 0, bytes, message, size);

	if (err || !proto_get(req, "alive_key"))
		return err;
	memcpy(r->alive_key, bytes, 16);
	r->alive_key[0] = be64toh(r->alive_key[0]); /* 32 hex digits: key[0], key[1] */
	r->alive_key[1] = be64toh(r->alive_key[1]);
	if (!r->alive_key[0] && !r->alive_key[1]) {
		snprintf(message, size, "alive_key is 128 random bits, not zero");
		return PROTO_BAD_ARGUMENT;
	}
	return PROTO_OK;
}

static enum proto_error parse_add_backend(struct tetherd *d, const struct requester *who,
					  const struct proto_request *req, struct lc_request *r,
					  char *message, size_t size)
{
	const char *name, *iface = "";
	enum proto_error err;

	(void)d;
	r->encap = BACKEND_L2;
	if ((err = proto_get_encap(req, "encap", 0, &r->encap, message, size)))
		return err;
	/* L2 needs the backend's MAC and the interface; a routed backend its
	 * address only (vxlan: the inner MAC defaults from the VNI). */
	bool l2 = r->encap == BACKEND_L2;

	if ((err = proto_get_name(req, "name", 1, &name, message, size)) ||
	    (err = proto_get_addr(req, "addr", 1, r->addr, message, size)) ||
	    (err = proto_get_mac(req, "mac", l2, r->mac, message, size)) ||
	    (err = proto_get_name(req, "iface", l2, &iface, message, size)) ||
	    (err = proto_get_vni(req, "vni", 0, &r->vni, message, size)) ||
	    (err = proto_get_u32(req, "heartbeat_ms", 0, &r->heartbeat_ms, message, size)) ||
	    (err = proto_get_vlan(req, "vlan", 0, &r->vlan, message, size)) ||
	    (err = check_backend_allowed(who, name, message, size)) ||
	    (err = proto_get_functions(req, "functions", 0, &r->functions, message, size)))
		return err;
	r->has_mac = proto_get(req, "mac") != NULL;
	r->has_functions = proto_get(req, "functions") != NULL;
	if (r->has_functions && is_bound(who)) {
		snprintf(message, size, "the functions backend '%s' may hold are the operator's to "
					"set (the shared secret or the local socket), not its agent's",
			 name);
		return PROTO_UNAUTHORIZED;
	}
	if ((err = get_alive_key(req, r, message, size)))
		return err;
	r->op = LC_BACKEND_ADD;
	snprintf(r->backend, sizeof(r->backend), "%s", name);
	if (strlen(iface) >= sizeof(r->iface)) {
		snprintf(message, size, "interface name '%s' is longer than %zu characters", iface,
			 sizeof(r->iface) - 1);
		return PROTO_BAD_ARGUMENT;
	}
	snprintf(r->iface, sizeof(r->iface), "%s", iface);
	return PROTO_OK;
}

/* set backend name= functions=: the operator's allow-list (bound
 * connections never reach this: bound_ok is false). */
static enum proto_error parse_set_backend(struct tetherd *d, const struct requester *who,
					  const struct proto_request *req, struct lc_request *r,
					  char *message, size_t size)
{
	const char *name;
	enum proto_error err;

	(void)d, (void)who;
	if ((err = proto_get_name(req, "name", 1, &name, message, size)) ||
	    (err = proto_get_functions(req, "functions", 1, &r->functions, message, size)))
		return err;
	r->op = LC_BACKEND_SET_FUNCTIONS;
	r->has_functions = true;
	snprintf(r->backend, sizeof(r->backend), "%s", name);
	return PROTO_OK;
}

/* heartbeat, drain and del backend: the backend's name, and a drain's
 * deadline. */
static enum proto_error parse_backend_change(struct tetherd *d, const struct requester *who,
					     const struct proto_request *req,
					     struct lc_request *r, char *message, size_t size)
{
	const char *name;
	enum proto_error err = proto_get_name(req, "name", 1, &name, message, size);

	(void)d;
	if (err || (err = check_backend_allowed(who, name, message, size)) ||
	    (err = proto_get_u32(req, "deadline_ms", 0, &r->deadline_ms, message, size)) ||
	    (err = get_alive_key(req, r, message, size)))
		return err;
	snprintf(r->backend, sizeof(r->backend), "%s", name);
	r->op = !strcmp(req->verb, "heartbeat") ? LC_BACKEND_HEARTBEAT
		: !strcmp(req->verb, "drain")	? LC_BACKEND_DRAIN
						: LC_BACKEND_DEL;
	return PROTO_OK;
}

static enum proto_error list_backend(struct tetherd *d, const struct requester *who,
				     const struct proto_request *req, struct proto_writer *w,
				     char *message, size_t size)
{
	(void)req, (void)message, (void)size;
	/* A backend listed as down takes no more requests (test_tetherd
	 * heartbeat: one was forwarded after the list said down, before the
	 * next tick wrote it down). */
	lifecycle_expire_backends(&d->lc);
	proto_write_ok(w);
	for (__u32 id = 1; id < TETHER_MAX_BACKENDS; id++) {
		const struct backend *b = &d->lc.backends[id];

		if (b->in_use && (!is_bound(who) || !strcmp(b->meta.name, who->backend)))
			write_backend(d, w, b);
	}
	return PROTO_OK;
}

/* --- containers --- */

/* Affinity entries naming the container: read in batches, since the map can
 * hold a million entries. */
static __u64 count_affinities(struct tetherd *d, __u32 slot, __u32 generation)
{
	int fd = bpf_map__fd(d->dp.skel->maps.affinity);
	struct affinity_key keys[4096];
	struct affinity_value values[4096];
	struct affinity_key out_batch;
	void *in_batch = NULL;
	__u64 found = 0;

	for (;;) {
		__u32 count = 4096;
		int err = bpf_map_lookup_batch(fd, in_batch, &out_batch, keys, values, &count, NULL);

		for (__u32 i = 0; i < count; i++)
			if (values[i].slot == slot && values[i].generation == generation)
				found++;
		if (err)
			break; /* ENOENT: the end */
		in_batch = &out_batch;
	}
	return found;
}

static void write_container(struct tetherd *d, struct proto_writer *w, __u32 slot, bool details)
{
	const struct container_record *record = &d->lc.containers[slot];
	struct tether_token token;
	char name[TETHER_NAME_MAX];

	container_token(slot, record, &token);
	proto_record_begin(w);
	proto_record_u64(w, "container", slot);
	proto_record_u64(w, "function", record->function_id);
	proto_record_str(w, "backend", d->lc.backends[record->backend_id].meta.name);
	proto_record_str(w, "state", container_state_name(record->state));
	proto_record_str(w, "name", lc_container_name(&d->lc, slot, name, sizeof(name)));
	proto_record_u64(w, "deadline_in_ms", record->state == CONTAINER_DRAINING
						      ? (__u64)ms_until(d, record->drain_deadline_ns)
						      : 0);
	proto_record_hex(w, "token", (const __u8 *)&token, sizeof(token));
	proto_record_u64(w, "limit", record->limit);
	struct container_load load = {};

	/* Counted only for containers with a limit. */
	if (record->limit)
		container_load_read(&d->dp, slot, &load);
	proto_record_u64(w, "in_flight", container_load_in_flight(&load));
	if (details) {
		struct container_counters counters = {};

		/* The containers map's record, as bpftool map lookup shows it
		 * (README, Maps); the secret's bytes as the token and the fleet's
		 * store carry them. */
		proto_record_u64(w, "generation", record->generation);
		proto_record_u64(w, "backend_id", record->backend_id);
		proto_record_hex(w, "secret", (const __u8 *)&record->secret, sizeof(record->secret));
		proto_record_u64(w, "drain_deadline_ns", record->drain_deadline_ns);
		proto_record_u64(w, "finished", load.done);
		container_stats_read(&d->dp, slot, &counters);
		proto_record_u64(w, "packets", counters.packets);
		proto_record_u64(w, "bytes", counters.bytes);
		proto_record_u64(w, "affinities", count_affinities(d, slot, record->generation));
	}
	proto_record_end(w);
}

static enum proto_error parse_new_state(const struct proto_request *req,
					enum container_state *state, char *message, size_t size)
{
	const char *text = proto_get(req, "state");

	*state = CONTAINER_STARTING;
	if (!text || !strcmp(text, "starting"))
		return PROTO_OK;
	if (!strcmp(text, "warm")) {
		*state = CONTAINER_WARM;
		return PROTO_OK;
	}
	snprintf(message, size, "state '%s' is not starting or warm", text);
	return PROTO_BAD_ARGUMENT;
}

static enum proto_error parse_add_container(struct tetherd *d, const struct requester *who,
					    const struct proto_request *req, struct lc_request *r,
					    char *message, size_t size)
{
	const char *backend, *name = "";
	enum proto_error err;

	(void)d;
	if ((err = proto_get_function(req, "function", 1, &r->function_id, message, size)) ||
	    (err = proto_get_name(req, "backend", 1, &backend, message, size)) ||
	    (err = proto_get_name(req, "name", 0, &name, message, size)) ||
	    (err = parse_new_state(req, &r->state, message, size)) ||
	    (err = proto_get_u32(req, "concurrency", 0, &r->concurrency, message, size)) ||
	    (err = check_backend_allowed(who, backend, message, size)))
		return err;
	/* An agent holds only the functions the operator allowed its backend. */
	if (is_bound(who) && (err = lc_check_function_allowed(&d->lc, backend, r->function_id)))
		return lifecycle_failed(d, err, message, size);
	r->op = LC_CONTAINER_ADD;
	snprintf(r->backend, sizeof(r->backend), "%s", backend);
	snprintf(r->name, sizeof(r->name), "%s", name);
	return PROTO_OK;
}

static enum proto_error container_argument(struct tetherd *d, const struct requester *who,
					   const struct proto_request *req, __u32 *slot,
					   char *message, size_t size)
{
	enum proto_error err = proto_get_u32(req, "container", 1, slot, message, size);

	return err ? err : check_container_allowed(d, who, *slot, message, size);
}

/* up, drain, idle and del container. */
static enum proto_error parse_container_change(struct tetherd *d, const struct requester *who,
					       const struct proto_request *req,
					       struct lc_request *r, char *message, size_t size)
{
	enum proto_error err = container_argument(d, who, req, &r->slot, message, size);

	if (err || (err = proto_get_u32(req, "deadline_ms", 0, &r->deadline_ms, message, size)))
		return err;
	r->op = !strcmp(req->verb, "up")      ? LC_CONTAINER_UP
		: !strcmp(req->verb, "drain") ? LC_CONTAINER_DRAIN
		: !strcmp(req->verb, "idle")  ? LC_CONTAINER_IDLE
					      : LC_CONTAINER_DEL;
	/* Waking a container is holding it: the allow-list applies. */
	if (r->op == LC_CONTAINER_UP && is_bound(who)) {
		const struct container_record *record = &d->lc.containers[r->slot];

		if ((err = lc_check_function_allowed(&d->lc, who->backend, record->function_id)))
			return lifecycle_failed(d, err, message, size);
	}
	return PROTO_OK;
}

/* The answer to a lifecycle request that succeeded: ok, and the new backend's
 * or container's record. */
static void write_change_answer(struct tetherd *d, struct proto_writer *w,
				const struct lc_request *r, __u32 slot)
{
	const struct backend *backend;

	proto_write_ok(w);
	if (r->op == LC_BACKEND_ADD && (backend = lc_backend_find(&d->lc, r->backend))) {
		write_backend(d, w, backend);
		/* Where its agent sends DONE and ALIVE datagrams. */
		for (int i = 0; i < d->config.completion_count; i++) {
			char addr[64], text[80];

			addr_format(d->config.completions[i].addr, addr, sizeof(addr));
			snprintf(text, sizeof(text), strchr(addr, ':') ? "[%s]:%u" : "%s:%u", addr,
				 d->config.completions[i].port);
			proto_record_begin(w);
			proto_record_str(w, "completion", text);
			proto_record_end(w);
		}
	}
	else if (r->op == LC_CONTAINER_ADD)
		write_container(d, w, slot, false);
	else if (r->op == LC_FUNCTION_SET) {
		proto_record_begin(w);
		proto_record_u64(w, "function", r->function_id);
		proto_record_u64(w, "concurrency", lc_function_limit(&d->lc, r->function_id));
		proto_record_end(w);
	}
}

static enum proto_error list_container(struct tetherd *d, const struct requester *who,
				       const struct proto_request *req, struct proto_writer *w,
				       char *message, size_t size)
{
	__u64 function_id = 0;
	const char *backend_name = NULL;
	struct backend *backend = NULL;
	enum proto_error err;

	if ((err = proto_get_function(req, "function", 0, &function_id, message, size)) ||
	    (err = proto_get_name(req, "backend", 0, &backend_name, message, size)) ||
	    (backend_name && (err = check_backend_allowed(who, backend_name, message, size))))
		return err;
	if (is_bound(who))
		backend_name = who->backend;
	if (backend_name && !(backend = lc_backend_find(&d->lc, backend_name)))
		return lifecycle_failed(d, PROTO_NOT_FOUND, message, size);
	proto_write_ok(w);
	for (__u32 slot = 0; slot < TETHER_MAX_CONTAINERS; slot++) {
		const struct container_record *record = &d->lc.containers[slot];

		if (record->state == CONTAINER_FREE ||
		    (function_id && record->function_id != function_id) ||
		    (backend && record->backend_id != backend->id))
			continue;
		write_container(d, w, slot, false);
	}
	return PROTO_OK;
}

static enum proto_error show_container(struct tetherd *d, const struct requester *who,
				       const struct proto_request *req, struct proto_writer *w,
				       char *message, size_t size)
{
	__u32 slot;
	enum proto_error err = container_argument(d, who, req, &slot, message, size);

	if (err)
		return err;
	proto_write_ok(w);
	write_container(d, w, slot, true);
	return PROTO_OK;
}

/* --- functions --- */

static void write_function(struct tetherd *d, struct proto_writer *w,
			   const struct function *function, bool details)
{
	__u64 by_state[CONTAINER_GONE + 1] = {};
	GHashTableIter iter;
	gpointer key;

	g_hash_table_iter_init(&iter, function->slots);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		__u32 state = d->lc.containers[GPOINTER_TO_UINT(key) - 1].state;

		if (state <= CONTAINER_GONE)
			by_state[state]++;
	}
	proto_record_begin(w);
	proto_record_u64(w, "function", function->function_id);
	proto_record_u64(w, "warm", by_state[CONTAINER_WARM]);
	proto_record_u64(w, "starting", by_state[CONTAINER_STARTING]);
	proto_record_u64(w, "draining", by_state[CONTAINER_DRAINING]);
	proto_record_u64(w, "pool", function->pool_size);
	proto_record_u64(w, "concurrency", lc_function_limit(&d->lc, function->function_id));
	proto_record_u64(w, "waiting",
			 d->slowpath ? slowpath_waiting(d->slowpath, function->function_id) : 0);
	__u64 hash;

	/* The table in the kernel, hashed: equal on every router of a fleet
	 * with the same warm set. */
	if (details && function->table_fd >= 0 && !pool_table_hash(function->table_fd, &hash)) {
		char text[17];

		snprintf(text, sizeof(text), "%016llx", (unsigned long long)hash);
		proto_record_str(w, "table_digest", text);
	}
	proto_record_end(w);
}

static gint compare_functions(gconstpointer a, gconstpointer b)
{
	__u64 x = (*(struct function *const *)a)->function_id;
	__u64 y = (*(struct function *const *)b)->function_id;

	return (x > y) - (x < y);
}

static enum proto_error list_function(struct tetherd *d, const struct requester *who,
				      const struct proto_request *req, struct proto_writer *w,
				      char *message, size_t size)
{
	GPtrArray *functions = g_ptr_array_new();
	GHashTableIter iter;
	gpointer value;

	(void)who, (void)req, (void)message, (void)size;
	g_hash_table_iter_init(&iter, d->lc.functions);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		g_ptr_array_add(functions, value);
	g_ptr_array_sort(functions, compare_functions);
	proto_write_ok(w);
	for (guint i = 0; i < functions->len; i++)
		write_function(d, w, g_ptr_array_index(functions, i), false);
	g_ptr_array_free(functions, TRUE);
	return PROTO_OK;
}

static enum proto_error show_function(struct tetherd *d, const struct requester *who,
				      const struct proto_request *req, struct proto_writer *w,
				      char *message, size_t size)
{
	__u64 function_id;
	enum proto_error err = proto_get_function(req, "function", 1, &function_id, message, size);
	struct function *function;

	(void)who;
	if (err)
		return err;
	if (!(function = lc_function(&d->lc, function_id))) {
		snprintf(message, size, "no function %llu has containers (tetherctl function list)",
			 (unsigned long long)function_id);
		return PROTO_NOT_FOUND;
	}
	proto_write_ok(w);
	write_function(d, w, function, true);
	for (__u32 slot = 0; slot < TETHER_MAX_CONTAINERS; slot++)
		if (g_hash_table_contains(function->slots, GUINT_TO_POINTER(slot + 1)))
			write_container(d, w, slot, false);
	return PROTO_OK;
}

/* set function function=F concurrency=N: the requests in flight each of F's
 * containers may have (0: no limit), now and for containers added later; in
 * a fleet, written through the store (functions/F) and applied by every
 * router. */
static enum proto_error parse_set_function(struct tetherd *d, const struct requester *who,
					   const struct proto_request *req, struct lc_request *r,
					   char *message, size_t size)
{
	enum proto_error err;

	(void)d, (void)who;
	if ((err = proto_get_function(req, "function", 1, &r->function_id, message, size)) ||
	    (err = proto_get_u32(req, "concurrency", 1, &r->concurrency, message, size)))
		return err;
	r->op = LC_FUNCTION_SET;
	return PROTO_OK;
}

/* --- affinity --- */

static enum proto_error show_affinity(struct tetherd *d, const struct requester *who,
				      const struct proto_request *req, struct proto_writer *w,
				      char *message, size_t size)
{
	struct affinity_key key;
	struct affinity_value value;
	enum proto_error err;

	(void)who;
	if ((err = proto_get_function(req, "function", 1, &key.function_id, message, size)) ||
	    (err = proto_get_u64(req, "key", 1, &key.routing_key, message, size)))
		return err;
	if (bpf_map_lookup_elem(bpf_map__fd(d->dp.skel->maps.affinity), &key, &value)) {
		snprintf(message, size, "function %llu has no affinity for key %llu",
			 (unsigned long long)key.function_id, (unsigned long long)key.routing_key);
		return PROTO_NOT_FOUND;
	}
	const struct container_record *record = &d->lc.containers[value.slot];
	bool live = record->state != CONTAINER_FREE && record->generation == value.generation;

	proto_write_ok(w);
	proto_record_begin(w);
	proto_record_u64(w, "function", key.function_id);
	proto_record_u64(w, "key", key.routing_key);
	proto_record_u64(w, "container", value.slot);
	proto_record_str(w, "state", live ? container_state_name(record->state) : "gone");
	proto_record_end(w);
	return PROTO_OK;
}

static __u64 flush_function_affinities(int fd, __u64 function_id)
{
	struct affinity_key key, next;
	const struct affinity_key *previous = NULL;
	GArray *doomed = g_array_new(FALSE, FALSE, sizeof(struct affinity_key));
	__u64 flushed = 0;

	while (!bpf_map_get_next_key(fd, previous, &next)) {
		if (next.function_id == function_id)
			g_array_append_val(doomed, next);
		key = next;
		previous = &key;
	}
	for (guint i = 0; i < doomed->len; i++)
		if (!bpf_map_delete_elem(fd, &g_array_index(doomed, struct affinity_key, i)))
			flushed++;
	g_array_free(doomed, TRUE);
	return flushed;
}

static enum proto_error flush_affinity(struct tetherd *d, const struct requester *who,
				       const struct proto_request *req, struct proto_writer *w,
				       char *message, size_t size)
{
	int fd = bpf_map__fd(d->dp.skel->maps.affinity);
	struct affinity_key key = {};
	__u64 flushed;
	enum proto_error err;

	(void)who;
	if ((err = proto_get_function(req, "function", 1, &key.function_id, message, size)) ||
	    (err = proto_get_u64(req, "key", 0, &key.routing_key, message, size)))
		return err;
	if (proto_get(req, "key"))
		flushed = bpf_map_delete_elem(fd, &key) ? 0 : 1;
	else
		flushed = flush_function_affinities(fd, key.function_id);
	proto_write_ok(w);
	proto_record_begin(w);
	proto_record_u64(w, "flushed", flushed);
	proto_record_end(w);
	return PROTO_OK;
}

/* --- stats, unload --- */

static enum proto_error show_stats(struct tetherd *d, const struct requester *who,
				   const struct proto_request *req, struct proto_writer *w,
				   char *message, size_t size)
{
	struct tether_stats stats;
	struct slowpath_stats slow = {};
	struct admission_limits budget;
	__u64 affinity_entries = 0;
	int err = stats_read(&d->dp, &stats);

	(void)who, (void)req;
	if (!err)
		err = affinity_entries_read(&d->dp, &affinity_entries);
	if (!err)
		err = admission_get(&d->dp, &budget);
	if (err) {
		snprintf(message, size, "reading the data plane counters: %s", strerror(-err));
		return PROTO_INTERNAL;
	}
	if (d->slowpath)
		slowpath_stats(d->slowpath, &slow);
	proto_write_ok(w);
	proto_record_begin(w);
	proto_record_str(w, "part", "dataplane");
#define STAT(field) proto_record_u64(w, #field, stats.field)
	STAT(token_hit); STAT(token_miss); STAT(token_foreign); STAT(key_hit); STAT(key_new);
	STAT(key_rehomed); STAT(flow_pick); STAT(no_capacity); STAT(strict_gone);
	STAT(malformed); STAT(fragment); STAT(pass); STAT(no_route); STAT(retag_failed);
#undef STAT
	/* Of TETHER_MAX_AFFINITY. The kernel does not count LRU evictions:
	 * they are learned - entries - flushed (docs/protocol.md). */
	proto_record_u64(w, "affinity_entries", affinity_entries);
	proto_record_end(w);
	/* Concurrency limits, completions and liveness: a record of their own
	 * (a record holds at most PROTO_MAX_ARGS fields). */
	proto_record_begin(w);
	proto_record_str(w, "part", "load");
#define STAT(field) proto_record_u64(w, #field, stats.field)
	STAT(token_overflow); STAT(key_overflow); STAT(full); STAT(done); STAT(done_stale);
	STAT(done_forged); STAT(lost_fixed); STAT(alive); STAT(alive_replayed);
	STAT(alive_forged); STAT(completion_bad);
#undef STAT
	proto_record_end(w);
	proto_record_begin(w);
	proto_record_str(w, "part", "encap");
#define STAT(field) proto_record_u64(w, #field, stats.field)
	STAT(encap_vxlan); STAT(encap_ipip); STAT(fib_no_route); STAT(fib_no_neigh);
	STAT(too_big); STAT(encap_slow); STAT(encap_failed);
#undef STAT
	proto_record_end(w);
	proto_record_begin(w);
	proto_record_str(w, "part", "slowpath");
#define STAT(field) proto_record_u64(w, #field, slow.field)
	STAT(received); STAT(held); STAT(forwarded); STAT(no_capacity); STAT(container_gone);
	STAT(overloaded); STAT(malformed); STAT(send_errors); STAT(capacity_requests);
	STAT(held_full); STAT(too_big);
#undef STAT
	proto_record_end(w);
	proto_record_begin(w);
	proto_record_str(w, "part", "control");
	proto_record_u64(w, "changes_overloaded", d->changes_overloaded);
	proto_record_u64(w, "agent_rate", d->config.agent_rate);
	proto_record_end(w);
	/* What the XDP program shed (on top of no_capacity and strict_gone:
	 * the dataplane record has room for no more) and the budget it applies,
	 * as the kernel has it. */
	proto_record_begin(w);
	proto_record_str(w, "part", "admission");
	proto_record_u64(w, "shed", stats.shed);
	proto_record_u64(w, "shed_dropped", stats.shed_dropped);
	proto_record_u64(w, "admit_rate", budget.function_rate);
	proto_record_u64(w, "admit_burst", budget.function_burst);
	proto_record_u64(w, "admit_total_rate", budget.total_rate);
	proto_record_u64(w, "admit_total_burst", budget.total_burst);
	proto_record_u64(w, "shed_answer_rate", budget.answer_rate);
	proto_record_u64(w, "shed_answer_burst", budget.answer_burst);
	proto_record_end(w);
	return PROTO_OK;
}

/* --- the fleet --- */

struct waiting_status {
	struct tetherd *d;
	struct control_ticket ticket;
};

static void answer_status(void *ctx, enum proto_error error, const char *message,
			  const struct fleet_status *status)
{
	struct waiting_status *waiting = ctx;
	struct proto_writer w;

	proto_writer_init(&w);
	if (error) {
		proto_write_error(&w, error, "%s", message);
	} else {
		proto_write_ok(&w);
		proto_record_begin(&w);
		proto_record_str(&w, "fleet", status->fleet);
		proto_record_str(&w, "router", status->router);
		proto_record_u64(&w, "store_revision", status->store_revision);
		proto_record_u64(&w, "state_revision", status->state_revision);
		proto_record_u64(&w, "applied_revision", status->applied_revision);
		proto_record_str(&w, "synced", status->synced ? "yes" : "no");
		proto_record_end(&w);
		for (size_t i = 0; i < status->n_routers; i++) {
			const struct fleet_router *r = &status->routers[i];

			proto_record_begin(&w);
			proto_record_str(&w, "router", r->name);
			proto_record_u64(&w, "applied_revision", r->applied_revision);
			proto_record_u64(&w, "lag", r->lag);
			proto_record_u64(&w, "updated_ms_ago", r->updated_ms_ago);
			proto_record_str(&w, "store", r->store_endpoint);
			proto_record_end(&w);
		}
	}
	proto_write_end(&w);
	control_answer(waiting->d->control, &waiting->ticket, w.data, w.len);
	proto_writer_free(&w);
	g_free(waiting);
}

static enum proto_error show_fleet(struct tetherd *d, const struct requester *who,
				   const struct proto_request *req, struct proto_writer *w,
				   char *message, size_t size)
{
	(void)req, (void)w;
	if (!d->fleet) {
		snprintf(message, size, "this tetherd runs alone, without a store; start it with "
					"--store etcd=URL to make it a router of a fleet");
		return PROTO_NOT_FOUND;
	}
	struct waiting_status *waiting = g_new0(struct waiting_status, 1);

	waiting->d = d;
	waiting->ticket = who->ticket;
	fleet_read_status(d->fleet, answer_status, waiting);
	return ANSWER_LATER;
}

static enum proto_error unload_tetherd(struct tetherd *d, const struct requester *who,
				       const struct proto_request *req, struct proto_writer *w,
				       char *message, size_t size)
{
	(void)req;
	if (who->remote) {
		snprintf(message, size, "unload is refused over TCP; use the local socket");
		return PROTO_UNAUTHORIZED;
	}
	d->unload_requested = true;
	d->stop = true;
	proto_write_ok(w);
	return PROTO_OK;
}

#define KEYS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* bound_ok: what an agent needs for its own backend; each of those checks
 * the backend or container it names, or lists only its own. */
static const struct command commands[] = {
	{ "add", "backend",
	  KEYS("name", "addr", "mac", "iface", "heartbeat_ms", "vlan", "functions", "alive_key",
	       "encap", "vni"),
	  true, NULL, parse_add_backend },
	{ "set", "backend", KEYS("name", "functions"), false, NULL, parse_set_backend },
	{ "heartbeat", "backend", KEYS("name", "alive_key"), true, NULL, parse_backend_change },
	{ "drain", "backend", KEYS("name", "deadline_ms"), true, NULL, parse_backend_change },
	{ "del", "backend", KEYS("name"), true, NULL, parse_backend_change },
	{ "list", "backend", KEYS(NULL), true, list_backend, NULL },
	{ "add", "container", KEYS("function", "backend", "name", "state", "concurrency"), true, NULL,
	  parse_add_container },
	{ "up", "container", KEYS("container"), true, NULL, parse_container_change },
	{ "drain", "container", KEYS("container", "deadline_ms"), true, NULL,
	  parse_container_change },
	{ "idle", "container", KEYS("container"), true, NULL, parse_container_change },
	{ "del", "container", KEYS("container"), true, NULL, parse_container_change },
	{ "list", "container", KEYS("function", "backend"), true, list_container, NULL },
	{ "show", "container", KEYS("container"), true, show_container, NULL },
	{ "list", "function", KEYS(NULL), false, list_function, NULL },
	{ "show", "function", KEYS("function"), false, show_function, NULL },
	{ "set", "function", KEYS("function", "concurrency"), false, NULL, parse_set_function },
	{ "show", "affinity", KEYS("function", "key"), false, show_affinity, NULL },
	{ "flush", "affinity", KEYS("function", "key"), false, flush_affinity, NULL },
	{ "show", "stats", KEYS(NULL), false, show_stats, NULL },
	{ "show", "fleet", KEYS(NULL), false, show_fleet, NULL },
	{ "unload", "tetherd", KEYS(NULL), false, unload_tetherd, NULL },
};

bool commands_request(size_t i, const char **verb, const char **noun)
{
	if (i >= sizeof(commands) / sizeof(commands[0]))
		return false;
	*verb = commands[i].verb;
	*noun = commands[i].noun;
	return true;
}

/* --- lifecycle changes, here or through the fleet's store --- */

/* The budget a request draws on: its backend's when the connection is bound
 * to one (so an agent gains nothing by opening more connections), else the
 * connection's own. */
static struct change_budget *budget_of(struct tetherd *d, struct requester *who)
{
	struct change_budget *budget;

	if (!who->backend[0])
		return &who->budget;
	if (!d->backend_budgets)
		d->backend_budgets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	budget = g_hash_table_lookup(d->backend_budgets, who->backend);
	if (!budget) {
		budget = g_new0(struct change_budget, 1);
		g_hash_table_insert(d->backend_budgets, g_strdup(who->backend), budget);
	}
	return budget;
}

/* A remote agent may send --agent-rate changes a second, in bursts of as
 * many: one agent flooding changes (each pool swap waits for an RCU grace
 * period) cannot hold up every other VM's. */
static enum proto_error within_budget(struct tetherd *d, struct requester *who, char *message,
				      size_t size)
{
	double rate = d->config.agent_rate;
	__u64 now = lifecycle_now(&d->lc);

	if (!who->remote || !rate)
		return PROTO_OK;
	struct change_budget *budget = budget_of(d, who);

	if (!budget->refilled_ns)
		budget->tokens = rate;
	else
		budget->tokens = MIN(rate, budget->tokens + rate * (now - budget->refilled_ns) / 1e9);
	budget->refilled_ns = now;
	if (budget->tokens >= 1) {
		budget->tokens -= 1;
		return PROTO_OK;
	}
	d->changes_overloaded++;
	if (who->backend[0])
		snprintf(message, size, "backend '%s' sends more than %u changes a second over "
					"its connections together (tetherd --agent-rate); nothing "
					"changed: send it again later",
			 who->backend, d->config.agent_rate);
	else
		snprintf(message, size, "this connection sends more than %u changes a second "
					"(tetherd --agent-rate); nothing changed: send it again later",
			 d->config.agent_rate);
	return PROTO_OVERLOADED;
}


/* A request whose answer waits for the fleet. */
struct waiting_answer {
	struct tetherd *d;
	struct control_ticket ticket;
	struct lc_request request;
};

static void answer_change(void *ctx, const struct fleet_outcome *outcome)
{
	struct waiting_answer *waiting = ctx;
	struct proto_writer w;

	proto_writer_init(&w);
	if (outcome->error)
		proto_write_error(&w, outcome->error, "%s", outcome->message);
	else {
		/* A fleet's liveness is its store's (the deadline is 0): the key
		 * only lets this router count its backend's ALIVE datagrams. */
		if (waiting->request.op == LC_BACKEND_ADD ||
		    waiting->request.op == LC_BACKEND_HEARTBEAT)
			lc_backend_set_liveness(&waiting->d->lc, waiting->request.backend,
						waiting->request.alive_key);
		write_change_answer(waiting->d, &w, &waiting->request, outcome->slot);
	}
	if (w.failed) {
		proto_writer_reset(&w);
		proto_write_error(&w, PROTO_INTERNAL, "the answer could not be written");
	}
	proto_write_end(&w);
	control_answer(waiting->d->control, &waiting->ticket, w.data, w.len);
	proto_writer_free(&w);
	g_free(waiting);
}

static enum proto_error run_change(struct tetherd *d, const struct requester *who,
				   const struct lc_request *r, struct proto_writer *w,
				   char *message, size_t size)
{
	if (d->fleet) {
		struct waiting_answer *waiting = g_new0(struct waiting_answer, 1);

		waiting->d = d;
		waiting->ticket = who->ticket;
		waiting->request = *r;
		fleet_submit(d->fleet, r, answer_change, waiting);
		return ANSWER_LATER;
	}
	__u32 slot = 0;
	enum proto_error err = lc_execute(&d->lc, r, &slot);

	if (err)
		return lifecycle_failed(d, err, message, size);
	write_change_answer(d, w, r, slot);
	return PROTO_OK;
}

bool commands_execute(struct tetherd *d, struct requester *who,
		      const struct proto_request *req, struct proto_writer *w)
{
	char message[512] = "";
	enum proto_error err = PROTO_UNKNOWN_VERB;
	const struct command *command = NULL;

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].verb, req->verb) && !strcmp(commands[i].noun, req->noun))
			command = &commands[i];
	if (!command) {
		snprintf(message, sizeof(message),
			 "no request '%s %s' (docs/protocol.md lists them; tetherctl --help)",
			 req->verb, req->noun);
	} else if (who->remote && !who->authenticated) {
		err = PROTO_UNAUTHORIZED;
		snprintf(message, sizeof(message),
			 "authenticate first: auth agent backend=NAME secret=S (the backend's own "
			 "secret) or auth agent secret=S (the shared one)");
	} else if (is_bound(who) && !command->bound_ok) {
		err = refuse_bound(who, req, message, sizeof(message));
	} else if (!(err = proto_check_keys(req, command->keys, message, sizeof(message)))) {
		if (command->parse) {
			struct lc_request change = {};

			err = command->parse(d, who, req, &change, message, sizeof(message));
			if (!err)
				err = within_budget(d, who, message, sizeof(message));
			if (!err)
				err = run_change(d, who, &change, w, message, sizeof(message));
		} else {
			err = command->run(d, who, req, w, message, sizeof(message));
		}
	}
	if (err == ANSWER_LATER)
		return false;
	if (err == PROTO_OK && !w->failed) {
		proto_write_end(w);
		return true;
	}
	proto_writer_reset(w);
	if (err == PROTO_OK)
		proto_write_error(w, PROTO_INTERNAL, "the answer could not be written");
	else
		proto_write_error(w, err, "%s", message);
	proto_write_end(w);
	return true;
}
