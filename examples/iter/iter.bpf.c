// SPDX-License-Identifier: MIT
/*
 * iter: a BPF iterator over all tasks. Reading the iterator (for instance
 * `bpftool iter pin iter.bpf.o /sys/fs/bpf/tasks; cat /sys/fs/bpf/tasks`)
 * prints one line per process: pid, parent pid and comm.
 * vmlinux.h comes from ecc.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/// print only processes whose pid is at least this
/// @cmdarg {"default": 0, "long": "min-pid"}
const volatile int min_pid = 0;

/// One line per process (thread-group leaders only).
SEC("iter/task")
int dump_task(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	int ppid = 0;

	if (!task)
		return 0;

	if (ctx->meta->seq_num == 0)
		BPF_SEQ_PRINTF(seq, "%8s %8s %s\n", "PID", "PPID", "COMM");

	if (task->pid != task->tgid || task->tgid < min_pid)
		return 0;

	if (task->real_parent)
		ppid = task->real_parent->tgid;
	BPF_SEQ_PRINTF(seq, "%8d %8d %s\n", task->tgid, ppid, task->comm);
	return 0;
}
