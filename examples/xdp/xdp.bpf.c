// SPDX-License-Identifier: MIT
/*
 * xdp: count the packets arriving on an interface per IP protocol
 * (TCP, UDP, ICMP, ...) and let every packet pass. vmlinux.h comes from ecc.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP	0x0800
#define ETH_P_IPV6	0x86DD

/// packets seen per IP protocol number (key 255: not IP)
/// @sample {"interval": 1000, "type": "default_kv"}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} proto_count SEC(".maps");

static __always_inline __u32 packet_proto(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	__u16 h_proto;

	if ((void *)(eth + 1) > data_end)
		return 255;
	h_proto = bpf_ntohs(eth->h_proto);

	if (h_proto == ETH_P_IP) {
		struct iphdr *iph = (void *)(eth + 1);

		if ((void *)(iph + 1) > data_end)
			return 255;
		return iph->protocol;
	}
	if (h_proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6h = (void *)(eth + 1);

		if ((void *)(ip6h + 1) > data_end)
			return 255;
		return ip6h->nexthdr;
	}
	return 255;
}

/// Count the packet under its IP protocol, then let it pass.
/// @ifindex 1
/// @flags 0
/// @xdpopts {"old_prog_fd": 0}
SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 key = packet_proto(data, data_end);
	__u64 *count;

	count = bpf_map_lookup_elem(&proto_count, &key);
	if (count) {
		__sync_fetch_and_add(count, 1);
	} else {
		__u64 one = 1;

		bpf_map_update_elem(&proto_count, &key, &one, BPF_NOEXIST);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
