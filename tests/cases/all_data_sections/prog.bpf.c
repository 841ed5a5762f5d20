// SPDX-License-Identifier: MIT
/* Case all_data_sections: globals in every data section kind: .data, .bss,
 * .rodata, .data.x, .rodata.x, .bss.x and .kconfig. Internal maps follow the
 * .maps map in ELF section order, which clang 19 makes .data, .rodata,
 * .data.x, .rodata.x, .bss.x, .bss (not the order of the declarations),
 * with .kconfig last. Each DATASEC mixes types (int, u64, char arrays, a
 * struct, a pointer, a bool); .data and .bss also hold a static variable
 * (skipped in data_sections; the maps stay mmapable because non-static
 * variables sit beside it).
 * .kconfig: clang writes the extern VARs in order of first use
 * (CONFIG_BPF_SYSCALL, LINUX_KERNEL_VERSION, CONFIG_HZ); libbpf lays them
 * out by alignment (largest first), then name, and after open the DATASEC
 * is sorted by offset: CONFIG_HZ, LINUX_KERNEL_VERSION, CONFIG_BPF_SYSCALL.
 * (Declaration order is LINUX_KERNEL_VERSION, CONFIG_BPF_SYSCALL, CONFIG_HZ.) */
#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>

struct limits {
	__u32 lo;
	__u32 hi;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} out SEC(".maps");

/* .data */
int data_int = 1;
char data_name[16] = "data";
struct limits data_limits = { .lo = 1, .hi = 10 };
static int data_static = 5;

/* .bss */
__u64 bss_counter;
bool bss_flag;
void *bss_ptr;
static __u64 bss_static;

/* .rodata */
const volatile int ro_int = 7;
const volatile char ro_name[8] = "ro";
const volatile __u64 ro_array[3] = { 1, 2, 3 };

/* .data.x, .rodata.x, .bss.x */
int datax_value SEC(".data.x") = 11;
const volatile int rodatax_value SEC(".rodata.x") = 12;
__u32 bssx_value SEC(".bss.x");

/* .kconfig */
extern int LINUX_KERNEL_VERSION __kconfig;
extern bool CONFIG_BPF_SYSCALL __kconfig __weak;
extern unsigned long CONFIG_HZ __kconfig __weak;

SEC("tp/syscalls/sys_enter_getpid")
int use_everything(void *ctx)
{
	__u32 zero = 0;
	__u64 v = 0;

	v += data_int + data_name[0] + data_limits.hi + data_static;
	v += ro_int + ro_name[0] + ro_array[2];
	v += datax_value + rodatax_value + bssx_value;
	v += CONFIG_BPF_SYSCALL;
	v += LINUX_KERNEL_VERSION;
	v += CONFIG_HZ;
	bss_static++;
	bss_counter += v;
	bss_flag = !bss_flag;
	bss_ptr = ctx;
	data_static += 1;
	bpf_map_update_elem(&out, &zero, &v, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
