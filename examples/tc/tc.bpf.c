// SPDX-License-Identifier: MIT
/*
 * tc: a classifier on the ingress hook of an interface that reports each
 * IPv4 packet (source, destination, length, protocol) through a ring
 * buffer and lets it through. vmlinux.h comes from ecc.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "tc.h"

#define TC_ACT_OK	0
#define ETH_P_IP	0x0800

/// packets reported to user space
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} packets SEC(".maps");

/// Report each IPv4 packet on ingress, then let it continue.
/// @tchook {"ifindex": 1, "attach_point": "BPF_TC_INGRESS"}
/// @tcopts {"handle": 1, "priority": 1}
SEC("tc")
int tc_ingress(struct __sk_buff *ctx)
{
	void *data_end = (void *)(__u64)ctx->data_end;
	void *data = (void *)(__u64)ctx->data;
	struct ethhdr *eth = data;
	struct iphdr *iph;
	struct packet *p;

	if (ctx->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	iph = (struct iphdr *)(eth + 1);
	if ((void *)(iph + 1) > data_end)
		return TC_ACT_OK;

	p = bpf_ringbuf_reserve(&packets, sizeof(*p), 0);
	if (!p)
		return TC_ACT_OK;
	p->saddr = bpf_ntohl(iph->saddr);
	p->daddr = bpf_ntohl(iph->daddr);
	p->len = ctx->len;
	p->ttl = iph->ttl;
	p->protocol = iph->protocol;
	bpf_ringbuf_submit(p, 0);

	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
