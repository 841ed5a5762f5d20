// SPDX-License-Identifier: MIT
/* Case no_globals: maps in .maps but no global variables and no string
 * literals, so no internal map: maps holds exactly the .maps maps, in
 * declaration order, and data_sections == []. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

SEC("tp/syscalls/sys_enter_getpid")
int count_getpid(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u32 zero = 0;
	__u64 one = 1, *val;

	val = bpf_map_lookup_elem(&calls, &pid);
	if (val)
		__sync_fetch_and_add(val, 1);
	else
		bpf_map_update_elem(&calls, &pid, &one, BPF_NOEXIST);

	val = bpf_map_lookup_elem(&total, &zero);
	if (val)
		__sync_fetch_and_add(val, 1);

	bpf_ringbuf_output(&rb, &pid, sizeof(pid), 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
