// SPDX-License-Identifier: MIT
/* What etcd's errors mean for a request: whether it surely was not applied
 * (try the next endpoint), may have been (a read tries again, a write reports
 * that its outcome is unknown), or is final. */
#include "etcd_internal.h"

#include <stdarg.h>
#include <string.h>

const char *etcd_status_name(enum etcd_status status)
{
	static const char *const names[] = {
		[ETCD_OK] = "ok",
		[ETCD_UNAVAILABLE] = "unavailable",
		[ETCD_TIMEOUT] = "timeout",
		[ETCD_OUTCOME_UNKNOWN] = "outcome-unknown",
		[ETCD_COMPACTED] = "compacted",
		[ETCD_FAILED_COMPARE] = "failed-compare",
		[ETCD_NOT_FOUND] = "not-found",
		[ETCD_REJECTED] = "rejected",
		[ETCD_BAD_RESPONSE] = "bad-response",
	};

	if ((unsigned)status < G_N_ELEMENTS(names) && names[status])
		return names[status];
	return "unknown-status";
}

void etcd_error_set(struct etcd_error *error, enum etcd_status status, const char *format, ...)
{
	va_list args;

	memset(error, 0, sizeof(*error));
	error->status = status;
	va_start(args, format);
	g_vsnprintf(error->message, sizeof(error->message), format, args);
	va_end(args);
}

/* gRPC status codes (google.golang.org/grpc/codes). */
enum { GRPC_DEADLINE_EXCEEDED = 4, GRPC_NOT_FOUND = 5, GRPC_UNAVAILABLE = 14 };

enum etcd_verdict etcd_judge_grpc(int code, const char *message, enum etcd_status *status)
{
	/* Refused before being proposed to raft (etcd's rpctypes): never applied. */
	static const char *const not_applied[] = {
		"etcdserver: no leader",
		"etcdserver: not capable",
		"etcdserver: too many requests",
		"etcdserver: unhealthy cluster",
	};

	*status = ETCD_UNAVAILABLE;
	for (size_t i = 0; i < G_N_ELEMENTS(not_applied); i++)
		if (!strcmp(message, not_applied[i]))
			return ETCD_VERDICT_RETRY;
	if (strstr(message, "required revision has been compacted")) {
		*status = ETCD_COMPACTED;
		return ETCD_VERDICT_FINAL;
	}
	switch (code) {
	case GRPC_NOT_FOUND: /* "requested lease not found" */
		*status = ETCD_NOT_FOUND;
		return ETCD_VERDICT_FINAL;
	case GRPC_UNAVAILABLE: /* request timed out, leader changed, server stopped */
	case GRPC_DEADLINE_EXCEEDED:
		return ETCD_VERDICT_RETRY_IF_READ;
	default: /* a future revision, too many ops, no space (an alarm), ... */
		*status = ETCD_REJECTED;
		return ETCD_VERDICT_FINAL;
	}
}
