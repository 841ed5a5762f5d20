// SPDX-License-Identifier: MIT
/*
 * uprobe: probe user-space functions. One program reports every line an
 * interactive bash reads (return of readline() in /bin/bash), the other
 * every chdir() made through the C library, by any process.
 * vmlinux.h comes from ecc.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "uprobe.h"

/// lines and directories reported to user space
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/// @cmdarg {"default": 0, "short": "p", "long": "pid", "help": "trace only this process id (0: all)"}
const volatile int target_pid = 0;

static __always_inline int report(const char *func, unsigned func_len, const char *str)
{
	struct event *e;
	int pid;

	pid = bpf_get_current_pid_tgid() >> 32;
	if (target_pid && pid != target_pid)
		return 0;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = pid;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	__builtin_memset(e->func, 0, sizeof(e->func));
	__builtin_memcpy(e->func, func, func_len);
	bpf_probe_read_user_str(&e->str, sizeof(e->str), str);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/// The line an interactive bash just read (return value of readline()).
/// The path of the binary is part of the section name.
SEC("uretprobe//bin/bash:readline")
int BPF_URETPROBE(bash_readline, const void *ret)
{
	if (!ret)
		return 0;
	return report("readline", sizeof("readline"), ret);
}

/// Every chdir() through the C library: libbpf finds libc.so.6 in the
/// library search path, so this attaches wherever glibc is installed.
/// Trigger: sh -c 'cd /tmp'
SEC("uprobe/libc.so.6:chdir")
int BPF_UPROBE(libc_chdir, const char *path)
{
	return report("chdir", sizeof("chdir"), path);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
