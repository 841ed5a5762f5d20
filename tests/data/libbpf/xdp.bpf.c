// SPDX-License-Identifier: GPL-2.0
/* Counts packets and passes them all. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

__u64 packets;

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	__sync_fetch_and_add(&packets, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
