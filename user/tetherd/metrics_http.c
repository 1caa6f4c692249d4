// SPDX-License-Identifier: MIT
/* /metrics over HTTP: libmicrohttpd on tetherd's loop (metrics_http.h). */
#define _GNU_SOURCE
#include "metrics_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <glib.h>
#include <microhttpd.h>

#include "core/core.h"
#include "dataplane/dataplane.h"
#include "exposition.h"
#include "metrics.h"

#define SLICE_NS (2 * 1000000ull)        /* the sweep's work between loop turns */
#define FRESH_NS (1000 * 1000000ull)     /* a sweep this recent serves a scrape as it is */
#define CONNECTIONS_MAX 32
#define CONNECTION_TIMEOUT_S 30

struct metrics_http {
	struct metrics *m;
	struct loop *loop;
	struct MHD_Daemon *daemon;
	int listen_fd, epoll_fd, mhd_timer_fd, sweep_timer_fd;
	GPtrArray *suspended; /* struct MHD_Connection * waiting for the sweep */
	char listen[64];
};

static void arm(int fd, __u64 ns)
{
	struct itimerspec when = { .it_value = { .tv_sec = ns / 1000000000ull,
						  .tv_nsec = ns % 1000000000ull } };

	if (!when.it_value.tv_sec && !when.it_value.tv_nsec)
		when.it_value.tv_nsec = 1; /* at once: the next turn of the loop */
	timerfd_settime(fd, 0, &when, NULL);
}

static void disarm(int fd)
{
	struct itimerspec never = {};

	timerfd_settime(fd, 0, &never, NULL);
}

/* MHD wants running within its timeout (0: work is waiting already). */
static void schedule(struct metrics_http *h)
{
	MHD_UNSIGNED_LONG_LONG ms;

	if (MHD_get_timeout(h->daemon, &ms) == MHD_YES)
		arm(h->mhd_timer_fd, (__u64)ms * 1000000ull);
	else
		disarm(h->mhd_timer_fd);
}

static void run(struct metrics_http *h)
{
	MHD_run(h->daemon);
	schedule(h);
}

static void on_epoll(void *ctx, int fd, uint32_t events)
{
	(void)fd, (void)events;
	run(ctx);
}

