// SPDX-License-Identifier: MIT
/* Case subprograms: functions in .text are subprograms, not programs.
 * static_helper (static, __noinline) and global_helper (global, __noinline:
 * verified on its own as a global function) stay in .text and must not
 * appear in progs; inlined_helper leaves no symbol at all. progs holds only
 * on_getpid and on_getppid. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __noinline int static_helper(__u32 slot)
{
	__u64 *val = bpf_map_lookup_elem(&counters, &slot);

	if (!val)
		return 0;
	__sync_fetch_and_add(val, 1);
	return 1;
}

__noinline int global_helper(int x)
{
	return x * 2 + 1;
}

static __always_inline int inlined_helper(int x)
{
	return x + 7;
}

SEC("tp/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
	return static_helper(0) + global_helper(1) ? 0 : 1;
}

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	return static_helper(inlined_helper(0) & 3) ? 0 : global_helper(2) & 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
