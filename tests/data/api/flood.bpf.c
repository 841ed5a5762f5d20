// SPDX-License-Identifier: MIT
/* benchmarks/api.py's event source: one ring buffer record per getppid() of
 * process target_pid, so a loop of getppid() fills the buffer fast. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "flood.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile int target_pid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024 * 1024);
} events SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	struct flood_event *e;
	int pid = bpf_get_current_pid_tgid() >> 32;

	if (pid != target_pid)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = pid;
	e->ts = bpf_ktime_get_ns();
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}
