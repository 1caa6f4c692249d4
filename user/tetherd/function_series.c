// SPDX-License-Identifier: MIT
/* Bounded per-function series (function_series.h). */
#include "function_series.h"

#include <string.h>

/* A function this module counts for. */
struct tracked {
	__u64 function_id;
	__u64 retired_packets, retired_bytes; /* of its gone containers */
	bool labelled;
	/* labelled: what "other" had counted of it when it got its own series;
	 * unlabelled: what "other" counted of it at the last update. */
	__u64 other_packets, other_bytes;
};

struct function_series {
	__u32 limit;
	__u32 labelled;
	GHashTable *tracked; /* function id -> struct tracked */
	/* What "other" counted of functions it no longer holds. */
	__u64 other_packets, other_bytes;
};

struct function_series *function_series_new(__u32 limit)
{
	struct function_series *fs = g_new0(struct function_series, 1);

	fs->limit = limit;
	fs->tracked = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
	return fs;
}

void function_series_free(struct function_series *fs)
{
	if (!fs)
		return;
	g_hash_table_destroy(fs->tracked);
	g_free(fs);
}

__u32 function_series_labelled(const struct function_series *fs)
{
	return fs->labelled;
}

static struct tracked *track(struct function_series *fs, __u64 function_id)
{
	struct tracked *t = g_hash_table_lookup(fs->tracked, &function_id);

	if (!t) {
		t = g_new0(struct tracked, 1);
		t->function_id = function_id;
		g_hash_table_insert(fs->tracked, &t->function_id, t);
	}
	return t;
}

void function_series_retire(struct function_series *fs, __u64 function_id, __u64 packets,
			    __u64 bytes)
{
	struct tracked *t = track(fs, function_id);

	t->retired_packets += packets;
	t->retired_bytes += bytes;
}

static bool active(const struct function_input *in)
{
	return in && (in->warm || in->starting || in->draining || in->waiting);
}

static __u64 containers(const struct function_input *in)
{
	return (__u64)in->warm + in->starting + in->draining;
}

/* Who gets a free place first. */
static gint by_claim(gconstpointer a, gconstpointer b)
{
	const struct function_input *x = *(const struct function_input *const *)a;
	const struct function_input *y = *(const struct function_input *const *)b;

	if (x->warm != y->warm)
		return x->warm > y->warm ? -1 : 1;
	if (containers(x) != containers(y))
		return containers(x) > containers(y) ? -1 : 1;
	if (x->waiting != y->waiting)
		return x->waiting > y->waiting ? -1 : 1;
	return (x->function_id > y->function_id) - (x->function_id < y->function_id);
}

static gint by_id(gconstpointer a, gconstpointer b)
{
	__u64 x = ((const struct function_row *)a)->function_id;
	__u64 y = ((const struct function_row *)b)->function_id;

	return (x > y) - (x < y);
}

static gint tracked_by_id(gconstpointer a, gconstpointer b)
{
	__u64 x = (*(struct tracked *const *)a)->function_id;
	__u64 y = (*(struct tracked *const *)b)->function_id;

	return (x > y) - (x < y);
}

/* A labelled function with nothing left gives its place up: "other" keeps
 * what it had counted of it. */
static void evict(struct function_series *fs, struct tracked *t)
{
	fs->other_packets += t->other_packets;
	fs->other_bytes += t->other_bytes;
	fs->labelled--;
	g_hash_table_remove(fs->tracked, &t->function_id);
}

