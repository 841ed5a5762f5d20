// SPDX-License-Identifier: MIT
/* A libbpf-tools-sized program for the build benchmark: eight programs over
 * scheduler, process and syscall tracepoints, six maps, options in .rodata. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "large.h"

/// @cmdarg {"default": 0, "short": "p", "long": "pid"}
const volatile pid_t targ_pid = 0;
/// @cmdarg {"default": 0, "long": "min-us"}
const volatile unsigned long long min_us = 0;
const volatile bool targ_failed = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, u64);
} start SEC(".maps");

/// @sample {"interval": 1000, "type": "log2_hist", "unit": "usecs"}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, struct hist);
} hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct event);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct event);
} heap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, u32);
	__type(value, u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline bool skip(u32 pid)
{
	return targ_pid && targ_pid != pid;
}

static __always_inline void count(u32 idx)
{
	u64 *c = bpf_map_lookup_elem(&counters, &idx);

	if (c)
		__sync_fetch_and_add(c, 1);
}

static __always_inline struct event *new_event(enum event_kind kind)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	u64 id = bpf_get_current_pid_tgid();

	if (!e)
		return NULL;
	__builtin_memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->pid = id >> 32;
	e->tid = (u32)id;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (u32)bpf_get_current_uid_gid();
	e->ts_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	return e;
}

static __always_inline unsigned int log2l(u64 v)
{
	unsigned int r = 0;

#pragma unroll
	for (int i = 0; i < 32; i++) {
		if (v <= 1)
			break;
		v >>= 1;
		r++;
	}
	return r;
}

SEC("tp/sched/sched_process_exec")
int handle_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	unsigned int off = ctx->__data_loc_filename & 0xFFFF;
	u32 pid = bpf_get_current_pid_tgid() >> 32;
	u64 ts = bpf_ktime_get_ns();
	struct event *e;

	if (skip(pid))
		return 0;
	bpf_map_update_elem(&start, &pid, &ts, BPF_ANY);
	count(0);
	e = new_event(EV_EXEC);
	if (!e)
		return 0;
	bpf_probe_read_str(&e->path, sizeof(e->path), (void *)ctx + off);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp/sched/sched_process_exit")
int handle_exit(struct trace_event_raw_sched_process_template *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32;
	u64 *ts, delta;
	struct event *e;

	if (pid != (u32)id || skip(pid))
		return 0;
	ts = bpf_map_lookup_elem(&start, &pid);
	if (!ts)
		return 0;
	delta = bpf_ktime_get_ns() - *ts;
	bpf_map_delete_elem(&start, &pid);
	if (delta / 1000 < min_us)
		return 0;
	count(1);
	e = new_event(EV_EXIT);
	if (!e)
		return 0;
	e->delta_ns = delta;
	e->ret = (BPF_CORE_READ(task, exit_code) >> 8) & 0xff;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp/syscalls/sys_enter_openat")
int enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id, zero = 0;
	struct event *e;

	if (skip(id >> 32))
		return 0;
	e = bpf_map_lookup_elem(&heap, &zero);
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	e->kind = EV_OPEN;
	e->pid = id >> 32;
	e->tid = tid;
	e->ts_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_probe_read_user_str(&e->path, sizeof(e->path), (void *)ctx->args[1]);
	bpf_map_update_elem(&pending, &tid, e, BPF_ANY);
	count(2);
	return 0;
}

SEC("tp/syscalls/sys_exit_openat")
int exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct event *p, *e;

	p = bpf_map_lookup_elem(&pending, &tid);
	if (!p)
		return 0;
	if (targ_failed && ctx->ret >= 0)
		goto cleanup;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		goto cleanup;
	__builtin_memcpy(e, p, sizeof(*e));
	e->ret = ctx->ret;
	e->delta_ns = bpf_ktime_get_ns() - p->ts_ns;
	bpf_ringbuf_submit(e, 0);
cleanup:
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(on_wakeup, struct task_struct *p)
{
	u32 pid = BPF_CORE_READ(p, pid);
	u64 ts = bpf_ktime_get_ns();

	if (skip(BPF_CORE_READ(p, tgid)))
		return 0;
	bpf_map_update_elem(&start, &pid, &ts, BPF_ANY);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	static const struct hist zero;
	u32 pid = BPF_CORE_READ(next, pid);
	u64 *tsp, delta;
	struct hist *h;
	unsigned int slot;

	tsp = bpf_map_lookup_elem(&start, &pid);
	if (!tsp)
		return 0;
	delta = (bpf_ktime_get_ns() - *tsp) / 1000;
	bpf_map_delete_elem(&start, &pid);
	h = bpf_map_lookup_elem(&hists, &pid);
	if (!h) {
		bpf_map_update_elem(&hists, &pid, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &pid);
		if (!h)
			return 0;
		BPF_CORE_READ_STR_INTO(&h->comm, next, comm);
	}
	slot = log2l(delta);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	__sync_fetch_and_add(&h->slots[slot], 1);
	count(3);
	return 0;
}

SEC("tp/signal/signal_generate")
int on_signal(struct trace_event_raw_signal_generate *ctx)
{
	struct event *e;

	if (skip(bpf_get_current_pid_tgid() >> 32))
		return 0;
	count(4);
	e = new_event(EV_SIGNAL);
	if (!e)
		return 0;
	e->ret = ctx->sig;
	e->ppid = ctx->pid;
	bpf_probe_read_kernel_str(&e->target, sizeof(e->target), ctx->comm);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("raw_tp/sched_process_fork")
int on_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	u32 pid = BPF_CORE_READ(child, tgid);
	u64 ts = bpf_ktime_get_ns();

	if (skip(pid))
		return 0;
	bpf_map_update_elem(&start, &pid, &ts, BPF_ANY);
	count(5);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
