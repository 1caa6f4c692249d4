// SPDX-License-Identifier: MIT
/* Checks of the operator's values (values.h). */
#include <ctype.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "values.h"
#include "control/protocol.h"

/* Unprintable bytes become '?' so that an odd argument cannot garble the
 * operator's terminal. */
void ctl_quote(const char *value, char *out, size_t size)
{
	size_t n = 0;

	for (; value[n] && n + 4 < size; n++)
		out[n] = isprint((unsigned char)value[n]) ? value[n] : '?';
	strcpy(out + n, value[n] ? "..." : "");
}

int ctl_parse_duration(const char *text, __u64 *ms)
{
	static const struct {
		const char *suffix;
		__u64 ms;
	} units[] = { { "", 1 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 } };
	const char *p = text;
	__u64 number = 0;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (number > (UINT64_MAX - (*p - '0')) / 10)
			return -1;
		number = number * 10 + (*p - '0');
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].suffix))
			continue;
		if (number > UINT64_MAX / units[i].ms)
			return -1;
		*ms = number * units[i].ms;
		return 0;
	}
	return -1;
}

static int check_duration(const char *what, const char *value, char *word, size_t word_size,
			  char *message, size_t size)
{
	char shown[64];
	__u64 ms;

	ctl_quote(value, shown, sizeof(shown));
	if (ctl_parse_duration(value, &ms)) {
		snprintf(message, size,
			 "bad duration '%s' for '%s': expected a whole number with a unit, like 30s, 500ms or 2m, or plain milliseconds",
			 shown, what);
		return -1;
	}
	/* tetherd reads 0 as "use the default", so 0 cannot mean "now". */
	if (ms == 0) {
		snprintf(message, size,
			 "%s must be at least 1ms (leave it out for tetherd's default)", what);
		return -1;
	}
	if (ms > UINT32_MAX) {
		snprintf(message, size, "%s '%s' is too long: at most %u ms (about 49 days)", what,
			 shown, UINT32_MAX);
		return -1;
	}
	snprintf(word, word_size, "%llu", (unsigned long long)ms);
	return 0;
}

/* As the kernel's dev_valid_name(). */
static int check_iface(const char *what, const char *value, char *message, size_t size)
{
	char shown[64];

	if (strlen(value) < IFNAMSIZ && strcmp(value, ".") && strcmp(value, "..") &&
	    !strpbrk(value, "/:"))
		return 0;
	ctl_quote(value, shown, sizeof(shown));
	snprintf(message, size,
		 "bad value '%s' for '%s': expected an interface name of 1 to %d characters without '/' or ':'",
		 shown, what, IFNAMSIZ - 1);
	return -1;
}

/* Runs the protocol library's getter for type on a one-argument request
 * whose key is what, so its message names the option the operator typed. */
static int check_with_protocol(enum ctl_value_type type, const char *what, const char *value,
			       char *message, size_t size)
{
	struct proto_request req = { .arg_count = 1, .args = { { what, value } } };
	const char *name;
	__u8 bytes[16];
	__u64 number;
	__u32 handle;
	__u16 vlan;
	struct proto_functions functions;

	switch (type) {
	case CTL_VALUE_NAME:
		return proto_get_name(&req, what, 1, &name, message, size) ? -1 : 0;
	case CTL_VALUE_ADDR:
		return proto_get_addr(&req, what, 1, bytes, message, size) ? -1 : 0;
	case CTL_VALUE_MAC:
		return proto_get_mac(&req, what, 1, bytes, message, size) ? -1 : 0;
	case CTL_VALUE_FUNCTION:
		return proto_get_function(&req, what, 1, &number, message, size) ? -1 : 0;
	case CTL_VALUE_CONTAINER:
	case CTL_VALUE_COUNT:
		return proto_get_u32(&req, what, 1, &handle, message, size) ? -1 : 0;
	case CTL_VALUE_KEY:
		return proto_get_u64(&req, what, 1, &number, message, size) ? -1 : 0;
	case CTL_VALUE_VLAN:
		return proto_get_vlan(&req, what, 1, &vlan, message, size) ? -1 : 0;
	case CTL_VALUE_FUNCTIONS:
		return proto_get_functions(&req, what, 1, &functions, message, size) ? -1 : 0;
	case CTL_VALUE_ENCAP:
		return proto_get_encap(&req, what, 1, bytes, message, size) ? -1 : 0;
	case CTL_VALUE_VNI:
		return proto_get_vni(&req, what, 1, &handle, message, size) ? -1 : 0;
	default:
		return 0;
	}
}

int ctl_value_check(enum ctl_value_type type, const char *what, const char *value, char *word,
		    size_t word_size, char *message, size_t message_size)
{
	char shown[64];

	if (!proto_value_valid(value)) {
		ctl_quote(value, shown, sizeof(shown));
		snprintf(message, message_size,
			 "bad value '%s' for '%s': a value must be non-empty, without spaces, '=' or control characters",
			 shown, what);
		return -1;
	}
	if (type == CTL_VALUE_DURATION)
		return check_duration(what, value, word, word_size, message, message_size);
	if (type == CTL_VALUE_IFACE && check_iface(what, value, message, message_size))
		return -1;
	if (check_with_protocol(type, what, value, message, message_size))
		return -1;
	if (strlen(value) >= word_size) {
		snprintf(message, message_size, "the value for %s is too long", what);
		return -1;
	}
	strcpy(word, value);
	return 0;
}
