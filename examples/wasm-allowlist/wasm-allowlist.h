/* SPDX-License-Identifier: MIT */
/* What wasm-allowlist.bpf.c reports for an exec of an allowed command. */
#ifndef __WASM_ALLOWLIST_H
#define __WASM_ALLOWLIST_H

#define TASK_COMM_LEN 16

struct event {
	__s32 pid;
	__s32 ppid;
	__u64 seen;	/* execs of this command reported so far, this one included */
	char comm[TASK_COMM_LEN];
};

#endif /* __WASM_ALLOWLIST_H */
