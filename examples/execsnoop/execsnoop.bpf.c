// SPDX-License-Identifier: MIT
/*
 * execsnoop: report every exec() with pid, parent, comm, result and command
 * line, in the manner of libbpf-tools' execsnoop. The event ends in a
 * 7680-byte buffer, yet a record holds only the bytes filled: a perf buffer
 * takes any length, so `/bin/true alpha beta` costs 40 + 21 bytes, not 7720.
 * vmlinux.h comes from ecc.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "execsnoop.h"

/// @brief Trace exec(): who started which program, with which arguments.
/// @version 0.1
char LICENSE[] SEC("license") = "Dual BSD/GPL";

/// arguments to read of each command line (at most 60)
/// @cmdarg {"default": 20, "long": "max-args"}
const volatile int max_args = 20;

/// events being built: scratch space too large for the BPF stack
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct event);
} scratch SEC(".maps");

/// exec() calls in flight, by process id, from entry to exit
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 512);
	__type(key, u32);
	__type(value, struct event);
} execs SEC(".maps");

/// per-CPU buffers for the events
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} events SEC(".maps");

/// Read the command line of an exec() that starts.
SEC("tp/syscalls/sys_enter_execve")
int tracepoint__syscalls__sys_enter_execve(struct trace_event_raw_sys_enter *ctx)
{
	const char *const *argv = (const char *const *)ctx->args[1];
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	u32 pid = bpf_get_current_pid_tgid() >> 32;
	unsigned int size = 0;
	u32 zero = 0;
	struct event *e;
	int i;

	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	e->pid = pid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (u32)bpf_get_current_uid_gid();
	e->retval = 0;
	e->args_count = 0;

	for (i = 0; i < MAX_ARGS && i < max_args; i++) {
		const char *arg = NULL;
		long len;

		if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) || !arg)
			break;
		/* room for a whole argument, so the verifier can bound the read */
		if (size > ARGS_LEN - ARG_LEN)
			break;
		len = bpf_probe_read_user_str(&e->args[size], ARG_LEN, arg);
		if (len <= 0)
			break;
		/* the previous argument's NUL becomes the space between the two */
		if (size > 0)
			e->args[size - 1] = ' ';
		size += len;
		e->args_count++;
	}
	if (size == 0) {
		/*
		 * No argument: still send one NUL. Perf buffers pad a record to
		 * 8 bytes with whatever the buffer held; a NUL that arrived ends
		 * the string before that padding, so it is never shown as text.
		 */
		e->args[0] = '\0';
		size = 1;
	}
	e->args_size = size;
	bpf_map_update_elem(&execs, &pid, e, BPF_ANY);
	return 0;
}

/// Send the exec() that returns: comm is the new program's by now.
SEC("tp/syscalls/sys_exit_execve")
int tracepoint__syscalls__sys_exit_execve(struct trace_event_raw_sys_exit *ctx)
{
	u32 pid = bpf_get_current_pid_tgid() >> 32;
	unsigned int size;
	struct event *e;

	e = bpf_map_lookup_elem(&execs, &pid);
	if (!e)
		return 0;
	e->retval = ctx->ret;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	size = EVENT_SIZE(e);
	if (size <= sizeof(*e))
		bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, e, size);
	bpf_map_delete_elem(&execs, &pid);
	return 0;
}
