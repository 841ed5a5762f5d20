// SPDX-License-Identifier: MIT
/* Case kconfig_externs: __kconfig externs become the .kconfig internal map
 * (named like "<obj prefix>.kconfig", mmapable, last in maps) and a
 * data_sections entry ".kconfig" with the externs as variables.
 * LINUX_KERNEL_VERSION comes from uname; the CONFIG_* values from
 * /proc/config.gz (or /boot/config-*); the __weak ones default to 0 when
 * the option or the config file is missing. */
#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>

extern int LINUX_KERNEL_VERSION __kconfig;
extern bool CONFIG_BPF_SYSCALL __kconfig __weak;
extern enum libbpf_tristate CONFIG_BPF_JIT __kconfig __weak;
extern int CONFIG_HZ __kconfig __weak;
extern bool CONFIG_ECC_SURELY_NOT_SET __kconfig __weak;

__u64 observed;

SEC("tp/syscalls/sys_enter_getpid")
int read_config(void *ctx)
{
	__u64 v = LINUX_KERNEL_VERSION;

	if (CONFIG_BPF_SYSCALL)
		v += 1;
	if (CONFIG_BPF_JIT == TRI_YES)
		v += 2;
	if (CONFIG_ECC_SURELY_NOT_SET)
		v += 4;
	v += CONFIG_HZ;
	observed = v;
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
