// SPDX-License-Identifier: GPL-2.0
/* The program of a two-file build: its maps and settings are in maps.bpf.c,
 * declared here extern; the BPF static linker makes them one. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "progs.h"

extern struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

extern struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} calls SEC(".maps");

extern const volatile int target_tgid;

/// Counts getpid() calls per process and reports each
SEC("tp/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 one = 1, count = 1, *n;
	struct event *e;

	if (target_tgid && tgid != target_tgid)
		return 0;
	n = bpf_map_lookup_elem(&calls, &tgid);
	if (n)
		count = __sync_fetch_and_add(n, 1) + 1;
	else
		bpf_map_update_elem(&calls, &tgid, &one, BPF_ANY);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->tgid = tgid;
	e->calls = count;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}
