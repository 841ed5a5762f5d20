/* SPDX-License-Identifier: MIT */
/*
 * Event sent from execsnoop.bpf.c to user space: one exec() with its
 * command line. The args buffer is large, but each record carries only the
 * bytes filled (EVENT_SIZE), so a short command line costs a short record.
 */
#ifndef __EXECSNOOP_H
#define __EXECSNOOP_H

#define TASK_COMM_LEN 16
#define ARG_LEN 128			/* bytes read of one argument at most */
#define MAX_ARGS 60			/* arguments read at most */
#define ARGS_LEN (MAX_ARGS * ARG_LEN)	/* 7680 */

struct event {
	int pid;
	int ppid;
	unsigned int uid;
	int retval;			/* execve()'s result: 0, or -errno */
	int args_count;			/* arguments in args */
	unsigned int args_size;		/* bytes of args sent, the final NUL included */
	char comm[TASK_COMM_LEN];
	char args[ARGS_LEN];		/* the arguments, joined by spaces */
};

#define EVENT_HEADER_SIZE __builtin_offsetof(struct event, args)
#define EVENT_SIZE(e) (EVENT_HEADER_SIZE + (e)->args_size)

#endif /* __EXECSNOOP_H */
