// SPDX-License-Identifier: GPL-2.0
/* Programs that need a target ecc cannot guess: a socket filter, a cgroup
 * program and a uprobe naming no binary. Each counts into `hits` (key 0:
 * socket, 1: cgroup, 2: uprobe), which ecc samples. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/// hits per program
/// @sample {"interval": 200, "type": "default_kv"}
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

static __always_inline void hit(__u32 key)
{
	__u64 *count = bpf_map_lookup_elem(&hits, &key);

	if (count)
		__sync_fetch_and_add(count, 1);
}

SEC("socket")
int count_socket(struct __sk_buff *skb)
{
	hit(0);
	return skb->len;
}

SEC("cgroup_skb/egress")
int count_cgroup(struct __sk_buff *skb)
{
	hit(1);
	return 1;
}

SEC("uprobe")
int count_uprobe(void *ctx)
{
	hit(2);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
