// SPDX-License-Identifier: MIT
/* The VM's IPIP decapsulator (bpf/decap_ipip.c) through BPF_PROG_TEST_RUN:
 * each input is a request frame built by pktgen with an outer IPv4 or IPv6
 * header put in by hand after its Ethernet header; what must come out is
 * that request frame byte for byte (the Ethernet addresses kept, the
 * EtherType of the inner family). Then what must pass untouched (another
 * destination, another protocol, an outer fragment, a frame too short for an
 * outer header, an agent of the other family) and what is ours but cut short
 * or of the wrong inner version: dropped and counted. Two programs are
 * loaded, one for an agent on IPv4 and one on IPv6. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_ether.h>

#include "decap_ipip.skel.h"
#include "pktgen.h"
#include "tether/decap.h"

#define AGENT4 "10.200.0.5"
#define AGENT6 "fd00:200::5"
#define OTHER4 "10.200.0.6"
#define OTHER6 "fd00:200::6"
#define ROUTER4 "10.99.0.1"
#define ROUTER6 "fd99::1"
#define FRAME_MAX 2048

static struct decap_ipip *agent4, *agent6;

struct outer {
	int family;       /* 4 or 6 */
	const char *dst;  /* the outer destination */
	__u8 proto;       /* 0: by the inner family (4 or 41) */
	int options;      /* IPv4: bytes of NOP options (a multiple of 4) */
	__u16 frag;       /* IPv4: host-order frag_off */
};

struct frames {
	__u8 inner[FRAME_MAX], in[FRAME_MAX];
	size_t inner_len, in_len;
};

static __u16 ipv4_sum(const __u8 *h, size_t len)
{
	__u32 sum = 0;

	for (size_t i = 0; i < len; i += 2)
		sum += (__u32)h[i] << 8 | h[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* The request (IPv4 or IPv6 inside), and it wrapped in the outer header. */
static void build(struct frames *f, int inner_family, const struct outer *o)
{
	struct pkt_spec s;
	__u8 *p = f->in;
	size_t ip_len;

	pkt_spec_default(&s, inner_family);
	f->inner_len = pkt_build(&s, f->inner, sizeof(f->inner));
	assert_true(f->inner_len > ETH_HLEN);
	ip_len = f->inner_len - ETH_HLEN;
	memcpy(p, f->inner, 12); /* the MACs */
	p += 12;
	*p++ = o->family == 4 ? 0x08 : 0x86;
	*p++ = o->family == 4 ? 0x00 : 0xdd;
	__u8 proto = o->proto ? o->proto : (inner_family == 4 ? 4 : 41);

	if (o->family == 4) {
		size_t hlen = 20 + (size_t)o->options;

		memset(p, 0, hlen);
		p[0] = (__u8)(0x40 | hlen / 4);
		p[2] = (__u8)((hlen + ip_len) >> 8);
		p[3] = (__u8)(hlen + ip_len);
		p[6] = (__u8)(o->frag >> 8);
		p[7] = (__u8)o->frag;
		p[8] = 64;
		p[9] = proto;
		assert_int_equal(inet_pton(AF_INET, ROUTER4, p + 12), 1);
		assert_int_equal(inet_pton(AF_INET, o->dst, p + 16), 1);
		memset(p + 20, 1, (size_t)o->options); /* NOPs */
		__u16 sum = ipv4_sum(p, hlen);

		p[10] = (__u8)(sum >> 8);
		p[11] = (__u8)sum;
		p += hlen;
	} else {
		memset(p, 0, 40);
		p[0] = 0x60;
		p[4] = (__u8)(ip_len >> 8);
		p[5] = (__u8)ip_len;
		p[6] = proto;
		p[7] = 64;
		assert_int_equal(inet_pton(AF_INET6, ROUTER6, p + 8), 1);
		assert_int_equal(inet_pton(AF_INET6, o->dst, p + 24), 1);
		p += 40;
	}
	memcpy(p, f->inner + ETH_HLEN, ip_len);
	f->in_len = (size_t)(p - f->in) + ip_len;
}

static struct tether_decap_stats counts(struct decap_ipip *skel)
{
	int cpus = libbpf_num_possible_cpus();
	struct tether_decap_stats total = {}, *per_cpu = calloc((size_t)cpus, sizeof(*per_cpu));
	__u32 zero = 0;

	assert_non_null(per_cpu);
	assert_int_equal(bpf_map__lookup_elem(skel->maps.decap_stats, &zero, sizeof(zero), per_cpu,
					      sizeof(*per_cpu) * (size_t)cpus, 0),
			 0);
	for (int c = 0; c < cpus; c++) {
		total.decapsulated += per_cpu[c].decapsulated;
		total.truncated += per_cpu[c].truncated;
	}
	free(per_cpu);
	return total;
}

/* Runs in[len] through skel; checks the verdict, the output (want[want_len])
 * and what the counters moved by. */
static void expect(struct decap_ipip *skel, const __u8 *in, size_t len, __u32 verdict,
		   const __u8 *want, size_t want_len, __u64 decapsulated, __u64 truncated)
{
	static __u8 out[FRAME_MAX];
	struct tether_decap_stats before = counts(skel), after;
	LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = in, .data_size_in = (__u32)len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);

	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.tether_decap), &run),
			 0);
	assert_int_equal(run.retval, verdict);
	if (want) {
		long diff = pkt_first_diff(out, run.data_size_out, want, want_len);

		if (diff >= 0) {
			fprintf(stderr, "first difference at byte %ld; got:\n", diff);
			pkt_hexdump(stderr, out, run.data_size_out);
			fprintf(stderr, "want:\n");
			pkt_hexdump(stderr, want, want_len);
			fail();
		}
	}
	after = counts(skel);
	assert_int_equal(after.decapsulated - before.decapsulated, decapsulated);
	assert_int_equal(after.truncated - before.truncated, truncated);
}

