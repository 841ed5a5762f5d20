// SPDX-License-Identifier: MIT
/*
 * opensnoop: report every openat() with the file name, the flags and the
 * result, using the syscall tracepoints. vmlinux.h comes from ecc.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "opensnoop.h"

/// @brief Trace openat() calls: who opened which file, and with what result.
/// @version 0.1
char LICENSE[] SEC("license") = "Dual BSD/GPL";

/// process id to trace (0: every process)
/// @cmdarg {"default": 0, "short": "p", "long": "pid"}
const volatile pid_t target_pid = 0;

/// report only the calls that failed
/// @cmdarg {"default": false, "short": "x", "long": "failed"}
const volatile bool targ_failed = false;

struct args_t {
	const char *fname;
	int flags;
};

/// arguments of the openat() calls in flight, by thread id
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct args_t);
} start SEC(".maps");

/// one record per finished openat()
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/// Remember the file name and flags of an openat() that starts.
SEC("tp/syscalls/sys_enter_openat")
int tracepoint__syscalls__sys_enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32, tid = (u32)id;
	struct args_t args = {};

	if (target_pid && target_pid != pid)
		return 0;

	args.fname = (const char *)ctx->args[1];
	args.flags = (int)ctx->args[2];
	bpf_map_update_elem(&start, &tid, &args, BPF_ANY);
	return 0;
}

/// Report the openat() that returns, with its result.
SEC("tp/syscalls/sys_exit_openat")
int tracepoint__syscalls__sys_exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct args_t *ap;
	struct event *e;
	int ret;

	ap = bpf_map_lookup_elem(&start, &tid);
	if (!ap)
		return 0;

	ret = ctx->ret;
	if (targ_failed && ret >= 0)
		goto cleanup;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		goto cleanup;
	e->pid = id >> 32;
	e->uid = (u32)bpf_get_current_uid_gid();
	e->ret = ret;
	e->flags = ap->flags;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_probe_read_user_str(&e->fname, sizeof(e->fname), ap->fname);
	bpf_ringbuf_submit(e, 0);

cleanup:
	bpf_map_delete_elem(&start, &tid);
	return 0;
}
