// SPDX-License-Identifier: GPL-2.0
/* Fails verification: reads past the end of a 4-byte map value. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u32);
} arr SEC(".maps");

SEC("tp/sched/sched_process_exec")
int out_of_bounds(void *ctx)
{
	u32 key = 0;
	u32 *v = bpf_map_lookup_elem(&arr, &key);

	if (!v)
		return 0;
	return *(volatile u32 *)(v + 100);
}

char LICENSE[] SEC("license") = "GPL";
