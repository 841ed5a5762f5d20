// SPDX-License-Identifier: GPL-2.0
/* An fentry program: needs BPF trampolines in the kernel. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("fentry/do_unlinkat")
int BPF_PROG(on_unlinkat_entry, int dfd)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
