// SPDX-License-Identifier: MIT
/*
 * wasm-bootstrap, kernel side: one ring buffer record per exec() and per
 * process exit. Exits of processes younger than min_duration_ns (set by the
 * guest in .rodata before load) are dropped here, in the kernel.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "wasm-bootstrap.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/// minimum lifetime (ns) of a process whose exit is reported; the guest's -d MS
const volatile __u64 min_duration_ns = 0;

/// when each live process exec'd (ns since boot), by pid
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __s32);
	__type(value, __u64);
} exec_start SEC(".maps");

/// exec and exit records for the guest
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} rb SEC(".maps");

static __always_inline void fill_task(struct event *e, __s32 pid)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	e->pid = pid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

/// Remember when the process started and report the exec.
SEC("tp/sched/sched_process_exec")
int wb_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	__s32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 now = bpf_ktime_get_ns();
	unsigned int name_at = ctx->__data_loc_filename & 0xFFFF;
	struct event *e;

	bpf_map_update_elem(&exec_start, &pid, &now, BPF_ANY);
	e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return 0;
	fill_task(e, pid);
	e->exit_event = 0;
	e->exit_code = 0;
	e->duration_ns = 0;
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + name_at);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/// Report the exit of a whole process (not of one of its threads) old enough.
SEC("tp/sched/sched_process_exit")
int wb_exit(struct trace_event_raw_sched_process_template *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__s32 pid = id >> 32;
	__u64 *started, lived = 0;
	struct task_struct *task;
	struct event *e;

	if (pid != (__u32)id)
		return 0;
	started = bpf_map_lookup_elem(&exec_start, &pid);
	if (started) {
		lived = bpf_ktime_get_ns() - *started;
		bpf_map_delete_elem(&exec_start, &pid);
	} else if (min_duration_ns) {
		return 0; /* started before we attached: its age is unknown */
	}
	if (lived < min_duration_ns)
		return 0;

	e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return 0;
	fill_task(e, pid);
	task = (struct task_struct *)bpf_get_current_task();
	e->exit_event = 1;
	e->exit_code = (BPF_CORE_READ(task, exit_code) >> 8) & 0xff;
	e->duration_ns = lived;
	e->filename[0] = '\0';
	bpf_ringbuf_submit(e, 0);
	return 0;
}
