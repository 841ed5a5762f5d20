// SPDX-License-Identifier: MIT
/* A tracepoint program, then one that needs a cgroup nobody gives: attach()
 * must fail with nothing left attached, unless told to skip it. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp/sched/sched_process_exec")
int on_exec(void *ctx)
{
	return 0;
}

SEC("cgroup_skb/ingress")
int on_ingress(struct __sk_buff *skb)
{
	return 1;
}
