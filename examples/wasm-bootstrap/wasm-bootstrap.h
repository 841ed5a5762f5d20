/* SPDX-License-Identifier: MIT */
/* What wasm-bootstrap.bpf.c sends the guest for each exec and each exit. */
#ifndef __WASM_BOOTSTRAP_H
#define __WASM_BOOTSTRAP_H

#define TASK_COMM_LEN 16
#define FILENAME_LEN 128

struct event {
	__u64 duration_ns;	/* exit: how long the process lived */
	__s32 pid;
	__s32 ppid;
	__u32 exit_code;	/* exit: the status the parent's wait() sees, >> 8 */
	__u8 exit_event;	/* 0: exec, 1: exit */
	char comm[TASK_COMM_LEN];
	char filename[FILENAME_LEN];	/* exec: the file exec'd */
};

#endif /* __WASM_BOOTSTRAP_H */