static void decapsulated(struct decap_ipip *skel, int inner_family, const struct outer *o)
{
	static struct frames f;

	build(&f, inner_family, o);
	expect(skel, f.in, f.in_len, XDP_PASS, f.inner, f.inner_len, 1, 0);
}

static void passes_untouched(struct decap_ipip *skel, int inner_family, const struct outer *o)
{
	static struct frames f;

	build(&f, inner_family, o);
	expect(skel, f.in, f.in_len, XDP_PASS, f.in, f.in_len, 0, 0);
}

/* ---- decapsulated, byte for byte ------------------------------------------ */

static void v4_in_v4(void **state)
{
	(void)state;
	decapsulated(agent4, 4, &(struct outer){ .family = 4, .dst = AGENT4 });
}

static void v6_in_v4(void **state)
{
	(void)state;
	decapsulated(agent4, 6, &(struct outer){ .family = 4, .dst = AGENT4 });
}

static void v4_in_v6(void **state)
{
	(void)state;
	decapsulated(agent6, 4, &(struct outer){ .family = 6, .dst = AGENT6 });
}

static void v6_in_v6(void **state)
{
	(void)state;
	decapsulated(agent6, 6, &(struct outer){ .family = 6, .dst = AGENT6 });
}

/* An outer IPv4 header with options: all of it comes off (IHL, not 20). */
static void v4_in_v4_outer_options(void **state)
{
	(void)state;
	decapsulated(agent4, 4, &(struct outer){ .family = 4, .dst = AGENT4, .options = 12 });
}

/* DF on the outer header is no fragment. */
static void v4_in_v4_dont_fragment(void **state)
{
	(void)state;
	decapsulated(agent4, 4, &(struct outer){ .family = 4, .dst = AGENT4, .frag = 0x4000 });
}

/* ---- not ours: untouched --------------------------------------------------- */

static void other_destination_v4(void **state)
{
	(void)state;
	passes_untouched(agent4, 4, &(struct outer){ .family = 4, .dst = OTHER4 });
}

static void other_destination_v6(void **state)
{
	(void)state;
	passes_untouched(agent6, 6, &(struct outer){ .family = 6, .dst = OTHER6 });
}

/* An agent on IPv4 whose address's mapped form is not an IPv6 destination. */
static void other_family(void **state)
{
	(void)state;
	passes_untouched(agent4, 4, &(struct outer){ .family = 6, .dst = "::ffff:" AGENT4 });
	passes_untouched(agent6, 4, &(struct outer){ .family = 4, .dst = AGENT4 });
}

/* Ours, but GRE (47) or UDP (17): not IPIP. */
static void other_protocol(void **state)
{
	(void)state;
	passes_untouched(agent4, 4, &(struct outer){ .family = 4, .dst = AGENT4, .proto = 47 });
	passes_untouched(agent6, 6, &(struct outer){ .family = 6, .dst = AGENT6, .proto = 17 });
}

/* The kernel reassembles fragments; the first (MF) and a later one (offset). */
static void outer_fragments(void **state)
{
	(void)state;
	passes_untouched(agent4, 4, &(struct outer){ .family = 4, .dst = AGENT4, .frag = 0x2000 });
	passes_untouched(agent4, 4, &(struct outer){ .family = 4, .dst = AGENT4, .frag = 0x0010 });
}