static void on_mhd_timer(void *ctx, int fd, uint32_t events)
{
	__u64 expirations;

	(void)events;
	if (read(fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return;
	run(ctx);
}

/* The sweep goes on a slice at a time; once done, the scrapes waiting for it
 * are resumed and answered by MHD_run. */
static void on_sweep_timer(void *ctx, int fd, uint32_t events)
{
	struct metrics_http *h = ctx;
	__u64 expirations;

	(void)events;
	if (read(fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return;
	if (!metrics_continue(h->m, SLICE_NS)) {
		arm(h->sweep_timer_fd, 0);
		return;
	}
	for (guint i = 0; i < h->suspended->len; i++)
		MHD_resume_connection(g_ptr_array_index(h->suspended, i));
	g_ptr_array_set_size(h->suspended, 0);
	run(h);
}

static enum MHD_Result answer_text(struct MHD_Connection *connection, unsigned int status,
				   const char *type, const char *text, size_t len)
{
	struct MHD_Response *response =
		MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result result;

	if (!response)
		return MHD_NO;
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	result = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return result;
}

static enum MHD_Result answer_message(struct MHD_Connection *connection, unsigned int status,
				      const char *message)
{
	return answer_text(connection, status, "text/plain; charset=utf-8", message,
			   strlen(message));
}

static enum MHD_Result answer_metrics(struct metrics_http *h, struct MHD_Connection *connection)
{
	GString *out = g_string_sized_new(64 * 1024);
	char why[256];
	enum MHD_Result result;

	if (metrics_write(h->m, out, why, sizeof(why))) {
		fprintf(stderr, "tetherd: metrics: cannot write the exposition: %s\n", why);
		result = answer_message(connection, MHD_HTTP_INTERNAL_SERVER_ERROR,
					"tetherd could not write its metrics; its log says why\n");
	} else {
		result = answer_text(connection, MHD_HTTP_OK, EXPO_CONTENT_TYPE, out->str, out->len);
	}
	g_string_free(out, TRUE);
	return result;
}

/* A request's state between calls: it waits for a sweep it started or found. */
struct scrape {
	bool waited;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **state)
{
	struct metrics_http *h = cls;
	struct scrape *scrape = *state;

	(void)version, (void)upload_data;
	if (!scrape) { /* the headers: answer once the whole request is in */
		*state = g_new0(struct scrape, 1);
		return MHD_YES;
	}
	if (*upload_data_size) { /* a body is not for us: ignored */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return answer_message(connection, MHD_HTTP_METHOD_NOT_ALLOWED,
				      "only GET and HEAD: GET /metrics\n");
	if (!strcmp(url, "/"))
		return answer_message(connection, MHD_HTTP_OK,
				      "tetherd: metrics at /metrics (Prometheus text format)\n");
	if (strcmp(url, "/metrics"))
		return answer_message(connection, MHD_HTTP_NOT_FOUND,
				      "not found: tetherd serves /metrics\n");
	/* A resumed scrape takes the sweep it waited for, however old. */
	if (scrape->waited || metrics_prepare(h->m, FRESH_NS, SLICE_NS))
		return answer_metrics(h, connection);
	scrape->waited = true;
	MHD_suspend_connection(connection);
	g_ptr_array_add(h->suspended, connection);
	arm(h->sweep_timer_fd, 0);
	return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **state,
			 enum MHD_RequestTerminationCode why)
{
	(void)cls, (void)connection, (void)why;
	g_free(*state);
	*state = NULL;
}

static void log_mhd(void *cls, const char *format, va_list args)
{
	(void)cls;
	fputs("tetherd: metrics: ", stderr);
	vfprintf(stderr, format, args);
}

static int open_listener(const char *text, char *why, size_t size)
{
	struct sockaddr_storage address;
	__u8 addr[16];
	__u16 port;
	int one = 1, err;

	if (endpoint_parse(text, addr, &port)) {
		snprintf(why, size, "--metrics-listen '%s' is not ADDR:PORT or [IPv6]:PORT", text);
		return -EINVAL;
	}
	socklen_t len = endpoint_sockaddr(addr, port, &address);
	int fd = socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (address.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(fd, (struct sockaddr *)&address, len) || listen(fd, 64)) {
		err = -errno;
		snprintf(why, size, "cannot listen on %s for /metrics: %s", text, strerror(errno));
		if (fd >= 0)
			close(fd);
		return err;
	}
	return fd;
}

static int add_timer(struct metrics_http *h, int *fd, loop_callback callback)
{
	*fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (*fd < 0)
		return -errno;
	return loop_add(h->loop, *fd, EPOLLIN, callback, h);
}

struct metrics_http *metrics_http_new(struct metrics *m, struct loop *loop, const char *listen,
				      char *why, size_t size)
{
	struct metrics_http *h = g_new0(struct metrics_http, 1);
	const union MHD_DaemonInfo *info;
	int err;

	h->m = m;
	h->loop = loop;
	h->epoll_fd = h->mhd_timer_fd = h->sweep_timer_fd = -1;
	h->suspended = g_ptr_array_new();
	snprintf(h->listen, sizeof(h->listen), "%s", listen);
	h->listen_fd = open_listener(listen, why, size);
	if (h->listen_fd < 0)
		goto fail;
	/* No thread: MHD's epoll fd joins tetherd's loop. MHD closes the
	 * listening socket when it stops. */
	h->daemon = MHD_start_daemon(
		MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL,
		on_request, h, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, h,
		MHD_OPTION_LISTEN_SOCKET, h->listen_fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)CONNECTIONS_MAX,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONNECTION_TIMEOUT_S,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
	if (!h->daemon) {
		snprintf(why, size, "libmicrohttpd could not start on %s", listen);
		close(h->listen_fd);
		goto fail;
	}
	info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || info->epoll_fd < 0) {
		snprintf(why, size, "libmicrohttpd gave no epoll fd");
		goto fail;
	}
	h->epoll_fd = info->epoll_fd;
	if ((err = loop_add(loop, h->epoll_fd, EPOLLIN, on_epoll, h)) ||
	    (err = add_timer(h, &h->mhd_timer_fd, on_mhd_timer)) ||
	    (err = add_timer(h, &h->sweep_timer_fd, on_sweep_timer))) {
		snprintf(why, size, "cannot add /metrics to the loop: %s", strerror(-err));
		goto fail;
	}
	schedule(h);
	fprintf(stderr, "tetherd: metrics on http://%s/metrics\n", listen);
	return h;
fail:
	metrics_http_free(h);
	return NULL;
}

void metrics_http_free(struct metrics_http *h)
{
	if (!h)
		return;
	if (h->daemon) {
		/* MHD stops only with no connection suspended. */
		for (guint i = 0; i < h->suspended->len; i++)
			MHD_resume_connection(g_ptr_array_index(h->suspended, i));
		loop_remove(h->loop, h->epoll_fd); /* MHD closes it */
		MHD_stop_daemon(h->daemon);
	}
	if (h->mhd_timer_fd >= 0) {
		loop_remove(h->loop, h->mhd_timer_fd);
		close(h->mhd_timer_fd);
	}
	if (h->sweep_timer_fd >= 0) {
		loop_remove(h->loop, h->sweep_timer_fd);
		close(h->sweep_timer_fd);
	}
	g_ptr_array_free(h->suspended, TRUE);
	g_free(h);
}
