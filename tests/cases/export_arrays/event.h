/* SPDX-License-Identifier: MIT */
#ifndef __EVENT_H
#define __EVENT_H

struct sample {
	unsigned int cpu;
	unsigned long long ts;
};

struct event {
	int pid;
	char comm[16];				/* "char[16]" */
	int grid[2][3][4];			/* "int[2][3][4]", outermost first */
	char names[4][16];			/* "char[4][16]" */
	struct sample samples[4];		/* "struct sample[4]" */
	struct sample *ptrs[2];			/* "struct sample *[2]" */
	unsigned long long (*hist_ptr)[8];	/* pointer to array: "unsigned long long (*)[8]" */
	unsigned char tail[0];			/* zero-length array: "unsigned char[0]" */
};

#endif
