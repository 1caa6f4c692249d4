// SPDX-License-Identifier: MIT
/* tether-agent: the VM agent of Tether. Registers the VM as a backend with
 * tetherd, runs containers of a function handler as processes, reports their
 * lifecycle, serves the requests the router stamps for them and answers the
 * clients directly. See `tether-agent --help` and docs/protocol.md. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "control/protocol.h"
#include "containers.h"
#include "decap.h"
#include "completion.h"
#include "dispatch.h"
#include "events.h"
#include "failover.h"
#include "lifecycle.h"
#include "log.h"
#include "process.h"
#include "session.h"
#include "shutdown.h"

#define TICK_MS 20 /* the loop's longest sleep: deadlines are checked this often */

static int read_secret(struct agent *agent)
{
	g_autofree char *contents = NULL;
	g_autoptr(GError) error = NULL;
	const char *path = agent->options.secret_file;

	if (!path[0])
		return 0;
	if (!g_file_get_contents(path, &contents, NULL, &error)) {
		agent_log("cannot read the secret: %s", error->message);
		return -1;
	}
	g_strstrip(contents);
	if (!proto_value_valid(contents) || strlen(contents) >= sizeof(agent->secret)) {
		agent_log("the secret in %s must be 1-127 printable characters without spaces or '='",
			  path);
		return -1;
	}
	strcpy(agent->secret, contents);
	return 0;
}

/* TLS to tcp: endpoints, or the warning of --tcp-plain. */
static int load_tls(struct agent *agent)
{
	const struct agent_options *o = &agent->options;
	struct tls_files files = { o->tls_cert, o->tls_key, o->tls_ca };
	char why[512], certificate[512];

	if (o->tcp_plain)
		agent_log("warning: --tcp-plain: the secret and every request to tetherd cross the "
			  "network in clear, readable and changeable on the path; give --tls-ca (and "
			  "--tls-cert, --tls-key) instead");
	if (!o->tls_ca[0])
		return 0;
	agent->tls = tls_creds_load(TLS_CLIENT, &files, why, sizeof(why));
	if (!agent->tls) {
		agent_log("cannot use TLS: %s", why);
		return -1;
	}
	tls_creds_describe(agent->tls, certificate, sizeof(certificate));
	agent_log("TLS to tetherd: its certificate must chain to the CAs in %s and name %s; "
		  "this agent's certificate: %s",
		  o->tls_ca, o->tls_server_name[0] ? o->tls_server_name : "the endpoint's address",
		  certificate);
	return 0;
}

static int setup(struct agent *agent)
{
	const struct agent_options *o = &agent->options;
	int err;

	agent->loop = loop_new();
	agent->containers = g_ptr_array_new();
	agent->by_slot = g_hash_table_new(g_direct_hash, g_direct_equal);
	agent->requests = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
	agent->stale_slots = g_array_new(FALSE, FALSE, sizeof(__u32));
	agent->signal_fd = -1;
	agent->completion_fd4 = agent->completion_fd6 = -1;
	if (!agent->loop)
		return -1;
	if (completion_open(agent)) {
		agent_log("cannot make the ALIVE key or the completion sockets");
		return -1;
	}
	__u32 backoff_max_ms = rotation_backoff_max_ms(o->heartbeat_ms);

	link_init(&agent->control, agent, "control", &o->tetherds[0], agent->secret, o->name,
		  &session_owner, agent->loop, backoff_max_ms);
	link_init(&agent->watch, agent, "watch", &o->tetherds[0], agent->secret, o->name,
		  &events_owner, agent->loop, backoff_max_ms);
	if (agent->tls) {
		link_set_tls(&agent->control, agent->tls, o->tls_server_name);
		link_set_tls(&agent->watch, agent->tls, o->tls_server_name);
	}
	failover_init(agent);
	if ((err = signals_open(agent))) {
		agent_log("cannot take signals: %s", strerror(-err));
		return -1;
	}
	if (decap_setup(o))
		return -1;
	return dispatch_open(agent);
}

static void create_initial_containers(struct agent *agent)
{
	const struct agent_options *o = &agent->options;
	__u32 total = 0;

	for (int i = 0; i < o->function_count; i++)
		for (__u32 n = 0; n < o->functions[i].count && total < o->max_containers; n++, total++)
			container_create(agent, o->functions[i].function_id, 0);
	if (o->decap)
		agent_log("backend %s (%s, routed: %s): %u containers of handler %s, tetherd at %s",
			  o->name, o->addr, proto_encap_name(o->decap), total, o->handler,
			  failover_endpoints_text(o));
	else
		agent_log("backend %s (%s, %s via %s): %u containers of handler %s, tetherd at %s",
			  o->name, o->addr, o->mac, o->router_iface, total, o->handler,
			  failover_endpoints_text(o));
}

static void tick(struct agent *agent)
{
	__u64 now = now_ms();

	failover_tick(agent, now);
	link_tick(&agent->control, now);
	link_tick(&agent->watch, now);
	process_tick(agent, now);
	session_step(agent);
	lifecycle_step(agent);
	completion_tick(agent, now);
	shutdown_tick(agent, now);
}

static void teardown(struct agent *agent)
{
	decap_teardown(&agent->options);
	process_kill_all(agent);
	dispatch_close(agent);
	completion_close(agent);
	link_free(&agent->control);
	link_free(&agent->watch);
	tls_creds_unref(agent->tls);
	if (agent->signal_fd >= 0)
		close(agent->signal_fd);
	/* The containers too: the table does not own them (containers_sweep
	 * frees the ones it removes). */
	g_ptr_array_set_free_func(agent->containers, g_free);
	g_ptr_array_free(agent->containers, TRUE);
	g_hash_table_destroy(agent->by_slot);
	g_hash_table_destroy(agent->requests);
	g_array_free(agent->stale_slots, TRUE);
	loop_free(agent->loop);
}

int main(int argc, char **argv)
{
	static struct agent agent;
	char message[512];
	int parsed = agent_options_parse(argc, argv, &agent.options, message, sizeof(message));

	if (parsed == 1 || parsed == 2) {
		fputs(parsed == 1 ? agent_options_usage() : agent_version(), stdout);
		return 0;
	}
	if (parsed) {
		fprintf(stderr, "tether-agent: %s (tether-agent --help)\n", message);
		return 2;
	}
	if (read_secret(&agent) || load_tls(&agent))
		return 1;
	if (setup(&agent)) {
		teardown(&agent);
		return 1;
	}
	create_initial_containers(&agent);
	while (!agent.finished) {
		loop_run_once(agent.loop, TICK_MS);
		tick(&agent);
	}
	teardown(&agent);
	return agent.exit_status;
}
