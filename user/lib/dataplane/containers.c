// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dataplane.h"
#include "tether_xdp.skel.h"

static int containers_fd(struct dataplane *dp)
{
	return bpf_map__fd(dp->skel->maps.containers);
}

__u64 monotonic_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (__u64)now.tv_sec * 1000000000ull + now.tv_nsec;
}

static int random_secret(__u64 *secret)
{
	do {
		if (getrandom(secret, sizeof(*secret), 0) != sizeof(*secret))
			return -errno;
	} while (*secret == 0);
	return 0;
}

void container_token(__u32 slot, const struct container_record *record,
		     struct tether_token *token)
{
	token->slot = htonl(slot);
	token->generation = htonl(record->generation);
	token->secret = record->secret;
}

/* The record's word in container_live (include/tether/maps.h): its secret
 * while it is warm and has no limit, else 0. */
__u64 container_live_word(const struct container_record *record)
{
	return record->state == CONTAINER_WARM && !record->limit ? record->secret : 0;
}

/* Writes the slot's record, which was *old, and its word in container_live,
 * in the order that never lets a key hit's fast way (bpf/routing.h) see more
 * than the record allows: a word that goes away or changes is cleared before
 * the record is written, a new one is set after (the map is mmapped; the
 * update's system call orders the stores around it). */
int container_record_write(struct dataplane *dp, __u32 slot, const struct container_record *old,
			   const struct container_record *record)
{
	__u64 before = container_live_word(old), after = container_live_word(record);

	if (slot >= TETHER_MAX_CONTAINERS)
		return -EINVAL;
	if (before && before != after)
		__atomic_store_n(&dp->live_words[slot], 0, __ATOMIC_SEQ_CST);
	if (bpf_map_update_elem(containers_fd(dp), &slot, record, BPF_ANY))
		return -errno;
	if (after && after != before)
		__atomic_store_n(&dp->live_words[slot], after, __ATOMIC_SEQ_CST);
	return 0;
}

int containers_read_all(struct dataplane *dp, struct container_record *records)
{
	const __u32 batch = 65536;
	__u32 *keys = malloc(batch * sizeof(*keys));
	__u32 out_batch, done = 0;
	int err = 0;

	if (!keys)
		return -ENOMEM;
	while (done < TETHER_MAX_CONTAINERS) {
		__u32 count = batch;

		if (bpf_map_lookup_batch(containers_fd(dp), done ? &out_batch : NULL, &out_batch,
					 keys, &records[done], &count, NULL) &&
		    errno != ENOENT) {
			err = -errno;
			break;
		}
		done += count;
		if (count == 0)
			break;
	}
	free(keys);
	return err;
}

#define NAMES_BATCH 4096

int container_names_for_each(struct dataplane *dp,
			     void (*fn)(__u32 slot, const char *name, void *ctx), void *ctx)
{
	int fd = bpf_map__fd(dp->skel->maps.container_meta);
	/* zeroed: valgrind 3.19 does not know BPF_MAP_LOOKUP_BATCH fills them
	 * (test_valgrind.sh), and zeroed once they stay defined to it */
	__u32 *slots = calloc(NAMES_BATCH, sizeof(*slots));
	struct container_meta *metas = calloc(NAMES_BATCH, sizeof(*metas));
	__u32 position; /* the hash table's bucket, the kernel's to fill */
	bool first = true, last = false;
	int err = !slots || !metas ? -ENOMEM : 0;

	while (!err && !last) {
		__u32 count = NAMES_BATCH;

		if (bpf_map_lookup_batch(fd, first ? NULL : &position, &position, slots, metas,
					 &count, NULL)) {
			if (errno != ENOENT) /* ENOENT: the last batch, count in it */
				err = -errno;
			last = true;
		}
		first = false;
		for (__u32 i = 0; !err && i < count; i++) {
			metas[i].name[TETHER_NAME_MAX - 1] = '\0';
			fn(slots[i], metas[i].name, ctx);
		}
	}
	free(slots);
	free(metas);
	return err;
}

