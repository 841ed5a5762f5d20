/* SPDX-License-Identifier: MIT */
/* Event sent from globals.bpf.c to user space. */
#ifndef __GLOBALS_H
#define __GLOBALS_H

struct event {
	int pid;
	char comm[16];
	char greeting[16];		/* from .data */
	int scale;			/* from .data.cfg */
	int mode;			/* from .rodata.cfg */
	unsigned int tag;		/* from .bss */
	unsigned long long seq;		/* .bss counter */
};

#endif /* __GLOBALS_H */
