/* SPDX-License-Identifier: MIT */
/* Event sent from opensnoop.bpf.c to user space: one openat() call. */
#ifndef __OPENSNOOP_H
#define __OPENSNOOP_H

#define TASK_COMM_LEN 16
#define NAME_MAX 255

struct event {
	int pid;
	int uid;
	int ret;		/* fd, or -errno */
	int flags;
	char comm[TASK_COMM_LEN];
	char fname[NAME_MAX];
};

#endif /* __OPENSNOOP_H */
