// SPDX-License-Identifier: GPL-2.0
/* A kprobe that reads its first argument: with __TARGET_ARCH_arm64 that is
 * user_pt_regs.regs[0] (offset 0), with __TARGET_ARCH_x86 pt_regs.di (112). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/// Count unlinks relative to this directory fd (AT_FDCWD by default)
const volatile int watch_dfd = -100;
int seen = 0;

SEC("kprobe/do_unlinkat")
int BPF_KPROBE(do_unlinkat, int dfd, struct filename *name)
{
	if (dfd == watch_dfd)
		__sync_fetch_and_add(&seen, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
