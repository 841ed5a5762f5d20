// SPDX-License-Identifier: MIT
/*
 * wasm-allowlist, kernel side: report an exec() only when the new program's
 * command name (comm, NUL-padded to 16 bytes) is a key of the hash map
 * `allowed`, which the guest edits while this runs. The value counts the
 * execs reported for that name.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "wasm-allowlist.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/// command name -> execs reported; written by the guest, counted here
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, char[TASK_COMM_LEN]);
	__type(value, __u64);
} allowed SEC(".maps");

/// one record per reported exec
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

/// Report the exec if its command is allowed.
SEC("tp/sched/sched_process_exec")
int wal_exec(void *ctx)
{
	char comm[TASK_COMM_LEN] = {};
	struct task_struct *task;
	struct event *e;
	__u64 *seen;

	/* the name of the new program: exec has set it by now */
	bpf_get_current_comm(comm, sizeof(comm));
	seen = bpf_map_lookup_elem(&allowed, comm);
	if (!seen)
		return 0;
	__sync_fetch_and_add(seen, 1);

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->seen = *seen;
	__builtin_memcpy(e->comm, comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}
