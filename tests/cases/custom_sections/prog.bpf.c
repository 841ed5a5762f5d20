// SPDX-License-Identifier: MIT
/* Case custom_sections: globals put in custom sections with SEC(...):
 * .data.cfg (initialized, writable) and .rodata.cfg (const volatile), next
 * to .rodata and .bss; a string literal passed straight to a helper lands
 * in the mergeable-string section .rodata.str1.1, which has no DATASEC in
 * BTF (so its internal map is not mmapable and it is not in data_sections).
 * Internal map names: a section name with a second dot is used alone
 * (".data.cfg", ".rodata.cfg", ".rodata.str1.1"). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int sample_rate SEC(".data.cfg") = 10;
char tag[8] SEC(".data.cfg") = "cfg";

const volatile int verbose SEC(".rodata.cfg") = 1;
const volatile __u64 threshold SEC(".rodata.cfg") = 1000;

const volatile int target_pid = 0;
__u64 seen;

SEC("tp/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;

	if (target_pid && pid != target_pid)
		return 0;
	seen++;
	if (verbose && seen % sample_rate == 0 && seen > threshold)
		bpf_trace_printk("getpid %d\n", sizeof("getpid %d\n"), pid);
	if (tag[0] == 'x')
		bpf_trace_printk("tag x\n", sizeof("tag x\n"));
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
