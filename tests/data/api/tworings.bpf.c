// SPDX-License-Identifier: MIT
/* Two ring buffers fed by one program: each getppid() of target_pid sends its
 * sequence number to ring "odd" or "even" by parity, so a reader can tell
 * whether each map's records come in order and none is lost or repeated. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "tworings.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile int target_pid = 0;
__u32 seq = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} odd SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} even SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	struct tick *t;
	__u32 n;

	if ((int)(bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	n = seq++; /* one thread of one process sends: no race to guard */
	if (n & 1)
		t = bpf_ringbuf_reserve(&odd, sizeof(*t), 0);
	else
		t = bpf_ringbuf_reserve(&even, sizeof(*t), 0);
	if (!t)
		return 0;
	t->seq = n;
	bpf_ringbuf_submit(t, 0);
	return 0;
}