void function_series_update(struct function_series *fs, const struct function_input *inputs,
			    size_t n, GArray *rows)
{
	GHashTable *by_function = g_hash_table_new(g_int64_hash, g_int64_equal);
	GPtrArray *candidates = g_ptr_array_new();
	GPtrArray *idle = g_ptr_array_new(); /* labelled, nothing left: may give way */
	GPtrArray *gone = g_ptr_array_new();
	GHashTableIter iter;
	gpointer value;

	for (size_t i = 0; i < n; i++)
		g_hash_table_insert(by_function, (gpointer)&inputs[i].function_id,
				    (gpointer)&inputs[i]);
	for (size_t i = 0; i < n; i++)
		if (active(&inputs[i]))
			track(fs, inputs[i].function_id);

	/* Who is idle or gone, who wants a place. */
	g_hash_table_iter_init(&iter, fs->tracked);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		struct tracked *t = value;
		const struct function_input *in =
			g_hash_table_lookup(by_function, &t->function_id);

		if (active(in))
			continue;
		g_ptr_array_add(t->labelled ? idle : gone, t);
	}
	/* An unlabelled function with nothing left leaves "other", which keeps
	 * all it forwarded (its live containers went into retired). */
	for (guint i = 0; i < gone->len; i++) {
		struct tracked *t = g_ptr_array_index(gone, i);

		fs->other_packets += MAX(t->other_packets, t->retired_packets);
		fs->other_bytes += MAX(t->other_bytes, t->retired_bytes);
		g_hash_table_remove(fs->tracked, &t->function_id);
	}
	for (size_t i = 0; i < n; i++) {
		struct tracked *t = g_hash_table_lookup(fs->tracked, &inputs[i].function_id);

		if (t && !t->labelled && active(&inputs[i]))
			g_ptr_array_add(candidates, (gpointer)&inputs[i]);
	}
	g_ptr_array_sort(candidates, by_claim);
	g_ptr_array_sort(idle, tracked_by_id);

	/* Free places, then idle ones, to the strongest claims. */
	guint next_idle = 0;

	for (guint i = 0; i < candidates->len; i++) {
		const struct function_input *in = g_ptr_array_index(candidates, i);

		if (fs->labelled >= fs->limit) {
			if (next_idle >= idle->len)
				break;
			evict(fs, g_ptr_array_index(idle, next_idle++));
		}
		struct tracked *t = g_hash_table_lookup(fs->tracked, &in->function_id);

		/* "other" keeps what it counted of it; its own series goes on
		 * from there. (other_* holds that already.) */
		t->labelled = true;
		fs->labelled++;
	}

	/* The rows. */
	struct function_row other = { .function_id = FUNCTION_OTHER,
				      .packets = fs->other_packets,
				      .bytes = fs->other_bytes };

	g_array_set_size(rows, 0);
	g_hash_table_iter_init(&iter, fs->tracked);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		struct tracked *t = value;
		const struct function_input *in =
			g_hash_table_lookup(by_function, &t->function_id);
		struct function_input none = { .function_id = t->function_id };

		if (!in)
			in = &none;
		__u64 packets = t->retired_packets + in->packets;
		__u64 bytes = t->retired_bytes + in->bytes;

		if (t->labelled) {
			struct function_row row = {
				.function_id = t->function_id,
				.warm = in->warm,
				.starting = in->starting,
				.draining = in->draining,
				.waiting = in->waiting,
				.packets = packets >= t->other_packets ? packets - t->other_packets : 0,
				.bytes = bytes >= t->other_bytes ? bytes - t->other_bytes : 0,
			};

			g_array_append_val(rows, row);
			other.packets += t->other_packets;
			other.bytes += t->other_bytes;
			continue;
		}
		other.warm += in->warm;
		other.starting += in->starting;
		other.draining += in->draining;
		other.waiting += in->waiting;
		/* Never less than "other" said of it before. */
		t->other_packets = MAX(t->other_packets, packets);
		t->other_bytes = MAX(t->other_bytes, bytes);
		other.packets += t->other_packets;
		other.bytes += t->other_bytes;
	}
	g_array_sort(rows, by_id);
	g_array_append_val(rows, other);

	g_ptr_array_free(candidates, TRUE);
	g_ptr_array_free(idle, TRUE);
	g_ptr_array_free(gone, TRUE);
	g_hash_table_destroy(by_function);
}
