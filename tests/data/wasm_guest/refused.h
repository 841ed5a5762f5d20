/* SPDX-License-Identifier: MIT */
#ifndef __REFUSED_H
#define __REFUSED_H

/* A kernel pointer cannot cross to a wasm32 guest (8 bytes there, 4 here). */
struct bad {
	int pid;
	struct task_struct *task;
};

#endif /* __REFUSED_H */
