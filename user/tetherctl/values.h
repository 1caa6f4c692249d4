/* SPDX-License-Identifier: MIT */
/* tetherctl's checks of what the operator typed, before any of it becomes a
 * protocol word: a bad value is refused here, with a message that names the
 * option, and never reaches tetherd. Numbers, names, MACs and addresses are
 * checked by the protocol library's own getters, so tetherctl accepts exactly
 * what tetherd accepts. */
#ifndef TETHER_CTL_VALUES_H
#define TETHER_CTL_VALUES_H

#include <linux/types.h>
#include <stddef.h>

enum ctl_value_type {
	CTL_VALUE_NAME,      /* a backend or container name */
	CTL_VALUE_ADDR,      /* IPv4 or IPv6 address */
	CTL_VALUE_MAC,       /* aa:bb:cc:dd:ee:ff */
	CTL_VALUE_IFACE,     /* a Linux interface name */
	CTL_VALUE_FUNCTION,  /* nonzero 64-bit function id */
	CTL_VALUE_CONTAINER, /* a container handle (32-bit slot number) */
	CTL_VALUE_KEY,       /* a 64-bit routing key */
	CTL_VALUE_DURATION,  /* "30s", "500ms", "2m" or milliseconds; sent as ms */
	CTL_VALUE_VLAN,      /* an 802.1Q VLAN id, 1-4094 (0: untagged) */
	CTL_VALUE_FUNCTIONS, /* "7,9,0x100-0x1ff" or "any" */
	CTL_VALUE_COUNT,     /* a 32-bit count (a concurrency limit; 0: none) */
	CTL_VALUE_ENCAP,     /* l2, vxlan or ipip */
	CTL_VALUE_VNI,       /* a VXLAN network identifier, 0-16777215 */
};

/* Copies value for a message: unprintable bytes as '?', cut to fit size
 * with "..." when it is longer. */
void ctl_quote(const char *value, char *out, size_t size);

/* Parses a duration: a whole number followed by "ms", "s", "m", "h" or
 * nothing (milliseconds). Returns 0 and sets *ms, or -1. */
int ctl_parse_duration(const char *text, __u64 *ms);

/* Checks value as type and writes the protocol word for it into word (the
 * value as typed, or a duration in milliseconds). what names the value for
 * the message: "--mac", "NAME". Returns 0, or -1 with one sentence in
 * message. */
int ctl_value_check(enum ctl_value_type type, const char *what, const char *value, char *word,
		    size_t word_size, char *message, size_t message_size);

#endif