/* A plain request to the VM (no outer header). */
static void plain_request(void **state)
{
	static struct frames f;

	(void)state;
	build(&f, 4, &(struct outer){ .family = 4, .dst = AGENT4 });
	expect(agent4, f.inner, f.inner_len, XDP_PASS, f.inner, f.inner_len, 0, 0);
}

/* ---- cut short --------------------------------------------------------------- */

/* Too short for the outer header itself: not judged here, passed. */
static void outer_header_cut(void **state)
{
	static struct frames f;

	(void)state;
	build(&f, 4, &(struct outer){ .family = 4, .dst = AGENT4 });
	expect(agent4, f.in, ETH_HLEN + 19, XDP_PASS, f.in, ETH_HLEN + 19, 0, 0);
	build(&f, 6, &(struct outer){ .family = 6, .dst = AGENT6 });
	expect(agent6, f.in, ETH_HLEN + 39, XDP_PASS, f.in, ETH_HLEN + 39, 0, 0);
}

/* Ours, but the inner header is not whole: dropped, counted. */
static void inner_header_cut(void **state)
{
	static struct frames f;

	(void)state;
	build(&f, 4, &(struct outer){ .family = 4, .dst = AGENT4 });
	expect(agent4, f.in, ETH_HLEN + 20 + 19, XDP_DROP, NULL, 0, 0, 1);
	build(&f, 6, &(struct outer){ .family = 4, .dst = AGENT4 });
	expect(agent4, f.in, ETH_HLEN + 20 + 39, XDP_DROP, NULL, 0, 0, 1);
	build(&f, 6, &(struct outer){ .family = 6, .dst = AGENT6 });
	expect(agent6, f.in, ETH_HLEN + 40 + 39, XDP_DROP, NULL, 0, 0, 1);
	build(&f, 4, &(struct outer){ .family = 6, .dst = AGENT6 });
	expect(agent6, f.in, ETH_HLEN + 40, XDP_DROP, NULL, 0, 0, 1);
}

/* Protocol 4 with an IPv6 packet inside (and 41 with IPv4): dropped, counted. */
static void inner_version_wrong(void **state)
{
	static struct frames f;

	(void)state;
	build(&f, 6, &(struct outer){ .family = 4, .dst = AGENT4, .proto = 4 });
	expect(agent4, f.in, f.in_len, XDP_DROP, NULL, 0, 0, 1);
	build(&f, 4, &(struct outer){ .family = 6, .dst = AGENT6, .proto = 41 });
	expect(agent6, f.in, f.in_len, XDP_DROP, NULL, 0, 0, 1);
}

static struct decap_ipip *load(const char *addr)
{
	struct decap_ipip *skel = decap_ipip__open();
	__u8 bytes[16] = {};

	if (!skel)
		return NULL;
	if (strchr(addr, ':')) {
		if (inet_pton(AF_INET6, addr, bytes) != 1)
			return NULL;
	} else {
		bytes[10] = bytes[11] = 0xff;
		if (inet_pton(AF_INET, addr, bytes + 12) != 1)
			return NULL;
	}
	memcpy((void *)skel->rodata->decap_addr, bytes, sizeof(bytes));
	if (decap_ipip__load(skel)) {
		decap_ipip__destroy(skel);
		return NULL;
	}
	return skel;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(v4_in_v4),
		cmocka_unit_test(v6_in_v4),
		cmocka_unit_test(v4_in_v6),
		cmocka_unit_test(v6_in_v6),
		cmocka_unit_test(v4_in_v4_outer_options),
		cmocka_unit_test(v4_in_v4_dont_fragment),
		cmocka_unit_test(other_destination_v4),
		cmocka_unit_test(other_destination_v6),
		cmocka_unit_test(other_family),
		cmocka_unit_test(other_protocol),
		cmocka_unit_test(outer_fragments),
		cmocka_unit_test(plain_request),
		cmocka_unit_test(outer_header_cut),
		cmocka_unit_test(inner_header_cut),
		cmocka_unit_test(inner_version_wrong),
	};
	int status;

	if (geteuid()) {
		fprintf(stderr, "test_decap_ipip: needs root (BPF_PROG_LOAD, BPF_PROG_TEST_RUN)\n");
		return 1;
	}
	agent4 = load(AGENT4);
	agent6 = load(AGENT6);
	if (!agent4 || !agent6) {
		fprintf(stderr, "test_decap_ipip: cannot load bpf/decap_ipip.c: %s\n",
			strerror(errno));
		return 1;
	}
	status = cmocka_run_group_tests(tests, NULL, NULL);
	decap_ipip__destroy(agent4);
	decap_ipip__destroy(agent6);
	return status;
}
