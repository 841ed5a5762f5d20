// SPDX-License-Identifier: MIT
/*
 * runqlat: how long runnable tasks wait on a run queue before they get a
 * CPU, as log2 histograms. Uses BTF-enabled tracepoints (tp_btf), so it
 * attaches on any kernel with BTF, with no kprobe. vmlinux.h comes from ecc.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "runqlat.h"

#define MAX_ENTRIES 10240
#define TASK_RUNNING 0

/// @cmdarg {"default": false, "short": "P", "long": "pids", "help": "one histogram per process"}
const volatile bool targ_per_process = false;

/// @cmdarg {"default": false, "short": "L", "long": "tids", "help": "one histogram per thread"}
const volatile bool targ_per_thread = false;

/// @cmdarg {"default": false, "short": "m", "long": "milliseconds", "help": "millisecond histogram"}
const volatile bool targ_ms = false;

/// @cmdarg {"default": 0, "short": "p", "long": "pid", "help": "trace this process only"}
const volatile pid_t targ_tgid = 0;

/// enqueue time of each waiting thread
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, u32);
	__type(value, u64);
} start SEC(".maps");

static struct hist zero;

/// @sample {"interval": 1000, "type": "log2_hist", "unit": "usecs"}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, u32);
	__type(value, struct hist);
} hists SEC(".maps");

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

static __always_inline int trace_enqueue(u32 tgid, u32 pid)
{
	u64 ts;

	if (!pid)
		return 0;
	if (targ_tgid && targ_tgid != tgid)
		return 0;

	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &pid, &ts, BPF_ANY);
	return 0;
}

/// A task was woken up: it enters a run queue now.
SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup, struct task_struct *p)
{
	return trace_enqueue(BPF_CORE_READ(p, tgid), BPF_CORE_READ(p, pid));
}

/// A new task was woken up for the first time.
SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new, struct task_struct *p)
{
	return trace_enqueue(BPF_CORE_READ(p, tgid), BPF_CORE_READ(p, pid));
}

/// A context switch: the next task's wait ends; a preempted prev waits again.
SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	struct hist *histp;
	u64 *tsp, slot;
	u32 pid, hkey;
	s64 delta;

	if (BPF_CORE_READ(prev, __state) == TASK_RUNNING)
		trace_enqueue(BPF_CORE_READ(prev, tgid), BPF_CORE_READ(prev, pid));

	pid = BPF_CORE_READ(next, pid);
	tsp = bpf_map_lookup_elem(&start, &pid);
	if (!tsp)
		return 0;
	delta = bpf_ktime_get_ns() - *tsp;
	if (delta < 0)
		goto cleanup;

	if (targ_per_process)
		hkey = BPF_CORE_READ(next, tgid);
	else if (targ_per_thread)
		hkey = pid;
	else
		hkey = -1;

	histp = bpf_map_lookup_elem(&hists, &hkey);
	if (!histp) {
		bpf_map_update_elem(&hists, &hkey, &zero, BPF_NOEXIST);
		histp = bpf_map_lookup_elem(&hists, &hkey);
		if (!histp)
			goto cleanup;
	}
	if (targ_per_process || targ_per_thread)
		BPF_CORE_READ_STR_INTO(&histp->comm, next, comm);

	if (targ_ms)
		delta /= 1000000U;
	else
		delta /= 1000U;
	slot = log2l(delta);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	__sync_fetch_and_add(&histp->slots[slot], 1);

cleanup:
	bpf_map_delete_elem(&start, &pid);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
