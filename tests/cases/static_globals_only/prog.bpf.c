// SPDX-License-Identifier: MIT
/* Case static_globals_only: every global is static. They still land in
 * .bss, .data and .rodata (libbpf still creates the internal maps), but each
 * DATASEC holds only static VARs, so the maps are not mmapable (no "mmaped")
 * and data_sections == []. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __u64 hits;			/* .bss */
static __u64 step = 3;			/* .data */
static const volatile __u32 limit = 100;	/* .rodata */

SEC("tp/syscalls/sys_enter_getpid")
int count_getpid(void *ctx)
{
	if (hits < limit)
		__sync_fetch_and_add(&hits, step);
	step += 1;
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
