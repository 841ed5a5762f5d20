// Doc comments on programs: `///` runs, `/** */` blocks with leading `*`,
// programs declared through libbpf's macros, XDP/TC attach annotations,
// multi-line JSON, a bare @KEY, and a comment detached by a blank line.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

/// @ifindex 1
/// @flags 0
/// @xdpopts {"old_prog_fd": 0}
SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/**
 * @tchook {"ifindex": 1,
 *          "attach_point": "BPF_TC_INGRESS"}
 * @tcopts {"handle": 1, "priority": 1}
 */
SEC("tc")
int tc_ingress(struct __sk_buff *skb)
{
	return 0;
}

/// Count unlinks: the plain text becomes the description,
/// and its lines are joined with one space.
SEC("kprobe/do_unlinkat")
int BPF_KPROBE(do_unlinkat, int dfd, struct filename *name)
{
	return 0;
}

/// @description return of do_unlinkat
/// @experimental
SEC("kretprobe/do_unlinkat")
int BPF_KRETPROBE(do_unlinkat_exit, long ret)
{
	return 0;
}

/// the syscall-wrapper macro
SEC("ksyscall/kill")
int BPF_KSYSCALL(kill_entry, pid_t pid, int sig)
{
	return 0;
}

/// @priority 10
SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return 0;
}

/// @binary "/bin/bash"
SEC("uretprobe//bin/bash:readline")
int BPF_URETPROBE(on_readline, const void *ret)
{
	return 0;
}

/// This comment is separated from the program by a blank line: not attached.

SEC("tp/syscalls/sys_enter_getpid")
int detached(void *ctx)
{
	return 0;
}

/// 42
SEC("tp/syscalls/sys_enter_getppid") int one_line(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";
