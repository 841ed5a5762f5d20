// SPDX-License-Identifier: GPL-2.0
/* The BPF side of the WebAssembly host tests: every exec sends its pid and comm
 * to a ring buffer and to a perf buffer; a hash map for the guest's map
 * operations; an XDP program the guest attaches to an interface it names. The
 * program names start with wasmh_ so the tests can look for them with bpftool. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct exec_event {
	__u32 pid;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} wasmh_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} wasmh_perf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} wasmh_table SEC(".maps");

/* The comm the guest wants events of (from its argv), so that other processes'
 * execs do not reach its callbacks; empty: every exec. */
struct comm_filter {
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct comm_filter);
} wasmh_filter SEC(".maps");

static __always_inline int wanted(void)
{
	__u32 zero = 0;
	struct comm_filter *f = bpf_map_lookup_elem(&wasmh_filter, &zero);
	char comm[16];

	if (!f || !f->comm[0])
		return 1;
	bpf_get_current_comm(comm, sizeof(comm));
	for (int i = 0; i < 16; i++) {
		if (comm[i] != f->comm[i])
			return 0;
		if (!comm[i])
			break;
	}
	return 1;
}

SEC("tp/sched/sched_process_exec")
int wasmh_exec(void *ctx)
{
	struct exec_event *e;

	if (!wanted())
		return 0;
	e = bpf_ringbuf_reserve(&wasmh_ring, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp/sched/sched_process_exec")
int wasmh_exec_perf(void *ctx)
{
	struct exec_event e = {};

	if (!wanted())
		return 0;
	e.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	bpf_perf_event_output(ctx, &wasmh_perf, BPF_F_CURRENT_CPU, &e, sizeof(e));
	return 0;
}

SEC("xdp")
int wasmh_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
