// SPDX-License-Identifier: MIT
/*
 * globals: every kind of global variable a BPF program can have, and how
 * each one reaches user space. On every exec() the program sends an event
 * carrying the current values, so a loader option that sets a global can be
 * seen arriving in the events. vmlinux.h comes from ecc.
 *
 *   section       how it is written                       options?
 *   .rodata       const volatile, read-only after load    yes
 *   .data         initialized, writable                   yes
 *   .bss          zero-initialized, writable              yes
 *   .data.cfg     SEC(".data.cfg") on an initialized one  yes
 *   .rodata.cfg   SEC(".rodata.cfg") on a const one       yes
 *   (static)      static globals: in .bss/.data, but private, so no option
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "globals.h"

/// @brief Show global variables in .rodata, .data, .bss and custom sections.
/// @version 0.1
char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

/// trace only this process id (0: every process)
/// @cmdarg {"default": 0, "short": "p", "long": "pid"}
const volatile int target_pid = 0;

/// text copied into every event; .data, so it can also change after load
char greeting[16] = "hello";

/// a value copied into every event; zero unless a loader sets it
unsigned int tag;

/// number of events sent so far
unsigned long long seq;

/// multiplier kept in a custom writable section
int scale SEC(".data.cfg") = 2;

/// mode kept in a custom read-only section
const volatile int mode SEC(".rodata.cfg") = 1;

/* private state: static, so no loader option is made for it */
static unsigned long long dropped;

/// Send the current values of the globals on each exec().
SEC("tp/sched/sched_process_exec")
int handle_exec(void *ctx)
{
	struct event *e;
	int pid;

	pid = bpf_get_current_pid_tgid() >> 32;
	if (target_pid && pid != target_pid)
		return 0;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&dropped, 1);
		return 0;
	}
	e->pid = pid;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	__builtin_memcpy(e->greeting, greeting, sizeof(e->greeting));
	e->scale = scale;
	e->mode = mode;
	e->tag = tag;
	e->seq = __sync_fetch_and_add(&seq, 1) + 1;
	bpf_ringbuf_submit(e, 0);
	return 0;
}
