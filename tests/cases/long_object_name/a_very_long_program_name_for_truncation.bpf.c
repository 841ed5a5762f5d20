// SPDX-License-Identifier: MIT
/* Case long_object_name: the source (and so the object) has a long name.
 * obj_name = "a_very_long_program_name_for_truncation_bpf"; libbpf cuts the
 * kernel names of internal maps to 15 characters (BPF_OBJ_NAME_LEN - 1),
 * keeping the whole section name and as much of obj_name as fits:
 *   .rodata -> "a_very_l.rodata", .data -> "a_very_l.data",
 *   .bss -> "a_very_l.bss", .kconfig -> "a_very_.kconfig".
 * Custom sections (a second dot) get no prefix. For .data.* / .rodata.*
 * libbpf 1.4 reports the whole section name as the map name
 * (bpf_map__name() == ".data.a_long_custom_section", and only that finds it
 * with bpf_object__find_map_by_name); the kernel's copy is cut to
 * ".data.a_long_cu".
 * A .maps map with a name longer than 15 characters keeps its full name in
 * libbpf; only the kernel's copy is cut. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, __u64);
} a_map_with_a_rather_long_name SEC(".maps");

const volatile int option_in_rodata = 1;
int value_in_data = 2;
__u64 counter_in_bss;
int value_in_custom SEC(".data.a_long_custom_section") = 3;
const volatile int value_in_rodata_x SEC(".rodata.x") = 4;
extern int LINUX_KERNEL_VERSION __kconfig;

SEC("tp/syscalls/sys_enter_getpid")
int a_program_with_a_long_function_name_too(void *ctx)
{
	__u32 key = option_in_rodata + value_in_rodata_x;
	__u64 val = value_in_data + value_in_custom + LINUX_KERNEL_VERSION;

	counter_in_bss++;
	bpf_map_update_elem(&a_map_with_a_rather_long_name, &key, &val, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
