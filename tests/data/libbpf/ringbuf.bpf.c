// SPDX-License-Identifier: GPL-2.0
/* Exec events into a ring buffer, filtered by the parent's tgid held in
 * .rodata; also touches a .bss counter and a .data global so the tests can
 * check internal maps and their initial values. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "event.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

const volatile int target_ppid = 0;   /* .rodata: 0 means every process */
int exec_count;                       /* .bss */
int data_magic = 42;                  /* .data */

SEC("tp/sched/sched_process_exec")
int handle_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	int ppid = BPF_CORE_READ(task, real_parent, tgid);
	struct event *e;

	if (target_ppid && ppid != target_ppid)
		return 0;
	__sync_fetch_and_add(&exec_count, 1);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->ppid = ppid;
	e->magic = data_magic;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
