// SPDX-License-Identifier: MIT
/*
 * perfbuf: report each exec() through a perf event array (the per-CPU
 * buffers that predate the BPF ring buffer). vmlinux.h comes from ecc.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "perfbuf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/// per-CPU buffers for the events
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} events SEC(".maps");

/// Send pid, parent pid, uid, comm and file name of every exec().
SEC("tp/sched/sched_process_exec")
int handle_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	unsigned fname_off = ctx->__data_loc_filename & 0xFFFF;
	struct event e = {};

	e.pid = bpf_get_current_pid_tgid() >> 32;
	e.ppid = BPF_CORE_READ(task, real_parent, tgid);
	e.uid = (u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(&e.comm, sizeof(e.comm));
	bpf_probe_read_kernel_str(&e.filename, sizeof(e.filename), (void *)ctx + fname_off);

	/* the event lives on the stack and is copied into this CPU's buffer */
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));
	return 0;
}
