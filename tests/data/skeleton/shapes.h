/* SPDX-License-Identifier: MIT */
/* Every shape a typed skeleton maps to Python: enums, nested and anonymous
 * structs, unions, u8 and 2-d arrays, bitfields, names Python reserves. */
#ifndef __SHAPES_H
#define __SHAPES_H

#include "point.h"	/* not exported itself: the ring buffer carries struct shape */

struct shape {
	int pid;
	enum mode mode;
	struct point where;
	struct point path[2];
	unsigned char mac[6];
	short grid[2][3];
	union {
		unsigned int as_int;
		float as_float;
	} value;
	struct {
		unsigned short port;
		unsigned short proto;
	};
	unsigned int flag : 1;
	unsigned int level : 3;
	int from;
	int __pad;
	bool ok;
	char comm[16];
};

#endif /* __SHAPES_H */
