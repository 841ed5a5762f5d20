// SPDX-License-Identifier: MIT
/* Case custom_section_odd_names: custom global sections whose names are
 * long or hold characters a map name may not have. What libbpf 1.4.6 does
 * (obj_name "prog_bpf"):
 *   .data.my-cfg (hyphen): bpf_map__name() is ".data.my-cfg" (the section
 *     name unchanged: custom .data.* / .rodata.* maps use their real name);
 *     the kernel's map name is ".data.my_cfg"; ident "data_my_cfg".
 *   .rodata.a_long_read_only_section: bpf_map__name() is the whole name;
 *     the kernel's is ".rodata.a_long_".
 *   .bss.a_long_zeroed_section: .bss.* maps do NOT use the real name:
 *     bpf_map__name() is ".bss.a_long_zer" (cut to 15), yet
 *     bpf_object__find_map_by_name() matches a name starting with "." only
 *     against the whole section name.
 * All three hold a non-static global, so all are mmapable. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int hyphen_value SEC(".data.my-cfg") = 1;
const volatile int long_ro_value SEC(".rodata.a_long_read_only_section") = 2;
__u64 long_bss_value SEC(".bss.a_long_zeroed_section");

SEC("tp/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
	long_bss_value += hyphen_value + long_ro_value;
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
