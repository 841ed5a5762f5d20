// SPDX-License-Identifier: MIT
/* Case extern_program_decls: externs the program declares itself, after the
 * precompiled prefix (issue 27):
 * - `__kconfig` variables, plain and `__weak`;
 * - a typeless `__ksym` (`const void`, resolved through /proc/kallsyms: a
 *   function, since a kernel without CONFIG_KALLSYMS_ALL lists no variables;
 *   a typed one is case extern_typed_ksym);
 * - a kfunc the program declares `__ksym` although vmlinux.h already declared
 *   it `__weak __ksym`: the first declaration, in the prefix, is the one whose
 *   BTF clang writes; called directly, it keeps its BTF all the same.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

extern int LINUX_KERNEL_VERSION __kconfig;
extern bool CONFIG_BPF_SYSCALL __kconfig __weak;
extern const void bpf_prog_put __ksym;
extern struct task_struct *bpf_task_from_pid(s32 pid) __ksym;

__u64 version = 0;
__u64 prog_put_addr = 0;
__u32 seen_pid = 0;

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct task_struct *found;

	version = LINUX_KERNEL_VERSION + (CONFIG_BPF_SYSCALL ? 1 : 0);
	prog_put_addr = (__u64)&bpf_prog_put;
	found = bpf_task_from_pid(p->pid);
	if (found) {
		seen_pid = found->pid;
		bpf_task_release(found);
	}
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
