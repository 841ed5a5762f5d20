// SPDX-License-Identifier: GPL-2.0
/* Counts calls of a user function and remembers its first argument. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* One struct so the .bss layout the test reads is fixed. */
struct {
	int calls;
	long last_arg;
} stats;

SEC("uprobe")
int BPF_UPROBE(on_call, long arg)
{
	__sync_fetch_and_add(&stats.calls, 1);
	stats.last_arg = arg;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
