// SPDX-License-Identifier: MIT
/*
 * execlat: how long each successful execve() takes, as a log2 histogram of
 * microseconds per command (the name the process has once exec succeeded),
 * plus the number of execs per command. Every successful exec lands in
 * exactly one slot, so a histogram's total is the number of execs: what the
 * exporter's tests count. vmlinux.h comes from ecc.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define MAX_ENTRIES 10240
#define MAX_SLOTS 27
#define TASK_COMM_LEN 16

/// @brief Time every execve(): log2 histograms of its duration per command.
/// @version 0.1
char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct comm_key {
	char comm[TASK_COMM_LEN];
};

/* one log2 histogram of exec durations and the exact sum of what it holds */
struct hist {
	__u32 slots[MAX_SLOTS];
	__u64 sum;
};

/// entry time (ns) of each execve() in flight, by thread id
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, u32);
	__type(value, u64);
} start SEC(".maps");

/// @sample {"interval": 1000, "type": "log2_hist", "unit": "usecs"}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, struct comm_key);
	__type(value, struct hist);
} hists SEC(".maps");

/// @sample {"interval": 1000, "type": "default_kv"}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, struct comm_key);
	__type(value, u64);
} execs SEC(".maps");

static struct hist zero;

/* index of the highest set bit: 0 for 0 and 1, 1 for 2..3, 2 for 4..7 ... */
static __always_inline u64 log2l(u64 v)
{
	u64 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8)  { v >>= 8;  r += 8; }
	if (v >> 4)  { v >>= 4;  r += 4; }
	if (v >> 2)  { v >>= 2;  r += 2; }
	if (v >> 1)  { r += 1; }
	return r;
}

/// An execve() starts: remember when.
SEC("tp/syscalls/sys_enter_execve")
int execve_enter(struct trace_event_raw_sys_enter *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 ts = bpf_ktime_get_ns();

	bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
	return 0;
}

/// An execve() returns: a successful one goes into its command's histogram.
SEC("tp/syscalls/sys_exit_execve")
int execve_exit(struct trace_event_raw_sys_exit *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct comm_key key = {};
	struct hist *histp;
	u64 *tsp, *count, one = 1, delta, slot;

	tsp = bpf_map_lookup_elem(&start, &tid);
	if (!tsp)
		return 0;
	delta = (bpf_ktime_get_ns() - *tsp) / 1000U;
	bpf_map_delete_elem(&start, &tid);
	if (ctx->ret != 0)
		return 0;

	bpf_get_current_comm(&key.comm, sizeof(key.comm));
	histp = bpf_map_lookup_elem(&hists, &key);
	if (!histp) {
		bpf_map_update_elem(&hists, &key, &zero, BPF_NOEXIST);
		histp = bpf_map_lookup_elem(&hists, &key);
		if (!histp)
			return 0;
	}
	slot = log2l(delta);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	__sync_fetch_and_add(&histp->slots[slot], 1);
	__sync_fetch_and_add(&histp->sum, delta);

	count = bpf_map_lookup_elem(&execs, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&execs, &key, &one, BPF_NOEXIST);
	return 0;
}
