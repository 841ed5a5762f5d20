// A short option must be one letter or digit.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/// @cmdarg {"short": "pid"}
const volatile int target_pid = 0;

SEC("tp/syscalls/sys_enter_getpid")
int use_vars(void *ctx)
{
	return target_pid;
}

char LICENSE[] SEC("license") = "GPL";
