// SPDX-License-Identifier: GPL-2.0
/* A kprobe: loads everywhere, attaches only where kprobes are built in. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("kprobe/do_unlinkat")
int BPF_KPROBE(on_unlinkat, int dfd)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
