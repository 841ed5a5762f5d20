/* SPDX-License-Identifier: MIT */
#ifndef __EVENT_H
#define __EVENT_H

struct point {
	int x;
	int y;
};

/* exported: "point" and "event" (every `struct NAME {` in this file) */
struct event {
	int pid;
	struct point where;		/* named nested struct -> "composite" */
	struct {
		unsigned int major;
		unsigned int minor;
	} dev;				/* anonymous struct member -> "composite" */
	union {
		unsigned long long as_u64;
		unsigned char bytes[8];
	} raw;				/* anonymous union member -> "composite" */
	union {				/* anonymous member without a name (C11) */
		int ret;
		int err;
	};
	struct point *last;		/* pointer to struct -> "struct point *" */
	char comm[16];
};

#endif
