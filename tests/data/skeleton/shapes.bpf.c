// SPDX-License-Identifier: MIT
/* tests/test_skeleton.py's program: one struct shape per exec, and options of
 * each kind a skeleton types (int, bool, enum, char array). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "shapes.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/// @cmdarg {"help": "report only this process id (0: all)"}
const volatile int target_pid = 0;
/// @cmdarg {"default": "MODE_B", "help": "the mode to report"}
const volatile enum mode start_mode = MODE_A;
const volatile bool verbose = true;
const volatile char label[8] = "shp";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct point);
	__type(value, enum mode);
} points SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

SEC("tp/sched/sched_process_exec")
int on_exec(void *ctx)
{
	struct shape *s;
	int pid = bpf_get_current_pid_tgid() >> 32;
	struct point key = { .x = pid, .y = 1 };
	enum mode *mode;

	if (target_pid && pid != target_pid)
		return 0;
	mode = bpf_map_lookup_elem(&points, &key);
	s = bpf_ringbuf_reserve(&events, sizeof(*s), 0);
	if (!s)
		return 0;
	__builtin_memset(s, 0, sizeof(*s));
	s->pid = pid;
	s->mode = mode ? *mode : start_mode;
	s->where.x = pid;
	s->where.y = -1;
	s->path[1].x = 5;
	s->mac[0] = 0xaa;
	s->mac[5] = 0x55;
	s->grid[1][2] = -3;
	s->value.as_int = 0x3f800000;
	s->port = 80;
	s->proto = 6;
	s->flag = 1;
	s->level = 5;
	s->from = 11;
	s->__pad = 12;
	s->ok = verbose;
	bpf_get_current_comm(&s->comm, sizeof(s->comm));
	bpf_ringbuf_submit(s, 0);
	return 0;
}
