/* SPDX-License-Identifier: MIT */
/* task_iter: the record the iterator writes for each thread, in binary. */
#ifndef TASK_ITER_H
#define TASK_ITER_H

#define TASK_COMM_LEN 16

struct task_info {
	int pid;	/* thread group id: the process id user space sees */
	int tid;	/* this thread's id */
	int ppid;	/* the parent's process id */
	unsigned int state;	/* task_struct.__state: 0 running, 1 interruptible, ... */
	char comm[TASK_COMM_LEN];
};

#endif /* TASK_ITER_H */