int container_get(struct dataplane *dp, __u32 slot, struct container_record *record)
{
	if (slot >= TETHER_MAX_CONTAINERS)
		return -EINVAL;
	if (bpf_map_lookup_elem(containers_fd(dp), &slot, record))
		return -errno;
	return record->state == CONTAINER_FREE ? -ENOENT : 0;
}

/* The slot's per-CPU counters (container_stats) start at zero for each new
 * container, so they count its requests alone, not the slot's earlier
 * containers'. Nothing counts on a free slot meanwhile: the program counts a
 * container only once it has read its record. One batched update. */
static int zero_counters(struct dataplane *dp, __u32 slot)
{
	int cpus = libbpf_num_possible_cpus();

	if (cpus <= 0)
		return cpus ? cpus : -EINVAL;
	__u32 *keys = calloc(cpus, sizeof(*keys));
	struct container_counters *zeros = calloc(cpus, sizeof(*zeros));
	__u32 count = cpus;
	int err = 0;

	if (!keys || !zeros) {
		err = -ENOMEM;
		goto out;
	}
	for (int cpu = 0; cpu < cpus; cpu++)
		keys[cpu] = (__u32)cpu * TETHER_MAX_CONTAINERS + slot;
	if (bpf_map_update_batch(bpf_map__fd(dp->skel->maps.container_stats), keys, zeros, &count,
				 NULL))
		err = -errno;
out:
	free(keys);
	free(zeros);
	return err;
}

int container_install_identity(struct dataplane *dp, __u32 slot, __u64 function_id,
			       __u32 backend_id, enum container_state state, __u32 generation,
			       __u64 secret)
{
	struct container_record record, old;

	if (slot >= TETHER_MAX_CONTAINERS || function_id == 0 ||
	    backend_id >= TETHER_MAX_BACKENDS || state == CONTAINER_FREE || secret == 0)
		return -EINVAL;
	if (bpf_map_lookup_elem(containers_fd(dp), &slot, &record))
		return -errno;
	if (record.state != CONTAINER_FREE)
		return -EEXIST;
	old = record;
	int err = zero_counters(dp, slot);

	if (err)
		return err;
	record = (struct container_record){
		.function_id = function_id,
		.secret = secret,
		.generation = generation,
		.backend_id = backend_id,
		.state = state,
	};
	/* A new container's counts start from 0 (no token of the slot's past
	 * containers can reach the new one, so none of theirs comes in). */
	err = container_load_reset(dp, slot);
	if (err)
		return err;
	return container_record_write(dp, slot, &old, &record);
}

int container_install(struct dataplane *dp, __u32 slot, __u64 function_id, __u32 backend_id,
		      enum container_state state, struct tether_token *token)
{
	struct container_record record;
	__u64 secret;
	int err;

	if (slot >= TETHER_MAX_CONTAINERS)
		return -EINVAL;
	if (bpf_map_lookup_elem(containers_fd(dp), &slot, &record))
		return -errno;
	/* A new generation and secret: tokens of the slot's past containers
	 * can never name this one. */
	if ((err = random_secret(&secret)) ||
	    (err = container_install_identity(dp, slot, function_id, backend_id, state,
					      record.generation + 1, secret)))
		return err;
	if (token) {
		container_get(dp, slot, &record);
		container_token(slot, &record, token);
	}
	return 0;
}

int container_set_state(struct dataplane *dp, __u32 slot, enum container_state state,
			__u64 drain_deadline_ns)
{
	struct container_record record, old;
	int err;

	if (state == CONTAINER_FREE)
		return -EINVAL;
	if ((err = container_get(dp, slot, &record)))
		return err;
	old = record;
	record.state = state;
	record.drain_deadline_ns = state == CONTAINER_DRAINING ? drain_deadline_ns : 0;
	return container_record_write(dp, slot, &old, &record);
}

/* The generation stays, so the slot's next container gets a new one; the
 * secret is cleared so nothing matches the freed slot. */
int container_remove(struct dataplane *dp, __u32 slot)
{
	struct container_record record, old;
	int err;

	if ((err = container_get(dp, slot, &record)))
		return err;
	old = record;
	record = (struct container_record){ .generation = record.generation };
	return container_record_write(dp, slot, &old, &record);
}
