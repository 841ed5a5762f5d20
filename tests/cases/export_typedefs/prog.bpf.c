// SPDX-License-Identifier: MIT
/* Case export_typedefs: members whose types are typedefs from vmlinux.h
 * (pid_t, uid_t, __u64, u32, bool, __s16, size_t), typedefs of typedefs,
 * a typedef of an anonymous struct, an array and a pointer of typedefs.
 * This case includes vmlinux.h (supplied by ecc).
 * Build: ecc build prog.bpf.c event.h */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "event.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

SEC("tp/sched/sched_process_exec")
int send_event(void *ctx)
{
	struct event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->uid = (u32)bpf_get_current_uid_gid();
	e->ts = bpf_ktime_get_ns();
	e->cpu = bpf_get_smp_processor_id();
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
