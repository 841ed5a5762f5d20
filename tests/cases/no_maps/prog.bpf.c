// SPDX-License-Identifier: MIT
/* Case no_maps: one program, no maps, no global variables (LICENSE lives in
 * the "license" section, which is not a data section): maps == [],
 * data_sections == []. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tp/syscalls/sys_enter_getpid")
int just_return(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
