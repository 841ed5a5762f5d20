// SPDX-License-Identifier: MIT
/* Compiles, and the verifier refuses it: a map value used without checking
 * the lookup for NULL. tests/test_api.py expects a LoadError quoting that. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, int);
	__type(value, __u64);
} seen SEC(".maps");

SEC("tp/sched/sched_process_exec")
int unchecked(void *ctx)
{
	int key = 0;
	__u64 *value = bpf_map_lookup_elem(&seen, &key);

	*value += 1;
	return 0;
}
