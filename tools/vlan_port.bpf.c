// SPDX-License-Identifier: MIT
/* What a VLAN interface does, as tc programs, for the end-to-end tests: the
 * CI kernel has no 802.1Q driver (CONFIG_VLAN_8021Q is not set), so `ip link
 * add ... type vlan` fails there, and neither the vlan action nor any
 * classifier but cls_bpf is built. Attached to both ends of a veth
 * (tests/e2e/test_vlan.sh), a pair of these makes the link a VLAN segment
 * with real tags on the wire:
 *
 *   NAME_out (clsact egress): a frame without a tag leaves with the port's
 *       tagging (pushed in the frame itself when the device's VLAN offload is
 *       off); a frame that carries a tag already, as the frames tetherd's
 *       slow path builds for a backend on a VLAN do, leaves as it is.
 *   NAME_in (clsact ingress): a frame with exactly the port's tagging has it
 *       taken off and goes on untagged, as on a VLAN interface; any other
 *       frame, untagged ones included, is dropped (a trunk port with no
 *       untagged VLAN).
 *
 * The ports: q10 (802.1Q VID 10), qinq (802.1ad VID 20 outside, 802.1Q VID
 * 30 inside) and q100 (802.1Q VID 100). Loaded by tc: `tc filter add dev D
 * egress bpf direct-action obj vlan_port.bpf.o sec tc/q10_out`. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define VID_MASK 0x0fff

static __always_inline int is_tagged(const struct __sk_buff *skb)
{
	return skb->vlan_present || skb->protocol == bpf_htons(ETH_P_8021Q) ||
	       skb->protocol == bpf_htons(ETH_P_8021AD);
}

/* The receive path has moved the outer tag beside the frame (skb->vlan_*);
 * each pop moves the next one there. inner_proto 0: one tag only. */
static __always_inline int port_in(struct __sk_buff *skb, __u16 outer_proto, __u16 outer_vid,
				   __u16 inner_proto, __u16 inner_vid)
{
	if (!skb->vlan_present || skb->vlan_proto != bpf_htons(outer_proto) ||
	    (skb->vlan_tci & VID_MASK) != outer_vid || bpf_skb_vlan_pop(skb))
		return TC_ACT_SHOT;
	if (inner_proto &&
	    (!skb->vlan_present || skb->vlan_proto != bpf_htons(inner_proto) ||
	     (skb->vlan_tci & VID_MASK) != inner_vid || bpf_skb_vlan_pop(skb)))
		return TC_ACT_SHOT;
	return is_tagged(skb) ? TC_ACT_SHOT : TC_ACT_OK;
}

/* Inner first: pushing the outer one then moves the inner into the frame. */
static __always_inline int port_out(struct __sk_buff *skb, __u16 outer_proto, __u16 outer_vid,
				    __u16 inner_proto, __u16 inner_vid)
{
	if (is_tagged(skb))
		return TC_ACT_OK;
	if (inner_proto && bpf_skb_vlan_push(skb, bpf_htons(inner_proto), inner_vid))
		return TC_ACT_SHOT;
	if (bpf_skb_vlan_push(skb, bpf_htons(outer_proto), outer_vid))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

#define PORT(name, outer_proto, outer_vid, inner_proto, inner_vid)                     \
	SEC("tc/" #name "_in")                                                         \
	int name##_in(struct __sk_buff *skb)                                           \
	{                                                                              \
		return port_in(skb, outer_proto, outer_vid, inner_proto, inner_vid);   \
	}                                                                              \
	SEC("tc/" #name "_out")                                                        \
	int name##_out(struct __sk_buff *skb)                                          \
	{                                                                              \
		return port_out(skb, outer_proto, outer_vid, inner_proto, inner_vid);  \
	}

PORT(q10, ETH_P_8021Q, 10, 0, 0)
PORT(qinq, ETH_P_8021AD, 20, ETH_P_8021Q, 30)
PORT(q100, ETH_P_8021Q, 100, 0, 0)

char LICENSE[] SEC("license") = "Dual MIT/GPL";
