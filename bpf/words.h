/* SPDX-License-Identifier: MIT */
/* Copies made of words. clang's BPF target assumes no misaligned access, so
 * a memcpy to or from a packet, or from a byte array, becomes byte loads,
 * shifts and stores (a 16-byte compare made that way cost a routed request
 * 3-4 ns). Misaligned packet words cost nothing more on x86-64 and arm64,
 * and the verifier allows them there; a stack side must be aligned for its
 * words, or the verifier refuses the program at load. Used by the router
 * and by the bench's programs alike. */
#ifndef TETHER_BPF_WORDS_H
#define TETHER_BPF_WORDS_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

/* A MAC address as a 32-bit and a 16-bit word. */
static __always_inline void put_mac(void *to, const void *from)
{
	*(__u32 *)to = *(const __u32 *)from;
	*(__u16 *)(to + 4) = *(const __u16 *)(from + 4);
}

/* len bytes as 8-byte words, then 2-byte ones (len even and constant, so
 * the loops unroll). */
static __always_inline void copy_words(void *to, const void *from, int len)
{
	int done = 0;

	for (; done + 8 <= len; done += 8)
		*(__u64 *)(to + done) = *(const __u64 *)(from + done);
	for (; done + 2 <= len; done += 2)
		*(__u16 *)(to + done) = *(const __u16 *)(from + done);
}

#endif
