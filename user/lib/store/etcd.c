// SPDX-License-Identifier: MIT
/* The client: its endpoints, and libcurl's multi interface driven by the
 * loop (curl tells which sockets to watch and when its timer is due; the
 * loop tells curl what is ready), so that every request runs without a
 * thread. Callbacks to the user run only from etcd_client_dispatch, after
 * curl has returned: curl forbids calling it back from its own callbacks. */
#include "etcd_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include "core/core.h"

/* curl_global_init is once per process, with every client. */
static unsigned curl_users;

static const struct etcd_options defaults = {
	.timeout_ms = 5000,
	.connect_timeout_ms = 1000,
	.backoff_min_ms = 50,
	.backoff_max_ms = 2000,
	.watch_check_ms = 5000,
};

static void on_socket_ready(void *ctx, int fd, uint32_t events)
{
	struct etcd_client *client = ctx;
	int running, action = 0;

	if (events & EPOLLIN)
		action |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		action |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		action |= CURL_CSELECT_ERR;
	curl_multi_socket_action(client->multi, fd, action, &running);
	etcd_client_dispatch(client);
}

/* CURLMOPT_SOCKETFUNCTION: which of curl's sockets to wait for, and how. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct etcd_client *client = userp;
	uint32_t events = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (socketp) {
			loop_remove(client->loop, fd);
			curl_multi_assign(client->multi, fd, NULL);
			g_hash_table_remove(client->sockets, GINT_TO_POINTER(fd));
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		events |= EPOLLOUT;
	if (socketp)
		return loop_modify(client->loop, fd, events) ? -1 : 0;
	if (loop_add(client->loop, fd, events, on_socket_ready, client))
		return -1;
	curl_multi_assign(client->multi, fd, client); /* any non-NULL: "watched" */
	g_hash_table_add(client->sockets, GINT_TO_POINTER(fd));
	return 0;
}

static void on_curl_timer_due(void *ctx)
{
	struct etcd_client *client = ctx;
	int running;

	curl_multi_socket_action(client->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	etcd_client_dispatch(client);
}

/* CURLMOPT_TIMERFUNCTION: when curl wants to run next (-1: never). */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct etcd_client *client = userp;

	(void)multi;
	if (timeout_ms < 0)
		etcd_timer_disarm(client->curl_timer);
	else /* 0: soon, but from the loop; curl must not be called from here */
		etcd_timer_arm(client->curl_timer, (int64_t)timeout_ms * 1000);
	return 0;
}

void etcd_client_dispatch(struct etcd_client *client)
{
	struct etcd_call *call;
	CURLMsg *message;
	int left;

	/* Whole lines of streams first: a stream's last messages come before
	 * the news that it ended. */
	while ((call = g_queue_pop_head(&client->streams_ready))) {
		call->queued = false;
		etcd_call_deliver_lines(call);
	}
	while ((message = curl_multi_info_read(client->multi, &left))) {
		if (message->msg != CURLMSG_DONE)
			continue;
		CURLcode code = message->data.result;

		call = NULL;
		curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, (char **)&call);
		etcd_call_finished(call, code);
	}
}

/* Splits "http://a:2379, http://b:2379" into client->endpoints. */
static bool parse_endpoints(struct etcd_client *client, const char *text, char *why,
			    size_t why_size)
{
	char **parts = g_strsplit(text ? text : "", ",", -1);
	GPtrArray *endpoints = g_ptr_array_new();
	bool ok = true;

	for (char **part = parts; ok && *part; part++) {
		char *endpoint = g_strstrip(*part);
		size_t len = strlen(endpoint);

		if (!len)
			continue;
		while (len > 0 && endpoint[len - 1] == '/')
			endpoint[--len] = '\0';
		if ((!g_str_has_prefix(endpoint, "http://") &&
		     !g_str_has_prefix(endpoint, "https://")) ||
		    !strchr(endpoint, ':') || strlen(strchr(endpoint, ':')) <= 3) {
			g_snprintf(why, why_size,
				   "etcd endpoint '%s' is not a URL like http://127.0.0.1:2379",
				   endpoint);
			ok = false;
			break;
		}
		g_ptr_array_add(endpoints, g_strdup(endpoint));
	}
	if (ok && !endpoints->len) {
		g_snprintf(why, why_size, "no etcd endpoint given (like http://127.0.0.1:2379)");
		ok = false;
	}
	client->n_endpoints = endpoints->len;
	client->connect_afresh = g_new0(bool, endpoints->len);
	g_ptr_array_add(endpoints, NULL);
	client->endpoints = (char **)g_ptr_array_free(endpoints, false);
	g_strfreev(parts);
	return ok;
}

