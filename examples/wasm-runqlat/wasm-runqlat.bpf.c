// SPDX-License-Identifier: MIT
/*
 * wasm-runqlat, kernel side: how long a runnable task waits for a CPU, from
 * the moment it is woken (or preempted) to the switch that runs it, counted
 * in one log2 histogram of microseconds. BTF tracepoints, no kprobe.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "wasm-runqlat.h"

#define TASK_RUNNING 0

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/// when each runnable thread was queued (ns since boot), by thread id
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, __u64);
} queued SEC(".maps");

/// the one histogram (key 0), read by the guest
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hist);
} hist SEC(".maps");

static __always_inline void enqueue(__u32 tid)
{
	__u64 now = bpf_ktime_get_ns();

	if (tid)
		bpf_map_update_elem(&queued, &tid, &now, BPF_ANY);
}

/* floor(log2(v)), 0 for v <= 1 */
static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 r = 0;

	for (int shift = 32; shift > 0; shift >>= 1) {
		if (v >> shift) {
			v >>= shift;
			r += shift;
		}
	}
	return r;
}

/// A thread was woken: it is runnable from now.
SEC("tp_btf/sched_wakeup")
int BPF_PROG(wrq_wakeup, struct task_struct *p)
{
	enqueue(BPF_CORE_READ(p, pid));
	return 0;
}

/// A new thread was woken for the first time.
SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(wrq_wakeup_new, struct task_struct *p)
{
	enqueue(BPF_CORE_READ(p, pid));
	return 0;
}

/// next gets the CPU: its wait ends; prev, if still runnable, waits again.
SEC("tp_btf/sched_switch")
int BPF_PROG(wrq_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 tid = BPF_CORE_READ(next, pid), zero = 0, slot;
	__u64 *since, waited_us;
	struct hist *h;

	if (BPF_CORE_READ(prev, __state) == TASK_RUNNING)
		enqueue(BPF_CORE_READ(prev, pid));

	since = bpf_map_lookup_elem(&queued, &tid);
	if (!since)
		return 0;
	waited_us = (bpf_ktime_get_ns() - *since) / 1000;
	bpf_map_delete_elem(&queued, &tid);

	h = bpf_map_lookup_elem(&hist, &zero);
	if (!h)
		return 0;
	slot = log2_slot(waited_us);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	__sync_fetch_and_add(&h->slots[slot], 1);
	return 0;
}
