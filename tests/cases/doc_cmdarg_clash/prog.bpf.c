// Two variables claim the same short option: an error naming both lines.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/// @cmdarg {"short": "p", "long": "pid"}
const volatile int target_pid = 0;

/// @cmdarg {"short": "p", "long": "ppid"}
const volatile int parent_pid = 0;

SEC("tp/syscalls/sys_enter_getpid")
int use_vars(void *ctx)
{
	return target_pid + parent_pid;
}

char LICENSE[] SEC("license") = "GPL";
