/* SPDX-License-Identifier: MIT */
/* The event of watch.bpf.c: an exec by a process user space asked to watch. */
#ifndef __WATCH_H
#define __WATCH_H

struct watch_event {
	int pid;
	unsigned int cookie;
	char tag[8];
	char comm[16];
};

#endif /* __WATCH_H */
