/* SPDX-License-Identifier: MIT */
/* Event sent from uprobe.bpf.c to user space. */
#ifndef __UPROBE_H
#define __UPROBE_H

#define TASK_COMM_LEN 16
#define MAX_LINE_SIZE 80

struct event {
	int pid;
	char comm[TASK_COMM_LEN];
	char func[16];		/* "readline" or "chdir" */
	char str[MAX_LINE_SIZE];	/* the line read, or the directory */
};

#endif /* __UPROBE_H */
