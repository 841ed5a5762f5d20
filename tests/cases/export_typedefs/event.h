/* SPDX-License-Identifier: MIT */
#ifndef __EVENT_H
#define __EVENT_H

/* with vmlinux.h: typedef names are kept, never resolved */
typedef __u64 my_ts_t;				/* typedef of a typedef */
typedef struct { int lo, hi; } range_t;		/* typedef of an anonymous struct */

struct event {
	pid_t pid;			/* "pid_t" (-> __kernel_pid_t -> int) */
	uid_t uid;			/* "uid_t" */
	__u64 ts;			/* "__u64" */
	u32 cpu;			/* "u32" */
	bool exited;			/* "bool" (-> _Bool) */
	__s16 nice;			/* "__s16" */
	size_t len;			/* "size_t" */
	my_ts_t start;			/* "my_ts_t" */
	range_t range;			/* typedef to a struct: "range_t", not "composite" */
	pid_t children[4];		/* "pid_t[4]" */
	__u8 *buf;			/* "__u8 *" */
};

#endif
