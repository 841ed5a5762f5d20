// SPDX-License-Identifier: MIT
/* A uprobe whose section names no target: tests/test_api.py gives it one through
 * attach(uprobe_binary=..., uprobe_function=...), and counts calls per process. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, int);
	__type(value, __u64);
} calls SEC(".maps");

SEC("uprobe")
int on_call(void *ctx)
{
	int pid = bpf_get_current_pid_tgid() >> 32;
	__u64 one = 1, *count;

	count = bpf_map_lookup_elem(&calls, &pid);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&calls, &pid, &one, BPF_ANY);
	return 0;
}
