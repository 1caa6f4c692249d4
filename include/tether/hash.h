/* SPDX-License-Identifier: MIT */
/* The hashes that place keys and flows on a pool table, shared by the XDP
 * program, the Maglev builder and the tests so that every router (and every
 * test) computes the same placement from the same inputs; and cheaper ones
 * that give a routed request's outer headers their entropy. */
#ifndef TETHER_HASH_H
#define TETHER_HASH_H

#include <linux/types.h>

/* MurmurHash3's 64-bit finalizer: cheap in BPF, good avalanche. */
static inline __u64 tether_mix64(__u64 x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* Routing key of a function (host byte order) -> 64-bit placement hash. */
static inline __u64 tether_hash_key(__u64 function_id, __u64 routing_key)
{
	return tether_mix64(routing_key ^ tether_mix64(function_id));
}

/* A flow: addresses as 16 bytes (v4-mapped for IPv4), ports as on the wire. */
static inline __u64 tether_hash_flow(const __u8 src[16], const __u8 dst[16],
				     __u16 src_port, __u16 dst_port)
{
	__u64 words[4];

	__builtin_memcpy(words, src, 16);
	__builtin_memcpy(&words[2], dst, 16);
	__u64 h = tether_mix64(words[0] ^ 0x9e3779b97f4a7c15ULL);
	h = tether_mix64(h ^ words[1]);
	h = tether_mix64(h ^ words[2]);
	h = tether_mix64(h ^ words[3]);
	return tether_mix64(h ^ ((__u64)src_port << 16 | dst_port));
}

/* Entropy for the outer headers of a routed request (VXLAN's UDP source
 * port, IPv6's flow label), so that ECMP in the fabric spreads requests and
 * keeps a key or flow on one path. Nothing is placed by these: one mix
 * instead of tether_hash_key's two and tether_hash_flow's five, as each
 * round is a chain of multiplies on every routed request. */
static inline __u64 tether_spread_key(__u64 function_id, __u64 routing_key)
{
	return tether_mix64(function_id * 0x9e3779b97f4a7c15ULL ^ routing_key);
}

/* The source's words multiplied, the destination's not, so that a flow and
 * its reverse differ. */
static inline __u64 tether_spread_flow(const __u8 src[16], const __u8 dst[16], __u16 src_port,
				       __u16 dst_port)
{
	__u64 words[4];

	__builtin_memcpy(words, src, 16);
	__builtin_memcpy(&words[2], dst, 16);
	return tether_mix64((words[0] ^ words[1]) * 0x9e3779b97f4a7c15ULL ^ words[2] ^ words[3] ^
			    ((__u64)src_port << 16 | dst_port));
}

/* The second choice of power of two choices (bpf/routing.h, built for the
 * bench with TETHER_PICK_P2C): a rehash of the first's placement hash. */
static inline __u64 tether_hash_second(__u64 hash)
{
	return tether_mix64(hash ^ 0x7032632d63686f31ULL);
}

/* Index of the table entry a hash falls on (entries 1..size). */
static inline __u32 tether_pool_index(__u64 hash, __u32 size)
{
	return 1 + (__u32)(hash % size);
}

#endif
