/* SPDX-License-Identifier: MIT */
#ifndef __EVENT_H
#define __EVENT_H

/* bitfield members: BTF keeps each with its bit offset and bitfield size
 * (kind_flag set on the struct); the type string is the base type */
struct event {
	unsigned int pid;
	unsigned int is_exit : 1;
	unsigned int cpu : 7;
	unsigned int prio : 8;
	int delta : 16;			/* signed bitfield */
	unsigned long long ts : 48;
	unsigned long long seq : 16;
	unsigned char flags : 3;
	char comm[16];
};

#endif