static int option_or(int value, int fallback)
{
	return value > 0 ? value : fallback;
}

struct etcd_client *etcd_client_new(struct loop *loop, const char *endpoints,
				    const struct etcd_options *options, char *why, size_t why_size)
{
	struct etcd_client *client = g_new0(struct etcd_client, 1);
	const struct etcd_options none = { 0 };

	if (!options)
		options = &none;
	client->options = (struct etcd_options){
		.timeout_ms = option_or(options->timeout_ms, defaults.timeout_ms),
		.connect_timeout_ms =
			option_or(options->connect_timeout_ms, defaults.connect_timeout_ms),
		.backoff_min_ms = option_or(options->backoff_min_ms, defaults.backoff_min_ms),
		.backoff_max_ms = option_or(options->backoff_max_ms, defaults.backoff_max_ms),
		.watch_check_ms = option_or(options->watch_check_ms, defaults.watch_check_ms),
	};
	client->calls = g_hash_table_new(NULL, NULL);
	client->watches = g_hash_table_new(NULL, NULL);
	client->keepalives = g_hash_table_new(NULL, NULL);
	client->sockets = g_hash_table_new(NULL, NULL);
	g_queue_init(&client->streams_ready);
	if (curl_users++ == 0 && curl_global_init(CURL_GLOBAL_DEFAULT)) {
		g_snprintf(why, why_size, "curl_global_init failed");
		goto fail;
	}
	if (!parse_endpoints(client, endpoints, why, why_size))
		goto fail;
	client->own_loop = !loop;
	client->loop = loop ? loop : loop_new();
	if (!client->loop) {
		g_snprintf(why, why_size, "cannot make a loop: %s", g_strerror(errno));
		goto fail;
	}
	client->timers = etcd_timers_new(client->loop, why, why_size);
	if (!client->timers)
		goto fail;
	client->curl_timer = etcd_timer_new(client->timers, on_curl_timer_due, client);
	client->multi = curl_multi_init();
	if (!client->multi) {
		g_snprintf(why, why_size, "curl_multi_init failed");
		goto fail;
	}
	curl_multi_setopt(client->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(client->multi, CURLMOPT_SOCKETDATA, client);
	curl_multi_setopt(client->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(client->multi, CURLMOPT_TIMERDATA, client);
	client->headers = curl_slist_append(NULL, "Content-Type: application/json");
	/* No "Expect: 100-continue" round trip before larger bodies. */
	client->headers = curl_slist_append(client->headers, "Expect:");
	/* etcd's "require leader" (gRPC metadata through the gateway): a member
	 * cut off from its leader refuses requests and ends watches, instead of
	 * serving a watch that will never see another event. */
	client->headers = curl_slist_append(client->headers, "Grpc-Metadata-hasleader: true");
	return client;
fail:
	etcd_client_free(client);
	return NULL;
}

void etcd_client_forget_watch(struct etcd_client *client, struct etcd_watch *watch)
{
	g_hash_table_remove(client->watches, watch);
}

void etcd_client_forget_keepalive(struct etcd_client *client, struct etcd_keepalive *keepalive)
{
	g_hash_table_remove(client->keepalives, keepalive);
}

void etcd_client_free(struct etcd_client *client)
{
	if (!client)
		return;
	etcd_keepalive_free_all(client);
	etcd_watch_free_all(client);
	/* What is left: one-shot calls; stopping one may free it. */
	GList *calls = g_hash_table_get_keys(client->calls);

	for (GList *l = calls; l; l = l->next)
		etcd_call_stop(l->data);
	g_list_free(calls);
	g_warn_if_fail(g_hash_table_size(client->calls) == 0);
	if (client->multi)
		curl_multi_cleanup(client->multi);
	/* Sockets curl closed without telling: off the loop too. */
	GHashTableIter sockets;
	gpointer fd;

	g_hash_table_iter_init(&sockets, client->sockets);
	while (g_hash_table_iter_next(&sockets, &fd, NULL))
		loop_remove(client->loop, GPOINTER_TO_INT(fd));
	etcd_timer_free(client->curl_timer);
	etcd_timers_free(client->timers);
	if (client->own_loop)
		loop_free(client->loop);
	curl_slist_free_all(client->headers);
	g_clear_pointer(&client->tls_ca, g_bytes_unref);
	g_clear_pointer(&client->tls_cert, g_bytes_unref);
	g_clear_pointer(&client->tls_key, g_bytes_unref);
	g_strfreev(client->endpoints);
	g_free(client->connect_afresh);
	g_hash_table_destroy(client->calls);
	g_hash_table_destroy(client->watches);
	g_hash_table_destroy(client->keepalives);
	g_hash_table_destroy(client->sockets);
	g_queue_clear(&client->streams_ready);
	if (--curl_users == 0)
		curl_global_cleanup();
	g_free(client);
}

/* One PEM file, whole; *out stays NULL for none. */
static bool read_pem(const char *what, const char *path, bool private_key, GBytes **out,
		     char *why, size_t why_size)
{
	g_autoptr(GError) error = NULL;
	gchar *contents = NULL;
	gsize len = 0;
	struct stat st;

	*out = NULL;
	if (!path || !path[0])
		return true;
	if (private_key && !stat(path, &st) && (st.st_mode & 0007)) {
		g_snprintf(why, why_size, "the %s %s is open to others (mode %04o), so the key is "
					  "not private: chmod o-rwx %s",
			   what, path, (unsigned)(st.st_mode & 07777), path);
		return false;
	}
	if (!g_file_get_contents(path, &contents, &len, &error)) {
		g_snprintf(why, why_size, "cannot read the %s: %s", what, error->message);
		return false;
	}
	if (!g_strstr_len(contents, (gssize)len, "-----BEGIN ")) {
		g_snprintf(why, why_size, "the %s %s holds no PEM block", what, path);
		g_free(contents);
		return false;
	}
	*out = g_bytes_new_take(contents, len);
	return true;
}

int etcd_client_set_tls(struct etcd_client *client, const struct etcd_tls_files *files,
			char *why, size_t why_size)
{
	GBytes *ca = NULL, *cert = NULL, *key = NULL;
	bool has_cert = files->cert && files->cert[0], has_key = files->key && files->key[0];

	if (has_cert != has_key) {
		g_snprintf(why, why_size, "a client certificate for etcd needs its key, and a key "
					  "its certificate");
		return -1;
	}
	if (!read_pem("CA file for etcd", files->ca, false, &ca, why, why_size) ||
	    !read_pem("client certificate for etcd", files->cert, false, &cert, why, why_size) ||
	    !read_pem("key for etcd", files->key, true, &key, why, why_size)) {
		g_clear_pointer(&ca, g_bytes_unref);
		g_clear_pointer(&cert, g_bytes_unref);
		return -1;
	}
	g_clear_pointer(&client->tls_ca, g_bytes_unref);
	g_clear_pointer(&client->tls_cert, g_bytes_unref);
	g_clear_pointer(&client->tls_key, g_bytes_unref);
	client->tls_ca = ca;
	client->tls_cert = cert;
	client->tls_key = key;
	return 0;
}

struct loop *etcd_client_loop(struct etcd_client *client)
{
	return client->loop;
}

size_t etcd_client_endpoint_count(const struct etcd_client *client)
{
	return client->n_endpoints;
}

const char *etcd_client_endpoint(const struct etcd_client *client, size_t index)
{
	return index < client->n_endpoints ? client->endpoints[index] : NULL;
}
