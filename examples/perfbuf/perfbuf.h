/* SPDX-License-Identifier: MIT */
/* Event sent from perfbuf.bpf.c to user space. */
#ifndef __PERFBUF_H
#define __PERFBUF_H

#define TASK_COMM_LEN 16
#define MAX_FILENAME_LEN 64

struct event {
	int pid;
	int ppid;
	unsigned int uid;
	char comm[TASK_COMM_LEN];
	char filename[MAX_FILENAME_LEN];
};

#endif /* __PERFBUF_H */
