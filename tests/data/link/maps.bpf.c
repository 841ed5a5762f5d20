// SPDX-License-Identifier: GPL-2.0
/* The maps and settings of a program split over two files (progs.bpf.c uses them). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} calls SEC(".maps");

/// Only report this process (0: every process)
const volatile int target_tgid = 0;

char LICENSE[] SEC("license") = "GPL";
