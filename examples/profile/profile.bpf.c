// SPDX-License-Identifier: MIT
/*
 * profile: a sampling CPU profiler. User space opens a perf event per CPU
 * (e.g. PERF_COUNT_SW_CPU_CLOCK at 49 Hz) and attaches this program to it;
 * each sample stores the user and kernel stack of the running task in a
 * stack-trace map and counts how often each (process, stacks) pair was
 * seen. vmlinux.h comes from ecc.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "profile.h"

#define PERF_MAX_STACK_DEPTH 127
#define MAX_ENTRIES 10240

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/// sample only this process (0: every process)
/// @cmdarg {"default": 0, "short": "p", "long": "pid"}
const volatile pid_t targ_pid = 0;

/// skip the samples taken while the CPU is idle (pid 0)
/// @cmdarg {"default": true, "long": "exclude-idle"}
const volatile bool exclude_idle = true;

/// the stacks, as arrays of instruction pointers, by stack id
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(u32));
	__uint(value_size, PERF_MAX_STACK_DEPTH * sizeof(u64));
	__uint(max_entries, MAX_ENTRIES);
} stackmap SEC(".maps");

/// number of samples per (pid, user stack, kernel stack, comm)
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, struct key_t);
	__type(value, u64);
} counts SEC(".maps");

/// Called on every sample of the perf event: count the current stacks.
SEC("perf_event")
int do_perf_event(struct bpf_perf_event_data *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32;
	struct key_t key = {};
	u64 one = 1, *val;

	if (exclude_idle && (u32)id == 0)
		return 0;
	if (targ_pid && targ_pid != pid)
		return 0;

	key.pid = pid;
	bpf_get_current_comm(&key.comm, sizeof(key.comm));
	key.kern_stack_id = bpf_get_stackid(&ctx->regs, &stackmap, 0);
	key.user_stack_id = bpf_get_stackid(&ctx->regs, &stackmap, BPF_F_USER_STACK);

	val = bpf_map_lookup_elem(&counts, &key);
	if (val)
		__sync_fetch_and_add(val, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
	return 0;
}
