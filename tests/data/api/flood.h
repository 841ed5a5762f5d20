/* SPDX-License-Identifier: MIT */
#ifndef __FLOOD_H
#define __FLOOD_H

struct flood_event {
	int pid;
	unsigned long long ts;
	char comm[16];
};

#endif /* __FLOOD_H */
