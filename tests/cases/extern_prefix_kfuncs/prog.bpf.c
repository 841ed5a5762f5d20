// SPDX-License-Identifier: MIT
/* Case extern_prefix_kfuncs: kfuncs declared in the precompiled prefix, used
 * three ways (issue 27):
 * - through a macro of a libbpf header: bpf_for (bpf_iter_num_new/next/destroy,
 *   `__weak __ksym` in <bpf/bpf_helpers.h>) and bpf_core_cast (bpf_rdonly_cast,
 *   `__ksym __weak` in <bpf/bpf_core_read.h>);
 * - directly from the program: bpf_task_from_pid and bpf_task_release, whose
 *   prototypes (`__weak __ksym`) come from the vmlinux.h that bpftool 7.5 writes;
 * - as an address only: bpf_ksym_exists(bpf_cgroup_from_id).
 * Every one is a FUNC with extern linkage in the .ksyms DATASEC of a cold build;
 * a warm build must have the same. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

__u64 sum = 0;
__u32 seen_pid = 0;
__u32 comm_len = 0;
int have_cgroup_kfunc = 0;

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct task_struct *found, *ro;
	int i;

	bpf_for(i, 0, 8)
		sum += i;
	found = bpf_task_from_pid(p->pid);
	if (found) {
		seen_pid = found->pid;
		bpf_task_release(found);
	}
	ro = bpf_core_cast(p, struct task_struct);
	comm_len = ro->comm[0] ? 1 : 0;
	have_cgroup_kfunc = bpf_ksym_exists(bpf_cgroup_from_id);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
