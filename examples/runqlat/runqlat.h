/* SPDX-License-Identifier: MIT */
/* Histogram value type of runqlat.bpf.c. */
#ifndef __RUNQLAT_H
#define __RUNQLAT_H

#define TASK_COMM_LEN 16
#define MAX_SLOTS 26

/* one log2 histogram of run-queue latency, and whose it is */
struct hist {
	__u32 slots[MAX_SLOTS];
	char comm[TASK_COMM_LEN];
};

#endif /* __RUNQLAT_H */
