// SPDX-License-Identifier: MIT
/* Case extern_typed_ksym: a typed `__ksym` variable, declared by the program
 * after the precompiled prefix (issue 27). libbpf finds `runqueues` in the
 * kernel's BTF (a per-CPU VAR); the kernel then needs its address, which it
 * finds only with CONFIG_KALLSYMS_ALL: without it the verifier says
 * "ldimm64 failed to find the address for kernel symbol 'runqueues'". */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

extern const struct rq runqueues __ksym;

__u64 nr_running = 0;
__u64 this_cpu_nr_running = 0;

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct rq *rq = bpf_per_cpu_ptr(&runqueues, 0);

	if (rq)
		nr_running = rq->nr_running;
	rq = bpf_this_cpu_ptr(&runqueues);
	this_cpu_nr_running = rq->nr_running;
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
