/* SPDX-License-Identifier: MIT */
/* SipHash-2-4 over whole 64-bit words: the tag of a backend's ALIVE datagrams
 * (include/tether/wire.h), computed by its agent and checked by the XDP
 * program. Shared so both compute the same tag from the same inputs. Words
 * are hashed as host-order integers, not bytes: both ends run it on values
 * they have already decoded from the header. */
#ifndef TETHER_SIPHASH_H
#define TETHER_SIPHASH_H

#include <linux/types.h>

#define TETHER_ROTL64(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

#define TETHER_SIPROUND(v0, v1, v2, v3)                                       \
	do {                                                                  \
		v0 += v1; v1 = TETHER_ROTL64(v1, 13); v1 ^= v0;                \
		v0 = TETHER_ROTL64(v0, 32);                                   \
		v2 += v3; v3 = TETHER_ROTL64(v3, 16); v3 ^= v2;                \
		v0 += v3; v3 = TETHER_ROTL64(v3, 21); v3 ^= v0;                \
		v2 += v1; v1 = TETHER_ROTL64(v1, 17); v1 ^= v2;                \
		v2 = TETHER_ROTL64(v2, 32);                                   \
	} while (0)

/* SipHash-2-4 of the 24-byte message m[0], m[1], m[2] (little-endian words,
 * as the reference implementation reads bytes) under key k[0], k[1]. */
static inline __u64 tether_siphash3(const __u64 k[2], __u64 m0, __u64 m1, __u64 m2)
{
	__u64 v0 = 0x736f6d6570736575ULL ^ k[0];
	__u64 v1 = 0x646f72616e646f6dULL ^ k[1];
	__u64 v2 = 0x6c7967656e657261ULL ^ k[0];
	__u64 v3 = 0x7465646279746573ULL ^ k[1];
	__u64 last = (__u64)24 << 56;

	v3 ^= m0; TETHER_SIPROUND(v0, v1, v2, v3); TETHER_SIPROUND(v0, v1, v2, v3); v0 ^= m0;
	v3 ^= m1; TETHER_SIPROUND(v0, v1, v2, v3); TETHER_SIPROUND(v0, v1, v2, v3); v0 ^= m1;
	v3 ^= m2; TETHER_SIPROUND(v0, v1, v2, v3); TETHER_SIPROUND(v0, v1, v2, v3); v0 ^= m2;
	v3 ^= last; TETHER_SIPROUND(v0, v1, v2, v3); TETHER_SIPROUND(v0, v1, v2, v3); v0 ^= last;
	v2 ^= 0xff;
	TETHER_SIPROUND(v0, v1, v2, v3);
	TETHER_SIPROUND(v0, v1, v2, v3);
	TETHER_SIPROUND(v0, v1, v2, v3);
	TETHER_SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/* The tag of an ALIVE datagram: the message is a domain word ("ALIVE" and
 * the wire version), the backend id and the sequence number. */
#define TETHER_ALIVE_DOMAIN 0x414c495645000001ULL
static inline __u64 tether_alive_tag(const __u64 key[2], __u64 backend_id, __u64 seq)
{
	return tether_siphash3(key, TETHER_ALIVE_DOMAIN, backend_id, seq);
}

#endif
