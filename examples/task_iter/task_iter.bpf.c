// SPDX-License-Identifier: MIT
/*
 * task_iter: a BPF iterator over every thread that writes binary records
 * (struct task_info, from task_iter.h) with bpf_seq_write, as libbpf-bootstrap's
 * task_iter does. `ecc run` decodes them with the struct the program names.
 * vmlinux.h comes from ecc.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "task_iter.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/// only threads of processes whose pid is at least this
/// @cmdarg {"default": 0, "long": "min-pid"}
const volatile int min_pid = 0;

/// One struct task_info per thread, written raw into the seq_file.
/// @export "task_info"
SEC("iter/task")
int dump_task_info(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct task_info info = {};

	if (!task || task->tgid < min_pid)
		return 0;

	info.pid = task->tgid;
	info.tid = task->pid;
	info.ppid = task->real_parent ? task->real_parent->tgid : 0;
	info.state = task->__state;
	bpf_probe_read_kernel_str(info.comm, sizeof(info.comm), task->comm);
	bpf_seq_write(seq, &info, sizeof(info));
	return 0;
}
