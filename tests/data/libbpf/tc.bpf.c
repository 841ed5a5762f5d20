// SPDX-License-Identifier: GPL-2.0
/* Counts packets on a tc hook and lets them through. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define TC_ACT_OK 0

__u64 packets;

SEC("tc")
int tc_pass(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&packets, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
