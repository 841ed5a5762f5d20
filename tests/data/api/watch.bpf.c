// SPDX-License-Identifier: MIT
/*
 * tests/test_api.py's program: reports an exec only for the processes user
 * space wrote into `watched`, with the cookie and tag written there, and
 * counts those execs in `counts`. So a map written from Python decides what
 * the kernel reports, and the struct value written comes back in events.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "watch.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct watch {
	__u32 cookie;
	char tag[8];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, int);
	__type(value, struct watch);
} watched SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, int);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("tp/sched/sched_process_exec")
int handle_exec(void *ctx)
{
	int pid = bpf_get_current_pid_tgid() >> 32;
	struct watch *w = bpf_map_lookup_elem(&watched, &pid);
	struct watch_event *e;
	__u64 one = 1, *count;

	if (!w)
		return 0;
	count = bpf_map_lookup_elem(&counts, &pid);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&counts, &pid, &one, BPF_ANY);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = pid;
	e->cookie = w->cookie;
	__builtin_memcpy(e->tag, w->tag, sizeof(e->tag));
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}
