// SPDX-License-Identifier: MIT
/* Case export_qualifiers: const, volatile and restrict in member types (kept in export_types strings).
 * Build: ecc build prog.bpf.c event.h */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "event.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

SEC("tp/syscalls/sys_enter_getpid")
int send_event(void *ctx)
{
	struct event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
