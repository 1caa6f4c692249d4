/* SPDX-License-Identifier: MIT */
/* Shared by the pool-lookup bench program (hash_lookup.bpf.c) and its
 * harness (tools/bench_hash.c). */
#ifndef TETHER_BENCH_HASH_LOOKUP_H
#define TETHER_BENCH_HASH_LOOKUP_H

#include <linux/types.h>

/* hl_tables (HASH_OF_MAPS, table id -> ARRAY of __u32) holds tables of
 * either layout: Maglev's as the data plane has it today (entry 0 the size M,
 * 1..M slots) and DxHash's (include/tether/dxhash.h). */
#define HL_MAX_TABLES 64

struct hl_config {
	__u64 table_id; /* also the function id the key is hashed with */
	__u64 key;      /* the routing key; varied runs add a per-CPU count */
	__u32 vary;     /* 0: the same key every run; 1: a new key every run */
	__u32 pad;
};

struct hl_result {
	__u32 slot;  /* the last lookup's answer (HL_NO_SLOT: no table) */
	__u32 runs;  /* lookups since the harness zeroed it */
};

#define HL_NO_SLOT 0xfffffffeu

#endif
