// SPDX-License-Identifier: MIT
/* Case many_progs_one_section: several programs share an ELF section.
 * Functions are written in the order first_b, first_a, second_b, second_a,
 * third_b: clang puts all "tp/syscalls/sys_enter_getppid" functions into one
 * section and all "tp/syscalls/sys_enter_getpid" ones into another (sections
 * in order of first appearance), so progs are, by section index then by
 * offset: first_b, second_b, third_b, first_a, second_a. Every entry's
 * attach is its section name. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

static __always_inline int hit(__u32 slot)
{
	__u64 *val = bpf_map_lookup_elem(&hits, &slot);

	if (val)
		__sync_fetch_and_add(val, 1);
	return 0;
}

SEC("tp/syscalls/sys_enter_getppid")
int first_b(void *ctx)
{
	return hit(0);
}

SEC("tp/syscalls/sys_enter_getpid")
int first_a(void *ctx)
{
	return hit(1);
}

SEC("tp/syscalls/sys_enter_getppid")
int second_b(void *ctx)
{
	return hit(2);
}

SEC("tp/syscalls/sys_enter_getpid")
int second_a(void *ctx)
{
	return hit(3);
}

SEC("tp/syscalls/sys_enter_getppid")
int third_b(void *ctx)
{
	return hit(4);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
