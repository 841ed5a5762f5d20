// SPDX-License-Identifier: GPL-2.0
/* Exec events through a perf event array, filtered by parent tgid. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "event.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} events SEC(".maps");

const volatile int target_ppid = 0;

SEC("tp/sched/sched_process_exec")
int handle_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct event e = {};

	e.ppid = BPF_CORE_READ(task, real_parent, tgid);
	if (target_ppid && e.ppid != target_ppid)
		return 0;
	e.pid = bpf_get_current_pid_tgid() >> 32;
	e.magic = 7;
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
